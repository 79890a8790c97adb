"""kitt's one GitHub REST client: a PyGithub ``Github`` whose transport retries by ``kitt.github.http``.

Every call kitt makes to GitHub's REST API (the artifact listings, the pull request lookup, the
comment upsert) goes through the ``Github`` that :func:`github_client` builds, one per download
or publish. Its ``retry`` is :class:`PolicyRetry`: urllib3's retry hook, asking kitt's
:class:`~kitt.github.http.RetryPolicy` whether and how long to wait. So PyGithub's requests are
retried, paced and given up on exactly as the ``requests`` calls of the artifact download and
upload are, ``Retry-After`` and the injected sleeper included.

What the transport sends again: only requests that are safe to send twice, GET and PATCH (the
one PATCH kitt sends is the comment edit, which sets the same body again). The one POST, creating
a comment, goes out once; :mod:`kitt.github.comments` decides under the same policy whether to
try again, and lists the comments first, since a create that failed may have been stored.

PyGithub has no call for an artifact's archive (a 302 to a short-lived URL on another host), so
``baseline.py`` fetches it with ``requests`` and :func:`kitt.github.http.send`. The token goes only
to the API's own host: PyGithub sends every request, ``Link`` pages included, to ``base_url``.

Importing this module imports PyGithub (about a third of a second): the modules that talk to
GitHub import it where they do, so that checking inputs never pays for it.
"""

from __future__ import annotations

import math
from typing import Any

import requests
from github import Auth, BadAttributeException, Github, GithubException
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import RequestHistory, Retry

from kitt.errors import GitHubError, UsageError
from kitt.github.http import GITHUB_RETRY, IDEMPOTENT_METHODS, RetryPolicy
from kitt.platform import DEFAULT_API_URL, USER_AGENT

PER_PAGE = 100  # GitHub's largest page
# The requests the transport may send again: the idempotent ones, and PATCH (kitt's only PATCH is
# the comment edit, which sets the same body again). A POST goes out once.
RESENDABLE_METHODS = IDEMPOTENT_METHODS | {"PATCH"}
# What PyGithub raises when a 200 carries JSON of another shape (a proxy's page, an API change).
SHAPE_ERRORS = (TypeError, KeyError, AttributeError, ValueError, BadAttributeException)
# Everything a read through the client may raise that is GitHub's doing or the network's.
READ_ERRORS = (GithubException, requests.RequestException, *SHAPE_ERRORS)
READ_PERMISSION_HINT = "Give the job `permissions: actions: read` (and `contents: read` for a private repository)."
SHAPE_HINT = "Check `GITHUB_API_URL`; a proxy or an outage page may be answering."


class PolicyRetry(Retry):
    """urllib3's retry hook deciding by a :class:`RetryPolicy`: the retry PyGithub's transport uses.

    urllib3 asks :meth:`is_retry` about each answer, then :meth:`increment` (which asks the policy,
    with the answer's headers, and stores the wait it names, or gives up by raising
    ``MaxRetryError``), then :meth:`sleep`. An answer not retried goes back to PyGithub as it came
    (``raise_on_status`` off), so PyGithub raises its ``GithubException`` with GitHub's status and
    message. Only :data:`RESENDABLE_METHODS` are sent again, for a network error as for an answer.
    """

    def __init__(self, policy: RetryPolicy = GITHUB_RETRY, *, wait_s: float = 0.0, **kwargs: Any) -> None:
        kwargs.setdefault("total", policy.attempts - 1)  # shown by repr(); the policy decides
        kwargs.setdefault("allowed_methods", RESENDABLE_METHODS)
        kwargs.update(raise_on_status=False, respect_retry_after_header=False)
        super().__init__(**kwargs)
        self.policy = policy
        self.wait_s = wait_s  # what the policy said to wait before the next try

    def new(self, **kw: Any) -> PolicyRetry:
        kw.setdefault("policy", self.policy)
        return super().new(**kw)  # type: ignore[return-value]

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        """Whether an answer is a candidate; :meth:`increment` asks the policy, which sees the headers."""
        limited = status_code == 429 or (status_code == 403 and has_retry_after)
        return self._is_method_retryable(method) and (limited or status_code >= 500)

    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> PolicyRetry:
        status = response.status if response is not None else None
        wait = None
        if method is not None and self._is_method_retryable(method):
            connected = error is None or not self._is_connection_error(error)
            wait = self.policy.wait_before_retry(
                len(self.history),
                status,
                response.headers if response is not None else None,
                idempotent=True,
                connected=connected,
            )
        if wait is None:
            raise MaxRetryError(_pool, url, error or ResponseError(f"HTTP {status}")) from error
        history = (*self.history, RequestHistory(method, url, error, status, None))
        return self.new(history=history, wait_s=wait)

    def sleep(self, response: Any = None) -> None:
        self.policy.sleep(self.wait_s)


