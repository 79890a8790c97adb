"""The double's stored objects and the JSON GitHub would render for them.

Every renderer fills the fields GitHub's OpenAPI description marks as required; the
double validates each response it sends, so a missing field shows up as a violation.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

EPOCH = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
WEB = "https://github.com"


def iso(moment: datetime) -> str:
    """GitHub's timestamp form: UTC with a ``Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_zip(files: dict[str, bytes | str]) -> bytes:
    """A zip archive holding ``files`` (name -> content), as upload-artifact would make."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@dataclass
class Repo:
    owner: str
    name: str
    id: int
    default_branch: str = "main"

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Pull:
    number: int
    base_ref: str
    head_ref: str
    head_repo: Repo


@dataclass
class Comment:
    id: int
    repo: str  # owner/name
    issue_number: int
    body: str
    user: str
    created_at: datetime
    updated_at: datetime


@dataclass
class Artifact:
    id: int
    name: str
    content: bytes
    created_at: datetime
    run_id: int
    repository_id: int
    head_repository_id: int
    head_branch: str
    expired: bool = False
    gone: bool = False  # listed as live, but the download answers 410 (expired meanwhile)
    head_sha: str = "0" * 40


@dataclass
class Fault:
    """A canned answer for the next request(s) of one operation."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Handle the request (store the comment) first, then answer with the fault anyway.
    after_handling: bool = False


def error_body(message: str, status: int, docs: str = "https://docs.github.com/rest") -> dict[str, Any]:
    return {"message": message, "documentation_url": docs, "status": str(status)}


def user(api: str, login: str, user_id: int) -> dict[str, Any]:
    base = f"{api}/users/{login}"
    return {
        "login": login,
        "id": user_id,
        "node_id": f"U_{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "gravatar_id": "",
        "url": base,
        "html_url": f"{WEB}/{login}",
        "followers_url": f"{base}/followers",
        "following_url": f"{base}/following{{/other_user}}",
        "gists_url": f"{base}/gists{{/gist_id}}",
        "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{base}/subscriptions",
        "organizations_url": f"{base}/orgs",
        "repos_url": f"{base}/repos",
        "events_url": f"{base}/events{{/privacy}}",
        "received_events_url": f"{base}/received_events",
        "type": "Bot" if login.endswith("[bot]") else "User",
        "user_view_type": "public",
        "site_admin": False,
    }


_REPO_LINKS = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


def repository(api: str, repo: Repo, *, full: bool = False) -> dict[str, Any]:
    """``repository`` (or ``full-repository`` with ``full``) for ``repo``."""
    url = f"{api}/repos/{repo.full_name}"
    data: dict[str, Any] = {
        "id": repo.id,
        "node_id": f"R_{repo.id}",
        "name": repo.name,
        "full_name": repo.full_name,
        "owner": user(api, repo.owner, repo.id + 1_000_000),
        "private": False,
        "html_url": f"{WEB}/{repo.full_name}",
        "description": None,
        "fork": False,
        "url": url,
        **{key: url + suffix for key, suffix in _REPO_LINKS.items()},
        "clone_url": f"{WEB}/{repo.full_name}.git",
        "git_url": f"git://github.com/{repo.full_name}.git",
        "ssh_url": f"git@github.com:{repo.full_name}.git",
        "svn_url": f"{WEB}/{repo.full_name}",
        "mirror_url": None,
        "homepage": None,
        "language": "Python",
        "default_branch": repo.default_branch,
        "forks": 0,
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers": 0,
        "watchers_count": 0,
        "size": 128,
        "open_issues": 0,
        "open_issues_count": 0,
        "has_issues": True,
        "has_projects": True,
        "has_wiki": False,
        "has_pages": False,
        "has_downloads": True,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "license": None,
        "pushed_at": iso(EPOCH),
        "created_at": iso(EPOCH - timedelta(days=365)),
        "updated_at": iso(EPOCH),
    }
    if full:
        data.update(network_count=0, subscribers_count=1)
    return data


