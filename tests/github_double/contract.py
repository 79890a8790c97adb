"""Checks the double's traffic against GitHub's OpenAPI description (openapi-core).

Requests are checked so that the code under test cannot call GitHub in a way GitHub
would reject; responses are checked so that the double cannot drift from what GitHub
actually sends. Paths are matched against the description's own server
(``https://api.github.com``), whatever port the double listens on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from .spec import SERVED_OPERATIONS, load_cut_spec, load_openapi

SPEC_SERVER = "https://api.github.com"


@dataclass
class ContractRequest:
    """A request in the shape openapi-core's ``Request`` protocol expects."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | None
    content_type: str
    host_url: str = SPEC_SERVER
    parameters: RequestParameters = field(init=False)

    def __post_init__(self) -> None:
        self.method = self.method.lower()
        self.parameters = RequestParameters(query=ImmutableMultiDict(self.query), header=Headers(self.headers))


@dataclass
class ContractResponse:
    """A response in the shape openapi-core's ``Response`` protocol expects."""

    status_code: int
    headers: Headers
    data: bytes | None
    content_type: str


def _describe(errors: Iterable[Exception]) -> list[str]:
    """One line per problem: the JSON path and jsonschema's message where there is one."""
    lines = []
    for error in errors:
        cause = error.__cause__
        schema_errors = getattr(cause, "schema_errors", None) or ()
        if schema_errors:
            details = [f"{e.json_path}: {' '.join(e.message.split())[:300]}" for e in schema_errors]
            text = f"{type(error).__name__}: " + "; ".join(details)
        else:
            text = f"{error} ({cause})" if cause else str(error)
        lines.append(" ".join(text.split())[:1000])
    return lines


class Contract:
    """The served part of GitHub's description, built once per process."""

    def __init__(self) -> None:
        self._openapi = load_openapi(SERVED_OPERATIONS)
        spec = load_cut_spec(SERVED_OPERATIONS)
        self._declared: dict[tuple[str, str], frozenset[int]] = {
            (method, template): frozenset(int(code) for code in spec["paths"][template][method]["responses"])
            for method, template in SERVED_OPERATIONS
        }

    def declared_statuses(self, method: str, template: str) -> frozenset[int]:
        """Status codes the description lists for the operation."""
        return self._declared[(method.lower(), template)]

    def request_errors(self, request: ContractRequest) -> list[str]:
        """Why GitHub's description rejects ``request`` (empty when it fits)."""
        return _describe(self._openapi.iter_request_errors(request))

    def response_errors(self, request: ContractRequest, response: ContractResponse) -> list[str]:
        """Why GitHub's description rejects ``response`` to ``request`` (empty when it fits)."""
        return _describe(self._openapi.iter_response_errors(request, response))
