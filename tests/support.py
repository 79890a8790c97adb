"""Helpers for tests: a clean environment, the real CLI in a child process, a process scan, a free
port, stopping a child process, zipping a folder, and golden files."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNNER_PREFIXES = ("GITHUB_", "INPUT_", "ACTIONS_", "RUNNER_")


def clean_environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(RUNNER_PREFIXES) and k not in ("CI", "HF_TOKEN")}
    env.update(extra)
    return env


def run_kitt(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300, **kw
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "kitt", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or clean_environ(),
        cwd=kw.pop("cwd", REPO),
        **kw,
    )


def processes_with(marker: str) -> list[str]:
    """Command lines of live processes that mention ``marker`` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a child the test started: SIGTERM, up to ``timeout`` seconds to exit, then SIGKILL."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def zip_dir(folder: Path) -> bytes:
    """The files under ``folder`` as a zip archive (paths relative to it, in sorted order), as an
    artifact download serves them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def check_golden(path: Path, text: str) -> None:
    """``text`` must equal the golden file at ``path``; KITT_UPDATE_GOLDEN=1 rewrites the file
    instead, to be reviewed by eye before it is committed."""
    if os.environ.get("KITT_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with KITT_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8"), (
        f"{path.name} differs from its golden file (KITT_UPDATE_GOLDEN=1 to accept)"
    )


def unique_model() -> str:
    """A model name no other test uses, so its engine processes can be found by name."""
    return f"sim-{uuid.uuid4().hex[:10]}"


def assert_no_engine_left(model: str) -> None:
    deadline = time.monotonic() + 5
    while processes_with(model) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(model) == []


def assert_one_line_error(stderr: str, *fragments: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("kitt: error: ")]
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def assert_exact_quick_suite(out: Path, engine: str, *, repeats: int = 2, tokens: int = 64) -> list[dict]:
    """What a real engine with exact output lengths must give on the quick suite: every request
    complete with ``tokens`` tokens, the server's token counter equal to the client's count, and
    TTFT no later than E2E latency. Returns the measured samples.jsonl rows for engine-specific checks."""
    import json

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["passed"] is True and metrics["engine"] == engine
    assert [r["test_name"] for r in metrics["results"]] == ["latency-c1"] * repeats + ["throughput-c8"] * repeats
    for result in metrics["results"]:
        m = result["metrics"]
        requested = 8 if result["test_name"] == "latency-c1" else 32
        assert m["completed"] == requested and m["failed"] == 0, result
        assert m["output_len_mismatch"] == 0 and m["total_output_tokens"] == requested * tokens
        # TTFT never after E2E. Equal is possible: vLLM's CPU build sometimes sends a lone stream's
        # tokens in one event at its end (a CI rehearsal: 4 of 8 requests at one stream, TTFT = E2E).
        assert m["median_ttft_ms"] <= m["median_e2el_ms"] and m["p99_ttft_ms"] <= m["p99_e2el_ms"]
        # The engine's own Prometheus counter agrees with the client's token count for the repeat.
        assert m["server_generation_tokens"] == m["total_output_tokens"] and m["token_count_mismatch"] == 0
        assert m["usage_count_rejected"] == 0  # a real engine's usage is believed: no false flag
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    measured = [s for s in samples if not s["warmup"]]
    assert len(measured) == repeats * (8 + 32)
    for s in measured:
        assert s["error"] is None and s["usage_from_server"] and s["completion_tokens"] == tokens
        assert 0 < s["event_ms"][0] <= s["event_ms"][-1]  # TTFT below E2E latency, per request
    return measured


def staged(out: Path, name: str) -> Path | None:
    """A file of the run that writes into ``out``, while it runs: kitt writes into a staging folder
    beside ``out`` (``.NAME.kitt-RUN_ID``) and moves the result set into place when the run ends."""
    found = sorted(out.parent.glob(f".{out.name}.kitt-*/{name}"))
    return found[0] if found else None


def wait_for_samples(
    out: Path, process: subprocess.Popen[str], timeout: float, *, measured: bool = False
) -> list[dict]:
    """Wait for an observed event of a running ``kitt run -o out``: samples written to its
    samples.jsonl (after a warm-up, or with ``measured`` after a measured repeat). Returns them."""
    import json

    deadline = time.monotonic() + timeout
    while True:
        path = staged(out, "samples.jsonl")
        rows = [json.loads(line) for line in path.read_text().splitlines()] if path is not None else []
        if rows and (not measured or any(not row["warmup"] for row in rows)):
            return rows
        if process.poll() is not None:
            raise AssertionError(f"kitt exited ({process.returncode}) first: {process.communicate()[1][-3000:]}")
        assert time.monotonic() < deadline, f"no samples in {out} within {timeout} s"
        time.sleep(0.1)


def sample_ids(rows: list[dict]) -> set[tuple[str, int, int]]:
    return {(row["test_name"], row["run_number"], row["index"]) for row in rows}


def assert_kill_left_a_clear_failure(returncode: int, stderr: str, out: Path, engine: str, seen: list[dict]) -> None:
    """After the engine was SIGKILLed mid-run, wherever the kill landed: exit 1, one error line
    naming the engine and the phase it died in, every sample written before the kill (``seen``)
    still in samples.jsonl, and metrics.json saying the run did not pass, with that phase."""
    import json
    import re

    assert returncode == 1, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("kitt: error: ")]
    assert len(errors) == 1, stderr[-3000:]
    died = re.search(rf"{re.escape(engine)} exited with status -9 during (\S+ (?:warm-up|run \d+))", errors[0])
    assert died, errors[0]
    kept = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert sample_ids(seen) <= sample_ids(kept)  # nothing measured before the kill is lost
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["passed"] is False and any(died.group(1) in failure for failure in metrics["failures"])


def read_request(conn: socket.socket, buffer: bytes) -> bytes | None:
    """For the tests' small HTTP servers: read one whole request (head, and the body its
    Content-Length gives) from ``conn``, ``buffer`` holding what was read before. Returns the bytes
    read past it, or None when the client closed first."""
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    length = int(
        next((line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), b"0")
    )
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            return None
        rest += data
    return rest[length:]


BAD_YAML_KINDS = ["binary", "not UTF-8", "huge", "alias bomb", "deep nesting"]


def bad_yaml(kind: str) -> bytes:
    """Hostile YAML of one of :data:`BAD_YAML_KINDS`, for every reader of a YAML file."""
    if kind == "binary":
        return bytes(range(256)) * 4
    if kind == "not UTF-8":
        return "name: caf\xe9\n".encode("latin-1")
    if kind == "huge":
        return b"# padding\n" * (110 * 1024)
    if kind == "alias bomb":
        lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
        lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
        return ("\n".join(lines) + "\n").encode()
    return b"[" * 100_000  # nested deeper than any parser's stack
