"""Native mode: the engine's own server command as a child process of kitt.

The child gets its own process group, so ``stop`` reaches every process the engine forks
(vLLM starts engine-core workers), and a parent-death signal, so it dies with kitt even when
kitt itself is killed with SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from kitt.engines.base import EngineSpec, ServerHandle
from kitt.errors import BenchmarkError, UsageError

# A cancelled GitHub job gets SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s after that.
STOP_GRACE_SECONDS = 5.0


def native_command(spec: EngineSpec, *, model: str, served: str, port: int, extra_args: tuple[str, ...]) -> list[str]:
    values = {"model": model, "served": served, "host": "127.0.0.1", "port": str(port), "python": sys.executable}
    prefix = [part.format(**values) for part in spec.native_command]
    return prefix + [part.format(**values) for part in spec.server_args] + list(extra_args)


def check_native_command(spec: EngineSpec) -> str:
    """The resolved executable of the engine's native command, or a UsageError saying what to install."""
    executable = spec.native_command[0].replace("{python}", sys.executable)
    found = shutil.which(executable)
    if not found:
        raise UsageError(
            f"{spec.name} native mode needs {executable!r} on PATH",
            hint=f"Install {spec.name} (or activate its virtual environment) before `kitt run --native`.",
        )
    if spec.native_command[1:2] == ("-m",):
        module = spec.native_command[2]
        probe = subprocess.run(
            [
                found,
                "-c",
                f"import importlib.util,sys; sys.exit(importlib.util.find_spec({module.split('.')[0]!r}) is None)",
            ],
            capture_output=True,
            timeout=60,
        )
        if probe.returncode != 0:
            raise UsageError(
                f"{found} cannot import {module.split('.')[0]}",
                hint=f"Activate the environment where {spec.name} is installed, so its python3 comes first on PATH.",
            )
    return found


class NativeRunner:
    def __init__(
        self,
        spec: EngineSpec,
        *,
        model: str,
        served: str,
        port: int,
        extra_args: tuple[str, ...],
        log_path: Path,
        stop_grace: float = STOP_GRACE_SECONDS,
    ) -> None:
        self.spec = spec
        self.stop_grace = stop_grace
        self.model = model
        self.served = served
        self.port = port
        self.command = native_command(spec, model=model, served=served, port=port, extra_args=extra_args)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerHandle:
        executable = shutil.which(self.command[0])
        if not executable:
            raise UsageError(
                f"{self.spec.name} native mode needs {self.command[0]!r} on PATH",
                hint=f"Install {self.spec.name} or activate its environment, or run without --native.",
            )
        env = dict(os.environ)
        for key, value in self.spec.native_env.items():
            env[key] = value.format(host="127.0.0.1", port=self.port)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [executable, *self.command[1:]],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        return ServerHandle(
            base_url=f"http://127.0.0.1:{self.port}",
            served_model=self.served,
            mode="native",
            command=list(self.command),
            startup={"start_s": round(time.monotonic() - began, 3)},
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def exit_status(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def log_tail(self, lines: int = 50) -> str:
        try:
            with self.log_path.open("r", encoding="utf-8", errors="replace") as log:
                return "".join(deque(log, maxlen=lines))
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the whole process group, then SIGKILL after a grace period."""
        process, self._process = self._process, None
        if process is None:
            return
        pgid = process.pid  # start_new_session made the child a group leader
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        while time.monotonic() < deadline:
            if process.poll() is not None and not _group_alive(pgid):
                break
            time.sleep(0.05)
        _signal_group(pgid, signal.SIGKILL)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired as exc:  # pragma: no cover - a process that ignores SIGKILL
            raise BenchmarkError(f"engine process {pgid} did not exit after SIGKILL") from exc


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
