"""download_baseline and download_run_artifact against the GitHub double."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from github_double import make_zip

from kitt.errors import ArtifactError, GitHubError
from kitt.github.http import RetryPolicy
from kitt.github.baseline import download_baseline, download_run_artifact

REPO = "octo-org/kitt-demo"
NAME = "kitt-results"
T0 = datetime(2024, 6, 1, tzinfo=timezone.utc)


def fetch(double: Any, dest: Path, **kwargs: Any) -> Any:
    options: dict[str, Any] = dict(
        token=double.token,
        repo=REPO,
        name=NAME,
        dest=dest,
        api_url=double.api_url,
        retry=RetryPolicy(first_delay_s=0.01),
    )
    options.update(kwargs)
    return download_baseline(**options)


def marked(label: str) -> dict[str, str]:
    return {"metrics.json": f'{{"from": "{label}"}}', "summary.md": f"# {label}\n"}


def test_newest_live_artifact_of_the_base_branch_is_unpacked(github_double: Any, tmp_path: Path) -> None:
    github_double.add_artifact(NAME, marked("old"), created_at=T0)
    newest = github_double.add_artifact(NAME, marked("newest"), created_at=T0 + timedelta(hours=2))
    github_double.add_artifact(NAME, marked("middle"), created_at=T0 + timedelta(hours=1))  # higher id, older
    github_double.add_artifact("other-name", marked("other"), created_at=T0 + timedelta(hours=3))
    result = fetch(github_double, tmp_path / "baseline", base_branch="main")
    assert result and result.artifact_id == newest.id and result.run_id == newest.run_id
    assert (tmp_path / "baseline" / "metrics.json").read_text() == '{"from": "newest"}'
    assert sorted(p.name for p in (tmp_path / "baseline").iterdir()) == ["metrics.json", "summary.md"]


def test_fork_artifact_named_like_the_baseline_on_main_is_skipped(github_double: Any, tmp_path: Path) -> None:
    github_double.add_artifact(NAME, marked("ours"), created_at=T0)
    github_double.add_artifact(NAME, marked("fork"), created_at=T0 + timedelta(hours=1), from_fork=True)
    result = fetch(github_double, tmp_path / "b", base_branch="main")
    assert (tmp_path / "b" / "metrics.json").read_text() == '{"from": "ours"}'
    assert result.artifact_id == github_double.artifacts[0].id


def test_only_fork_and_other_branch_artifacts_mean_no_baseline(github_double: Any, tmp_path: Path) -> None:
    github_double.add_artifact(NAME, marked("fork"), from_fork=True)
    github_double.add_artifact(NAME, marked("feature"), head_branch="feature")
    result = fetch(github_double, tmp_path / "b", base_branch="main")
    assert not result and result.path is None
    assert "branch 'main'" in result.reason and "2 found" in result.reason
    assert not (tmp_path / "b").exists()
    assert github_double.requests_for("actions/download-artifact") == []


def test_expired_artifacts_are_skipped(github_double: Any, tmp_path: Path) -> None:
    github_double.add_artifact(NAME, marked("live"), created_at=T0)
    github_double.add_artifact(NAME, marked("expired"), created_at=T0 + timedelta(days=1), expired=True)
    assert fetch(github_double, tmp_path / "b").path == tmp_path / "b"
    assert (tmp_path / "b" / "metrics.json").read_text() == '{"from": "live"}'


def test_410_on_download_is_a_notice_not_an_error(github_double: Any, tmp_path: Path) -> None:
    item = github_double.add_artifact(NAME, marked("gone"), gone=True)
    result = fetch(github_double, tmp_path / "b")
    assert result.path is None and result.artifact_id == item.id
    assert "expired" in result.reason and "410" in result.reason
    assert [r.status for r in github_double.requests_for("actions/download-artifact")] == [410]


def test_no_artifact_at_all_gives_a_reason(github_double: Any, tmp_path: Path) -> None:
    result = fetch(github_double, tmp_path / "b")
    assert result.path is None and f"no artifact named '{NAME}'" in result.reason


def test_default_branch_is_asked_for_when_no_base_ref_is_given(github_double: Any, tmp_path: Path) -> None:
    github_double.repo.default_branch = "trunk"
    github_double.add_artifact(NAME, marked("main"), head_branch="main", created_at=T0 + timedelta(hours=1))
    github_double.add_artifact(NAME, marked("trunk"), head_branch="trunk", created_at=T0)
    fetch(github_double, tmp_path / "b")
    assert (tmp_path / "b" / "metrics.json").read_text() == '{"from": "trunk"}'
    assert len(github_double.requests_for("repos/get")) == 1


def test_every_page_is_read_and_the_token_stays_off_the_blob_host(github_double: Any, tmp_path: Path) -> None:
    for i in range(120):
        github_double.add_artifact(NAME, marked("feature"), head_branch="feature", created_at=T0 + timedelta(i))
    github_double.add_artifact(NAME, marked("ours"), created_at=T0)  # oldest: listed on page 2
    assert fetch(github_double, tmp_path / "b", base_branch="main")
    assert [dict(r.query).get("page", "1") for r in github_double.requests_for("actions/list-artifacts-for-repo")] == [
        "1",
        "2",
    ]
    listing, download = (
        github_double.requests_for("actions/list-artifacts-for-repo")[0],
        github_double.requests_for("actions/download-artifact")[0],
    )
    assert listing.headers["authorization"] == download.headers["authorization"] == f"Bearer {github_double.token}"
    blob = github_double.requests_for("blob")
    assert len(blob) == 1 and "authorization" not in blob[0].headers


def test_5xx_and_a_short_rate_limit_on_listing_are_retried(github_double: Any, tmp_path: Path) -> None:
    github_double.add_artifact(NAME, marked("ours"))
    github_double.fail_next("actions/list-artifacts-for-repo", 502)
    github_double.rate_limit_next("actions/list-artifacts-for-repo", retry_after=0)
    assert fetch(github_double, tmp_path / "b", base_branch="main")
    assert [r.status for r in github_double.requests_for("actions/list-artifacts-for-repo")] == [502, 403, 200]


def test_a_lasting_rate_limit_is_not_blamed_on_permissions(github_double: Any, tmp_path: Path) -> None:
    github_double.rate_limit_next("actions/list-artifacts-for-repo", retry_after=0, times=4)
    with pytest.raises(GitHubError, match="rate limit") as caught:
        fetch(github_double, tmp_path / "b", base_branch="main")
    assert "actions: read" not in str(caught.value)


@pytest.mark.parametrize("status", [401, 403, 404])
def test_refused_listing_says_to_grant_actions_read(github_double: Any, tmp_path: Path, status: int) -> None:
    github_double.fail_next("actions/list-artifacts-for-repo", status)
    with pytest.raises(GitHubError, match=f"HTTP {status}.*permissions: actions: read") as caught:
        fetch(github_double, tmp_path / "b", base_branch="main")
    assert github_double.token not in str(caught.value)


def test_unknown_repository_is_a_clear_error(github_double: Any, tmp_path: Path) -> None:
    with pytest.raises(GitHubError, match=r"octo-org/missing.*HTTP 404.*actions: read"):
        fetch(github_double, tmp_path / "b", repo="octo-org/missing", base_branch="main")


def test_run_artifact_is_found_by_run_id(github_double: Any, tmp_path: Path) -> None:
    github_double.add_artifact(NAME, marked("other run"), run_id=41)
    github_double.add_artifact(NAME, marked("fork pr"), run_id=42, from_fork=True, head_branch="main")
    result = download_run_artifact(
        token=github_double.token, repo=REPO, run_id=42, name=NAME, dest=tmp_path / "r", api_url=github_double.api_url
    )
    assert result.run_id == 42 and (tmp_path / "r" / "metrics.json").read_text() == '{"from": "fork pr"}'
    missing = download_run_artifact(
        token=github_double.token, repo=REPO, run_id=43, name=NAME, dest=tmp_path / "m", api_url=github_double.api_url
    )
    assert missing.path is None and "run 43 was not uploaded" in missing.reason


def test_zip_slip_artifact_from_the_api_is_refused(github_double: Any, tmp_path: Path) -> None:
    github_double.add_artifact(NAME, content=make_zip({"metrics.json": b"{}", "../escaped.txt": b"x"}))
    with pytest.raises(ArtifactError, match=r"'\.\.'"):
        fetch(github_double, tmp_path / "b", base_branch="main")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "b").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging or download leftovers


def test_a_history_is_the_newest_jobs_of_the_base_branch_one_folder_each(github_double: Any, tmp_path: Path) -> None:
    for hour in range(5):
        github_double.add_artifact(NAME, marked(f"job{hour}"), created_at=T0 + timedelta(hours=hour))
    github_double.add_artifact(NAME, marked("fork"), created_at=T0 + timedelta(hours=9), from_fork=True)
    github_double.add_artifact(NAME, marked("branch"), created_at=T0 + timedelta(hours=9), head_branch="feature")
    github_double.add_artifact(NAME, marked("expired"), created_at=T0 + timedelta(hours=9), expired=True)
    result = fetch(github_double, tmp_path / "history", base_branch="main", history=3)
    assert result and result.jobs == 3
    folders = sorted((tmp_path / "history").iterdir())
    assert [f.name.split("-")[0] for f in folders] == ["01", "02", "03"]  # newest first
    assert [(f / "metrics.json").read_text() for f in folders] == [f'{{"from": "job{h}"}}' for h in (4, 3, 2)]
