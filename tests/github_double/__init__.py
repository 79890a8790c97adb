"""A local GitHub REST double, checked against GitHub's published OpenAPI description.

See ``server.GitHubDouble`` for the double, ``fixtures`` for the pytest fixture, and
``spec`` for how the description is fetched (``npm pack @octokit/openapi``) and cut.
"""

from .objects import make_zip
from .server import GitHubDouble, RecordedRequest
from .spec import fetch_openapi_spec

__all__ = ["GitHubDouble", "RecordedRequest", "fetch_openapi_spec", "make_zip"]
