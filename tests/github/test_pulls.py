"""get_pull_request against the GitHub double: what GitHub says, never what an artifact claims."""

from __future__ import annotations

from typing import Any

import pytest

from kitt.errors import GitHubError, UsageError
from kitt.github.http import RetryPolicy
from kitt.github.pulls import PullRequest, get_pull_request

REPO = "octo-org/kitt-demo"


def lookup(double: Any, pr: int, **kwargs: Any) -> PullRequest:
    options: dict[str, Any] = dict(
        token=double.token, repo=REPO, api_url=double.api_url, retry=RetryPolicy(first_delay_s=0.01)
    )
    return get_pull_request(pr=pr, **{**options, **kwargs})


def test_head_commit_and_base_branch_come_from_github(github_double: Any) -> None:
    github_double.add_pull(12, base_ref="release-2", from_fork=True)
    assert lookup(github_double, 12) == PullRequest(12, "a" * 40, "release-2")
    (request,) = github_double.requests_for("pulls/get")
    assert request.path == f"/repos/{REPO}/pulls/12"


def test_a_missing_pull_request_names_the_permission_and_hides_the_token(github_double: Any) -> None:
    with pytest.raises(
        GitHubError, match=r"read pull request #99 in octo-org/kitt-demo \(HTTP 404.*actions: read"
    ) as caught:
        lookup(github_double, 99)
    assert github_double.token not in str(caught.value)


@pytest.mark.parametrize("repo", ["kitt-demo", "a/b/c"])
def test_a_repository_not_in_owner_name_form_is_a_usage_error(github_double: Any, repo: str) -> None:
    with pytest.raises(UsageError, match="owner/name"):
        lookup(github_double, 1, repo=repo)
    assert github_double.log == []
