"""Issue 19: every bad input and fault ends in one clear line, the right exit code, nothing lost.

One test per cause the sweep found, parametrised over its examples. The CLI and the action run
for real (in-process ``main`` where nothing is started, a child process where exit codes, signals
or another user matter); the GitHub API is the REST double. tests/test_readers_fuzz.py adds
random input to every reader. The cases here cross modules (a shell, its exit code and what it
leaves behind); a case that belongs to one module lives in that module's tests (test_config.py,
test_thresholds.py, test_redact.py, github/test_api_shapes.py, test_bad_input_workloads.py).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from kitt import cli
from kitt.errors import GitHubError, KittError, ResultsError, UsageError
from github_double.fixtures import github_contract, github_double  # noqa: F401  (the GitHub REST double)
from support import BAD_YAML_KINDS, REPO, bad_yaml, clean_environ, run_kitt

TINY_SUITE = (
    "name: tiny\ntests:\n  - name: t\n    concurrency: [1]\n    num_requests: 2\n    input_len: 8\n    output_len: 4\n"
)


def one_error_line(stderr: str) -> str:
    """The single ``kitt: error:`` line, and no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("kitt: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def kitt_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def outputs(path: Path) -> dict[str, str]:
    lines, values = path.read_text().splitlines(), {}
    for index, line in enumerate(lines):
        if "<<" in line:
            values[line.split("<<", 1)[0]] = lines[index + 1]
    return values


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SUITE)
    return path


@pytest.fixture
def refusing_server() -> Iterator[Any]:
    """An HTTP server on 127.0.0.1 answering every request with ``server.status`` (401 at first)."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.server.requests += 1  # type: ignore[attr-defined]
            body = b'{"error": "no"}'
            self.send_response(self.server.status)  # type: ignore[attr-defined]
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.status = 401  # type: ignore[attr-defined]
    server.requests = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# --------------------------------------------------------------------------- filesystem


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder no write can go into: a read-only tmpfs when running as root (root ignores
    permission bits), else a folder with mode 0555."""
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:
        locked.chmod(0o555)
        yield locked
        locked.chmod(0o755)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(locked)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"running as root without the right to mount a read-only tmpfs: {mounted.stderr.strip()}")
    try:
        yield locked
    finally:
        subprocess.run(["umount", str(locked)], check=False)


def _unusable_folder(kind: str, tmp_path: Path) -> Path:
    if kind == "an existing file":
        (tmp_path / "taken").write_text("x")
        return tmp_path / "taken"
    if kind == "under a file":
        (tmp_path / "file").write_text("x")
        return tmp_path / "file" / "out"
    return Path("/proc/kitt-bad-input") / "out"  # not creatable: procfs takes no new folders


@pytest.mark.parametrize("kind", ["an existing file", "under a file", "not creatable", "read-only"])
def test_an_unusable_output_folder_fails_before_the_engine_starts(
    tmp_path: Path, suite_file: Path, kind: str, request
) -> None:
    folder = (
        request.getfixturevalue("read_only_folder") / "out" if kind == "read-only" else _unusable_folder(kind, tmp_path)
    )
    done = run_kitt(
        "run",
        "-m",
        "m",
        "-e",
        "openai",
        "--endpoint",
        "http://127.0.0.1:9",
        "-s",
        str(suite_file),
        "-o",
        str(folder),
        env=clean_environ(),
        timeout=60,
    )
    line = one_error_line(done.stderr)
    assert done.returncode == 2, done.stderr
    assert str(folder) in line and ("cannot be created or written" in line or "is not a directory" in line)
    assert "Starting " not in done.stderr and "not ready" not in done.stderr  # no engine start, no readiness wait


@pytest.mark.parametrize("kind", ["an existing file", "under a file", "not creatable"])
def test_the_actions_results_dir_is_checked_first_and_named(tmp_path: Path, kind: str, capsys) -> None:
    from kitt.action import main

    folder = _unusable_folder(kind, tmp_path)
    output = tmp_path / "output"
    env = clean_environ(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(output),
        INPUT_MODEL="m",
        INPUT_ENGINE="openai",
        INPUT_ENDPOINT="http://127.0.0.1:9",
        **{"INPUT_RESULTS-DIR": str(folder)},
    )
    assert main(env) == 2
    assert "::error::input 'results-dir': directory" in capsys.readouterr().out
    assert outputs(output)["passed"] == "false"


def _report_env(tmp_path: Path, double: Any) -> dict[str, str]:
    from test_action import _report_mode_env

    env, _ = _report_mode_env(tmp_path, double, "success")
    return env


@pytest.mark.parametrize("broken", ["GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"])
def test_an_unwritable_output_or_summary_file_loses_nothing(tmp_path: Path, github_double, broken: str, capsys) -> None:
    """After a good run: a warning, exit 0, the report on disk, and ``passed`` set wherever it can be."""
    from kitt.action import main

    env = _report_env(tmp_path, github_double)
    good_output = Path(env["GITHUB_OUTPUT"])
    unwritable = tmp_path / "a-directory"
    unwritable.mkdir()
    env[broken] = str(unwritable)
    assert main(env) == 0
    out = capsys.readouterr().out
    assert "::warning" in out and str(unwritable) in out and "Traceback" not in out
    assert (Path(env["INPUT_RESULTS-DIR"]) / "report.md").read_text().strip()
    if broken == "GITHUB_STEP_SUMMARY":
        assert outputs(good_output)["passed"] == "true"


