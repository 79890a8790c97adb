"""Find and download a results artifact from another workflow run.

Two uses:

- :func:`download_baseline`: the newest live artifact named ``name`` that a run on the
  base branch *of this repository* uploaded. A fork can name its branch ``main`` too,
  so runs whose head repository differs are skipped.
- :func:`download_run_artifact`: the artifact ``name`` of one run (the fork-safe
  ``workflow_run`` report mode, where that run built a fork's pull request); a name with
  ``*`` or ``?`` is a pattern, and each matching artifact (a matrix job's results) is
  unpacked into a subfolder of its own name.

Both return an :class:`ArtifactDownload`; when nothing usable exists, ``path`` is None
and ``reason`` says why, for the caller to show as a notice. The listings go through kitt's
GitHub client (:mod:`kitt.github.client`, PyGithub). The archive is the one call PyGithub lacks:
``GET .../artifacts/{id}/zip`` answers 302 to a short-lived URL on another host (or 410 when the
artifact expired), so it is asked with ``requests`` under the same retry policy, and the archive
is fetched from that URL without the token and unpacked by :func:`kitt.github.archive.safe_extract`,
since its contents are untrusted data.
"""

from __future__ import annotations

import fnmatch
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from github.Artifact import Artifact
from github.PaginatedList import PaginatedList

from kitt.errors import ArtifactError, GitHubError
from kitt.github.archive import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, safe_extract
from kitt.github.client import (
    PER_PAGE,
    READ_ERRORS,
    SHAPE_HINT,
    answer_failure,
    check_repository,
    github_client,
    json_object,
    read_failure,
    unreachable,
)
from kitt.github.http import GITHUB_RETRY, RetryPolicy, send
from kitt.platform import DEFAULT_API_URL, USER_AGENT
from kitt.results import history_job_folder

if TYPE_CHECKING:
    from github.Repository import Repository

MAX_PAGES = 50  # 5,000 artifacts of one name is far past any real retention window
DEFAULT_MAX_JOBS = 256  # a matrix's jobs in one comment
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]{0,199}$")

__all__ = ["ArtifactDownload", "download_baseline", "download_run_artifact", "is_pattern"]


@dataclass(frozen=True)
class ArtifactDownload:
    """Where an artifact was unpacked, or why there is none (``path`` None)."""

    path: Path | None
    reason: str = ""
    artifact_id: int | None = None
    run_id: int | None = None
    created_at: str | None = None
    jobs: int = 1  # baseline jobs unpacked (one subfolder each when more than one was asked for)

    def __bool__(self) -> bool:
        return self.path is not None


def is_pattern(name: str) -> bool:
    """A results-artifact name with wildcards: every matching artifact is a job of a matrix."""
    return any(ch in name for ch in "*?[")


