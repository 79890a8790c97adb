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
- Requests go through kitt's GitHub client (``kitt.github.client``), whose transport retries
  the listing and the edit (a PATCH that sets the same body again) under kitt's network policy
  (``kitt.github.http``). A retried POST can duplicate a comment, so the transport sends the
  create once, and this module tries again under the same policy only after listing the
  comments again (the create may have been stored though its answer failed).
- A comment deleted between the listing and the edit (404 on the edit) is created afresh.
- Bodies over GitHub's 65,536-character limit are cut with a visible note.
- Messages never contain the token.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from kitt.errors import GitHubError, UsageError
from kitt.github.http import GITHUB_RETRY, RetryPolicy
from kitt.platform import COMMENT_LIMIT, DEFAULT_API_URL, MARKER_NAME, comment_size

if TYPE_CHECKING:
    from github.Issue import Issue
    from github.IssueComment import IssueComment

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


def fit_comment_body(body: str, limit: int = COMMENT_LIMIT) -> str:
    """``body`` if it fits in ``limit`` characters (as GitHub counts them), else a cut at a line
    end with a note.

    A code fence or ``<details>`` block left open by the cut is closed, so the rest of
    the comment still renders.
    """
    if comment_size(body) <= limit:
        return body
    budget = limit - comment_size(TRUNCATION_NOTE)
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
        if comment_size(fitted) <= limit:
            return fitted
        budget -= comment_size(fitted) - limit
    return body[: (limit - comment_size(TRUNCATION_NOTE)) // 2] + TRUNCATION_NOTE


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
    retry: RetryPolicy = GITHUB_RETRY,
    create: bool = True,
) -> CommentResult | None:
    """Create kitt's comment on pull request ``pr`` of ``repo`` ("owner/name"), or edit it.

    With ``create=False`` an existing comment is updated but none is created (None is returned
    when there is none): the action's ``comment: on-regression`` uses it to correct an earlier
    regression comment once the regression is gone, without opening a new one.

    ``api_url`` is GitHub's REST base (the caller reads ``GITHUB_API_URL``). ``retry`` is the
    network policy of every request; its first delay is also the least gap PyGithub keeps between
    writes (tests pass a small one).

    Raises CommentForbidden on 403, GitHubError on other failures, UsageError on bad
    arguments.
    """
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise UsageError(f"repository {repo!r} is not in owner/name form", hint="Pass e.g. `octo-org/my-repo`.")
    if isinstance(pr, bool) or not isinstance(pr, int) or pr < 1:
        raise UsageError(f"pull request number {pr!r} is not a positive integer")
    marker = comment_marker(key)
    text = fit_comment_body(_with_marker(body, marker))
    # Here, not at the top: checking a comment key (the action's preflight) need not import PyGithub.
    from kitt.github.client import SHAPE_ERRORS

    session = _Session(token, repo, pr, api_url or DEFAULT_API_URL, retry)
    try:
        result = session.upsert(marker, text, create=create)
    except SHAPE_ERRORS as error:
        # PyGithub reads whatever JSON a 200 carries; a proxy's page or an API change breaks it here.
        raise GitHubError(
            f"GitHub's answer while posting the comment on {repo}#{pr} was not what its API returns "
            f"({type(error).__name__})",
            hint="Check `GITHUB_API_URL`; a proxy or an outage page may be answering.",
        ) from None
    finally:
        session.close()
    if result is not None and not (isinstance(result.url, str) and isinstance(result.id, int)):
        raise GitHubError(
            f"GitHub's answer while posting the comment on {repo}#{pr} names no comment URL or id",
            hint="Check `GITHUB_API_URL`; a proxy or an outage page may be answering.",
        )
    return result


class _Session:
    """One upsert's GitHub client plus the policy's retry around the create."""

    def __init__(self, token: str, repo: str, pr: int, api_url: str, retry: RetryPolicy) -> None:
        from kitt.github.client import github_client

        self.token, self.repo, self.pr, self.api_url = token, repo, pr, api_url.rstrip("/")
        self.retry = retry
        self.client = github_client(token, self.api_url, retry)
        self.issue: Issue = self.client.get_repo(repo).get_issue(pr)

    def close(self) -> None:
        self.client.close()

    def upsert(self, marker: str, text: str, create: bool = True) -> CommentResult | None:
        tried_create = False
        for attempt in range(self.retry.attempts):
            existing = self._find(marker)
            if existing is not None:
                if existing.body != text and not self._edit(existing, text):
                    continue  # deleted meanwhile: look again, then create a fresh one
                return CommentResult(existing.html_url, existing.id, "created" if tried_create else "updated")
            if not create:
                return None
            try:
                created = self.issue.create_comment(text)
                return CommentResult(created.html_url, created.id, "created")
            except Exception as error:
                tried_create = True
                # A create that failed ambiguously is safe to try again: the loop lists first.
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

    def _edit(self, comment: IssueComment, text: str) -> bool:
        """Edit the comment (the client's transport retries the PATCH under the policy); False when
        it no longer exists (404), so the caller creates one."""
        import requests
        from github import GithubException

        try:
            comment.edit(text)
        except (GithubException, requests.RequestException) as error:
            if getattr(error, "status", None) == 404:
                return False
            raise self._failure("edit the pull request comment", error) from None
        return True

    def _wait_before_retry(self, error: Exception, doing: str, attempt: int) -> None:
        """Sleep if the failed create is worth trying again under the policy, else raise kitt's error.

        The create counts as idempotent here because the caller lists the comments again before
        it creates again.
        """
        import requests
        from github import GithubException

        if not isinstance(error, (GithubException, requests.RequestException)):
            raise error  # a bug, not GitHub's answer: let it show as one
        status = getattr(error, "status", None)
        headers = getattr(error, "headers", None) or {}
        if status in (403, 429):
            # A plain 403 is a refusal whatever its headers; a secondary rate limit that names
            # no wait asks for a minute (GitHub's docs).
            headers = {"retry-after": _header(error, "retry-after") or "60"} if _is_secondary_rate_limit(error) else {}
            status = 429 if headers else status
        wait = self.retry.wait_before_retry(
            attempt, status if isinstance(status, int) else None, headers, idempotent=True
        )
        if wait is None:
            raise self._failure(doing, error) from None
        self.retry.sleep(wait)

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
            return GitHubError(
                text,
                hint="The token was rejected: pass a valid `github-token` (the default `${{ github.token }}` works).",
            )
        if status in (403, 429) and _is_primary_rate_limit(error):
            return GitHubError(
                text, hint="The token's API rate limit is used up until the hour resets; re-run the job later."
            )
        if status in (403, 429) and _is_secondary_rate_limit(error):
            return GitHubError(
                text,
                hint="GitHub's secondary rate limit held for longer than kitt waits; "
                "re-run the job later or comment from fewer parallel jobs.",
            )
        if status == 403:
            return CommentForbidden(text, hint=PERMISSION_HINT)
        if status == 404:
            return GitHubError(
                text,
                hint="Check the repository and pull request number; a private "
                "repository also needs a token that can read it (`pull-requests: write`).",
            )
        if status == 422:
            return GitHubError(
                text, hint="GitHub rejected the comment body; report this as a kitt bug with the job log."
            )
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
    return (
        _message(error).lower().startswith("api rate limit exceeded") or _header(error, "x-ratelimit-remaining") == "0"
    )


def _is_secondary_rate_limit(error: Any) -> bool:
    if getattr(error, "status", None) not in (403, 429):
        return False
    message = _message(error).lower()
    if _is_primary_rate_limit(error):
        return False
    return _header(error, "retry-after") is not None or "secondary rate limit" in message
