"""The GitHub REST double (``github_double``, validated against GitHub's OpenAPI description) for
the tests of ``kitt.github``. Tests elsewhere that talk to it import the same fixtures themselves,
so that only they need the double's packages (openapi-core) to be collected."""

from __future__ import annotations

from github_double.fixtures import github_contract, github_double  # noqa: F401  (the GitHub REST double)
