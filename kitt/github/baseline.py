"""Find and download a results artifact from another workflow run (REST, with requests).

Two uses:

- :func:`download_baseline`: the newest live artifact named ``name`` that a run on the
  base branch *of this repository* uploaded. A fork can name its branch ``main`` too,
  so runs whose head repository differs are skipped.
- :func:`download_run_artifact`: the artifact ``name`` of one run (the fork-safe
  ``workflow_run`` report mode, where that run built a fork's pull request); a name with
  ``*`` or ``?`` is a pattern, and each matching artifact (a matrix job's results) is
  unpacked into a subfolder of its own name.

Both return an :class:`ArtifactDownload`; when nothing usable exists, ``path`` is None
and ``reason`` says why, for the caller to show as a notice. The archive comes from a
short-lived URL on another host, fetched without the token, and is unpacked by
:func:`kitt.github.archive.safe_extract`, since its contents are untrusted data.
"""

from __future__ import annotations

import fnmatch
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kitt.errors import ArtifactError, GitHubError, UsageError
from kitt.github.archive import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, safe_extract
from kitt.github.http import GITHUB_RETRY, RetryPolicy, send
from kitt.platform import DEFAULT_API_URL, USER_AGENT
from kitt.results import history_job_folder

if TYPE_CHECKING:
    import requests

MAX_PAGES = 50  # 5,000 artifacts of one name is far past any real retention window
PERMISSION_HINT = "Give the job `permissions: actions: read` (and `contents: read` for a private repository)."

__all__ = ["ArtifactDownload", "PullRequest", "download_baseline", "download_run_artifact", "get_pull_request",
           "is_pattern"]


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


class _Client:
    """GitHub REST GETs with the token, a bounded retry, and kitt's error messages."""

    def __init__(self, token: str, repo: str, api_url: str | None, retry: RetryPolicy) -> None:
        import requests

        if repo.count("/") != 1 or not all(repo.split("/")):
            raise UsageError(f"repository {repo!r} is not in owner/name form", hint="Pass e.g. `octo-org/my-repo`.")
        self.token, self.repo, self.retry = token, repo, retry
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.timeout = retry.timeout_s
        self.session = requests.Session()
        self.session.headers.update({
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": USER_AGENT,
        })

    def close(self) -> None:
        self.session.close()

    def get(self, url: str, doing: str, *, params: dict[str, Any] | None = None,
            redirects: bool = True) -> requests.Response:
        """GET an API URL under kitt's network policy, raising GitHubError when it cannot be had.

        The token goes only to the API's own host.
        """
        if urlsplit(url).netloc != urlsplit(self.api_url).netloc:
            raise GitHubError(f"GitHub sent a link to another host while trying to {doing}: {url[:200]}")
        response = send(self.session, "GET", url, policy=self.retry, params=params,
                        headers={"Authorization": f"Bearer {self.token}"}, allow_redirects=redirects)
        if response is None:
            raise GitHubError(
                f"Could not reach GitHub at {self.api_url} to {doing}",
                hint="Check the network and `GITHUB_API_URL`; re-run the job if it was a glitch.",
            )
        if response.status_code >= 500:
            raise GitHubError(f"GitHub failed to {doing} (HTTP {response.status_code})",
                              hint="This is usually temporary on GitHub's side: re-run the job.")
        return response

    def json(self, response: requests.Response, doing: str) -> dict[str, Any]:
        """The answer's JSON object; GitHubError when a 200 carries something else (a proxy's page, say)."""
        try:
            data = response.json()
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            raise GitHubError(f"GitHub's answer to the request to {doing} was not the JSON object its API "
                              f"returns (HTTP {response.status_code})",
                              hint="Check `GITHUB_API_URL`; a proxy or an outage page may be answering.")
        return data

    def fail(self, response: requests.Response, doing: str) -> GitHubError:
        message = _message(response)
        text = f"Could not {doing} in {self.repo} (HTTP {response.status_code}: {message})"
        if response.status_code in (403, 429) and "rate limit" in message.lower():
            return GitHubError(text, hint="GitHub's API rate limit held; re-run the job later.")
        if response.status_code in (401, 403, 404):
            return GitHubError(text, hint=PERMISSION_HINT)
        return GitHubError(text, hint="Re-run the job; if it keeps failing, report it with the job log.")

    def pages(self, path: str, params: dict[str, Any], doing: str) -> Iterator[dict[str, Any]]:
        """Every artifact of a listing, following ``Link: rel="next"`` (bounded)."""
        url: str | None = f"{self.api_url}{path}"
        query: dict[str, Any] | None = {**params, "per_page": 100}
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self.get(url, doing, params=query)
            if response.status_code != 200:
                raise self.fail(response, doing)
            listed = self.json(response, doing).get("artifacts")
            if not isinstance(listed, list):
                raise GitHubError(f"GitHub's answer to the request to {doing} has no list of artifacts",
                                  hint="Check `GITHUB_API_URL`; a proxy or an outage page may be answering.")
            yield from (a for a in listed if _usable_artifact(a))
            url, query = response.links.get("next", {}).get("url"), None
        raise GitHubError(f"GitHub listed more than {MAX_PAGES} pages while trying to {doing}",
                          hint="Delete old artifacts or use a more specific artifact name.")


