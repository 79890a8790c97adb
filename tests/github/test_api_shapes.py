"""kitt.github against a REST API that answers 200 with the wrong shape: one-line GitHubErrors,
or entries skipped as not ours; never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kitt.errors import GitHubError
from kitt.github.baseline import download_baseline
from kitt.github.comments import upsert_pr_comment
from kitt.github.http import RetryPolicy
from kitt.github.pulls import get_pull_request


SHAPES = [["not", "an", "object"], "text", {"artifacts": "x"}, {"artifacts": [1, {"id": "x", "name": 5}]}]


@pytest.mark.parametrize("body", SHAPES)
@pytest.mark.parametrize("operation", ["actions/list-artifacts-for-repo", "repos/get", "pulls/get"])
def test_an_api_answering_200_with_the_wrong_shape(github_double, tmp_path: Path, operation: str, body: Any) -> None:
    fast = RetryPolicy(attempts=2, first_delay_s=0.0, sleep=lambda s: None)
    common = dict(
        token=github_double.token, repo=github_double.repo.full_name, api_url=github_double.api_url, retry=fast
    )
    github_double.fail_next(operation, 200, body=body, times=3)
    try:
        if operation == "pulls/get":
            pull = github_double.add_pull()
            with pytest.raises(GitHubError, match="lacks the head commit|not the JSON object"):
                get_pull_request(pr=pull.number, **common)
        else:
            branch = None if operation == "repos/get" else "main"
            try:
                found = download_baseline(name="kitt-results", dest=tmp_path / "b", base_branch=branch, **common)
            except GitHubError as error:
                assert "\n" not in str(error)
            else:  # entries of the wrong shape are skipped as not ours
                assert not found and isinstance(body, dict) and isinstance(body.get("artifacts"), list)
    finally:
        github_double.take_violations()  # the double rightly flags the answers this test makes it give


@pytest.mark.parametrize("operation", ["issues/list-comments", "issues/create-comment"])
@pytest.mark.parametrize("body", [[0], "text", {"unexpected": 1}, [{"body": 5}]])
def test_a_comment_api_of_the_wrong_shape(github_double, operation: str, body: Any) -> None:
    pull = github_double.add_pull()
    github_double.fail_next(operation, 200, body=body, times=5)
    try:
        with pytest.raises(GitHubError):
            upsert_pr_comment(
                token=github_double.token,
                repo=github_double.repo.full_name,
                pr=pull.number,
                body="hi",
                api_url=github_double.api_url,
                retry=RetryPolicy(attempts=2, first_delay_s=0.0, sleep=lambda s: None),
            )
    finally:
        github_double.take_violations()
