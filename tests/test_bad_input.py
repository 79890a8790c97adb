"""Issue 19: every bad input and fault ends in one clear line, the right exit code, nothing lost.

One test per cause the sweep found, parametrised over its examples. The CLI and the action run
for real (in-process ``main`` where nothing is started, a child process where exit codes, signals
or another user matter); the GitHub API is the REST double. tests/test_readers_fuzz.py adds
random input to every reader.
"""

from __future__ import annotations

import json
import os
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
from support import REPO, clean_environ, run_kitt

TINY_SUITE = "name: tiny\ntests:\n  - name: t\n    concurrency: [1]\n    num_requests: 2\n    input_len: 8\n    output_len: 4\n"


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
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(locked)],
                             capture_output=True, text=True)
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
def test_an_unusable_output_folder_fails_before_the_engine_starts(tmp_path: Path, suite_file: Path, kind: str,
                                                                  request) -> None:
    folder = request.getfixturevalue("read_only_folder") / "out" if kind == "read-only" else _unusable_folder(kind, tmp_path)
    started = time.monotonic()
    done = run_kitt("run", "-m", "m", "-e", "openai", "--endpoint", "http://127.0.0.1:9", "-s", str(suite_file),
                    "-o", str(folder), env=clean_environ(), timeout=60)  # fmt: skip
    line = one_error_line(done.stderr)
    assert done.returncode == 2, done.stderr
    assert str(folder) in line and ("cannot be created or written" in line or "is not a directory" in line)
    assert "not ready" not in done.stderr and time.monotonic() - started < 30  # no readiness wait began


@pytest.mark.parametrize("kind", ["an existing file", "under a file", "not creatable"])
def test_the_actions_results_dir_is_checked_first_and_named(tmp_path: Path, kind: str, capsys) -> None:
    from kitt.action import main

    folder = _unusable_folder(kind, tmp_path)
    output = tmp_path / "output"
    env = clean_environ(GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(output), INPUT_MODEL="m", INPUT_ENGINE="openai",
                        INPUT_ENDPOINT="http://127.0.0.1:9", **{"INPUT_RESULTS-DIR": str(folder)})
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
    env = clean_environ(GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(tmp_path),
                        KITT_ACTION_FLAVOUR="composite", INPUT_MODEL="m", INPUT_ENGINE="sim", INPUT_SUITE=str(suite_file),
                        INPUT_COMMENT="never", **{"INPUT_RESULTS-DIR": str(results)})  # fmt: skip
    done = subprocess.run([sys.executable, str(REPO / "entrypoint.py")], env=env, capture_output=True, text=True,
                          cwd=tmp_path, timeout=180)
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
def test_out_of_range_run_values_are_usage_errors(tmp_path: Path, suite_file: Path, args: list[str], fragment: str,
                                                  capsys) -> None:
    argv = ["run", "-m", "m", "-e", "sim", "-s", str(suite_file), "-o", str(tmp_path / "out"), *args]
    code, _, err = kitt_main(argv, capsys)
    assert code == 2 and fragment in one_error_line(err)
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("request_rate", "[.inf]", "must be a finite number greater than 0"),
        ("request_rate", "[1.0e-300]", "must be between 0.001"),
        ("output_len", "10000000", "above the limit of 1,000,000 tokens"),
        ("num_requests", "100000000000", "above the limit of 1,000,000"),
        ("input_len", "1" + "0" * 400, "above the limit"),
    ],
)
def test_out_of_range_suite_values_are_usage_errors(tmp_path: Path, field: str, value: str, fragment: str) -> None:
    from kitt.config import load_suite

    body = {"concurrency": "[1]", "num_requests": "2", field: value}
    if field == "request_rate":
        body.pop("concurrency")
    path = tmp_path / "s.yaml"
    path.write_text("tests:\n  - name: t\n" + "".join(f"    {k}: {v}\n" for k, v in body.items()))
    with pytest.raises(UsageError, match=fragment) as caught:
        load_suite(str(path))
    assert "\n" not in str(caught.value)


