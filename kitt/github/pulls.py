"""Look up a pull request: its head commit and base branch, as GitHub has them.

The report mode (``workflow_run``) reads the pull request's number from an artifact, which a fork
may have written: before commenting, it asks GitHub which commit is the PR's head and which branch
its base, and trusts only that answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from kitt.errors import GitHubError
from kitt.github.client import READ_ERRORS, check_repository, github_client, json_object, read_failure
from kitt.github.http import GITHUB_RETRY, RetryPolicy


@dataclass(frozen=True)
class PullRequest:
    number: int
    head_sha: str
    base_ref: str


def get_pull_request(*, token: str, repo: str, pr: int, api_url: str | None = None,
                     retry: RetryPolicy = GITHUB_RETRY) -> PullRequest:
    """The pull request's head commit and base branch, as GitHub has them (not as an artifact says).

    Raises GitHubError when GitHub refuses or cannot be reached (401/403/404 say which permission
    to grant), or when its answer lacks either field.
    """
    check_repository(repo)
    doing = f"read pull request #{int(pr)}"
    client = github_client(token, api_url, retry)
    try:
        data = json_object(client.get_repo(repo).get_pull(int(pr)).raw_data, doing)
    except READ_ERRORS as error:
        raise read_failure(error, doing, repo, api_url) from None
    finally:
        client.close()
    head, base = data.get("head"), data.get("base")
    sha = head.get("sha") if isinstance(head, dict) else None
    ref = base.get("ref") if isinstance(base, dict) else None
    if not (isinstance(sha, str) and isinstance(ref, str)):
        raise GitHubError(f"GitHub's answer to the request to {doing} lacks the head commit or base branch")
    return PullRequest(int(pr), sha, ref)