def test_an_unwritable_summary_after_a_real_benchmark(tmp_path: Path, suite_file: Path) -> None:
    output, results = tmp_path / "output", tmp_path / "results"
    output.touch()
    env = clean_environ(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(output),
        GITHUB_STEP_SUMMARY=str(tmp_path),
        KITT_ACTION_FLAVOUR="composite",
        INPUT_MODEL="m",
        INPUT_ENGINE="sim",
        INPUT_SUITE=str(suite_file),
        INPUT_COMMENT="never",
        **{"INPUT_RESULTS-DIR": str(results)},
    )
    done = subprocess.run(
        [sys.executable, str(REPO / "entrypoint.py")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "Could not append to the step summary" in done.stdout
    assert outputs(output)["passed"] == "true" and (results / "metrics.json").is_file()


# --------------------------------------------------------------------------- out-of-range values


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--port", "70000"], "expected a number <= 65535"),
        (["--port", "0"], "expected a number >= 1"),
        (["-e", "openai", "--endpoint", "http://127.0.0.1:70000"], "its port is not a number between 1 and 65535"),
        (["-e", "openai", "--endpoint", "http://127.0.0.1:abc"], "its port is not a number between 1 and 65535"),
        (["-e", "openai", "--endpoint", "http://:8000"], "not an http(s) URL with a host"),
        (["-m", ""], "the model name is empty"),
        (["-m", "   "], "the model name is empty"),
        (["--request-rate", "inf"], "expected a number > 0"),
        (["--request-rate", "nan"], "expected a number > 0"),
        (["--request-rate", "1e-300"], "request_rate 1e-300 must be between 0.001 and 1e+06"),
        (["--ready-timeout", "inf"], "expected a number > 0"),
        (["--input-len", "2000000"], "input_len 2000000 is above the limit of 1,000,000 tokens"),
        (["--output-len", "99999999999"], "output_len 99999999999 is above the limit of 1,000,000 tokens"),
        (["--num-requests", "200000", "--input-len", "1000"], "above the limit of 100,000,000 per level"),
    ],
)
def test_out_of_range_run_values_are_usage_errors(
    tmp_path: Path, suite_file: Path, args: list[str], fragment: str, capsys
) -> None:
    argv = ["run", "-m", "m", "-e", "sim", "-s", str(suite_file), "-o", str(tmp_path / "out"), *args]
    code, _, err = kitt_main(argv, capsys)
    assert code == 2 and fragment in one_error_line(err)
    assert not (tmp_path / "out" / "metrics.json").exists()