def pull_request(api: str, base: Repo, pull: Pull) -> dict[str, Any]:
    url = f"{api}/repos/{base.full_name}"
    author = user(api, pull.head_repo.owner, pull.head_repo.id + 1_000_000)
    sha = "a" * 40

    def link(href: str) -> dict[str, str]:
        return {"href": href}

    return {
        "url": f"{url}/pulls/{pull.number}",
        "id": 10_000 + pull.number,
        "node_id": f"PR_{pull.number}",
        "number": pull.number,
        "state": "open",
        "locked": False,
        "title": f"Change #{pull.number}",
        "body": None,
        "user": author,
        "labels": [],
        "milestone": None,
        "assignee": None,
        "html_url": f"{WEB}/{base.full_name}/pull/{pull.number}",
        "diff_url": f"{WEB}/{base.full_name}/pull/{pull.number}.diff",
        "patch_url": f"{WEB}/{base.full_name}/pull/{pull.number}.patch",
        "issue_url": f"{url}/issues/{pull.number}",
        "commits_url": f"{url}/pulls/{pull.number}/commits",
        "review_comments_url": f"{url}/pulls/{pull.number}/comments",
        "review_comment_url": f"{url}/pulls/comments{{/number}}",
        "comments_url": f"{url}/issues/{pull.number}/comments",
        "statuses_url": f"{url}/statuses/{sha}",
        "created_at": iso(EPOCH),
        "updated_at": iso(EPOCH),
        "closed_at": None,
        "merged_at": None,
        "merge_commit_sha": None,
        "head": {
            "label": f"{pull.head_repo.owner}:{pull.head_ref}",
            "ref": pull.head_ref,
            "sha": sha,
            "user": author,
            "repo": repository(api, pull.head_repo),
        },
        "base": {
            "label": f"{base.owner}:{pull.base_ref}",
            "ref": pull.base_ref,
            "sha": "b" * 40,
            "user": user(api, base.owner, base.id + 1_000_000),
            "repo": repository(api, base),
        },
        "_links": {
            "self": link(f"{url}/pulls/{pull.number}"),
            "html": link(f"{WEB}/{base.full_name}/pull/{pull.number}"),
            "issue": link(f"{url}/issues/{pull.number}"),
            "comments": link(f"{url}/issues/{pull.number}/comments"),
            "review_comments": link(f"{url}/pulls/{pull.number}/comments"),
            "review_comment": link(f"{url}/pulls/comments{{/number}}"),
            "commits": link(f"{url}/pulls/{pull.number}/commits"),
            "statuses": link(f"{url}/statuses/{sha}"),
        },
        "author_association": "CONTRIBUTOR",
        "auto_merge": None,
        "draft": False,
        "merged": False,
        "mergeable": True,
        "mergeable_state": "clean",
        "merged_by": None,
        "maintainer_can_modify": True,
        "comments": 0,
        "review_comments": 0,
        "commits": 1,
        "additions": 1,
        "deletions": 0,
        "changed_files": 1,
    }


def issue_comment(api: str, repo: Repo, comment: Comment) -> dict[str, Any]:
    url = f"{api}/repos/{repo.full_name}"
    return {
        "id": comment.id,
        "node_id": f"IC_{comment.id}",
        "url": f"{url}/issues/comments/{comment.id}",
        "html_url": f"{WEB}/{repo.full_name}/pull/{comment.issue_number}#issuecomment-{comment.id}",
        "issue_url": f"{url}/issues/{comment.issue_number}",
        "body": comment.body,
        "user": user(api, comment.user, 40_000 + len(comment.user)),
        "created_at": iso(comment.created_at),
        "updated_at": iso(comment.updated_at),
        "author_association": "NONE" if comment.user.endswith("[bot]") else "CONTRIBUTOR",
        "performed_via_github_app": None,
        "reactions": {
            "url": f"{url}/issues/comments/{comment.id}/reactions",
            "total_count": 0,
            **{name: 0 for name in ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket")},
        },
    }


def artifact(api: str, repo: Repo, item: Artifact) -> dict[str, Any]:
    url = f"{api}/repos/{repo.full_name}/actions/artifacts/{item.id}"
    return {
        "id": item.id,
        "node_id": f"MDg6QXJ0aWZhY3{item.id}",
        "name": item.name,
        "size_in_bytes": len(item.content),
        "url": url,
        "archive_download_url": f"{url}/zip",
        "expired": item.expired,
        "created_at": iso(item.created_at),
        "updated_at": iso(item.created_at),
        "expires_at": iso(item.created_at + timedelta(days=90)),
        "digest": None,
        "workflow_run": {
            "id": item.run_id,
            "repository_id": item.repository_id,
            "head_repository_id": item.head_repository_id,
            "head_branch": item.head_branch,
            "head_sha": item.head_sha,
        },
    }
