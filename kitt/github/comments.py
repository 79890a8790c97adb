"""Create or update kitt's pull-request comment: one comment per marker, never a duplicate.

Every kitt comment starts with a marker, ``<!-- kitt-benchmark -->`` or, with a comment
key (one per matrix job, say), ``<!-- kitt-benchmark:KEY -->``. Only a comment whose
body *starts* with the exact marker is ours: a quoted marker in someone's reply, or
another key's marker, does not match.

Choices worth knowing:

- If several comments carry our marker (left by an older version or a race), the
  newest is edited and the others are left alone: the newest is where readers look,
  and deleting comments is not ours to do.
- An identical body is not sent again (no "edited" noise, one less write).
- PyGithub never retries a PATCH, and a retried POST can duplicate a comment. So
  urllib3 retries only GETs here; edits are retried by this module (5xx, network errors,
  secondary rate limits, honouring ``retry-after``), and after a create that failed
  ambiguously (5xx, timeout) the comments are listed again before creating again.
- Bodies over GitHub's 65,536-character limit are cut with a visible note.
- Messages never contain the token.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from kitt.errors import GitHubError, UsageError

if TYPE_CHECKING:
    from github.Issue import Issue
    from github.IssueComment import IssueComment

DEFAULT_API_URL = "https://api.github.com"
MARKER_NAME = "kitt-benchmark"
MAX_COMMENT_CHARS = 65536
MAX_KEY_CHARS = 100
TRUNCATION_NOTE = (
    "\n\n---\n> [!NOTE]\n> kitt cut this comment to fit GitHub's 65,536-character limit. "
    "The full report is in the workflow run's job summary and results artifact.\n"
)
PERMISSION_HINT = (
    "Give the job `permissions: pull-requests: write`. Pull requests from forks get a read-only "
    "token: post the comment from a `workflow_run` workflow instead (kitt's report mode)."
)


class CommentForbidden(GitHubError):
    """GitHub answered 403: the token may not comment (a fork's read-only token, say).

    Callers usually downgrade this to a warning rather than failing the job.
    """


@dataclass(frozen=True)
class CommentResult:
    url: str  # the comment's html_url
    id: int
    action: Literal["created", "updated"]


def comment_marker(key: str | None = None) -> str:
    """The marker that starts kitt's comment; ``key`` separates several comments on one PR.

    An empty key means no key. Raises UsageError for a key that cannot live inside an
    HTML comment on one line.
    """
    if not key:
        return f"<!-- {MARKER_NAME} -->"
    reason = None
    if "-->" in key or "--!>" in key:
        reason = "contains '-->', which would end the HTML comment"
    elif any(unicodedata.category(ch).startswith("C") for ch in key):
        reason = "contains a newline or another control character"
    elif key != key.strip():
        reason = "starts or ends with whitespace"
    elif len(key) > MAX_KEY_CHARS:
        reason = f"is longer than {MAX_KEY_CHARS} characters"
    if reason:
        raise UsageError(
            f"comment key {key[:MAX_KEY_CHARS]!r} {reason}",
            hint="Use a short one-line key such as the matrix job's name, e.g. `comment-key: llama-h100`.",
        )
    return f"<!-- {MARKER_NAME}:{key} -->"


def fit_comment_body(body: str, limit: int = MAX_COMMENT_CHARS) -> str:
    """``body`` if it fits in ``limit`` characters, else a cut at a line end with a note.

    A code fence or ``<details>`` block left open by the cut is closed, so the rest of
    the comment still renders.
    """
    if len(body) <= limit:
        return body
    budget = limit - len(TRUNCATION_NOTE)
    for _ in range(4):  # closing tags take room; a few shrinking passes always suffice
        cut = body[:budget]
        line_end = cut.rfind("\n")
        if line_end > budget // 2:
            cut = cut[:line_end]
        closers = ""
        if sum(1 for line in cut.splitlines() if line.lstrip().startswith("```")) % 2:
            closers += "\n```"
        closers += "\n</details>" * max(0, cut.count("<details") - cut.count("</details>"))
        fitted = cut + closers + TRUNCATION_NOTE
        if len(fitted) <= limit:
            return fitted
        budget -= len(fitted) - limit
    return body[: limit - len(TRUNCATION_NOTE)] + TRUNCATION_NOTE


def _with_marker(body: str, marker: str) -> str:
    return body if body.startswith(marker) else f"{marker}\n{body}"


def upsert_pr_comment(
    *,
    token: str,
    repo: str,
    pr: int,
    body: str,
    key: str | None = None,
    api_url: str | None = None,
    retry_delay: float = 1.0,
    max_attempts: int = 4,
    max_retry_wait: float = 60.0,
    create: bool = True,
) -> CommentResult | None:
    """Create kitt's comment on pull request ``pr`` of ``repo`` ("owner/name"), or edit it.

    With ``create=False`` an existing comment is updated but none is created (None is returned
    when there is none): the action's ``comment: on-regression`` uses it to correct an earlier
    regression comment once the regression is gone, without opening a new one.

    ``api_url`` is GitHub's REST base (the caller reads ``GITHUB_API_URL``).
    ``retry_delay`` is the base delay between retried writes (doubling per attempt) and
    the least gap PyGithub keeps between writes; tests pass a small value. A
    ``retry-after`` longer than ``max_retry_wait`` seconds is not waited for.

    Raises CommentForbidden on 403, GitHubError on other failures, UsageError on bad
    arguments.
    """
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise UsageError(f"repository {repo!r} is not in owner/name form", hint="Pass e.g. `octo-org/my-repo`.")
    if isinstance(pr, bool) or not isinstance(pr, int) or pr < 1:
        raise UsageError(f"pull request number {pr!r} is not a positive integer")
    marker = comment_marker(key)
    text = fit_comment_body(_with_marker(body, marker))
    session = _Session(token, repo, pr, api_url or DEFAULT_API_URL, retry_delay, max_attempts, max_retry_wait)
    try:
        return session.upsert(marker, text, create=create)
    finally:
        session.close()


class _Session:
    """One upsert's PyGithub client plus the retry policy around its writes."""

    def __init__(self, token: str, repo: str, pr: int, api_url: str, retry_delay: float,
                 max_attempts: int, max_retry_wait: float) -> None:
        from github import Auth, Github, GithubRetry

        self.token, self.repo, self.pr, self.api_url = token, repo, pr, api_url.rstrip("/")
        self.retry_delay, self.max_attempts, self.max_retry_wait = retry_delay, max(1, max_attempts), max_retry_wait
        retry = GithubRetry(
            total=3,
            backoff_factor=retry_delay,
            allowed_methods=frozenset({"GET"}),  # POST and PATCH are retried below, knowingly
            secondary_rate_wait=min(60.0, max_retry_wait),
        )
        # GitHub asks for serial requests and about a second between writes; an upsert makes a
        # handful of serial requests, so only writes are paced.
        self.client = Github(auth=Auth.Token(token), base_url=self.api_url, per_page=100, lazy=True,
                             retry=retry, seconds_between_requests=None,
                             seconds_between_writes=retry_delay or None)
        self.issue: Issue = self.client.get_repo(repo).get_issue(pr)

    def close(self) -> None:
        self.client.close()

    def upsert(self, marker: str, text: str, create: bool = True) -> CommentResult | None:
        tried_create = False
        for attempt in range(self.max_attempts):
            existing = self._find(marker)
            if existing is not None:
                if existing.body != text:
                    self._edit(existing, text)
                return CommentResult(existing.html_url, existing.id, "created" if tried_create else "updated")
            if not create:
                return None
            try:
                created = self.issue.create_comment(text)
                return CommentResult(created.html_url, created.id, "created")
            except Exception as error:
                tried_create = True
                self._wait_before_retry(error, "create the pull request comment", attempt)
        raise self._failure("create the pull request comment", None)

    def _find(self, marker: str) -> IssueComment | None:
        """The newest comment whose body starts with ``marker``, reading every page."""
        import requests
        from github import GithubException

        try:
            matches = [c for c in self.issue.get_comments() if (c.body or "").startswith(marker)]
        except (GithubException, requests.RequestException) as error:
            raise self._failure("list the pull request's comments", error) from None
        return max(matches, key=lambda c: (c.created_at, c.id), default=None)

    def _edit(self, comment: IssueComment, text: str) -> None:
        for attempt in range(self.max_attempts):
            try:
                comment.edit(text)
                return
            except Exception as error:
                self._wait_before_retry(error, "edit the pull request comment", attempt)
        raise self._failure("edit the pull request comment", None)

    def _wait_before_retry(self, error: Exception, doing: str, attempt: int) -> None:
        """Sleep if ``error`` is worth retrying (and attempts remain), else raise kitt's error."""
        import requests
        from github import GithubException

        if not isinstance(error, (GithubException, requests.RequestException)):
            raise error  # a bug, not GitHub's answer: let it show as one
        wait = self._retry_wait(error, attempt)
        if wait is None or attempt + 1 >= self.max_attempts:
            raise self._failure(doing, error) from None
        time.sleep(wait)

    def _retry_wait(self, error: Any, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``error``, or None when retrying cannot help."""
        backoff = self.retry_delay * (2**attempt)
        if not isinstance(getattr(error, "status", None), int):  # network error or timeout
            return backoff
        if error.status >= 500:
            return backoff
        if _is_secondary_rate_limit(error):
            after = _header(error, "retry-after")
            wait = float(after) if after and after.isdigit() else 60.0
            return wait if wait <= self.max_retry_wait else None
        return None

    def _failure(self, doing: str, error: Exception | None) -> GitHubError:
        """kitt's one-line error for a failed ``doing``; never contains the token."""
        from github import GithubException

        where = f"{self.repo}#{self.pr}"
        if error is None or not isinstance(error, GithubException):
            detail = f" ({type(error).__name__}: {' '.join(str(error).split())[:200]})" if error else ""
            return GitHubError(
                self._scrub(f"Could not {doing} on {where} at {self.api_url}{detail}"),
                hint="GitHub or the network failed repeatedly; this is usually temporary, so re-run the job.",
            )
        status, message = error.status, self._scrub(_message(error))
        text = f"Could not {doing} on {where} (HTTP {status}: {message})"
        if status == 401:
            return GitHubError(text, hint="The token was rejected: pass a valid `github-token` "
                                          "(the default `${{ github.token }}` works).")
        if status in (403, 429) and _is_primary_rate_limit(error):
            return GitHubError(text, hint="The token's API rate limit is used up until the hour resets; "
                                          "re-run the job later.")
        if status in (403, 429) and _is_secondary_rate_limit(error):
            return GitHubError(text, hint="GitHub's secondary rate limit held for longer than kitt waits; "
                                          "re-run the job later or comment from fewer parallel jobs.")
        if status == 403:
            return CommentForbidden(text, hint=PERMISSION_HINT)
        if status == 404:
            return GitHubError(text, hint="Check the repository and pull request number; a private "
                                          "repository also needs a token that can read it (`pull-requests: write`).")
        if status == 422:
            return GitHubError(text, hint="GitHub rejected the comment body; report this as a kitt bug "
                                          "with the job log.")
        return GitHubError(text, hint="This is usually temporary on GitHub's side: re-run the job.")

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text


def _header(error: Any, name: str) -> str | None:
    headers = getattr(error, "headers", None) or {}
    for key, value in headers.items():
        if key.lower() == name:
            return str(value).strip()
    return None


def _message(error: Any) -> str:
    data = getattr(error, "data", None)
    message = data.get("message") if isinstance(data, dict) else None
    return " ".join(str(message or data or "no message").split())[:200]


def _is_primary_rate_limit(error: Any) -> bool:
    return _message(error).lower().startswith("api rate limit exceeded") or _header(
        error, "x-ratelimit-remaining"
    ) == "0"


def _is_secondary_rate_limit(error: Any) -> bool:
    if getattr(error, "status", None) not in (403, 429):
        return False
    message = _message(error).lower()
    if _is_primary_rate_limit(error):
        return False
    return _header(error, "retry-after") is not None or "secondary rate limit" in message