# --------------------------------------------------------------------------- usage errors under Actions


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],
        ["run", "-m", "m", "-e", "sim", "-o", "o", "--bogus"],
        ["ci", "report"],
        ["nope"],
        ["run", "-m", "m", "-e", "sim", "-o", "o", "--port", "x"],
        [],
    ],
)
def test_argparse_errors_are_one_line_and_an_annotation(argv: list[str], capsys, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out, err = kitt_main(argv, capsys)
    assert code == 2
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert one_error_line(err).endswith("--help`.") and "usage:" not in err
    assert out.count("::error::") == 1


# --------------------------------------------------------------------------- action inputs


@pytest.mark.parametrize(
    ("inputs", "name"),
    [
        ({"INPUT_THRESHOLD": "abc"}, "threshold"),
        ({"INPUT_THRESHOLD": "inf"}, "threshold"),
        ({"INPUT_THRESHOLD": "nan"}, "threshold"),
        ({"INPUT_THRESHOLD": "1_0"}, "threshold"),
        ({"INPUT_THRESHOLD": "²"}, "threshold"),
        ({"INPUT_THRESHOLDS": "/nonexistent/thresholds.yml"}, "thresholds"),
        ({"INPUT_THRESHOLDS": "@bad-yaml"}, "thresholds"),
        ({"INPUT_THRESHOLDS": "@unknown-metric"}, "thresholds"),
        ({"INPUT_COMMENT-KEY": "a-->b"}, "comment-key"),
        ({"INPUT_REPEATS": "²"}, "repeats"),
        ({"INPUT_REPEATS": "5000"}, "suite"),
        ({"INPUT_PR": "٣"}, "pr"),
        ({"INPUT_RUN-ID": "1e5"}, "run-id"),
        ({"INPUT_BASELINE-HISTORY": "1000"}, "baseline-history"),
        ({"INPUT_UPLOAD-ARTIFACT": "maybe"}, "upload-artifact"),
        ({"INPUT_COMMENT": "sometimes"}, "comment"),
        ({"INPUT_SUITE": "/nonexistent/suite.yaml"}, "suite"),
        ({"INPUT_ENGINE": "nope"}, "engine"),
        ({"INPUT_ENDPOINT": "http://127.0.0.1:99999"}, "endpoint"),
        ({"INPUT_ARTIFACT-NAME": "a/b", "KITT_ACTION_FLAVOUR": "docker"}, "artifact-name"),
        ({"INPUT_DATASET": "/nonexistent/prompts.jsonl"}, "dataset"),
        ({"INPUT_DATASET-FORMAT": "csv"}, "dataset-format"),
    ],
)
def test_every_action_input_is_checked_before_anything_starts(
    tmp_path: Path, inputs: dict[str, str], name: str, capsys
) -> None:
    from kitt.action import main

    (tmp_path / "bad.yml").write_text("p99_ttft_ms: [1\n")
    (tmp_path / "unknown.yml").write_text("p99_ttf_ms: 10\n")
    files = {"@bad-yaml": str(tmp_path / "bad.yml"), "@unknown-metric": str(tmp_path / "unknown.yml")}
    output = tmp_path / "output"
    env = clean_environ(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(output),
        INPUT_MODEL="m",
        INPUT_ENGINE="openai",
        INPUT_ENDPOINT="http://127.0.0.1:9",
        **{"INPUT_RESULTS-DIR": str(tmp_path / "results")},
    )
    env.update({key: files.get(value, value) for key, value in inputs.items()})
    assert main(env) == 2
    captured = capsys.readouterr()
    out = captured.out
    errors = [line for line in out.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and f"input '{name}'" in errors[0], out
    assert "--thresholds" not in errors[0] and "not ready" not in out
    assert "Starting " not in out + captured.err  # no engine start began, so no readiness wait
    assert outputs(output)["passed"] == "false" and outputs(output)["verdict"] == "error"


# --------------------------------------------------------------------------- untrusted files


@pytest.mark.parametrize("kind", BAD_YAML_KINDS)
def test_untrusted_suite_files(tmp_path: Path, kind: str, capsys) -> None:
    path = tmp_path / "suite.yaml"
    path.write_bytes(bad_yaml(kind))
    code, _, err = kitt_main(["run", "-m", "m", "-e", "sim", "-s", str(path), "-o", str(tmp_path / "o")], capsys)
    assert code == 2 and str(path) in one_error_line(err)


def _metrics(**top: Any) -> dict[str, Any]:
    metrics = {"median_ttft_ms": 40.0, "p99_ttft_ms": 60.0, "output_throughput": 900.0, "completed": 8.0, "failed": 0.0}
    metrics.update(top.pop("metrics", {}))
    document = {
        "schema_version": 1,
        "suite_name": "s",
        "timestamp": "2025-05-01T10:00:00Z",
        "engine": "sim",
        "model": "m",
        "passed": True,
        "results": [{"test_name": "t-c1", "run_number": 1, "passed": True, "metrics": metrics}],
    }
    document.update(top)
    return document


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (json.dumps(_metrics(timestamp=1e20)), "no usable 'timestamp'"),
        (json.dumps(_metrics(timestamp=-1e30)), "no usable 'timestamp'"),
        ('{"results": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested more than 100 levels"),
        (json.dumps(_metrics(metrics={"median_ttft_ms": -80.0})), "median_ttft_ms is negative"),
        (json.dumps(_metrics(metrics={"output_throughput": -1})), "output_throughput is negative"),
        (b"\x00\x01\x02binary", "is a binary file"),
        ("sparse", "more than kitt's limit"),
    ],
)
def test_untrusted_metrics_files(tmp_path: Path, content: Any, fragment: str, capsys) -> None:
    folder = tmp_path / "current"
    folder.mkdir()
    target = folder / "metrics.json"
    if content == "sparse":
        with target.open("wb") as handle:  # 65 MiB without writing them
            handle.truncate(65 * 1024 * 1024)
    else:
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, _, err = kitt_main(["ci", "report", "--results-dir", str(folder)], capsys)
    assert code == 1 and fragment in one_error_line(err)


@pytest.mark.parametrize("side", ["current", "both"])
def test_all_zero_metrics_are_not_a_measurement(tmp_path: Path, side: str, capsys) -> None:
    """Zero latency and zero throughput never pass as "unchanged" or a -100% "improvement"."""
    zero = {"median_ttft_ms": 0.0, "p99_ttft_ms": 0.0, "output_throughput": 0.0, "completed": 0.0}
    for name in ("current", "baseline"):
        (tmp_path / name).mkdir()
        zeroed = name == "current" or side == "both"
        (tmp_path / name / "metrics.json").write_text(json.dumps(_metrics(metrics=zero if zeroed else {})))
    code, out, _ = kitt_main(
        [
            "ci",
            "report",
            "--results-dir",
            str(tmp_path / "current"),
            "--baseline-dir",
            str(tmp_path / "baseline"),
            "--fail-on-regression",
        ],
        capsys,
    )
    assert code == 1 and "every metric is zero" in out and "improvement" not in out.lower().split("##")[0]


@pytest.mark.parametrize(
    "payload",
    [
        {"pull_request": "x"},
        {"pull_request": {"number": "7", "head": "x"}},
        {"pull_request": {"number": 7, "head": 5}},
        {"pull_request": {"number": True}},
        {"pull_request": [1]},
        {"workflow_run": "x"},
        {"workflow_run": {"id": "x"}},
        [1, 2],
        "text",
    ],
)
def test_event_payload_fields_of_the_wrong_type_read_as_absent(tmp_path: Path, payload: Any) -> None:
    from kitt.action import ActionRun
    from kitt.github.pulls import PULL_REQUEST_FILE
    from kitt.action_inputs import ActionInputs
    from kitt.github.actions_io import ActionsContext

    event = tmp_path / "event.json"
    event.write_text(json.dumps(payload))
    context = ActionsContext.from_environment({"GITHUB_EVENT_PATH": str(event)})
    results = tmp_path / "results"
    run = ActionRun(ActionInputs.from_environment({"INPUT_ENGINE": "none", "INPUT_RESULTS-DIR": str(results)}), context)
    assert run._benchmark()  # engine none: only the pull request record is written
    record = results / PULL_REQUEST_FILE
    if record.exists():  # only {"number": 7, "head": 5}: the number is good, the head is not
        assert json.loads(record.read_text()) == {"number": 7, "head_sha": None}
    assert context.event_object("workflow_run") == (
        payload.get("workflow_run")
        if isinstance(payload, dict) and isinstance(payload.get("workflow_run"), dict)
        else {}
    )


# --------------------------------------------------------------------------- the GitHub API


def test_a_wrong_shaped_pull_request_still_leaves_the_report_in_the_summary(
    tmp_path: Path, github_double, capsys
) -> None:
    from kitt.action import main

    env = _report_env(tmp_path, github_double)
    pull = github_double.add_pull()
    (tmp_path / "pr.json").write_text(json.dumps({"number": pull.number}))
    env["INPUT_PR"] = str(pull.number)
    github_double.fail_next("pulls/get", 200, body={"unexpected": 1}, times=5)
    try:
        assert main(env) == 1
    finally:
        github_double.take_violations()
    assert "lacks the head commit" in capsys.readouterr().out
    assert "kitt" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()


silent_connections: list[socket.socket] = []


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held = silent_connections
    held.clear()
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


@pytest.mark.parametrize("path", ["baseline", "pull request", "comment"])
def test_an_api_that_never_answers_is_bounded_by_the_policys_timeout(
    silent_server: str, tmp_path: Path, path: str
) -> None:
    """Every path uses kitt.github.http's timeout: PyGithub too, and a policy's sub-second timeout."""
    from kitt.github.baseline import download_baseline
    from kitt.github.comments import upsert_pr_comment
    from kitt.github.http import RetryPolicy
    from kitt.github.pulls import get_pull_request

    policy = RetryPolicy(attempts=2, first_delay_s=0.0, timeout_s=0.5, sleep=lambda s: None)
    common = dict(token="t", repo="o/r", api_url=silent_server, retry=policy)
    with pytest.raises(GitHubError) as caught:
        if path == "baseline":
            download_baseline(name="kitt-results", dest=tmp_path / "b", base_branch="main", **common)
        elif path == "pull request":
            get_pull_request(pr=1, **common)
        else:
            upsert_pr_comment(pr=1, body="hi", **common)
    # Each attempt's read timed out (a read with no timeout would hang here and never make the
    # second connection), and the policy's attempt count bounded the retries; no clock is asserted.
    assert len(silent_connections) == policy.attempts and "\n" not in str(caught.value)


# --------------------------------------------------------------------------- misleading messages


@pytest.mark.parametrize("status", [401, 500])
def test_readiness_hints_say_what_helps(tmp_path: Path, refusing_server: Any, status: int, capsys) -> None:
    """A 401 is not fixed by waiting: it names the credentials, never --ready-timeout. A server that
    answers but does not serve yet may be loading: --ready-timeout is honoured for endpoints (no cap)."""
    refusing_server.status = status
    url = f"http://127.0.0.1:{refusing_server.server_address[1]}"
    code, _, err = kitt_main(
        ["run", "-m", "m", "-e", "openai", "--endpoint", url, "--ready-timeout", "1", "-o", str(tmp_path / "o")], capsys
    )
    line = one_error_line(err)
    assert code == 1 and f"HTTP {status}" in line
    if status == 401:
        assert "credentials" in line and "raise --ready-timeout" not in line
    else:
        assert "within 1 s" in line and "raise --ready-timeout if it is still loading" in line


def test_the_engine_log_comes_before_the_line_that_points_at_it(capsys) -> None:
    from kitt.engines.readiness import _check_alive
    from kitt.errors import EngineDied

    class Dead:
        spec = type("Spec", (), {"name": "vllm"})()

        def exit_status(self) -> int:
            return 3

        def log_tail(self, lines: int) -> str:
            return "CUDA out of memory"

    with pytest.raises(EngineDied) as caught:
        _check_alive(Dead(), "loading")  # type: ignore[arg-type]
    cli.report_failure(caught.value)
    err = capsys.readouterr().err
    assert err.index("CUDA out of memory") < err.index("kitt: error:") and "log above" in one_error_line(err)


def test_a_cancel_is_one_error_not_two(tmp_path: Path, refusing_server: Any) -> None:
    """SIGTERM while the engine is being waited for: the cancel is the only error."""
    refusing_server.status = 503
    output = tmp_path / "output"
    env = clean_environ(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(output),
        KITT_ACTION_FLAVOUR="composite",
        INPUT_MODEL="m",
        INPUT_ENGINE="openai",
        INPUT_COMMENT="never",
        INPUT_ENDPOINT=f"http://127.0.0.1:{refusing_server.server_address[1]}",
        **{"INPUT_RESULTS-DIR": str(tmp_path / "results")},
    )
    child = subprocess.Popen(
        [sys.executable, str(REPO / "entrypoint.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        # On an observed event: the readiness wait has reached the server (a probe was answered 503).
        deadline = time.monotonic() + 30
        while refusing_server.requests == 0:
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        stdout, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    errors = [line for line in stdout.splitlines() if line.startswith("::error")]
    assert child.returncode == 1 and len(errors) == 1 and "SIGTERM" in errors[0], stdout + stderr
    assert outputs(output)["passed"] == "false"


# --------------------------------------------------------------------------- silent passes


def test_a_baseline_with_nothing_in_common_fails_loudly(tmp_path: Path, capsys) -> None:
    (tmp_path / "current").mkdir()
    (tmp_path / "baseline").mkdir()
    (tmp_path / "current" / "metrics.json").write_text(json.dumps(_metrics()))
    renamed = _metrics()
    renamed["results"][0]["metrics"] = {"ttft_p50": 40.0, "tokens_per_s": 900.0}  # another tool's names
    (tmp_path / "baseline" / "metrics.json").write_text(json.dumps(renamed))
    code, out, err = kitt_main(
        [
            "ci",
            "report",
            "--results-dir",
            str(tmp_path / "current"),
            "--baseline-dir",
            str(tmp_path / "baseline"),
            "--fail-on-regression",
        ],
        capsys,
    )
    assert code == 1 and "error: Nothing was compared" in err and "not a pass" in err


def test_a_baseline_whose_tests_all_differ_fails_loudly(tmp_path: Path, capsys) -> None:
    (tmp_path / "current").mkdir()
    (tmp_path / "baseline").mkdir()
    (tmp_path / "current" / "metrics.json").write_text(json.dumps(_metrics()))
    other = _metrics()
    other["results"][0]["test_name"] = "other-c1"
    (tmp_path / "baseline" / "metrics.json").write_text(json.dumps(other))
    code, _, err = kitt_main(
        [
            "ci",
            "report",
            "--results-dir",
            str(tmp_path / "current"),
            "--baseline-dir",
            str(tmp_path / "baseline"),
            "--fail-on-regression",
        ],
        capsys,
    )
    assert code == 1 and "error: other-c1 is in the baseline but missing from the current run" in err


def test_kitt_errors_from_readers_are_one_line() -> None:
    assert issubclass(ResultsError, KittError) and issubclass(UsageError, KittError)


# =========================================================================== issue 30
# Per cause, what must hold for every example: no traceback, one line that says what to do, the
# documented exit code, no result set lost, no secret in any output, no workflow command injected.

SECRET = "hunter2-s3cret"
ALLOWED_COMMANDS = ("::group::", "::endgroup::", "::warning", "::error", "::notice", "::add-mask::")


def assert_no_injected_command(text: str) -> None:
    """Every line the runner would read as a workflow command is one of kitt's own."""
    for line in text.splitlines():
        stripped = line.lstrip()
        assert not stripped.startswith("::") or stripped.startswith(ALLOWED_COMMANDS), line
        assert "##[" not in line, line
        # kitt's own commands carry user text escaped on one line: never a command of the user's
        assert not stripped.startswith(tuple(f"{own}INJECTED" for own in ALLOWED_COMMANDS)), line


def result_set_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def good_result_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A result set from a real (sim) run, to be protected by every later run into its folder."""
    out = tmp_path_factory.mktemp("good") / "out"
    suite = out.parent / "s.yaml"
    suite.write_text(TINY_SUITE)
    done = run_kitt(
        "run",
        "-m",
        "m",
        "-e",
        "sim",
        "-s",
        str(suite),
        "-o",
        str(out),
        "--repeats",
        "1",
        env=clean_environ(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["-e", "no-such-engine"], 2),
        (["-e", "openai"], 2),  # no --endpoint
        (["-e", "sim", "--concurrency", "0"], 2),
        (["-e", "sim", "--engine-arg=--never-ready", "--ready-timeout", "1"], 1),  # the engine never gets ready
        (["-e", "sim", "--engine-arg=--die-after=1"], 1),  # the engine dies mid-run
        (["-e", "sim", "--engine-arg=--fail-every=2"], 1),  # every other request fails
    ],
)
def test_a_failed_run_never_destroys_the_result_set_in_its_folder(
    tmp_path: Path, good_result_set: Path, suite_file: Path, args: list[str], code: int
) -> None:
    out = tmp_path / "out"
    shutil.copytree(good_result_set, out)
    before = result_set_bytes(out)
    done = run_kitt("run", "-m", "m", "-s", str(suite_file), "-o", str(out), *args, env=clean_environ(), timeout=120)
    assert done.returncode == code, done.stderr
    line = one_error_line(done.stderr)
    assert result_set_bytes(out) == before  # not truncated, not replaced
    aside = sorted(tmp_path.glob("out.failed-*"))
    if code == 1:  # what this run measured is kept beside it, and the line says where
        assert len(aside) == 1 and str(aside[0]) in line and "left as it was" in line
        assert json.loads((aside[0] / "metrics.json").read_text())["passed"] is False
    else:
        assert aside == []
    assert not list(tmp_path.glob(".out.kitt-*"))  # no staging folder left behind


def test_a_finished_run_replaces_the_result_set_and_says_so(
    tmp_path: Path, good_result_set: Path, suite_file: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(good_result_set, out)
    (out / "pull_request.json").write_text('{"number": 3}')  # not the result set's: kept
    old = json.loads((out / "config.json").read_text())["run_id"]
    done = run_kitt(
        "run",
        "-m",
        "m",
        "-e",
        "sim",
        "-s",
        str(suite_file),
        "-o",
        str(out),
        "--repeats",
        "1",
        env=clean_environ(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"Replaced the earlier result set in {out}" in done.stderr
    assert json.loads((out / "config.json").read_text())["run_id"] != old
    assert (out / "pull_request.json").read_text() == '{"number": 3}'
    assert not list(tmp_path.glob(".out.kitt-*")) and not list(tmp_path.glob("out.failed-*"))


@pytest.mark.parametrize(
    "args",
    [
        ["-e", "no-such-engine"],
        ["-e", "openai"],
        ["-e", "sim", "--endpoint", "http://127.0.0.1:9"],
        ["-e", "vllm", "--baseline-endpoint", "http://127.0.0.1:9"],
        ["-e", "openai", "--endpoint", "ftp://x"],
        ["-e", "tgi", "--native"],
    ],
)
def test_usage_errors_leave_no_folder_behind(tmp_path: Path, args: list[str], capsys) -> None:
    out = tmp_path / "deep" / "out"
    code, _, err = kitt_main(["run", "-m", "m", "-o", str(out), *args], capsys)
    assert code == 2 and one_error_line(err)
    assert not (tmp_path / "deep").exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
@pytest.mark.parametrize("engine", [["-e", "sim"], ["-e", "vllm", "--native"], ["-e", "llama-cpp", "--native"]])
def test_a_busy_port_is_refused_before_the_engine_starts(tmp_path: Path, host: str, engine: list[str], capsys) -> None:
    with socket.socket() as busy:
        busy.bind((host, 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = kitt_main(["run", "-m", "m", *engine, "--port", str(port), "-o", str(tmp_path / "out")], capsys)
    line = one_error_line(err)
    assert code == 2 and f"--port {port} is already in use" in line and "leave --port out" in line
    assert not (tmp_path / "out").exists() and "Starting" not in err


@pytest.mark.parametrize("userinfo", [f"user:{SECRET}", f"u%40corp:{SECRET}%21", f"{SECRET}"])
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_url_credentials_never_print_and_are_masked(tmp_path: Path, userinfo: str, host: str) -> None:
    from net_peers import sim

    output = tmp_path / "gh-output"
    output.touch()
    env = clean_environ(GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(output))
    with sim(host=host, model="m") as url:
        endpoint = url.replace("://", f"://{userinfo}@")
        done = run_kitt(
            "run",
            "-m",
            "m",
            "-e",
            "openai",
            "--endpoint",
            endpoint,
            "-o",
            str(tmp_path / "out"),
            "--num-requests",
            "2",
            "--repeats",
            "1",
            "--warmup",
            "0",
            env=env,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    masks = [line for line in done.stdout.splitlines() if line.startswith("::add-mask::")]
    assert any(SECRET in line for line in masks)  # the runner masks it in everything after
    logged = "\n".join(line for line in (done.stdout + done.stderr).splitlines() if not line.startswith("::add-mask::"))
    assert SECRET not in logged and "<redacted>@" in logged
    if host == "::1":
        assert "<redacted>@[::1]:" in logged  # the host kept as written
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


INJECTIONS = [
    "m\n::warning::INJECTED",
    "m\r\n::stop-commands::INJECTED",
    "m\n  ::add-mask::INJECTED",
    "m\u2028::error::INJECTED",
    "m\n##[warning]INJECTED",
    "m\x0b::notice::INJECTED",
]


@pytest.mark.parametrize("model", INJECTIONS)
def test_no_workflow_command_from_a_model_name(tmp_path: Path, model: str, suite_file: Path) -> None:
    output = tmp_path / "gh-output"
    output.touch()
    env = clean_environ(GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(output))
    done = run_kitt(
        "run",
        "-m",
        model,
        "-e",
        "sim",
        "-s",
        str(suite_file),
        "-o",
        str(tmp_path / "out"),
        "--repeats",
        "1",
        env=env,
        timeout=120,
    )
    assert "Traceback" not in done.stderr
    assert_no_injected_command(done.stdout + done.stderr)
    assert "INJECTED" in done.stdout + done.stderr  # shown, as text


@pytest.mark.parametrize("text", INJECTIONS + ["::warning::INJECTED", "   ::set-output name=x::INJECTED"])
def test_every_printed_line_is_neutralised(text: str, capsys) -> None:
    from kitt.errors import EngineDied, print_engine_log
    from kitt.github.actions_io import Annotations
    from kitt.progress import Reporter

    stream = io.StringIO()
    reporter = Reporter(stream, groups=True)
    reporter.line(f"Starting sim for {text}")
    reporter.line(text)
    reporter.warn(f"{text} and more")
    with reporter.group(text):
        pass
    print_engine_log(EngineDied("x", log_tail=f"loading {text}\n{text}"))
    Annotations(enabled=False).warning(text)
    assert_no_injected_command(stream.getvalue() + capsys.readouterr().err)


@pytest.mark.parametrize(
    "payload",
    [
        {"repository": "owner/name"},
        {"repository": ["a"]},
        {"repository": 5},
        {"repository": {"default_branch": ["x"]}},
        {"repository": None, "pull_request": "x"},
        {"pull_request": {"number": 5, "head": "x"}, "repository": "x"},
    ],
)
def test_a_malformed_event_payload_never_crashes_the_action(tmp_path: Path, payload: Any, capsys) -> None:
    from kitt.action import main

    results = tmp_path / "results"
    results.mkdir()
    (results / "metrics.json").write_text(json.dumps(_metrics()))
    event, output = tmp_path / "event.json", tmp_path / "gh-output"
    event.write_text(json.dumps(payload))
    env = clean_environ(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(output),
        GITHUB_EVENT_PATH=str(event),
        GITHUB_EVENT_NAME="push",
        GITHUB_REF_NAME="main",
        KITT_ACTION_FLAVOUR="composite",
        INPUT_ENGINE="none",
        INPUT_COMMENT="never",
        **{"INPUT_RESULTS-DIR": str(results)},
    )
    assert main(env) == 0
    assert outputs(output)["passed"] == "true" and "Traceback" not in capsys.readouterr().err


def test_a_bug_after_the_gate_never_leaves_passed_true(tmp_path: Path, monkeypatch) -> None:
    import kitt.ci
    from kitt.action import main

    results = tmp_path / "results"
    results.mkdir()
    (results / "metrics.json").write_text(json.dumps(_metrics()))
    output = tmp_path / "gh-output"
    env = clean_environ(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(output),
        KITT_ACTION_FLAVOUR="composite",
        INPUT_ENGINE="none",
        INPUT_COMMENT="never",
        **{"INPUT_RESULTS-DIR": str(results)},
    )
    monkeypatch.setattr(kitt.ci, "compact_metrics", lambda _: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(env)
    assert outputs(output)["passed"] == "false"


ENV_FILES = [
    f"API_KEY={SECRET}\nOTHER=1\n",
    f"TOKEN: {SECRET}: more\n",
    f"export PASSWORD='{SECRET}\n",
    f"a: 1\n b: {SECRET}\n",
    f'key: "{SECRET}\\q"\n',
    f"- a\nb: {SECRET}\n",
    f"{{{SECRET}\n",
    f"\tsecret: {SECRET}\n",
]


@pytest.mark.parametrize("content", ENV_FILES)
@pytest.mark.parametrize("which", ["suite", "thresholds"])
def test_yaml_errors_say_where_never_what(tmp_path: Path, content: str, which: str, capsys) -> None:
    path = tmp_path / "file.env"
    path.write_text(content)
    if which == "suite":
        code, out, err = kitt_main(["run", "-m", "m", "-e", "sim", "-s", str(path), "-o", str(tmp_path / "o")], capsys)
    else:
        (tmp_path / "r").mkdir()
        (tmp_path / "r" / "metrics.json").write_text(json.dumps(_metrics()))
        code, out, err = kitt_main(
            [
                "ci",
                "report",
                "--results-dir",
                str(tmp_path / "r"),
                "--thresholds",
                str(path),
                "--output",
                str(tmp_path / "r.md"),
            ],
            capsys,
        )
    line = one_error_line(err)
    assert code == 2 and str(path) in line and SECRET not in out + err
    if "not valid YAML" in line:
        assert re.search(r"line \d+, column \d+", line)


@pytest.mark.parametrize("summary", ["unset", "a directory", "under a file", "read-only folder"])
def test_trend_summary_warns_like_ci_report(tmp_path: Path, summary: str, read_only_folder: Path) -> None:
    history = tmp_path / "history"
    for index in range(1, 4):
        folder = history / f"{index:02d}-run{100 + index}"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(_metrics(timestamp=f"2026-05-0{index}T10:00:00Z")))
    env = clean_environ(GITHUB_ACTIONS="true")
    if summary == "a directory":
        env["GITHUB_STEP_SUMMARY"] = str(tmp_path)
    elif summary == "under a file":
        (tmp_path / "file").write_text("")
        env["GITHUB_STEP_SUMMARY"] = str(tmp_path / "file" / "summary.md")
    elif summary == "read-only folder":
        env["GITHUB_STEP_SUMMARY"] = str(read_only_folder / "summary.md")
    done = run_kitt("ci", "trend", "--history-dir", str(history), "--summary", env=env, timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    warnings = [line for line in done.stdout.splitlines() if line.startswith("::warning")]
    assert len(warnings) == 1 and ("no step summary file" in warnings[0] or "Could not append" in warnings[0])


@pytest.mark.parametrize(
    ("top", "results"),
    [
        ({"passed": False, "failures": ["received SIGTERM: the run was stopped"]}, []),
        ({"passed": False, "failures": ["sim exited with status -9 during t-c1 run 1"]}, None),
        ({"passed": True}, []),
    ],
)
def test_a_cancelled_runs_summary_never_says_all_passed(tmp_path: Path, top: dict[str, Any], results: Any) -> None:
    from kitt.compare import compare_result_sets
    from kitt.report import render_summary
    from kitt.results import load_result_set

    doc = _metrics(**top)
    if results is not None:
        doc["results"] = results
    (tmp_path / "metrics.json").write_text(json.dumps(doc))
    summary = render_summary(compare_result_sets(load_result_set(tmp_path), None))
    assert "all passed" not in summary
    assert ("did not finish" in summary) == (top["passed"] is False)


@pytest.mark.parametrize(
    "other", [{"model": "other-model"}, {"engine": "vllm"}, {"suite_name": "other"}, {"model": "x", "engine": "y"}]
)
def test_history_jobs_of_another_model_or_engine_are_left_out_and_said(
    tmp_path: Path, other: dict[str, str], capsys
) -> None:
    from kitt.compare import compare_result_sets
    from kitt.results import load_result_set

    history = tmp_path / "baseline"
    for index in range(1, 6):
        folder = history / f"{index:02d}-run{100 + index}"
        folder.mkdir(parents=True)
        fields = other if index in (2, 4) else {}
        doc = _metrics(
            timestamp=f"2026-05-0{9 - index}T10:00:00Z",
            **fields,
            metrics={"median_ttft_ms": 5000.0 if fields else 40.0 + index},
        )
        (folder / "metrics.json").write_text(json.dumps(doc))
    (tmp_path / "current").mkdir()
    (tmp_path / "current" / "metrics.json").write_text(json.dumps(_metrics(timestamp="2026-05-10T10:00:00Z")))
    jobs = [load_result_set(p) for p in sorted(history.iterdir())]
    comparison = compare_result_sets(load_result_set(tmp_path / "current"), jobs)
    assert len(comparison.history) == 3 and len(comparison.history_excluded) == 2
    assert all(job.model == "m" and job.engine == "sim" for job in comparison.history)
    code, out, _ = kitt_main(
        ["ci", "report", "--results-dir", str(tmp_path / "current"), "--baseline-dir", str(history)], capsys
    )
    assert "2 older baseline jobs measured something else and were left out of the history" in out
    assert "5000" not in out  # their numbers are in no statistic


def test_client_cpu_share_uses_its_own_window() -> None:
    from kitt.bench.metrics import compute_metrics

    metrics = compute_metrics([], 0.001, cpu_seconds=0.5, cpu_window=1.0)
    assert metrics["client_cpu_util_pct"] == pytest.approx(50.0)  # not 0.5 s over a 1 ms level: 50,000%


@pytest.mark.parametrize("engine_arg", ["--fail-every=2", "--ttft-ms=1"])
def test_client_cpu_share_is_a_share_of_the_machine(tmp_path: Path, suite_file: Path, engine_arg: str) -> None:
    """Requests that fail at once made the level last milliseconds, and "2396% of a CPU core"
    on a 2-core machine: the CPU time over the wall time of the same window is at most the cores."""
    done = run_kitt(
        "run",
        "-m",
        "m",
        "-e",
        "sim",
        "-s",
        str(suite_file),
        "-o",
        str(tmp_path / "out"),
        "--repeats",
        "2",
        f"--engine-arg={engine_arg}",
        env=clean_environ(),
        timeout=120,
    )
    assert "Traceback" not in done.stderr
    for result in json.loads((tmp_path / "out" / "metrics.json").read_text())["results"]:
        assert 0 < result["metrics"]["client_cpu_util_pct"] <= 100 * (os.cpu_count() or 1), result["metrics"]


@pytest.mark.parametrize("field", ["test_name", "model", "engine", "suite_name", "error"])
@pytest.mark.parametrize("injection", INJECTIONS)
def test_a_printed_report_injects_no_workflow_command(tmp_path: Path, field: str, injection: str, capsys) -> None:
    """Results may come from a fork's artifact: printing their report must not run their commands."""
    doc = _metrics()
    if field == "test_name":
        doc["results"][0]["test_name"] = injection
    elif field == "error":
        doc["results"][0].update(passed=False, errors=[injection])
    else:
        doc[field] = injection
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.json").write_text(json.dumps(doc))
    code, out, err = kitt_main(["ci", "report", "--results-dir", str(tmp_path / "r")], capsys)
    assert "Traceback" not in err and out.strip()
    assert_no_injected_command(out + err)


def test_the_actions_failed_run_keeps_the_earlier_result_set_and_uploads_its_own(
    tmp_path: Path, good_result_set: Path, suite_file: Path, capsys
) -> None:
    """On a self-hosted runner that keeps its workspace: a failed job leaves the earlier result
    set in results-dir as it was, and the step's results-dir output (what is uploaded) is its own."""
    from kitt.action import main

    results = tmp_path / "kitt-results"
    shutil.copytree(good_result_set, results)
    before = result_set_bytes(results)
    output = tmp_path / "gh-output"
    env = clean_environ(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(output),
        KITT_ACTION_FLAVOUR="composite",
        INPUT_MODEL="m",
        INPUT_ENGINE="sim",
        INPUT_SUITE=str(suite_file),
        INPUT_COMMENT="never",
        **{"INPUT_RESULTS-DIR": str(results), "INPUT_ENGINE-ARGS": "--fail-every=2"},
    )
    assert main(env) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.out.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "left as it was" in errors[0] and "Traceback" not in captured.err
    assert result_set_bytes(results) == before
    values = outputs(output)
    own = Path(values["results-dir"])
    assert values["passed"] == "false" and own != results and own.name.startswith("kitt-results.failed-")
    assert json.loads((own / "metrics.json").read_text())["passed"] is False