class _Artifacts:
    """One download's view of a repository's artifacts: the GitHub client for the listings, and a
    ``requests`` session for the archives' redirects. Close it when done."""

    def __init__(self, token: str, repo: str, api_url: str | None, retry: RetryPolicy) -> None:
        check_repository(repo)
        self.token, self.repo, self.api_url, self.retry = token, repo, api_url, retry
        self.github = github_client(token, api_url, retry)
        self.repository: Repository = self.github.get_repo(repo)  # lazy: read when a field is
        self.session = requests.Session()
        self.session.headers.update(
            {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28", "User-Agent": USER_AGENT}
        )

    def close(self) -> None:
        self.session.close()
        self.github.close()

    def default_branch(self) -> str:
        doing = "read the repository's default branch"
        try:
            branch = json_object(self.repository.raw_data, doing).get("default_branch")
        except READ_ERRORS as error:
            raise read_failure(error, doing, self.repo, self.api_url) from None
        if not isinstance(branch, str) or not branch:
            raise GitHubError(
                "GitHub's answer about the repository names no default branch",
                hint="Pass the base branch (--base-branch) or run on a pull request.",
            )
        return branch

    def named(self, name: str) -> list[dict[str, Any]]:
        """Every artifact of the repository named ``name``, as GitHub lists them."""
        return self._read(self.repository.get_artifacts(name=name), f"list artifacts named {name!r}")

    def of_run(self, run_id: int, name: str) -> list[dict[str, Any]]:
        """The artifacts of workflow run ``run_id``: those named ``name``, or all when it is a pattern."""
        # PyGithub reaches a run's artifacts only through the run itself (one more request, and no
        # name filter): its own PaginatedList on the endpoint, with the client's requester, does both.
        listing = PaginatedList(
            Artifact,
            self.github.requester,
            f"{self.repository.url}/actions/runs/{int(run_id)}/artifacts",
            {} if is_pattern(name) else {"name": name},
            list_item="artifacts",
        )
        return self._read(listing, f"list the artifacts of run {run_id}")

    def _read(self, listing: PaginatedList[Artifact], doing: str) -> list[dict[str, Any]]:
        """The listing's entries that have the fields kitt relies on (every page, bounded); an
        entry of another shape is skipped as not ours, an answer that is no listing is an error."""
        found: list[dict[str, Any]] = []
        try:
            for count, artifact in enumerate(listing):
                if count >= MAX_PAGES * PER_PAGE:
                    raise GitHubError(
                        f"GitHub listed more than {MAX_PAGES} pages while trying to {doing}",
                        hint="Delete old artifacts or use a more specific artifact name.",
                    )
                entry = artifact.raw_data
                if not isinstance(entry, dict):  # PyGithub took something else for the list
                    raise GitHubError(
                        f"GitHub's answer to the request to {doing} has no list of artifacts", hint=SHAPE_HINT
                    )
                if _usable_artifact(entry):
                    found.append(entry)
        except READ_ERRORS as error:
            raise read_failure(error, doing, self.repo, self.api_url) from None
        return found

    def download(self, artifact: dict[str, Any], dest: Path, max_bytes: int, max_files: int) -> ArtifactDownload:
        """Unpack ``artifact`` into ``dest``; a notice (``path`` None) when it expired (410)."""
        artifact_id = int(artifact["id"])
        found = dict(artifact_id=artifact_id, run_id=_run_field(artifact, "id"), created_at=artifact.get("created_at"))
        doing = f"download artifact {artifact_id}"
        api = (self.api_url or DEFAULT_API_URL).rstrip("/")
        response = send(
            self.session,
            "GET",
            f"{api}/repos/{self.repo}/actions/artifacts/{artifact_id}/zip",
            policy=self.retry,
            headers={"Authorization": f"Bearer {self.token}"},
            allow_redirects=False,
        )
        if response is None:
            raise unreachable(doing, self.api_url)
        if response.status_code == 410:
            return ArtifactDownload(
                None, f"artifact {artifact['name']!r} ({artifact_id}) has expired (HTTP 410)", **found
            )
        location = response.headers.get("Location")
        if response.status_code not in (301, 302, 303, 307, 308) or not location:
            raise answer_failure(response.status_code, _message(response), doing, self.repo)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".kitt-download-") as work:
            archive = Path(work) / "artifact.zip"
            try:
                # A fresh request: the signed URL is on another host and must not get the token.
                with requests.get(
                    location,
                    stream=True,
                    timeout=self.retry.timeout_s,
                    allow_redirects=False,
                    headers={"User-Agent": USER_AGENT},
                ) as blob:
                    if blob.status_code != 200:
                        raise ArtifactError(
                            f"The artifact storage refused to {doing} (HTTP {blob.status_code})",
                            hint="The download link lasts one minute; re-run the job.",
                        )
                    _save(blob, archive, max_bytes)
            except requests.RequestException as error:
                raise ArtifactError(
                    f"Could not {doing} from the artifact storage ({type(error).__name__})",
                    hint="Re-run the job; the download link lasts one minute.",
                ) from None
            safe_extract(archive, dest, max_bytes=max_bytes, max_files=max_files)
        return ArtifactDownload(dest, "", **found)


def _message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        data = None
    text = data.get("message") if isinstance(data, dict) else None
    return " ".join(str(text or response.reason or "no message").split())[:200]


def _usable_artifact(artifact: Any) -> bool:
    """An artifact entry with the fields kitt relies on; any other entry is skipped as not ours."""
    return (
        isinstance(artifact, dict)
        and isinstance(artifact.get("name"), str)
        and isinstance(artifact.get("id"), int)
        and not isinstance(artifact.get("id"), bool)
    )


def _created(artifact: dict[str, Any]) -> tuple[datetime, int]:
    stamp = artifact.get("created_at")
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        moment = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment, int(artifact.get("id") or 0)


def _run_field(artifact: dict[str, Any], key: str) -> Any:
    run = artifact.get("workflow_run")
    return run.get(key) if isinstance(run, dict) else None


def _same_repo_run(artifact: dict[str, Any]) -> bool:
    run = artifact.get("workflow_run")
    run = run if isinstance(run, dict) else {}
    return run.get("repository_id") is not None and run.get("head_repository_id") == run.get("repository_id")


def _save(blob: requests.Response, archive: Path, max_bytes: int) -> None:
    limit = max_bytes + (1 << 20)  # zip overhead on top of the contents' cap
    written = 0
    with archive.open("wb") as out:
        for chunk in blob.iter_content(1 << 16):
            written += len(chunk)
            if written > limit:
                raise ArtifactError(
                    f"The artifact is larger than {limit} bytes, kitt's limit for results",
                    hint="Upload only the result set (metrics.json, samples.jsonl, ...).",
                )
            out.write(chunk)