class _BearerToken(Auth.Token):
    """The token as ``Authorization: Bearer``, the form every other request of kitt's to GitHub uses."""

    @property
    def token_type(self) -> str:
        return "Bearer"


def github_client(token: str, api_url: str | None = None, retry: RetryPolicy = GITHUB_RETRY) -> Github:
    """The one way kitt builds its PyGithub client: ``api_url`` is GitHub's REST base (the caller
    reads ``GITHUB_API_URL``), ``retry`` the network policy (tests pass a fast one).

    Objects are lazy (a repository or pull request is fetched when a field is read), and only
    writes are paced, by the policy's first delay: GitHub asks for about a second between them.
    Close it when done.
    """
    return Github(
        auth=_BearerToken(token) if token else None,
        base_url=(api_url or DEFAULT_API_URL).rstrip("/"),
        per_page=PER_PAGE,
        retry=PolicyRetry(retry),
        timeout=max(1, math.ceil(retry.timeout_s)),  # PyGithub takes whole seconds
        user_agent=USER_AGENT,
        lazy=True,
        seconds_between_requests=None,
        seconds_between_writes=retry.first_delay_s or None,
    )


def check_repository(repo: str) -> None:
    """UsageError unless ``repo`` is in owner/name form."""
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise UsageError(f"repository {repo!r} is not in owner/name form", hint="Pass e.g. `octo-org/my-repo`.")


def json_object(data: Any, doing: str) -> dict[str, Any]:
    """``data`` if it is the JSON object GitHub's API returns, else GitHubError."""
    if not isinstance(data, dict):
        raise GitHubError(
            f"GitHub's answer to the request to {doing} was not the JSON object its API returns", hint=SHAPE_HINT
        )
    return data


def answer_failure(status: int, message: str, doing: str, repo: str) -> GitHubError:
    """kitt's error for an HTTP answer that refused a read (listing, lookup, download)."""
    if status >= 500:
        return GitHubError(
            f"GitHub failed to {doing} (HTTP {status})",
            hint="This is usually temporary on GitHub's side: re-run the job.",
        )
    text = f"Could not {doing} in {repo} (HTTP {status}: {message})"
    if status in (403, 429) and "rate limit" in message.lower():
        return GitHubError(text, hint="GitHub's API rate limit held; re-run the job later.")
    if status in (401, 403, 404):
        return GitHubError(text, hint=READ_PERMISSION_HINT)
    return GitHubError(text, hint="Re-run the job; if it keeps failing, report it with the job log.")


def unreachable(doing: str, api_url: str | None) -> GitHubError:
    return GitHubError(
        f"Could not reach GitHub at {(api_url or DEFAULT_API_URL).rstrip('/')} to {doing}",
        hint="Check the network and `GITHUB_API_URL`; re-run the job if it was a glitch.",
    )


def read_failure(error: Exception, doing: str, repo: str, api_url: str | None) -> GitHubError:
    """kitt's one-line error for a read through the client that raised one of :data:`READ_ERRORS`."""
    if isinstance(error, GithubException):
        return answer_failure(error.status, error_message(error), doing, repo)
    if isinstance(error, requests.RequestException):
        return unreachable(doing, api_url)
    return GitHubError(
        f"GitHub's answer to the request to {doing} was not the JSON object its API returns ({type(error).__name__})",
        hint=SHAPE_HINT,
    )


def error_message(error: GithubException) -> str:
    """GitHub's ``message`` in a refusal, on one line and short."""
    data = error.data
    message = data.get("message") if isinstance(data, dict) else None
    return " ".join(str(message or data or "no message").split())[:200]
