"""Upload a workflow artifact with the GitHub Actions artifacts v4 protocol.

The Docker flavour of the action uploads its report from Python, because a Docker
action (unlike a composite action's ``run`` steps) gets ``ACTIONS_RUNTIME_TOKEN`` and
``ACTIONS_RESULTS_URL``. The protocol, as ``actions/upload-artifact@v4`` speaks it:

1. ``CreateArtifact`` (Twirp, JSON) on the results service returns a signed blob URL;
2. the zip goes to that URL as an Azure block blob: ``Put Block`` for each block, one
   after another, then ``Put Block List``;
3. ``FinalizeArtifact`` records its size and sha256.

Only :func:`upload_from_environment` reads environment variables; everything else
takes arguments. The runtime token is never written into a message or a log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Union
from urllib.parse import quote

import requests

from kitt.errors import ArtifactError, UsageError
from kitt.github.http import ARTIFACT_RETRY, Attempts, RetryPolicy, send

TWIRP_SERVICE = "twirp/github.actions.results.api.v1.ArtifactService"
FORBIDDEN_NAME_CHARACTERS = ('"', ":", "<", ">", "|", "*", "?", "\r", "\n", "\\", "/")
# upload-artifact@v4 stages 8 MiB blocks; Azure allows up to 4000 MiB per block.
BLOCK_SIZE = 8 * 1024 * 1024
# Any service version newer than the SAS version works; this one supports 4000 MiB blocks.
AZURE_STORAGE_VERSION = "2023-11-03"
MAX_RETENTION_DAYS = 90
ENVIRONMENT_HINT = (
    "Only Docker container and JavaScript actions get these variables: use the Docker flavour, "
    "or upload with actions/upload-artifact@v4 after a composite action."
)
UNIQUE_NAME_HINT = (
    "Artifact names are unique per workflow run: set a unique `artifact-name` input "
    "(for a matrix job, include the matrix values in it)."
)

PathInput = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class UploadResult:
    """What GitHub recorded: ``digest`` is ``sha256:<hex>`` of the uploaded zip."""

    id: int
    name: str
    size: int
    digest: str


@dataclass(frozen=True)
class BackendIds:
    """The workflow run and job as the results service knows them (from the token)."""

    workflow_run_backend_id: str
    workflow_job_run_backend_id: str


def validate_artifact_name(name: str) -> str:
    """Return ``name`` if GitHub accepts it as an artifact name, else raise UsageError."""
    if not name or not name.strip():
        raise UsageError("The artifact name is empty.", "Set the `artifact-name` input.")
    bad = sorted({repr(c) for c in FORBIDDEN_NAME_CHARACTERS if c in name})
    if bad:
        raise UsageError(
            f"The artifact name {name!r} contains {', '.join(bad)}, which GitHub does not allow.",
            'Choose an `artifact-name` without any of " : < > | * ? \\ / or line breaks.',
        )
    return name


def backend_ids_from_token(runtime_token: str) -> BackendIds:
    """Read the backend IDs from the JWT ``scp`` claim ``Actions.Results:<run>:<job>``.

    The signature is not checked: the results service does that, and we only need
    the IDs it expects back.
    """
    hint = (
        "Upload artifacts from a Docker container action or a JavaScript action; "
        "composite `run` steps do not get a usable ACTIONS_RUNTIME_TOKEN."
    )
    parts = runtime_token.split(".")
    if len(parts) != 3:
        raise ArtifactError("ACTIONS_RUNTIME_TOKEN is not a JWT.", hint)
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError) as error:
        raise ArtifactError(
            f"ACTIONS_RUNTIME_TOKEN has an unreadable payload ({type(error).__name__}).", hint
        ) from None
    scopes = claims.get("scp", "") if isinstance(claims, dict) else ""
    for scope in str(scopes).split():
        fields = scope.split(":")
        if len(fields) == 3 and fields[0] == "Actions.Results" and fields[1] and fields[2]:
            return BackendIds(fields[1], fields[2])
    raise ArtifactError("ACTIONS_RUNTIME_TOKEN has no `Actions.Results:<run>:<job>` scope.", hint)


def collect_files(paths_or_dir: PathInput | Sequence[PathInput]) -> list[tuple[Path, str]]:
    """List ``(file, name in the zip)`` pairs, sorted by name, relative to the common root.

    A directory contributes every file below it; a file list is made relative to the
    deepest folder that holds all of them.
    """
    items = [Path(paths_or_dir)] if isinstance(paths_or_dir, (str, os.PathLike)) else [Path(p) for p in paths_or_dir]
    if not items:
        raise ArtifactError("There is nothing to upload: no paths were given.", "Pass a results folder or files.")
    for item in items:
        if not item.exists():
            raise ArtifactError(f"Cannot upload {item}: it does not exist.", "Check the results path.")
    bases = [item.resolve() if item.is_dir() else item.resolve().parent for item in items]
    root = Path(os.path.commonpath(bases))
    files: dict[str, Path] = {}
    for item in items:
        candidates = sorted(p for p in item.resolve().rglob("*") if p.is_file()) if item.is_dir() else [item.resolve()]
        for path in candidates:
            files[path.relative_to(root).as_posix()] = path
    if not files:
        raise ArtifactError(
            f"There is nothing to upload: {', '.join(map(str, items))} holds no files.",
            "Check the results path.",
        )
    return [(files[name], name) for name in sorted(files)]


def write_zip(files: Sequence[tuple[Path, str]], out: IO[bytes]) -> None:
    """Write a deterministic zip: fixed order, timestamps and permissions."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, name in files:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the permission bits below are honoured everywhere
            info.external_attr = 0o644 << 16
            with path.open("rb") as source, archive.open(info, "w") as target:
                while chunk := source.read(1024 * 1024):
                    target.write(chunk)


