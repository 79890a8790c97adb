"""Which source a run measured: the commit and branch that ``config.json`` records for the trend.

The shell layer passes what the CI says (``GITHUB_SHA`` and ``GITHUB_REF_NAME``, read by
``kitt.github.actions_io.ActionsContext``); without them git is asked in the working directory
(``git rev-parse HEAD`` and ``--abbrev-ref HEAD``); without git, or outside a repository, both
are None. Bounded: git gets a few seconds, and its failures are never errors.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

GIT_TIMEOUT_S = 5.0


def _git(args: list[str], cwd: Path | None) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = done.stdout.strip()
    return value if done.returncode == 0 and value else None


def source_revision(commit: str | None, branch: str | None, cwd: Path | None = None) -> dict[str, str | None]:
    """``{"commit": ..., "branch": ...}``: the given values, else git's, else None."""
    if commit is None:
        commit = _git(["rev-parse", "HEAD"], cwd)
    if branch is None:
        named = _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd)
        branch = named if named != "HEAD" else None  # a detached HEAD has no branch
    return {"commit": commit, "branch": branch}
