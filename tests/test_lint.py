"""The lint rules of pyproject.toml ([tool.ruff.lint]) hold over kitt, the tests and the benchmarks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import REPO, clean_environ

RUFF = Path(sys.executable).parent / "ruff"


def test_ruff_check_passes() -> None:
    result = subprocess.run([str(RUFF), "check", "--no-cache", "kitt", "tests", "benchmarks"], capture_output=True,
                            text=True, timeout=120, cwd=REPO, env=clean_environ(NO_COLOR="1"))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
