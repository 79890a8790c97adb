"""GitHub's published OpenAPI description, fetched once and cut to what the double serves.

The contract is the npm package ``@octokit/openapi`` (pinned below), which ships
``generated/api.github.com.json``. Building that 13 MB description takes openapi-core
about 32 s, so :func:`cut_spec_path` keeps only the operations the double serves plus
every ``$ref`` they reach, and caches the result next to the download. :func:`load_openapi`
builds the cut description once per process.

Cache folder: ``$KITT_TEST_CACHE`` or ``~/.cache/kitt-tests``. ``$KITT_GITHUB_OPENAPI``
may point at an already downloaded ``api.github.com.json`` (offline machines).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openapi_core import OpenAPI

OPENAPI_PACKAGE = "@octokit/openapi"
OPENAPI_VERSION = "23.0.2"
# `npm view @octokit/openapi@23.0.2 dist.integrity`: a re-published tarball must not slip in.
OPENAPI_INTEGRITY = "sha512-pV8M7L9GY23AybNvTmo2nyjmpmnt6+2sRE/tqr0ZLQcPS4lnw7u5eZGNmwRNkBC3D7gZXbFx5AHzLUVRBXGDhg=="
_MEMBER = "package/generated/api.github.com.json"

# (method, path template) of every operation the double serves: the contract is cut to these.
SERVED_OPERATIONS: tuple[tuple[str, str], ...] = (
    ("get", "/repos/{owner}/{repo}"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("patch", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("get", "/repos/{owner}/{repo}/actions/artifacts"),
    ("get", "/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts"),
    ("get", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}"),
)


class SpecUnavailable(RuntimeError):
    """The OpenAPI description could not be fetched; the message says how to fix it."""


def cache_dir() -> Path:
    """The folder that holds downloads and cut descriptions (created on demand)."""
    root = os.environ.get("KITT_TEST_CACHE") or str(Path.home() / ".cache" / "kitt-tests")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch_openapi_spec() -> Path:
    """Return the path of ``api.github.com.json``, downloading it with ``npm pack`` once.

    The tarball's sha512 must match :data:`OPENAPI_INTEGRITY`. Writes are atomic, so
    parallel test processes may race harmlessly.
    """
    override = os.environ.get("KITT_GITHUB_OPENAPI")
    if override:
        if not Path(override).is_file():
            raise SpecUnavailable(f"KITT_GITHUB_OPENAPI={override} is not a file")
        return Path(override)
    target = cache_dir() / f"api.github.com-{OPENAPI_VERSION}.json"
    if target.is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise SpecUnavailable(
            "npm is needed once to fetch GitHub's OpenAPI description "
            f"({OPENAPI_PACKAGE}@{OPENAPI_VERSION}); install Node.js, or set "
            "KITT_GITHUB_OPENAPI to a downloaded generated/api.github.com.json"
        )
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        proc = subprocess.run(
            [npm, "pack", f"{OPENAPI_PACKAGE}@{OPENAPI_VERSION}", "--pack-destination", work],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        tarballs = list(Path(work).glob("*.tgz"))
        if proc.returncode != 0 or len(tarballs) != 1:
            raise SpecUnavailable(
                f"`npm pack {OPENAPI_PACKAGE}@{OPENAPI_VERSION}` failed: {proc.stderr.strip()[-500:]}"
            )
        _check_integrity(tarballs[0])
        with tarfile.open(tarballs[0], "r:gz") as tar:
            member = tar.getmember(_MEMBER)
            source = tar.extractfile(member)
            if source is None:
                raise SpecUnavailable(f"{_MEMBER} is not a regular file in the npm package")
            partial = Path(work) / "api.json"
            with source, partial.open("wb") as out:
                shutil.copyfileobj(source, out)
        os.replace(partial, target)
    return target


def _check_integrity(tarball: Path) -> None:
    algorithm, _, expected = OPENAPI_INTEGRITY.partition("-")
    digest = hashlib.new(algorithm)
    with tarball.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if base64.b64encode(digest.digest()).decode() != expected:
        raise SpecUnavailable(f"{tarball.name} does not match the pinned integrity {OPENAPI_INTEGRITY}")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def cut_spec(full: dict[str, Any], operations: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Keep only ``operations`` and the components they reach through ``$ref``, transitively."""
    paths: dict[str, dict[str, Any]] = {}
    for method, template in operations:
        item = full["paths"][template]
        kept = paths.setdefault(template, {k: v for k, v in item.items() if k == "parameters"})
        kept[method] = item[method]
    components: dict[str, dict[str, Any]] = {}
    pending = list(_refs(paths))
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        if not ref.startswith("#/components/"):
            raise ValueError(f"unsupported $ref {ref!r}")
        kind, _, name = ref[len("#/components/") :].partition("/")
        node = full["components"][kind][name]
        components.setdefault(kind, {})[name] = node
        pending.extend(_refs(node))
    return {
        "openapi": full["openapi"],
        "info": full["info"],
        "servers": full["servers"],
        "paths": paths,
        "components": components,
    }


def cut_spec_path(operations: tuple[tuple[str, str], ...] = SERVED_OPERATIONS) -> Path:
    """Return a cached description cut to ``operations`` (cutting it on first use)."""
    source = fetch_openapi_spec()
    key = hashlib.sha256(repr((str(source), source.stat().st_size, operations)).encode()).hexdigest()
    target = cache_dir() / f"api.github.com-{OPENAPI_VERSION}.cut-{key[:16]}.json"
    if not target.is_file():
        full = json.loads(source.read_text(encoding="utf-8"))
        cut = cut_spec(full, operations)
        fd, partial = tempfile.mkstemp(dir=target.parent, suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(cut, out)
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    return target


@functools.cache
def load_cut_spec(operations: tuple[tuple[str, str], ...] = SERVED_OPERATIONS) -> dict[str, Any]:
    """The cut description as a dict (read once per process; treat it as read-only)."""
    return json.loads(cut_spec_path(operations).read_text(encoding="utf-8"))


@functools.cache
def load_openapi(operations: tuple[tuple[str, str], ...] = SERVED_OPERATIONS) -> OpenAPI:
    """Build (once per process) the openapi-core object for the cut description."""
    from openapi_core import OpenAPI

    return OpenAPI.from_dict(load_cut_spec(operations))
