"""The GitHub double itself: contract checks, pagination, redirects, auth and faults."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from . import objects
from .fixtures import fail_on_violations, github_contract, github_double  # noqa: F401  (the fixtures under test)
from .server import GitHubDouble
from .spec import SERVED_OPERATIONS, _refs, load_cut_spec

REPO = "/repos/octo-org/kitt-demo"


def call(
    double: GitHubDouble,
    method: str,
    path: str,
    *,
    token: str | None = GitHubDouble.TOKEN,
    body: Any = None,
    follow: bool = False,
) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    url = path if path.startswith("http") else double.api_url + path
    return requests.request(method, url, headers=headers, json=body, allow_redirects=follow, timeout=10)


def test_misspelt_field_in_comment_patch_is_a_violation(github_double: GitHubDouble) -> None:
    github_double.add_pull(7)
    comment = github_double.add_comment(7, "hello")
    response = call(github_double, "PATCH", f"{REPO}/issues/comments/{comment.id}", body={"bodyy": "x"})
    assert response.status_code == 422
    assert github_double.comments(7)[0].body == "hello"
    violations = github_double.take_violations()
    assert len(violations) == 1 and "'body' is a required property" in violations[0]


def test_teardown_check_fails_the_test_on_violations(github_double: GitHubDouble) -> None:
    call(github_double, "GET", f"{REPO}/issues/1/comments?per_page=lots")
    with pytest.raises(pytest.fail.Exception, match="per_page"):
        fail_on_violations(github_double)
    fail_on_violations(github_double)  # forgotten once reported


def test_unserved_route_is_a_violation(github_double: GitHubDouble) -> None:
    assert call(github_double, "DELETE", f"{REPO}/issues/comments/1").status_code == 404
    assert "serves no such operation" in github_double.take_violations()[0]


def test_a_drifting_response_is_a_violation(github_double: GitHubDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    real = objects.issue_comment

    def without_node_id(*args: Any) -> dict[str, Any]:
        return {k: v for k, v in real(*args).items() if k != "node_id"}

    monkeypatch.setattr(objects, "issue_comment", without_node_id)
    github_double.add_pull(7)
    github_double.add_comment(7, "hello")
    assert call(github_double, "GET", f"{REPO}/issues/7/comments").status_code == 200
    assert "'node_id' is a required property" in github_double.take_violations()[0]


def test_good_traffic_has_no_violations(github_double: GitHubDouble) -> None:
    github_double.add_pull(7, from_fork=True)
    assert call(github_double, "GET", REPO).json()["default_branch"] == "main"
    pull = call(github_double, "GET", f"{REPO}/pulls/7").json()
    assert pull["base"]["ref"] == "main" and pull["head"]["repo"]["full_name"] == "fork-user/kitt-demo"
    created = call(github_double, "POST", f"{REPO}/issues/7/comments", body={"body": "hi"})
    assert created.status_code == 201
    edited = call(github_double, "PATCH", f"{REPO}/issues/comments/{created.json()['id']}", body={"body": "yo"})
    assert edited.json()["body"] == "yo"
    assert github_double.violations == []


def test_comment_pages_and_link_headers_follow_github(github_double: GitHubDouble) -> None:
    github_double.add_pull(7)
    ids = [github_double.add_comment(7, f"c{i}").id for i in range(5)]
    first = call(github_double, "GET", f"{REPO}/issues/7/comments?per_page=2")
    assert [c["id"] for c in first.json()] == ids[:2]
    assert set(first.links) == {"next", "last"}
    assert first.links["last"]["url"].endswith("per_page=2&page=3")
    second = call(github_double, "GET", first.links["next"]["url"])
    assert set(second.links) == {"prev", "next", "last", "first"}
    third = call(github_double, "GET", second.links["next"]["url"])
    assert set(third.links) == {"prev", "first"}
    assert [c["id"] for r in (first, second, third) for c in r.json()] == ids
    assert "Link" not in call(github_double, "GET", f"{REPO}/issues/7/comments").headers


def test_artifact_listing_keeps_the_name_filter_in_links(github_double: GitHubDouble) -> None:
    for _ in range(3):
        github_double.add_artifact("kitt-results")
    github_double.add_artifact("other")
    page = call(github_double, "GET", f"{REPO}/actions/artifacts?name=kitt-results&per_page=2")
    assert page.json()["total_count"] == 3
    assert "name=kitt-results" in page.links["next"]["url"]
    newest_first = [a["created_at"] for a in page.json()["artifacts"]]
    assert newest_first == sorted(newest_first, reverse=True)


def test_download_redirects_once_to_a_blob_on_another_host(github_double: GitHubDouble) -> None:
    item = github_double.add_artifact("kitt-results", {"metrics.json": "{}"})
    redirect = call(github_double, "GET", f"{REPO}/actions/artifacts/{item.id}/zip")
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert location.startswith(github_double.blob_url) and not location.startswith(github_double.api_url)
    blob = requests.get(location, timeout=10)
    assert blob.status_code == 200 and blob.content == item.content
    assert requests.get(location, timeout=10).status_code == 403  # one-shot
    again = call(github_double, "GET", f"{REPO}/actions/artifacts/{item.id}/zip").headers["Location"]
    assert call(github_double, "GET", again).status_code == 400
    assert "token was sent to the artifact blob host" in github_double.take_violations()[0]


def test_expired_artifact_download_is_gone(github_double: GitHubDouble) -> None:
    item = github_double.add_artifact("kitt-results", expired=True)
    assert call(github_double, "GET", f"{REPO}/actions/artifacts/{item.id}/zip").status_code == 410


def test_tokens_are_checked(github_double: GitHubDouble) -> None:
    github_double.add_pull(7)
    assert call(github_double, "GET", REPO, token=None).status_code == 401
    assert call(github_double, "GET", REPO, token="ghp_wrong").json()["message"] == "Bad credentials"
    read_only = GitHubDouble.READ_ONLY_TOKEN
    assert call(github_double, "GET", f"{REPO}/issues/7/comments", token=read_only).status_code == 200
    denied = call(github_double, "POST", f"{REPO}/issues/7/comments", token=read_only, body={"body": "x"})
    assert denied.status_code == 403 and github_double.comments(7) == []


def test_overlong_comment_is_refused_like_github(github_double: GitHubDouble) -> None:
    github_double.add_pull(7)
    response = call(github_double, "POST", f"{REPO}/issues/7/comments", body={"body": "x" * 65537})
    assert response.status_code == 422 and "too long" in response.json()["errors"][0]["message"]
    assert call(github_double, "POST", f"{REPO}/issues/7/comments", body={"body": "x" * 65536}).status_code == 201


def test_faults_are_served_in_order_and_after_handling(github_double: GitHubDouble) -> None:
    github_double.add_pull(7)
    github_double.fail_next("issues/create-comment", 502)
    github_double.fail_next("issues/create-comment", 502, after_handling=True)
    assert call(github_double, "POST", f"{REPO}/issues/7/comments", body={"body": "a"}).status_code == 502
    assert github_double.comments(7) == []
    assert call(github_double, "POST", f"{REPO}/issues/7/comments", body={"body": "b"}).status_code == 502
    assert [c.body for c in github_double.comments(7)] == ["b"]
    assert call(github_double, "POST", f"{REPO}/issues/7/comments", body={"body": "c"}).status_code == 201
    github_double.rate_limit_next("issues/list-comments", retry_after=3)
    limited = call(github_double, "GET", f"{REPO}/issues/7/comments")
    assert limited.status_code == 403 and limited.headers["retry-after"] == "3"
    assert [r.status for r in github_double.requests_for("issues/create-comment")] == [502, 502, 201]
    with pytest.raises(KeyError):
        github_double.fail_next("issues/delete-comment", 500)


def test_cut_description_resolves_every_reference() -> None:
    spec = load_cut_spec(SERVED_OPERATIONS)
    for ref in set(_refs(spec)):
        kind, name = ref.removeprefix("#/components/").split("/", 1)
        assert name in spec["components"][kind], ref
    assert sorted((m, p) for p, item in spec["paths"].items() for m in item if m != "parameters") == sorted(
        SERVED_OPERATIONS
    )
    assert len(json.dumps(spec)) < 1_000_000
