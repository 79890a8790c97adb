"""kitt's one GitHub client: PyGithub retries by kitt.github.http's policy, the very object passed in.

Each test injects a RetryPolicy with a recording sleeper and odd delays, so the waits it sees can
only have come from that policy (its backoff, its Retry-After rule, its cap), and counts the
requests the GitHub double received.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from github import GithubException
from support import free_port

from kitt.errors import GitHubError
from kitt.github.baseline import download_baseline
from kitt.github.client import PolicyRetry, github_client
from kitt.github.comments import upsert_pr_comment
from kitt.github.http import RetryPolicy
from kitt.github.pulls import get_pull_request

REPO = "octo-org/kitt-demo"
NAME = "kitt-results"
PR = 7
LISTING = "actions/list-artifacts-for-repo"


def policy(waits: list[float], attempts: int = 4, **fields: Any) -> RetryPolicy:
    """A policy whose waits are recognisable: 0.25 s, then ×3 (0.75, 2.25, ...), recorded, not slept."""
    return RetryPolicy(attempts=attempts, first_delay_s=0.25, multiplier=3.0, sleep=waits.append, **fields)


def baseline(double: Any, dest: Path, retry: RetryPolicy) -> Any:
    return download_baseline(
        token=double.token, repo=REPO, name=NAME, dest=dest, base_branch="main", api_url=double.api_url, retry=retry
    )


def test_the_client_retries_with_the_policy_object_it_is_given(github_double: Any) -> None:
    given = policy([])
    client = github_client(github_double.token, github_double.api_url, given)
    try:
        retry = client.requester._Requester__retry  # what PyGithub hands to its requests adapter
        assert isinstance(retry, PolicyRetry) and retry.policy is given
    finally:
        client.close()


def test_a_502_on_the_artifact_listing_is_retried_as_the_policy_says(github_double: Any, tmp_path: Path) -> None:
    github_double.add_artifact(NAME, {"metrics.json": "{}"})
    github_double.fail_next(LISTING, 502, times=2)
    waits: list[float] = []
    assert baseline(github_double, tmp_path / "b", policy(waits))
    assert [r.status for r in github_double.requests_for(LISTING)] == [502, 502, 200]
    assert waits == [0.25, 0.75]  # the policy's backoff, through its own sleeper


def test_the_policy_s_attempts_bound_the_listing(github_double: Any, tmp_path: Path) -> None:
    github_double.fail_next(LISTING, 503, times=5)
    waits: list[float] = []
    with pytest.raises(GitHubError, match=r"GitHub failed to list artifacts named 'kitt-results' \(HTTP 503\)"):
        baseline(github_double, tmp_path / "b", policy(waits, attempts=3))
    assert len(github_double.requests_for(LISTING)) == 3 and waits == [0.25, 0.75]


def test_retry_after_is_the_wait_and_past_the_cap_the_answer_is_final(github_double: Any, tmp_path: Path) -> None:
    github_double.add_artifact(NAME, {"metrics.json": "{}"})
    github_double.rate_limit_next(LISTING, retry_after=7)
    waits: list[float] = []
    assert baseline(github_double, tmp_path / "b", policy(waits))
    assert waits == [7.0]
    github_double.rate_limit_next(LISTING, retry_after=120)
    with pytest.raises(GitHubError, match="rate limit"):
        baseline(github_double, tmp_path / "c", policy(waits, max_wait_s=60))
    assert waits == [7.0] and [r.status for r in github_double.requests_for(LISTING)] == [403, 200, 403]


def test_a_refusal_that_no_wait_mends_is_not_retried(github_double: Any, tmp_path: Path) -> None:
    github_double.fail_next(LISTING, 404)
    waits: list[float] = []
    with pytest.raises(GitHubError, match="HTTP 404"):
        baseline(github_double, tmp_path / "b", policy(waits))
    assert len(github_double.requests_for(LISTING)) == 1 and waits == []


def test_the_pull_request_lookup_retries_by_the_same_policy(github_double: Any) -> None:
    github_double.add_pull(PR, base_ref="release")
    github_double.fail_next("pulls/get", 500)
    waits: list[float] = []
    pull = get_pull_request(
        token=github_double.token, repo=REPO, pr=PR, api_url=github_double.api_url, retry=policy(waits)
    )
    assert (pull.base_ref, pull.head_sha) == ("release", "a" * 40)
    assert [r.status for r in github_double.requests_for("pulls/get")] == [500, 200] and waits == [0.25]


def test_a_connection_never_made_is_retried_then_named(tmp_path: Path) -> None:
    waits: list[float] = []
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(GitHubError, match=f"Could not reach GitHub at {closed} to read pull request #3"):
        get_pull_request(token="t", repo=REPO, pr=3, api_url=closed, retry=policy(waits, attempts=3))
    assert waits == [0.25, 0.75]


@pytest.mark.parametrize("status", [500, 502])
def test_the_transport_never_sends_a_comment_s_post_twice(github_double: Any, status: int) -> None:
    """Even a 502, which proves nothing was stored, goes back to the caller: only the upsert knows
    to list the comments before it creates again."""
    github_double.add_pull(PR)
    github_double.fail_next("issues/create-comment", status)
    waits: list[float] = []
    client = github_client(github_double.token, github_double.api_url, policy(waits))
    try:
        with pytest.raises(GithubException) as caught:
            client.get_repo(REPO).get_issue(PR).create_comment("report")
    finally:
        client.close()
    assert caught.value.status == status and waits == []
    assert len(github_double.requests_for("issues/create-comment")) == 1


def test_a_comment_whose_create_got_a_500_is_listed_again_not_posted_twice(github_double: Any) -> None:
    github_double.add_pull(PR)
    github_double.fail_next("issues/create-comment", 500, after_handling=True)  # stored, then the 500
    waits: list[float] = []
    result = upsert_pr_comment(
        token=github_double.token, repo=REPO, pr=PR, body="report", api_url=github_double.api_url, retry=policy(waits)
    )
    (stored,) = github_double.comments(PR)
    assert result.id == stored.id and result.action == "created"
    assert len(github_double.requests_for("issues/create-comment")) == 1
    assert len(github_double.requests_for("issues/list-comments")) == 2 and waits == [0.25]


def test_the_comment_edit_is_retried_by_the_transport_under_the_policy(github_double: Any) -> None:
    github_double.add_pull(PR)
    ours = github_double.add_comment(PR, "<!-- kitt-benchmark -->\nold")
    github_double.fail_next("issues/update-comment", 503, times=2)
    waits: list[float] = []
    result = upsert_pr_comment(
        token=github_double.token, repo=REPO, pr=PR, body="new", api_url=github_double.api_url, retry=policy(waits)
    )
    assert (result.action, result.id) == ("updated", ours.id)
    assert [r.status for r in github_double.requests_for("issues/update-comment")] == [503, 503, 200]
    assert len(github_double.requests_for("issues/list-comments")) == 1 and waits == [0.25, 0.75]
