"""Unpack an untrusted zip archive (an artifact another workflow run uploaded) safely.

An artifact may come from a run that built a fork's pull request, so its contents are data an
attacker chose. :func:`safe_extract` refuses, with ArtifactError and nothing left behind, what
could write outside the destination or fill the disk: absolute paths, ``..``, symbolic links and
other special entries, duplicate names, too many entries, and too many bytes unpacked (the sizes
the archive declares first, then the bytes actually inflated, since a zip bomb lies about them).
It writes into a staging folder beside the destination and moves it into place only when every
entry is out.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path

from kitt.errors import ArtifactError

DEFAULT_MAX_BYTES = 256 * 1024 * 1024  # unpacked; a result set is a few MB
DEFAULT_MAX_FILES = 1000


def safe_extract(
    zip_path: str | Path, dest: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, max_files: int = DEFAULT_MAX_FILES
) -> list[Path]:
    """Unpack an untrusted zip into ``dest`` (absent or empty) and return the files written.

    Refuses, with ArtifactError and nothing left behind: absolute paths, ``..``, symlinks
    and other special entries, duplicate names, more than ``max_files`` entries, and more
    than ``max_bytes`` unpacked (declared sizes first, then the bytes actually inflated).
    """
    zip_path, dest = Path(zip_path), Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ArtifactError(f"Will not unpack the artifact into {dest}: it is not an empty folder")
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ArtifactError(f"The artifact is not a readable zip archive ({error})") from None
    with archive:
        entries = archive.infolist()
        if len(entries) > max_files:
            raise ArtifactError(
                f"The artifact holds {len(entries)} entries, more than the limit of {max_files}",
                hint="Upload only the result set, not a whole folder tree.",
            )
        declared = sum(entry.file_size for entry in entries)
        if declared > max_bytes:
            raise ArtifactError(
                f"The artifact declares {declared} bytes unpacked, more than the limit of {max_bytes}",
                hint="Upload only the result set (metrics.json, samples.jsonl, ...).",
            )
        plan: dict[str, zipfile.ZipInfo] = {}
        for entry in entries:
            relative = _member_path(entry)
            if relative in plan:
                raise ArtifactError(f"The artifact has two entries named {relative!r}")
            plan[relative] = entry
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".kitt-extract-"))
        try:
            written = _inflate(archive, plan, staging, max_bytes)
            if dest.exists():
                dest.rmdir()
            os.replace(staging, dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return [dest / relative for relative in written]


def _member_path(entry: zipfile.ZipInfo) -> str:
    """The entry's safe relative path ("a/b.json"), or ArtifactError."""
    name = entry.filename.replace("\\", "/")
    mode = entry.external_attr >> 16
    problem = None
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        problem = "has an absolute path"
    elif ".." in name.split("/"):
        problem = "climbs out of the folder with '..'"
    elif stat.S_ISLNK(mode):
        problem = "is a symbolic link"
    elif stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        problem = "is not a regular file or folder"
    elif "\x00" in name or not name.strip("/."):
        problem = "has an empty or invalid name"
    if problem:
        raise ArtifactError(
            f"Refusing to unpack the artifact: entry {entry.filename[:200]!r} {problem}",
            hint="Artifacts are untrusted data; rebuild it with actions/upload-artifact.",
        )
    parts = [part for part in name.split("/") if part not in ("", ".")]
    return "/".join(parts) + ("/" if entry.is_dir() else "")


def _inflate(archive: zipfile.ZipFile, plan: dict[str, zipfile.ZipInfo], root: Path, max_bytes: int) -> list[str]:
    files: list[str] = []
    total = 0
    try:
        for relative, entry in plan.items():
            target = root.joinpath(*relative.rstrip("/").split("/"))
            if entry.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(entry) as source, target.open("xb") as out:
                while chunk := source.read(1 << 16):
                    total += len(chunk)
                    if total > max_bytes:
                        raise ArtifactError(
                            f"The artifact unpacks to more than {max_bytes} bytes, the limit",
                            hint="Upload only the result set (metrics.json, samples.jsonl, ...).",
                        )
                    out.write(chunk)
            files.append(relative)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as error:
        raise ArtifactError(f"The artifact could not be unpacked ({type(error).__name__}: {error})") from None
    return files
