"""safe_extract: an untrusted zip is unpacked whole and inside its folder, or not at all."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from kitt.errors import ArtifactError
from kitt.github.archive import safe_extract


def zip_with(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["../up.txt", "a/../../up.txt", "/etc/passwd", "C:/win.txt", "..\\up.txt"])
def test_paths_outside_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_with([(name, b"x")]))
    with pytest.raises(ArtifactError, match="Refusing to unpack"):
        safe_extract(archive, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


def test_symlink_entries_are_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("metrics.json")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_with([("summary.md", b"ok"), (link, b"/etc/passwd")]))
    with pytest.raises(ArtifactError, match="symbolic link"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_oversized_and_overfull_archives_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_with([("big.bin", b"\0" * 5000), ("small.txt", b"x")]))
    with pytest.raises(ArtifactError, match="declares 5001 bytes"):
        safe_extract(archive, tmp_path / "out", max_bytes=4096)
    with pytest.raises(ArtifactError, match="2 entries"):
        safe_extract(archive, tmp_path / "out", max_files=1)
    assert safe_extract(archive, tmp_path / "out", max_bytes=5001, max_files=2) == [
        tmp_path / "out" / "big.bin",
        tmp_path / "out" / "small.txt",
    ]


def test_an_archive_that_lies_about_its_size_is_refused(tmp_path: Path) -> None:
    data = bytearray(zip_with([("big.bin", b"A" * 4000)]))
    # Shrink the declared size in both headers to 10 bytes: a zip bomb's trick.
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 22 : local + 26] = (10).to_bytes(4, "little")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    archive = tmp_path / "a.zip"
    archive.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="could not be unpacked"):
        safe_extract(archive, tmp_path / "out", max_bytes=100)
    assert not (tmp_path / "out").exists()


def test_not_a_zip_and_a_non_empty_destination_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="not a readable zip"):
        safe_extract(junk, tmp_path / "out")
    archive = tmp_path / "a.zip"
    with pytest.warns(UserWarning, match="Duplicate name"):
        archive.write_bytes(zip_with([("x", b"1"), ("x", b"2")]))
    with pytest.raises(ArtifactError, match="two entries"):
        safe_extract(archive, tmp_path / "out")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="not an empty folder"):
        safe_extract(archive, tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
