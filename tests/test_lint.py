"""The lint rules and the format of pyproject.toml ([tool.ruff]) hold over kitt, the tests and the benchmarks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO, clean_environ

RUFF = Path(sys.executable).parent / "ruff"


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_passes(command: list[str]) -> None:
    result = subprocess.run(
        [str(RUFF), *command, "--no-cache", "kitt", "tests", "benchmarks"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=clean_environ(NO_COLOR="1"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
