"""The layer stack holds: import-linter's contracts (pyproject.toml) pass on kitt as it is, and
break on an import that runs upward, wherever it sits (top of a module or inside a function)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO, clean_environ

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the ``kitt`` package under ``root``, with the contracts of its pyproject.toml."""
    env = clean_environ(PYTHONPATH=str(root), NO_COLOR="1", COLUMNS="200")
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env=env,
    )


def test_the_layers_hold() -> None:
    result = lint_imports(REPO)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "0 broken" in output and "BROKEN" not in output


@pytest.mark.parametrize("where", ["top", "function"])
def test_an_upward_import_breaks_the_layers(tmp_path: Path, where: str) -> None:
    """The load generator (bench) importing the report is two layers up: the contract must say so."""
    shutil.copytree(REPO / "kitt", tmp_path / "kitt", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    loadgen = tmp_path / "kitt" / "bench" / "loadgen.py"
    text = loadgen.read_text()
    if where == "top":
        anchor = "\nfrom kitt.bench.client import Client\n"
        text = text.replace(anchor, anchor + "from kitt.report import render_summary\n", 1)
    else:
        text += (
            "\n\ndef _upward() -> object:\n    from kitt.report import render_summary\n\n    return render_summary\n"
        )
    loadgen.write_text(text)
    assert "kitt.report" in loadgen.read_text()

    result = lint_imports(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "kitt's layers import downward only BROKEN" in output
    assert "kitt.bench is not allowed to import kitt.report" in output
    assert "kitt.bench.loadgen -> kitt.report" in output