def test_concurrency_above_the_requests_is_capped_and_named_for_what_it_is() -> None:
    from kitt.config import Overrides, apply_overrides, load_suite

    suite = apply_overrides(load_suite("standard"), Overrides(concurrency=(1, 4, 64, 100), num_requests=8))
    first = suite.tests[0]
    assert [first.test_name(level) for level in first.levels] == [f"{first.name}-c{c}" for c in (1, 4, 8)]


# --------------------------------------------------------------------------- usage errors under Actions


@pytest.mark.parametrize(
    "argv",
    [["run"], ["run", "-m", "m", "-e", "sim", "-o", "o", "--bogus"], ["ci", "report"], ["nope"],
     ["run", "-m", "m", "-e", "sim", "-o", "o", "--port", "x"], []],
)
def test_argparse_errors_are_one_line_and_an_annotation(argv: list[str], capsys, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out, err = kitt_main(argv, capsys)
    assert code == 2
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert one_error_line(err).endswith("--help`.") and "usage:" not in err
    assert out.count("::error::") == 1


def test_help_is_unchanged() -> None:
    done = run_kitt("run", "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: kitt run") and "--ready-timeout" in done.stdout


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
def test_every_action_input_is_checked_before_anything_starts(tmp_path: Path, inputs: dict[str, str], name: str,
                                                              capsys) -> None:
    from kitt.action import main

    (tmp_path / "bad.yml").write_text("p99_ttft_ms: [1\n")
    (tmp_path / "unknown.yml").write_text("p99_ttf_ms: 10\n")
    files = {"@bad-yaml": str(tmp_path / "bad.yml"), "@unknown-metric": str(tmp_path / "unknown.yml")}
    output = tmp_path / "output"
    env = clean_environ(GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(output), INPUT_MODEL="m", INPUT_ENGINE="openai",
                        INPUT_ENDPOINT="http://127.0.0.1:9", **{"INPUT_RESULTS-DIR": str(tmp_path / "results")})
    env.update({key: files.get(value, value) for key, value in inputs.items()})
    started = time.monotonic()
    assert main(env) == 2
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and f"input '{name}'" in errors[0], out
    assert "--thresholds" not in errors[0] and "not ready" not in out and time.monotonic() - started < 20
    assert outputs(output)["passed"] == "false" and outputs(output)["verdict"] == "error"


# --------------------------------------------------------------------------- untrusted files


def _bad_yaml(kind: str) -> bytes:
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


YAML_KINDS = ["binary", "not UTF-8", "huge", "alias bomb", "deep nesting"]


@pytest.mark.parametrize("kind", YAML_KINDS)
def test_untrusted_suite_files(tmp_path: Path, kind: str, capsys) -> None:
    path = tmp_path / "suite.yaml"
    path.write_bytes(_bad_yaml(kind))
    code, _, err = kitt_main(["run", "-m", "m", "-e", "sim", "-s", str(path), "-o", str(tmp_path / "o")], capsys)
    assert code == 2 and str(path) in one_error_line(err)


@pytest.mark.parametrize("kind", YAML_KINDS)
def test_untrusted_thresholds_files(tmp_path: Path, kind: str) -> None:
    from kitt.thresholds import load_thresholds

    path = tmp_path / "thresholds.yml"
    path.write_bytes(_bad_yaml(kind))
    with pytest.raises(UsageError, match="thresholds file") as caught:
        load_thresholds(path)
    assert "\n" not in str(caught.value)


def _metrics(**top: Any) -> dict[str, Any]:
    metrics = {"median_ttft_ms": 40.0, "p99_ttft_ms": 60.0, "output_throughput": 900.0, "completed": 8.0, "failed": 0.0}
    metrics.update(top.pop("metrics", {}))
    document = {"schema_version": 1, "suite_name": "s", "timestamp": "2025-05-01T10:00:00Z", "engine": "sim",
                "model": "m", "passed": True,
                "results": [{"test_name": "t-c1", "run_number": 1, "passed": True, "metrics": metrics}]}
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
    code, out, _ = kitt_main(["ci", "report", "--results-dir", str(tmp_path / "current"), "--baseline-dir",
                              str(tmp_path / "baseline"), "--fail-on-regression"], capsys)
    assert code == 1 and "every metric is zero" in out and "improvement" not in out.lower().split("##")[0]


@pytest.mark.parametrize(
    "payload",
    [
        {"pull_request": "x"}, {"pull_request": {"number": "7", "head": "x"}}, {"pull_request": {"number": 7, "head": 5}},
        {"pull_request": {"number": True}}, {"pull_request": [1]}, {"workflow_run": "x"}, {"workflow_run": {"id": "x"}},
        [1, 2], "text",
    ],
)
def test_event_payload_fields_of_the_wrong_type_read_as_absent(tmp_path: Path, payload: Any) -> None:
    from kitt.action import PULL_REQUEST_FILE, ActionRun
    from kitt.action_inputs import ActionInputs
    from kitt.github.actions_io import ActionsContext

    event = tmp_path / "event.json"
    event.write_text(json.dumps(payload))
    context = ActionsContext.from_environment({"GITHUB_EVENT_PATH": str(event)})
    results = tmp_path / "results"
    run = ActionRun(ActionInputs.from_environment({"INPUT_MODEL": "m", "INPUT_RESULTS-DIR": str(results)}), context)
    run._write_pull_request()
    record = results / PULL_REQUEST_FILE
    if record.exists():  # only {"number": 7, "head": 5}: the number is good, the head is not
        assert json.loads(record.read_text()) == {"number": 7, "head_sha": None}
    assert context.event_object("workflow_run") == (payload.get("workflow_run") if isinstance(payload, dict)
                                                    and isinstance(payload.get("workflow_run"), dict) else {})


# --------------------------------------------------------------------------- the GitHub API

SHAPES = [["not", "an", "object"], "text", {"artifacts": "x"}, {"artifacts": [1, {"id": "x", "name": 5}]}]


@pytest.mark.parametrize("body", SHAPES)
@pytest.mark.parametrize("operation", ["actions/list-artifacts-for-repo", "repos/get", "pulls/get"])
def test_an_api_answering_200_with_the_wrong_shape(github_double, tmp_path: Path, operation: str, body: Any) -> None:
    from kitt.github.baseline import download_baseline, get_pull_request
    from kitt.github.http import RetryPolicy

    fast = RetryPolicy(attempts=2, first_delay_s=0.0, sleep=lambda s: None)
    common = dict(token=github_double.token, repo=github_double.repo.full_name, api_url=github_double.api_url, retry=fast)
    github_double.fail_next(operation, 200, body=body, times=3)
    try:
        if operation == "pulls/get":
            pull = github_double.add_pull()
            with pytest.raises(GitHubError, match="lacks the head commit|not the JSON object"):
                get_pull_request(pr=pull.number, **common)
        else:
            branch = None if operation == "repos/get" else "main"
            try:
                found = download_baseline(name="kitt-results", dest=tmp_path / "b", base_branch=branch, **common)
            except GitHubError as error:
                assert "\n" not in str(error)
            else:  # entries of the wrong shape are skipped as not ours
                assert not found and isinstance(body, dict) and isinstance(body.get("artifacts"), list)
    finally:
        github_double.take_violations()  # the double rightly flags the answers this test makes it give


@pytest.mark.parametrize("operation", ["issues/list-comments", "issues/create-comment"])
@pytest.mark.parametrize("body", [[0], "text", {"unexpected": 1}, [{"body": 5}]])
def test_a_comment_api_of_the_wrong_shape(github_double, operation: str, body: Any) -> None:
    from kitt.github.comments import upsert_pr_comment
    from kitt.github.http import RetryPolicy

    pull = github_double.add_pull()
    github_double.fail_next(operation, 200, body=body, times=5)
    try:
        with pytest.raises(GitHubError):
            upsert_pr_comment(token=github_double.token, repo=github_double.repo.full_name, pr=pull.number, body="hi",
                              api_url=github_double.api_url,
                              retry=RetryPolicy(attempts=2, first_delay_s=0.0, sleep=lambda s: None))
    finally:
        github_double.take_violations()


def test_a_wrong_shaped_pull_request_still_leaves_the_report_in_the_summary(tmp_path: Path, github_double,
                                                                            capsys) -> None:
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


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
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
def test_an_api_that_never_answers_is_bounded_by_the_policys_timeout(silent_server: str, tmp_path: Path,
                                                                     path: str) -> None:
    """Every path uses kitt.github.http's timeout: PyGithub too, and a policy's sub-second timeout."""
    from kitt.github.baseline import download_baseline, get_pull_request
    from kitt.github.comments import upsert_pr_comment
    from kitt.github.http import RetryPolicy

    policy = RetryPolicy(attempts=2, first_delay_s=0.0, timeout_s=0.5, sleep=lambda s: None)
    common = dict(token="t", repo="o/r", api_url=silent_server, retry=policy)
    started = time.monotonic()
    with pytest.raises(GitHubError) as caught:
        if path == "baseline":
            download_baseline(name="kitt-results", dest=tmp_path / "b", base_branch="main", **common)
        elif path == "pull request":
            get_pull_request(pr=1, **common)
        else:
            upsert_pr_comment(pr=1, body="hi", **common)
    assert time.monotonic() - started < 15 and "\n" not in str(caught.value)


# --------------------------------------------------------------------------- misleading messages


@pytest.mark.parametrize("status", [401, 500])
def test_readiness_hints_say_what_helps(tmp_path: Path, refusing_server: Any, status: int, capsys) -> None:
    """A 401 is not fixed by waiting: it names the credentials, never --ready-timeout. A server that
    answers but does not serve yet may be loading: --ready-timeout is honoured for endpoints (no cap)."""
    refusing_server.status = status
    url = f"http://127.0.0.1:{refusing_server.server_address[1]}"
    code, _, err = kitt_main(["run", "-m", "m", "-e", "openai", "--endpoint", url, "--ready-timeout", "1",
                              "-o", str(tmp_path / "o")], capsys)
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
    env = clean_environ(GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(output), KITT_ACTION_FLAVOUR="composite",
                        INPUT_MODEL="m", INPUT_ENGINE="openai", INPUT_COMMENT="never",
                        INPUT_ENDPOINT=f"http://127.0.0.1:{refusing_server.server_address[1]}",
                        **{"INPUT_RESULTS-DIR": str(tmp_path / "results")})
    child = subprocess.Popen([sys.executable, str(REPO / "entrypoint.py")], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (tmp_path / "results" / "hardware.json").exists():
            time.sleep(0.1)
        time.sleep(0.5)
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
    code, out, err = kitt_main(["ci", "report", "--results-dir", str(tmp_path / "current"), "--baseline-dir",
                                str(tmp_path / "baseline"), "--fail-on-regression"], capsys)
    assert code == 1 and "error: Nothing was compared" in err and "not a pass" in err


def test_a_baseline_whose_tests_all_differ_fails_loudly(tmp_path: Path, capsys) -> None:
    (tmp_path / "current").mkdir()
    (tmp_path / "baseline").mkdir()
    (tmp_path / "current" / "metrics.json").write_text(json.dumps(_metrics()))
    other = _metrics()
    other["results"][0]["test_name"] = "other-c1"
    (tmp_path / "baseline" / "metrics.json").write_text(json.dumps(other))
    code, _, err = kitt_main(["ci", "report", "--results-dir", str(tmp_path / "current"), "--baseline-dir",
                              str(tmp_path / "baseline"), "--fail-on-regression"], capsys)
    assert code == 1 and "error: other-c1 is in the baseline but missing from the current run" in err


def test_kitt_errors_from_readers_are_one_line() -> None:
    assert issubclass(ResultsError, KittError) and issubclass(UsageError, KittError)