def _message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        data = None
    text = data.get("message") if isinstance(data, dict) else None
    return " ".join(str(text or response.reason or "no message").split())[:200]


def _usable_artifact(artifact: Any) -> bool:
    """An artifact entry with the fields kitt relies on; any other entry is skipped as not ours."""
    return (isinstance(artifact, dict) and isinstance(artifact.get("name"), str)
            and isinstance(artifact.get("id"), int) and not isinstance(artifact.get("id"), bool))


def _created(artifact: dict[str, Any]) -> tuple[datetime, int]:
    stamp = artifact.get("created_at")
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        moment = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment, int(artifact.get("id") or 0)


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
    client = _Client(token, repo, api_url, retry)
    try:
        if not base_branch:
            response = client.get(f"{client.api_url}/repos/{repo}", "read the repository's default branch")
            if response.status_code != 200:
                raise client.fail(response, "read the repository's default branch")
            branch = client.json(response, "read the repository's default branch").get("default_branch")
            if not isinstance(branch, str) or not branch:
                raise GitHubError("GitHub's answer about the repository names no default branch",
                                  hint="Pass the base branch (--base-branch) or run on a pull request.")
            base_branch = branch
        found = list(client.pages(f"/repos/{repo}/actions/artifacts", {"name": name},
                                  f"list artifacts named {name!r}"))
        live = [a for a in found if a.get("name") == name and a.get("expired") is False]
        ours = [a for a in live if _same_repo_run(a) and _run_field(a, "head_branch") == base_branch]
        if not ours:
            reason = (f"no artifact named {name!r} exists in {repo}" if not found else
                      f"no live artifact named {name!r} from a run of {repo} on branch {base_branch!r} "
                      f"({len(found)} found: expired, from forks or from other branches)")
            return ArtifactDownload(None, reason + "; the comparison is skipped until the base branch uploads one")
        chosen = sorted(ours, key=_created, reverse=True)[: max(1, history)]
        if history <= 1:
            return _download(client, chosen[0], Path(dest), max_bytes, max_files)
        for index, artifact in enumerate(chosen, start=1):
            run = _run_field(artifact, "id")
            run = run if isinstance(run, int) and not isinstance(run, bool) else 0  # a folder name: digits only
            got = _download(client, artifact, Path(dest) / history_job_folder(index, run), max_bytes, max_files)
            if not got:  # expired between the listing and the download: skip that job
                continue
        jobs = sum(1 for p in Path(dest).iterdir() if p.is_dir()) if Path(dest).is_dir() else 0
        if not jobs:
            return ArtifactDownload(None, f"every listed artifact named {name!r} expired before it could be downloaded")
        newest = chosen[0]
        return ArtifactDownload(Path(dest), artifact_id=int(newest["id"]), run_id=_run_field(newest, "id"),
                                created_at=newest.get("created_at"), jobs=jobs)
    finally:
        client.close()


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
    client = _Client(token, repo, api_url, retry)
    try:
        doing = f"list the artifacts of run {run_id}"
        query = {} if is_pattern(name) else {"name": name}
        listed = list(client.pages(f"/repos/{repo}/actions/runs/{int(run_id)}/artifacts", query, doing))
        found = [a for a in listed if fnmatch.fnmatchcase(str(a.get("name")), name)]
        live = [a for a in found if a.get("expired") is False]
        if not live:
            state = "has expired" if found else "was not uploaded"
            if is_pattern(name):
                expired = f" ({len(found)} matching expired)" if found else ""
                return ArtifactDownload(None, f"no live artifact of run {run_id} matches {name!r}{expired}")
            return ArtifactDownload(None, f"artifact {name!r} of run {run_id} {state}")
        if not is_pattern(name):
            return _download(client, max(live, key=_created), Path(dest), max_bytes, max_files)
        newest: dict[str, dict[str, Any]] = {}
        for artifact in sorted(live, key=_created):
            newest[str(artifact["name"])] = artifact
        if len(newest) > DEFAULT_MAX_JOBS:
            raise ArtifactError(f"{len(newest)} artifacts of run {run_id} match {name!r}, more than {DEFAULT_MAX_JOBS}",
                                hint="Use a narrower results-artifact pattern.")
        for artifact_name, artifact in sorted(newest.items()):
            if not _SAFE_NAME.match(artifact_name):
                raise ArtifactError(f"artifact name {artifact_name[:100]!r} cannot be a folder name",
                                    hint="Name the results artifacts with letters, digits, '.', '_' and '-'.")
            _download(client, artifact, Path(dest) / artifact_name, max_bytes, max_files)
        return ArtifactDownload(Path(dest), run_id=run_id, jobs=len(newest))
    finally:
        client.close()


