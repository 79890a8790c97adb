"""A local GitHub REST double that checks every exchange against GitHub's description.

``GitHubDouble`` listens on 127.0.0.1 (a ``ThreadingHTTPServer`` in a daemon thread),
keeps repositories, pull requests, comments and artifacts in memory, and answers the
operations in :data:`handlers.ROUTES`. Each request is checked against GitHub's OpenAPI
description before it is handled; each answer the double produces is checked too.
Problems are collected in ``violations``; the pytest fixture fails the test on any.

Tokens: ``token`` may write; ``read_only_token`` gets 403 on writes, like the token of
a pull request from a fork (both configurable; ``TOKEN``/``READ_ONLY_TOKEN`` by default).
Artifact downloads redirect to a one-shot blob URL on ``localhost`` (a different host
from ``127.0.0.1``, same loopback server), which must not receive the token.
"""

from __future__ import annotations

import collections
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import handlers, objects
from .contract import Contract, ContractRequest, ContractResponse
from .handlers import Call, Reply
from .objects import Artifact, Comment, Fault, Pull, Repo, error_body

MAX_REQUEST_BYTES = 8 * 1024 * 1024


@dataclass
class RecordedRequest:
    """One request as the double saw it (header names lower-cased)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any
    operation: str  # GitHub's operationId, "blob", or "unrouted"
    status: int = 0


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


class GitHubDouble:
    TOKEN = "ghs_kittDoubleWriteToken0000000000000"
    READ_ONLY_TOKEN = "ghs_kittDoubleReadOnlyToken00000000000"

    def __init__(self, contract: Contract, *, token: str = TOKEN, read_only_token: str = READ_ONLY_TOKEN) -> None:
        self.contract = contract
        self.token, self.read_only_token = token, read_only_token
        self.bot_login = "github-actions[bot]"
        self.repo = Repo("octo-org", "kitt-demo", 1296269)
        self.fork = Repo("fork-user", "kitt-demo", 7777777)
        self.repos: dict[str, Repo] = {r.full_name: r for r in (self.repo, self.fork)}
        self.pulls: dict[tuple[str, int], Pull] = {}
        self.issues: set[tuple[str, int]] = set()
        self.artifacts: list[Artifact] = []
        self.blobs: dict[str, tuple[bytes, float]] = {}
        self.log: list[RecordedRequest] = []
        self.violations: list[str] = []
        self._comments: dict[int, Comment] = {}
        self._faults: dict[str, collections.deque[Fault]] = collections.defaultdict(collections.deque)
        self._before: dict[str, collections.deque[Any]] = collections.defaultdict(collections.deque)
        self._ids = itertools.count(1_000_001)
        self._clock = itertools.count(1)
        self._lock = threading.RLock()
        self._routes = [(op, method, _pattern(t), t, fn) for op, (method, t, fn) in handlers.ROUTES.items()]
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> GitHubDouble:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.double = self  # type: ignore[attr-defined]
        self._server = server
        # A short poll interval keeps shutdown (every test's teardown) fast.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="github-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> GitHubDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the double first"
        return self._server.server_address[1]

    @property
    def api_url(self) -> str:
        """What ``GITHUB_API_URL`` would hold (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def blob_url(self) -> str:
        return f"http://localhost:{self.port}"

    # -- state set-up and inspection ---------------------------------------------------
    def tick(self) -> datetime:
        """A strictly increasing timestamp, one second per call."""
        return objects.EPOCH + timedelta(seconds=next(self._clock))

    def add_pull(
        self,
        number: int = 7,
        *,
        base_ref: str | None = None,
        head_ref: str = "feature",
        from_fork: bool = False,
    ) -> Pull:
        with self._lock:
            head_repo = self.fork if from_fork else self.repo
            pull = Pull(number, base_ref or self.repo.default_branch, head_ref, head_repo)
            self.pulls[(self.repo.full_name, number)] = pull
            self.issues.add((self.repo.full_name, number))
            return pull

    def add_comment(self, issue_number: int, body: str, *, user: str = "octocat", repo: Repo | None = None) -> Comment:
        with self._lock:
            repo = repo or self.repo
            self.issues.add((repo.full_name, issue_number))
            moment = self.tick()
            comment = Comment(next(self._ids), repo.full_name, issue_number, body, user, moment, moment)
            self._comments[comment.id] = comment
            return comment

    def comments(self, issue_number: int, *, repo: Repo | None = None) -> list[Comment]:
        """The issue's comments, oldest first (GitHub's order)."""
        name = (repo or self.repo).full_name
        with self._lock:
            return [c for c in self._comments.values() if c.repo == name and c.issue_number == issue_number]

    def comment_by_id(self, comment_id: int) -> Comment | None:
        return self._comments.get(comment_id)

    def delete_comment_before_next(self, operation: str, comment_id: int) -> None:
        """Someone deletes the comment just before the next ``operation`` request arrives (a race)."""
        with self._lock:
            self._before[operation].append(lambda: self._comments.pop(comment_id, None))

    def add_artifact(
        self,
        name: str,
        files: dict[str, bytes | str] | None = None,
        *,
        content: bytes | None = None,
        head_branch: str = "main",
        from_fork: bool = False,
        expired: bool = False,
        gone: bool = False,
        created_at: datetime | None = None,
        run_id: int | None = None,
    ) -> Artifact:
        """Store an artifact of the base repository's workflow runs.

        ``from_fork``: the run was triggered from the fork (``head_repository_id`` differs).
        ``gone``: listed as live, but the download answers 410.
        """
        with self._lock:
            data = content if content is not None else objects.make_zip(files or {"metrics.json": "{}"})
            item = Artifact(
                id=5000 + len(self.artifacts) + 1,
                name=name,
                content=data,
                created_at=created_at or self.tick(),
                run_id=run_id or 9000 + len(self.artifacts) + 1,
                repository_id=self.repo.id,
                head_repository_id=(self.fork if from_fork else self.repo).id,
                head_branch=head_branch,
                expired=expired,
                gone=gone,
            )
            self.artifacts.append(item)
            return item

    def fail_next(
        self,
        operation: str,
        status: int,
        *,
        times: int = 1,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        after_handling: bool = False,
    ) -> None:
        """Answer the next ``times`` requests of ``operation`` (a GitHub operationId) with ``status``.

        ``after_handling``: handle the request first (e.g. store the comment), then answer
        the fault anyway: the "succeeded on the server, failed for the client" case.
        """
        if operation not in handlers.ROUTES:
            raise KeyError(f"unknown operation {operation!r}; known: {sorted(handlers.ROUTES)}")
        with self._lock:
            for _ in range(times):
                default = error_body("Server Error" if status >= 500 else "Forbidden", status)
                self._faults[operation].append(Fault(status, body or default, dict(headers or {}), after_handling))

    def rate_limit_next(self, operation: str, *, retry_after: int = 1, times: int = 1) -> None:
        """A secondary rate limit (403 with ``retry-after``) for the next ``times`` requests."""
        self.fail_next(
            operation,
            403,
            times=times,
            body=handlers.secondary_rate_limit_body(),
            headers={"retry-after": str(retry_after)},
        )

    def requests_for(self, operation: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.log if r.operation == operation]

    def take_violations(self) -> list[str]:
        """Return and forget the violations seen so far (for tests that provoke them)."""
        with self._lock:
            found, self.violations = self.violations, []
            return found

    # -- request handling --------------------------------------------------------------
    def dispatch(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        """Answer one HTTP request; records it, and any contract violation."""
        url = urlsplit(target)
        query = parse_qsl(url.query, keep_blank_values=True)
        lower = {k.lower(): v for k, v in headers.items()}
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        with self._lock:
            record = RecordedRequest(method, url.path, query, lower, payload, "unrouted")
            self.log.append(record)
            if url.path.startswith("/_blobs/"):
                record.operation = "blob"
                reply = self._serve_blob(url.path.rsplit("/", 1)[-1], lower)
            else:
                reply = self._dispatch_api(record, method.lower(), url.path, query, lower, raw, payload)
            record.status = reply.status
            return reply

    def _dispatch_api(
        self,
        record: RecordedRequest,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        raw: bytes,
        payload: Any,
    ) -> Reply:
        routed = self._route(method, path)
        if routed is None:
            self.violations.append(f"{method.upper()} {path}: the double serves no such operation")
            return Reply(404, error_body("Not Found", 404))
        operation, template, handler, match = routed
        record.operation = operation
        request = ContractRequest(
            method, path, query, headers, raw or None, headers.get("content-type", "application/json")
        )
        problems = self.contract.request_errors(request)
        generic = True  # answers any GitHub endpoint may give, listed in the description or not
        if problems:
            self.violations += [f"{method.upper()} {path}: request breaks GitHub's contract: {p}" for p in problems]
            reply = Reply(
                422 if isinstance(payload, (dict, list)) or raw else 400,
                {"message": "Invalid request.", "documentation_url": "https://docs.github.com/rest"},
            )
        elif (denied := self._authorize(headers.get("authorization", ""), write=method != "get")) is not None:
            reply = denied
        else:
            if self._before.get(operation):
                self._before[operation].popleft()()
            queue = self._faults.get(operation)
            fault = queue.popleft() if queue else None
            repo = self.repos.get(f"{match['owner']}/{match['repo']}")
            if fault is not None and not fault.after_handling:
                reply = Reply(fault.status, fault.body, fault.headers)
            else:
                generic = fault is not None
                call = Call(method, path, match.groupdict(), query, payload)
                reply = handler(self, call, repo) if repo else handlers.not_found()
                if fault is not None:
                    reply = Reply(fault.status, fault.body, fault.headers)
        self._check_reply(request, template, reply, generic)
        return reply

    def _route(self, method: str, path: str) -> tuple[str, str, handlers.Handler, re.Match[str]] | None:
        for operation, op_method, pattern, template, handler in self._routes:
            match = pattern.match(path)
            if match and op_method == method:
                return operation, template, handler, match
        return None

    def _authorize(self, authorization: str, *, write: bool) -> Reply | None:
        scheme, _, token = authorization.partition(" ")
        if not authorization:
            return Reply(401, error_body("Requires authentication", 401))
        if scheme.lower() not in ("token", "bearer") or token not in (self.token, self.read_only_token):
            return Reply(401, error_body("Bad credentials", 401))
        if write and token == self.read_only_token:
            return Reply(
                403,
                error_body(
                    "Resource not accessible by integration",
                    403,
                    "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
                ),
            )
        return None

    def _check_reply(self, request: ContractRequest, template: str, reply: Reply, generic: bool) -> None:
        where = f"{request.method.upper()} {request.path} -> {reply.status}"
        if reply.status not in self.contract.declared_statuses(request.method, template):
            if not generic and reply.status != 404:
                self.violations.append(f"{where}: the double answered a status GitHub does not list")
            return
        reply.headers.setdefault("Content-Type", "application/json; charset=utf-8")
        response = ContractResponse(
            reply.status,
            _headers(reply.headers),
            reply.data,
            reply.headers["Content-Type"] if reply.body is not None else "",
        )
        for problem in self.contract.response_errors(request, response):
            self.violations.append(f"{where}: the double drifted from GitHub's contract: {problem}")

    def _serve_blob(self, token: str, headers: dict[str, str]) -> Reply:
        if "authorization" in headers:
            self.violations.append("the GitHub token was sent to the artifact blob host")
            return Reply(400, {"code": "InvalidAuthenticationInfo"})
        content, deadline = self.blobs.pop(token, (b"", 0.0))  # one-shot
        if time.monotonic() > deadline:
            return Reply(403, {"code": "AuthenticationFailed", "message": "Signed URL expired or used"})
        return _RawReply(200, content, {"Content-Type": "application/zip"})


class _RawReply(Reply):
    def __init__(self, status: int, content: bytes, headers: dict[str, str]) -> None:
        super().__init__(status, None, headers)
        self._content = content

    @property
    def data(self) -> bytes:
        return self._content


def _headers(values: dict[str, str]) -> Any:
    from werkzeug.datastructures import Headers

    return Headers(list(values.items()))


class _Handler(BaseHTTPRequestHandler):
    server_version = "github.com"
    protocol_version = "HTTP/1.0"  # one request per connection: no keep-alive state to leak

    def _serve(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), MAX_REQUEST_BYTES)
        raw = self.rfile.read(length) if length else b""
        double: GitHubDouble = self.server.double  # type: ignore[attr-defined]
        reply = double.dispatch(self.command, self.path, dict(self.headers.items()), raw)
        data = reply.data
        self.send_response(reply.status)
        headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("X-RateLimit-Limit", "5000")
        self.send_header("X-RateLimit-Remaining", "4999")
        self.send_header("X-RateLimit-Reset", str(int(time.time()) + 3600))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass
