"""The ``github_double`` pytest fixture.

Import it where it is used (``tests/github/conftest.py`` for the GitHub modules' tests, the test
module itself elsewhere), so that only those tests need the double's packages::

    from github_double.fixtures import github_contract, github_double  # noqa: F401

``github_contract`` (session scope) fetches and cuts GitHub's description and builds the
validator once; ``github_double`` starts a fresh double per test and fails the test at
teardown if any request or response broke GitHub's contract.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from .contract import Contract
from .server import GitHubDouble


def fail_on_violations(double: GitHubDouble) -> None:
    """``pytest.fail`` listing every contract violation the double saw (and forgets them)."""
    violations = double.take_violations()
    if violations:
        pytest.fail(
            "The GitHub double saw contract violations:\n" + "\n".join(f"- {v}" for v in violations),
            pytrace=False,
        )


@functools.lru_cache(maxsize=1)
def _contract() -> Contract:
    return Contract()


@pytest.fixture(scope="session")
def github_contract() -> Contract:
    """GitHub's description, cut to what the double serves, built once per session (one object even
    though several test modules import this fixture, each its own copy of it for pytest)."""
    return _contract()


@pytest.fixture
def github_double(github_contract: Contract) -> Iterator[GitHubDouble]:
    """A running GitHub REST double on 127.0.0.1; ``.api_url`` is its base URL."""
    with GitHubDouble(github_contract) as double:
        yield double
    fail_on_violations(double)
