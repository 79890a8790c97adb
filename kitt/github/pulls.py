"""Look up a pull request: its head commit and base branch, as GitHub has them; and the record
(``pull_request.json``) that ties a benchmark's results to their pull request.

The report mode (``workflow_run``) reads the pull request's number from an artifact, which a fork
may have written: before commenting, it asks GitHub which commit is the PR's head and which branch
its base, and trusts only that answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kitt.errors import GitHubError, ResultsError
from kitt.github.client import READ_ERRORS, check_repository, github_client, json_object, read_failure
from kitt.github.http import GITHUB_RETRY, RetryPolicy
from kitt.safeload import load_json


@dataclass(frozen=True)
class PullRequest:
    number: int
    head_sha: str
    base_ref: str


def get_pull_request(
    *, token: str, repo: str, pr: int, api_url: str | None = None, retry: RetryPolicy = GITHUB_RETRY
) -> PullRequest:
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


def report_pull_request(
    *,
    token: str,
    repo: str,
    results_dir: Path,
    jobs: bool,
    given: int | None,
    built_sha: str | None,
    api_url: str | None = None,
) -> tuple[int | None, str | None, str | None]:
    """(the PR to comment on, its base branch, a warning) in report mode. The PR is the workflow's
    own ``given`` number, or the one the (untrusted) results claim in their records: with ``jobs``
    (a matrix, one subfolder per job) every job's record must name the same one. GitHub's answer,
    not the claim, decides: a claimed PR is accepted only if its head is ``built_sha``, the commit
    the benchmark ran on; else no PR, and a warning. Raises GitHubError when GitHub cannot say."""
    claimed, warning = (given, None) if given else _claimed_pull_request(results_dir, jobs)
    if claimed is None:
        return None, None, warning or "The results name no pull request (pull_request.json), so no comment is posted."
    pull = get_pull_request(token=token, repo=repo, pr=claimed, api_url=api_url)
    if not given and built_sha and pull.head_sha != built_sha:
        return (
            None,
            pull.base_ref,
            (
                f"Pull request #{claimed}'s head is not the commit the benchmark ran on; no comment "
                "is posted (the PR moved on, or the artifact is not what it claims)."
            ),
        )
    return claimed, pull.base_ref, None


# --------------------------------------------------------------------------- the pull request record

PULL_REQUEST_FILE = "pull_request.json"  # beside a benchmark's results: which PR they belong to


def positive_int(value: Any) -> int | None:
    """``value`` if it is a positive JSON integer (not a bool, a float or a string), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def write_pull_record(results_dir: Path, given: int | None, event_pull: dict[str, Any]) -> None:
    """Record which pull request the results in ``results_dir`` belong to, for a ``workflow_run``
    report job: the workflow's ``given`` number, else the event's ``pull_request`` object's (read as
    untrusted: a field of the wrong type is absent). With no number, remove a record an earlier run
    left (self-hosted workspaces keep it)."""
    path = results_dir / PULL_REQUEST_FILE
    number = given or positive_int(event_pull.get("number"))
    if not number:
        path.unlink(missing_ok=True)
        return
    head = event_pull.get("head")
    head_sha = head.get("sha") if isinstance(head, dict) else None
    results_dir.mkdir(parents=True, exist_ok=True)
    record = {"number": number, "head_sha": head_sha if isinstance(head_sha, str) else None}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")


def read_pull_record(path: Path) -> int | None:
    """The PR number a record claims, read as untrusted data (an artifact a fork may have written)."""
    if not path.is_file():
        return None
    try:
        data = load_json(path, "pull request record", ResultsError, max_bytes=64 * 1024)
    except ResultsError:
        return None
    return positive_int(data.get("number")) if isinstance(data, dict) else None


def _claimed_pull_request(results_dir: Path, jobs: bool) -> tuple[int | None, str | None]:
    """The PR the results claim, and a warning when it cannot be told: with ``jobs`` (a matrix,
    one subfolder per job) every job's record must name the same one."""
    if not jobs:
        return read_pull_record(results_dir / PULL_REQUEST_FILE), None
    claims = {read_pull_record(path) for path in sorted(results_dir.glob(f"*/{PULL_REQUEST_FILE}"))}
    claims.discard(None)
    if len(claims) > 1:
        return None, f"The results artifacts name different pull requests ({sorted(claims)})."
    return (claims.pop() if claims else None), None
