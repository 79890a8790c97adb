"""Issue 30: --ready-timeout is the timeout that applies, every readiness probe included, and the
hint for a wait that ran out names what to check (the right flag; never a URL's password)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from kitt.engines import get_engine
from kitt.engines.endpoint import EndpointRunner
from kitt.engines import readiness
from kitt.errors import EngineNotReady
from net_peers import sim
from support import clean_environ, run_kitt


@contextlib.contextmanager
def stuck_server(answer: str) -> Iterator[int]:
    """A loopback server that never answers what ``answer`` leaves out: "nothing" (a black hole:
    connections accepted, requests read, no byte back), "generation" (health and the model list
    answer, a generation hangs) or "503" (everything answered 503). Yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def reply(conn: socket.socket, status: str, body: bytes) -> None:
        conn.sendall(
            b"HTTP/1.1 "
            + status.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        conn.close()

    def handle(conn: socket.socket) -> None:
        head = b""
        with contextlib.suppress(OSError):
            conn.settimeout(30)
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    return
                head += data
            request_line = head.split(b"\r\n", 1)[0]
            if answer == "503":
                reply(conn, "503 Service Unavailable", b'{"error": "loading"}')
            elif answer == "generation" and request_line.startswith(b"GET /health"):
                reply(conn, "200 OK", b"{}")
            elif answer == "generation" and request_line.startswith(b"GET /v1/models"):
                reply(conn, "200 OK", json.dumps({"data": [{"id": "m"}]}).encode())
            else:
                held.append(conn)  # never answered

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for conn in held:
            conn.close()


def wait(url: str, timeout: float, flag: str = "--endpoint") -> EngineNotReady:
    runner = EndpointRunner(get_engine("openai"), endpoint=url, served="m")
    with pytest.raises(EngineNotReady) as caught:
        readiness.wait_until_ready(runner, runner.start(), api="completions", timeout=timeout, endpoint_flag=flag)
    return caught.value


@pytest.mark.parametrize("answer", ["nothing", "generation"])
@pytest.mark.parametrize("timeout", [1.0, 2.5])
def test_every_probe_stays_within_the_ready_timeout(monkeypatch, answer: str, timeout: float) -> None:
    """Health probes waited 10 s and the generation 300 s whatever --ready-timeout said: each
    probe's own timeout is now what is left of it."""
    asked: list[tuple[str, float]] = []
    real = readiness.http_json

    def recording(method: str, url: str, body: Any = None, timeout: float = 10.0, net: Any = None) -> Any:
        asked.append((url.rsplit("/", 1)[-1], timeout))
        return real(method, url, body, timeout=timeout, net=net)

    monkeypatch.setattr(readiness, "http_json", recording)
    with stuck_server(answer) as port:
        error = wait(f"http://127.0.0.1:{port}", timeout)
    assert asked and all(0 < probe <= timeout for _, probe in asked), asked
    assert f"not ready within {timeout:g} s" in str(error)
    assert ("generation" in str(error)) == (answer == "generation")
    if answer == "generation":
        assert any(name == "completions" for name, _ in asked)


@pytest.mark.parametrize("credentials", ["", "user:hunter2pw@", "admin:p%40ss-word@"])
@pytest.mark.parametrize("server", ["refused", "nothing"])
@pytest.mark.parametrize("flag", ["--endpoint", "--baseline-endpoint"])
def test_a_server_that_never_answered_is_named_as_such(server: str, credentials: str, flag: str) -> None:
    with contextlib.ExitStack() as stack:
        if server == "refused":
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        else:
            port = stack.enter_context(stuck_server("nothing"))
        text = str(wait(f"http://{credentials}127.0.0.1:{port}", 1.0, flag))
    assert f"Nothing answered at http://{'<redacted>@' if credentials else ''}127.0.0.1:{port}: check {flag}" in text
    assert "answered but" not in text and "hunter2pw" not in text and "p%40ss" not in text and "p@ss" not in text


def test_a_server_that_answered_gets_the_loading_hint() -> None:
    with stuck_server("503") as port:
        text = str(wait(f"http://127.0.0.1:{port}", 1.0))
    assert "answered but is not serving the model yet" in text and "HTTP 503" in text


@pytest.mark.parametrize("dead", ["refused", "nothing"])
def test_a_dead_baseline_endpoint_is_blamed_on_its_own_flag(tmp_path: Path, dead: str) -> None:
    with sim(model="m") as live, contextlib.ExitStack() as stack:
        if dead == "refused":
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        else:
            port = stack.enter_context(stuck_server("nothing"))
        done = run_kitt(
            "run",
            "-m",
            "m",
            "-e",
            "openai",
            "--endpoint",
            live,
            "--baseline-endpoint",
            f"http://u:s3cretpw@127.0.0.1:{port}",
            "--ready-timeout",
            "1",
            "-o",
            str(tmp_path / "out"),
            "--num-requests",
            "2",
            "--repeats",
            "1",
            env=clean_environ(),
            timeout=120,
        )
    errors = [line for line in done.stderr.splitlines() if line.startswith("kitt: error:")]
    assert done.returncode == 1 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert (
        "baseline arm" in errors[0] and "check --baseline-endpoint" in errors[0] and "check --endpoint" not in errors[0]
    )
    assert "s3cretpw" not in done.stderr + done.stdout