DEFAULT_MAX_JOBS = 256  # a matrix's jobs in one comment
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]{0,199}$")


def is_pattern(name: str) -> bool:
    """A results-artifact name with wildcards: every matching artifact is a job of a matrix."""
    return any(ch in name for ch in "*?[")


@dataclass(frozen=True)
class PullRequest:
    number: int
    head_sha: str
    base_ref: str


def get_pull_request(*, token: str, repo: str, pr: int, api_url: str | None = None,
                     retry: RetryPolicy = GITHUB_RETRY) -> PullRequest:
    """The pull request's head commit and base branch, as GitHub has them (not as an artifact says)."""
    client = _Client(token, repo, api_url, retry)
    try:
        doing = f"read pull request #{int(pr)}"
        response = client.get(f"{client.api_url}/repos/{repo}/pulls/{int(pr)}", doing)
        if response.status_code != 200:
            raise client.fail(response, doing)
        data = client.json(response, doing)
        head, base = data.get("head"), data.get("base")
        sha = head.get("sha") if isinstance(head, dict) else None
        ref = base.get("ref") if isinstance(base, dict) else None
        if not (isinstance(sha, str) and isinstance(ref, str)):
            raise GitHubError(f"GitHub's answer to the request to {doing} lacks the head commit or base branch")
        return PullRequest(int(pr), sha, ref)
    finally:
        client.close()


def _run_field(artifact: dict[str, Any], key: str) -> Any:
    run = artifact.get("workflow_run")
    return run.get(key) if isinstance(run, dict) else None


def _same_repo_run(artifact: dict[str, Any]) -> bool:
    run = artifact.get("workflow_run")
    run = run if isinstance(run, dict) else {}
    return run.get("repository_id") is not None and run.get("head_repository_id") == run.get("repository_id")


def _download(client: _Client, artifact: dict[str, Any], dest: Path, max_bytes: int,
              max_files: int) -> ArtifactDownload:
    import requests

    artifact_id = int(artifact["id"])
    run_id = _run_field(artifact, "id")
    found = dict(artifact_id=artifact_id, run_id=run_id, created_at=artifact.get("created_at"))
    doing = f"download artifact {artifact_id}"
    response = client.get(f"{client.api_url}/repos/{client.repo}/actions/artifacts/{artifact_id}/zip", doing,
                          redirects=False)
    if response.status_code == 410:
        return ArtifactDownload(None, f"artifact {artifact['name']!r} ({artifact_id}) has expired (HTTP 410)", **found)
    location = response.headers.get("Location")
    if response.status_code not in (301, 302, 303, 307, 308) or not location:
        raise client.fail(response, doing)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".kitt-download-") as work:
        archive = Path(work) / "artifact.zip"
        try:
            # A fresh request: the signed URL is on another host and must not get the token.
            with requests.get(location, stream=True, timeout=client.timeout, allow_redirects=False,
                              headers={"User-Agent": USER_AGENT}) as blob:
                if blob.status_code != 200:
                    raise ArtifactError(f"The artifact storage refused to {doing} (HTTP {blob.status_code})",
                                        hint="The download link lasts one minute; re-run the job.")
                _save(blob, archive, max_bytes)
        except requests.RequestException as error:
            raise ArtifactError(f"Could not {doing} from the artifact storage ({type(error).__name__})",
                                hint="Re-run the job; the download link lasts one minute.") from None
        safe_extract(archive, dest, max_bytes=max_bytes, max_files=max_files)
    return ArtifactDownload(dest, "", **found)


def _save(blob: requests.Response, archive: Path, max_bytes: int) -> None:
    limit = max_bytes + (1 << 20)  # zip overhead on top of the contents' cap
    written = 0
    with archive.open("wb") as out:
        for chunk in blob.iter_content(1 << 16):
            written += len(chunk)
            if written > limit:
                raise ArtifactError(f"The artifact is larger than {limit} bytes, kitt's limit for results",
                                    hint="Upload only the result set (metrics.json, samples.jsonl, ...).")
            out.write(chunk)
