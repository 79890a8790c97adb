"""Shared fixtures: every test runs without the runner's GITHUB_*, INPUT_*, ACTIONS_* variables."""

from __future__ import annotations

import os

import pytest

from support import RUNNER_PREFIXES


@pytest.fixture(autouse=True)
def _isolate_environment(monkeypatch):
    """No test sees the GitHub Actions variables (or tokens) of whatever runs the test suite."""
    for key in list(os.environ):
        if key.startswith(RUNNER_PREFIXES) or key == "HF_TOKEN":
            monkeypatch.delenv(key, raising=False)
