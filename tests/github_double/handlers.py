"""What the double answers for each GitHub operation it serves.

Handlers get the double (its state) and a :class:`Call`, and return a :class:`Reply`.
They run under the double's lock, after the request passed the contract check,
authentication and fault injection. Pagination follows GitHub: ``per_page``
(default 30, at most 100), ``page`` (from 1), and a ``Link`` header with
``prev``/``next``/``last``/``first`` relations.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from . import objects
from .objects import Repo, error_body

if TYPE_CHECKING:
    from .server import GitHubDouble

MAX_COMMENT_CHARS = 65536
T = TypeVar("T")


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode()


@dataclass
class Call:
    """One routed request."""

    method: str
    path: str
    params: dict[str, str]
    query: list[tuple[str, str]]
    json: Any

    def arg(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return default


def not_found() -> Reply:
    return Reply(404, error_body("Not Found", 404, "https://docs.github.com/rest"))


def validation_failed(field_name: str, message: str, code: str = "custom") -> Reply:
    return Reply(
        422,
        {
            "message": "Validation Failed",
            "errors": [{"resource": "IssueComment", "code": code, "field": field_name, "message": message}],
            "documentation_url": "https://docs.github.com/rest/issues/comments",
        },
    )


def paginate(double: GitHubDouble, call: Call, items: Sequence[T]) -> tuple[list[T], dict[str, str]]:
    """The requested page of ``items`` and GitHub's ``Link`` header for it."""
    per_page = min(max(int(call.arg("per_page", "30") or 30), 1), 100)
    page = max(int(call.arg("page", "1") or 1), 1)
    last = max((len(items) + per_page - 1) // per_page, 1)
    chunk = list(items[(page - 1) * per_page : page * per_page])

    def url(number: int) -> str:
        kept = [(k, v) for k, v in call.query if k not in ("page", "per_page")]
        return f"{double.api_url}{call.path}?" + urlencode([*kept, ("per_page", per_page), ("page", number)])

    links = []
    if page > 1:
        links.append(f'<{url(min(page - 1, last))}>; rel="prev"')
    if page < last:
        links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if page > 1:
        links.append(f'<{url(1)}>; rel="first"')
    return chunk, ({"Link": ", ".join(links)} if links else {})


def get_repo(double: GitHubDouble, call: Call, repo: Repo) -> Reply:
    return Reply(200, objects.repository(double.api_url, repo, full=True))


def get_pull(double: GitHubDouble, call: Call, repo: Repo) -> Reply:
    pull = double.pulls.get((repo.full_name, int(call.params["pull_number"])))
    if pull is None:
        return not_found()
    return Reply(200, objects.pull_request(double.api_url, repo, pull))


def list_comments(double: GitHubDouble, call: Call, repo: Repo) -> Reply:
    number = int(call.params["issue_number"])
    if (repo.full_name, number) not in double.issues:
        return not_found()
    page, headers = paginate(double, call, double.comments(number, repo=repo))
    return Reply(200, [objects.issue_comment(double.api_url, repo, c) for c in page], headers)


def _body_problem(payload: Any) -> Reply | None:
    body = payload.get("body") if isinstance(payload, dict) else None
    if not isinstance(body, str):
        return validation_failed("body", "body wasn't supplied", "missing_field")
    if len(body) > MAX_COMMENT_CHARS:
        return validation_failed("body", f"body is too long (maximum is {MAX_COMMENT_CHARS} characters)")
    return None


def create_comment(double: GitHubDouble, call: Call, repo: Repo) -> Reply:
    number = int(call.params["issue_number"])
    if (repo.full_name, number) not in double.issues:
        return not_found()
    problem = _body_problem(call.json)
    if problem:
        return problem
    comment = double.add_comment(number, call.json["body"], user=double.bot_login, repo=repo)
    headers = {"Location": objects.issue_comment(double.api_url, repo, comment)["url"]}
    return Reply(201, objects.issue_comment(double.api_url, repo, comment), headers)


def update_comment(double: GitHubDouble, call: Call, repo: Repo) -> Reply:
    comment = double.comment_by_id(int(call.params["comment_id"]))
    if comment is None or comment.repo != repo.full_name:
        # The description lists only 200 and 422 here; GitHub still answers 404.
        return not_found()
    problem = _body_problem(call.json)
    if problem:
        return problem
    comment.body = call.json["body"]
    comment.updated_at = double.tick()
    return Reply(200, objects.issue_comment(double.api_url, repo, comment))


def _artifact_list(double: GitHubDouble, call: Call, repo: Repo, keep: Callable[[Any], bool]) -> Reply:
    name = call.arg("name")
    found = [a for a in double.artifacts if a.repository_id == repo.id and (name is None or a.name == name) and keep(a)]
    found.sort(key=lambda a: (a.created_at, a.id), reverse=True)  # newest first, as GitHub lists them
    page, headers = paginate(double, call, found)
    body = {"total_count": len(found), "artifacts": [objects.artifact(double.api_url, repo, a) for a in page]}
    return Reply(200, body, headers)


def list_repo_artifacts(double: GitHubDouble, call: Call, repo: Repo) -> Reply:
    return _artifact_list(double, call, repo, lambda a: True)


def list_run_artifacts(double: GitHubDouble, call: Call, repo: Repo) -> Reply:
    run_id = int(call.params["run_id"])
    return _artifact_list(double, call, repo, lambda a: a.run_id == run_id)


def download_artifact(double: GitHubDouble, call: Call, repo: Repo) -> Reply:
    wanted = int(call.params["artifact_id"])
    item = next((a for a in double.artifacts if a.id == wanted and a.repository_id == repo.id), None)
    if item is None or call.params["archive_format"] != "zip":
        return not_found()
    if item.expired or item.gone:
        return Reply(410, error_body("Artifact has expired", 410, "https://docs.github.com/rest/actions/artifacts"))
    token = secrets.token_urlsafe(16)
    double.blobs[token] = (item.content, time.monotonic() + 60.0)
    return Reply(302, None, {"Location": f"{double.blob_url}/_blobs/{token}?sig={secrets.token_hex(8)}"})


Handler = Callable[["GitHubDouble", Call, Repo], Reply]

# operationId -> (method, path template, handler). The ids are GitHub's own, so
# tests name operations the way GitHub's docs do.
ROUTES: dict[str, tuple[str, str, Handler]] = {
    "repos/get": ("get", "/repos/{owner}/{repo}", get_repo),
    "pulls/get": ("get", "/repos/{owner}/{repo}/pulls/{pull_number}", get_pull),
    "issues/list-comments": ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments", list_comments),
    "issues/create-comment": ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments", create_comment),
    "issues/update-comment": ("patch", "/repos/{owner}/{repo}/issues/comments/{comment_id}", update_comment),
    "actions/list-artifacts-for-repo": (
        "get",
        "/repos/{owner}/{repo}/actions/artifacts",
        list_repo_artifacts,
    ),
    "actions/list-workflow-run-artifacts": (
        "get",
        "/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts",
        list_run_artifacts,
    ),
    "actions/download-artifact": (
        "get",
        "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}",
        download_artifact,
    ),
}


def secondary_rate_limit_body() -> dict[str, Any]:
    return error_body(
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        403,
        "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api",
    )