def download_baseline(
    *,
    token: str,
    repo: str,
    name: str,
    dest: str | Path,
    base_branch: str | None = None,
    api_url: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    retry: RetryPolicy = GITHUB_RETRY,
    history: int = 1,
) -> ArtifactDownload:
    """Unpack into ``dest`` the newest live artifact ``name`` from ``repo``'s own runs on the base branch.

    With ``history`` above 1, the newest ``history`` such artifacts (one per baseline job) are
    unpacked into subfolders of ``dest``, newest first (``01-run<id>``, ``02-run<id>``, ...), under
    the same rules; ``jobs`` in the answer says how many there were.

    ``base_branch`` is the pull request's base ref; without it, the repository's default
    branch is asked for. ``api_url`` is GitHub's REST base (the caller reads
    ``GITHUB_API_URL``). ``dest`` must not exist or be empty.

    Raises GitHubError when listing fails (401/403/404 say which permission to grant) and
    ArtifactError for an archive that cannot be unpacked safely.
    """
    artifacts = _Artifacts(token, repo, api_url, retry)
    try:
        base_branch = base_branch or artifacts.default_branch()
        found = artifacts.named(name)
        live = [a for a in found if a.get("name") == name and a.get("expired") is False]
        ours = [a for a in live if _same_repo_run(a) and _run_field(a, "head_branch") == base_branch]
        if not ours:
            reason = (
                f"no artifact named {name!r} exists in {repo}"
                if not found
                else f"no live artifact named {name!r} from a run of {repo} on branch {base_branch!r} "
                f"({len(found)} found: expired, from forks or from other branches)"
            )
            return ArtifactDownload(None, reason + "; the comparison is skipped until the base branch uploads one")
        chosen = sorted(ours, key=_created, reverse=True)[: max(1, history)]
        if history <= 1:
            return artifacts.download(chosen[0], Path(dest), max_bytes, max_files)
        for index, artifact in enumerate(chosen, start=1):
            run = _run_field(artifact, "id")
            run = run if isinstance(run, int) and not isinstance(run, bool) else 0  # a folder name: digits only
            got = artifacts.download(artifact, Path(dest) / history_job_folder(index, run), max_bytes, max_files)
            if not got:  # expired between the listing and the download: skip that job
                continue
        jobs = sum(1 for p in Path(dest).iterdir() if p.is_dir()) if Path(dest).is_dir() else 0
        if not jobs:
            return ArtifactDownload(None, f"every listed artifact named {name!r} expired before it could be downloaded")
        newest = chosen[0]
        return ArtifactDownload(
            Path(dest),
            artifact_id=int(newest["id"]),
            run_id=_run_field(newest, "id"),
            created_at=newest.get("created_at"),
            jobs=jobs,
        )
    finally:
        artifacts.close()


def download_run_artifact(
    *,
    token: str,
    repo: str,
    run_id: int,
    name: str,
    dest: str | Path,
    api_url: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    retry: RetryPolicy = GITHUB_RETRY,
) -> ArtifactDownload:
    """Unpack into ``dest`` the artifact ``name`` uploaded by workflow run ``run_id``.

    For the ``workflow_run`` report mode: the run may have built a fork's pull request,
    so the contents are untrusted and unpacked with :func:`safe_extract`. A ``name`` with
    ``*`` or ``?`` (``kitt-results-*``) matches every artifact of the run it fits (fnmatch,
    case-sensitive); each is unpacked into ``dest/<its name>``, and ``jobs`` says how many.
    """
    artifacts = _Artifacts(token, repo, api_url, retry)
    try:
        listed = artifacts.of_run(run_id, name)
        found = [a for a in listed if fnmatch.fnmatchcase(str(a.get("name")), name)]
        live = [a for a in found if a.get("expired") is False]
        if not live:
            state = "has expired" if found else "was not uploaded"
            if is_pattern(name):
                expired = f" ({len(found)} matching expired)" if found else ""
                return ArtifactDownload(None, f"no live artifact of run {run_id} matches {name!r}{expired}")
            return ArtifactDownload(None, f"artifact {name!r} of run {run_id} {state}")
        if not is_pattern(name):
            return artifacts.download(max(live, key=_created), Path(dest), max_bytes, max_files)
        newest: dict[str, dict[str, Any]] = {}
        for artifact in sorted(live, key=_created):
            newest[str(artifact["name"])] = artifact
        if len(newest) > DEFAULT_MAX_JOBS:
            raise ArtifactError(
                f"{len(newest)} artifacts of run {run_id} match {name!r}, more than {DEFAULT_MAX_JOBS}",
                hint="Use a narrower results-artifact pattern.",
            )
        for artifact_name, artifact in sorted(newest.items()):
            if not _SAFE_NAME.match(artifact_name):
                raise ArtifactError(
                    f"artifact name {artifact_name[:100]!r} cannot be a folder name",
                    hint="Name the results artifacts with letters, digits, '.', '_' and '-'.",
                )
            artifacts.download(artifact, Path(dest) / artifact_name, max_bytes, max_files)
        return ArtifactDownload(Path(dest), run_id=run_id, jobs=len(newest))
    finally:
        artifacts.close()
