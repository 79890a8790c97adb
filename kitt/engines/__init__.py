"""Engines by name: specs, and the runner that starts one in the mode asked for.

vllm, sglang, tgi, llama-cpp, ollama   docker (default; the docker or podman CLI) or native (--native)
sim                                     the built-in simulated server, for trying kitt anywhere
openai                                  an already running endpoint (--endpoint URL)
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

from kitt.engines.base import EngineSpec, Runner
from kitt.engines.specs import ALL
from kitt.errors import UsageError

ENGINES: dict[str, EngineSpec] = {spec.name: spec for spec in ALL}


def get_engine(name: str) -> EngineSpec:
    try:
        return ENGINES[name]
    except KeyError:
        raise UsageError(f"unknown engine {name!r}", hint=f"Choose one of: {', '.join(ENGINES)}.") from None


def served_name(spec: EngineSpec, model: str) -> str:
    """The model name requests carry: a local path's last component, else the id as given."""
    path = Path(model).expanduser()
    if spec.default_mode != "endpoint" and path.exists():
        return path.stem if spec.model_is_file else path.resolve().name
    return model


_LOWEST_PORT = 20000
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    """The bottom of the kernel's ephemeral port range (Linux; 32768 where it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free port for an engine kitt starts, below the kernel's ephemeral range.

    The engine binds it only once it has loaded (tens of seconds for vLLM). A port from the
    ephemeral range could be taken meanwhile by any bind to port 0 or outgoing connection (the other
    A/B arm's vLLM opens several while it starts: once it took the port picked for the first arm),
    and those never use ports below the range. No port is handed out twice in one process.
    """
    low = _ephemeral_low()
    rng = random.SystemRandom()
    for _ in range(100 if low - _LOWEST_PORT > 1000 else 0):
        port = rng.randrange(_LOWEST_PORT, low)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # no room below the range
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    _handed_out.add(port)
    return port


def check_port_free(port: int) -> None:
    """Refuse a --port that something already listens on, before an engine is started: kitt would
    otherwise benchmark whatever answers there and call it the engine (whose own "address in use"
    ends up only in its log)."""
    for host in ("127.0.0.1", "0.0.0.0"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As servers bind: a connection in TIME_WAIT does not make the port busy, a listener does.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except PermissionError:
                raise UsageError(
                    f"--port {port} needs privileges kitt does not have",
                    hint="Pick a port above 1023, or leave --port out for a free one.",
                ) from None
            except OSError:
                raise UsageError(
                    f"--port {port} is already in use on this machine",
                    hint="Stop what listens there, pick another port, or leave --port out for a free one.",
                ) from None


def choose_mode(spec: EngineSpec, *, native: bool, endpoint: str | None) -> str:
    if endpoint and spec.default_mode != "endpoint":
        raise UsageError(
            f"--endpoint is for the openai engine; {spec.name} is started by kitt", hint="Use -e openai --endpoint URL."
        )
    if spec.default_mode == "endpoint" and not endpoint:
        raise UsageError("the openai engine needs --endpoint URL (an already running OpenAI-compatible server)")
    if native:
        if "native" not in spec.modes:
            raise UsageError(f"{spec.name} has no native mode", hint=f"Its modes: {', '.join(spec.modes)}.")
        return "native"
    return spec.default_mode


def create_runner(
    spec: EngineSpec,
    *,
    mode: str,
    model: str,
    port: int | None,
    extra_args: tuple[str, ...],
    image: str | None,
    endpoint: str | None,
    run_id: str,
    log_path: Path,
    container_cli: str | None = None,
    gpus: str = "all",
    engine_cache: Path | None = None,
) -> Runner:
    served = served_name(spec, model)
    if mode == "endpoint":
        from kitt.engines.endpoint import EndpointRunner

        return EndpointRunner(spec, endpoint=endpoint or "", served=served)
    if mode == "docker":
        from kitt.engines.container import parse_gpus, resolve_cli
        from kitt.engines.docker import DockerRunner

        return DockerRunner(
            spec,
            image=image or spec.image or "",
            model=model,
            served=served,
            port=port or free_port(),
            extra_args=extra_args,
            run_id=run_id,
            cli=resolve_cli(container_cli),
            gpus=parse_gpus(gpus),
            engine_cache=engine_cache,
        )
    from kitt.engines.native import NativeRunner

    return NativeRunner(
        spec, model=model, served=served, port=port or free_port(), extra_args=extra_args, log_path=log_path
    )