def send_with_retry(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    retry: RetryPolicy = ARTIFACT_RETRY,
    idempotent: bool | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Send one request under kitt's network policy (``kitt.github.http``); return the final response.

    ``what`` names the step in errors, because the URL may carry a signature.
    A 4xx other than 429 comes back to the caller, who knows what it means.
    """
    attempts = Attempts()
    response = send(session, method, url, policy=retry, idempotent=idempotent, attempts=attempts, **kwargs)
    if response is not None and response.status_code != 429 and response.status_code < 500:
        return response
    hint = "GitHub's artifact service may be degraded: re-run the job, and see https://www.githubstatus.com."
    if attempts.count >= retry.attempts:
        raise ArtifactError(f"{what} failed after {attempts.count} tries (last: {attempts.last}).", hint)
    why = (
        "it asked to wait longer than kitt waits"
        if response is not None and response.status_code == 429
        else "it is not safe to repeat: the service may have done it anyway"
    )
    raise ArtifactError(f"{what} failed ({attempts.last}) and was not retried: {why}.", hint)


def _twirp(
    session: requests.Session,
    results_url: str,
    token: str,
    method: str,
    body: dict[str, Any],
    retry: RetryPolicy,
) -> dict[str, Any]:
    """Call one method of the results service and return its JSON answer."""
    response = send_with_retry(
        session,
        "POST",
        f"{results_url.rstrip('/')}/{TWIRP_SERVICE}/{method}",
        what=f"{method} on the artifact service",
        retry=retry,
        idempotent=method != "CreateArtifact",  # finalizing twice is harmless; creating twice is not
        json=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    if response.status_code == 409:
        raise ArtifactError(f"An artifact named {body['name']!r} already exists in this run.", UNIQUE_NAME_HINT)
    if response.status_code >= 400:
        raise ArtifactError(
            f"{method} on the artifact service answered {response.status_code}: {_short(response.text)}.",
            "Check that the job runs on GitHub Actions with a valid ACTIONS_RUNTIME_TOKEN, then re-run it.",
        )
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("ok") is False:
        raise ArtifactError(f"{method} on the artifact service failed: {_short(response.text)}.", "Re-run the job.")
    return data


def _short(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def _field(data: dict[str, Any], snake: str, camel: str) -> Any:
    # GitHub answers in snake_case; act and Gitea (Go protojson) answer in camelCase.
    return data.get(snake, data.get(camel))


def _put_blob(
    session: requests.Session, url: str, query: str, data: bytes, headers: dict[str, str], retry: RetryPolicy
) -> None:
    what = "Uploading the artifact's block list" if "blocklist" in query else "Uploading a block of the artifact"
    full_url = f"{url}{'&' if '?' in url else '?'}{query}"
    headers = {"x-ms-version": AZURE_STORAGE_VERSION, **headers}
    response = send_with_retry(session, "PUT", full_url, what=what, retry=retry, data=data, headers=headers)
    if response.status_code >= 400:
        raise ArtifactError(
            f"{what} answered HTTP {response.status_code}: {_short(response.text)}.",
            "The signed upload URL may have expired: re-run the job.",
        )


def upload_blocks(
    session: requests.Session,
    signed_url: str,
    zip_file: IO[bytes],
    *,
    retry: RetryPolicy = ARTIFACT_RETRY,
    block_size: int = BLOCK_SIZE,
) -> tuple[int, str]:
    """Upload ``zip_file`` as an Azure block blob; return its size and sha256 hex.

    Blocks go one after another, never in parallel: act's artifact server appends them
    in arrival order and ignores the block list.
    """
    digest, size = hashlib.sha256(), 0
    block_ids: list[str] = []
    zip_file.seek(0)
    while block := zip_file.read(block_size):
        # Azure wants every block ID of a blob to have the same length before encoding.
        block_id = base64.b64encode(f"kitt-block-{len(block_ids):08d}".encode()).decode()
        query = f"comp=block&blockid={quote(block_id, safe='')}"
        _put_blob(session, signed_url, query, block, {"Content-Type": "application/octet-stream"}, retry)
        block_ids.append(block_id)
        digest.update(block)
        size += len(block)
    latest = "".join(f"<Latest>{block_id}</Latest>" for block_id in block_ids)
    block_list = f'<?xml version="1.0" encoding="utf-8"?><BlockList>{latest}</BlockList>'.encode()
    headers = {"Content-Type": "application/xml", "x-ms-blob-content-type": "application/zip"}
    _put_blob(session, signed_url, "comp=blocklist", block_list, headers, retry)
    return size, digest.hexdigest()


def upload_artifact(
    *,
    name: str,
    paths_or_dir: PathInput | Sequence[PathInput],
    runtime_token: str,
    results_url: str,
    retention_days: int | None = None,
    retry: RetryPolicy = ARTIFACT_RETRY,
    session: requests.Session | None = None,
    block_size: int = BLOCK_SIZE,
) -> UploadResult:
    """Zip ``paths_or_dir`` and upload it as artifact ``name`` of the current workflow run."""
    validate_artifact_name(name)
    if retention_days is not None and not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise UsageError(
            f"retention-days is {retention_days}, outside 1..{MAX_RETENTION_DAYS}.",
            "Set `retention-days` to a whole number from 1 to 90, or leave it empty for the repo default.",
        )
    if not runtime_token or not results_url:
        raise ArtifactError("ACTIONS_RUNTIME_TOKEN or ACTIONS_RESULTS_URL is empty.", ENVIRONMENT_HINT)
    ids = backend_ids_from_token(runtime_token)
    files = collect_files(paths_or_dir)
    run_and_job = {
        "workflow_run_backend_id": ids.workflow_run_backend_id,
        "workflow_job_run_backend_id": ids.workflow_job_run_backend_id,
        "name": name,
    }
    create: dict[str, Any] = {**run_and_job, "version": 4}
    if retention_days is not None:
        expires = datetime.now(timezone.utc) + timedelta(days=retention_days)
        create["expires_at"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")

    http = session or requests.Session()
    if session is None:
        http.headers["User-Agent"] = "kitt-artifact-upload"
    try:
        with tempfile.TemporaryFile() as zip_file:
            write_zip(files, zip_file)
            created = _twirp(http, results_url, runtime_token, "CreateArtifact", create, retry)
            signed_url = _field(created, "signed_upload_url", "signedUploadUrl")
            if not signed_url:
                raise ArtifactError("CreateArtifact on the artifact service gave no upload URL.", "Re-run the job.")
            size, sha256 = upload_blocks(http, signed_url, zip_file, retry=retry, block_size=block_size)
        # int64 travels as a string in protobuf JSON.
        finalize = {**run_and_job, "size": str(size), "hash": f"sha256:{sha256}"}
        finalized = _twirp(http, results_url, runtime_token, "FinalizeArtifact", finalize, retry)
    finally:
        if session is None:
            http.close()
    try:
        artifact_id = int(_field(finalized, "artifact_id", "artifactId"))
    except (TypeError, ValueError):
        raise ArtifactError(
            "FinalizeArtifact on the artifact service gave no artifact ID.", "Re-run the job."
        ) from None
    return UploadResult(id=artifact_id, name=name, size=size, digest=f"sha256:{sha256}")


def upload_from_environment(
    name: str, path: PathInput | Sequence[PathInput], retention_days: int | None = None
) -> UploadResult:
    """Upload with the credentials that the runner gives a Docker action's step."""
    token = os.environ.get("ACTIONS_RUNTIME_TOKEN", "")
    results_url = os.environ.get("ACTIONS_RESULTS_URL", "")
    missing = [
        var for var, value in (("ACTIONS_RUNTIME_TOKEN", token), ("ACTIONS_RESULTS_URL", results_url)) if not value
    ]
    if missing:
        verb = "are" if len(missing) > 1 else "is"
        raise ArtifactError(
            f"{' and '.join(missing)} {verb} not set, so no artifact can be uploaded here.", ENVIRONMENT_HINT
        )
    return upload_artifact(
        name=name,
        paths_or_dir=path,
        runtime_token=token,
        results_url=results_url,
        retention_days=retention_days,
    )
