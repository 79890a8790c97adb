"""Native mode's teardown reaches every process the engine forks, even one that ignores SIGTERM."""

from __future__ import annotations

import time
import uuid

from kitt.engines.base import EngineSpec
from kitt.engines.native import NativeRunner, check_native_command
from kitt.errors import UsageError
from support import processes_with

import pytest


def spec_running(script: str) -> EngineSpec:
    return EngineSpec(name="fake", description="test", modes=("native",), native_command=("bash", "-c", script))


def test_stop_kills_the_whole_process_group(tmp_path):
    marker = f"kitt-test-{uuid.uuid4().hex}"
    # A parent that ignores SIGTERM and a child that outlives a plain kill of its parent.
    script = f"trap '' TERM; (exec -a {marker}-child sleep 300) & exec -a {marker}-parent sleep 300"
    runner = NativeRunner(
        spec_running(script), model="m", served="m", port=1, extra_args=(), log_path=tmp_path / "log", stop_grace=1.0
    )
    runner.start()
    deadline = time.monotonic() + 5
    while len(processes_with(marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(processes_with(marker)) == 2
    assert runner.exit_status() is None
    runner.stop()
    assert processes_with(marker) == []
    runner.stop()  # idempotent


def test_exit_status_and_log_tail(tmp_path):
    script = "for i in $(seq 1 80); do echo line $i; done; exit 7"
    runner = NativeRunner(spec_running(script), model="m", served="m", port=1, extra_args=(), log_path=tmp_path / "log")
    runner.start()
    deadline = time.monotonic() + 5
    while runner.exit_status() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.exit_status() == 7
    tail = runner.log_tail(50).splitlines()
    assert len(tail) == 50 and tail[0] == "line 31" and tail[-1] == "line 80"
    runner.stop()


def test_missing_native_command_is_a_usage_error():
    spec = EngineSpec(name="ghost", description="", modes=("native",), native_command=("definitely-not-installed-x",))
    with pytest.raises(UsageError, match="definitely-not-installed-x"):
        check_native_command(spec)


def test_python_module_engine_without_the_module():
    spec = EngineSpec(
        name="nomod",
        description="",
        modes=("native",),
        native_command=("python3", "-m", "module_that_does_not_exist_kitt.server"),
    )
    with pytest.raises(UsageError, match="cannot import module_that_does_not_exist_kitt"):
        check_native_command(spec)


def test_engine_ports_are_free_distinct_and_below_the_ephemeral_range():
    import socket

    from kitt.engines import _ephemeral_low, free_port

    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50  # never the same port twice in one run (two A/B arms)
    low = _ephemeral_low()
    assert all(port < low for port in ports) or low <= 21000, (low, ports)
    with socket.socket() as sock:  # it was free when handed out, and nothing took it since
        sock.bind(("127.0.0.1", ports[-1]))
