"""Engine readiness: health 200, then the model listed, then one real generation.

A health endpoint can answer 200 while weights are still loading, and a model list can name a
model that cannot yet generate, so only a real generation ends the wait. While waiting, the
engine's process or container is watched: if it exits, the wait ends at once with its log.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from kitt.engines.base import EngineSpec, Runner, ServerHandle
from kitt.errors import EngineDied, EngineNotReady

POLL_SECONDS = 0.5


def http_json(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    """A small JSON request with the standard library; returns (status, parsed body or text)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def listed_models(spec: EngineSpec, payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return []
    if spec.models_format == "ollama":
        return [str(m.get("name")) for m in payload.get("models") or [] if isinstance(m, dict)]
    if spec.models_format == "tgi":
        return [str(payload.get("model_id"))] if payload.get("model_id") else []
    return [str(m.get("id")) for m in payload.get("data") or [] if isinstance(m, dict)]


def model_matches(wanted: str, listed: list[str]) -> bool:
    # Ollama lists "llama3:latest" for "llama3"; TGI lists the path it was started with.
    return any(name == wanted or name == f"{wanted}:latest" or name.endswith("/" + wanted) for name in listed)


def wait_until_ready(
    runner: Runner,
    handle: ServerHandle,
    *,
    api: str,
    timeout: float,
    on_stage: Callable[[str], None] = lambda stage: None,
    timeout_capped: bool = False,
) -> None:
    """Wait for the engine; ``timeout_capped`` says --ready-timeout cannot lengthen the wait
    (endpoint mode), so the error does not suggest raising it."""
    spec = runner.spec
    deadline = time.monotonic() + timeout
    base = handle.base_url.rstrip("/")

    def until(stage: str, attempt: Callable[[], str | None]) -> None:
        """Retry ``attempt`` (None when done, else what is still wrong) until it passes or time is up."""
        on_stage(stage)
        last_error = ""
        while True:
            _check_alive(runner, stage)
            try:
                problem = attempt()
            except (urllib.error.URLError, OSError, ValueError) as exc:
                problem = str(getattr(exc, "reason", exc))
            if problem is None:
                return
            last_error = problem or last_error
            if time.monotonic() >= deadline:
                detail = f" (last answer: {last_error})" if last_error else ""
                log_tail = runner.log_tail(50)
                raise EngineNotReady(
                    f"{spec.name} was not ready within {timeout:.0f} s, stuck at: {stage}{detail}",
                    hint=_not_ready_hint(last_error, bool(log_tail.strip()), timeout_capped),
                    log_tail=log_tail,
                )
            time.sleep(POLL_SECONDS)

    def health() -> str | None:
        status, _ = http_json("GET", base + spec.health_path)
        return None if status == 200 else f"HTTP {status}"

    def listed() -> str | None:
        status, payload = http_json("GET", base + spec.models_path)
        names = listed_models(spec, payload)
        return None if model_matches(handle.served_model, names) else f"HTTP {status}, models: {names or 'none'}"

    until(f"GET {spec.health_path} answering 200", health)
    if spec.needs_model_pull:
        until(f"pulling {handle.served_model}", lambda: _pull(base, handle.served_model, deadline))
    until(f"{handle.served_model} listed by GET {spec.models_path}", listed)
    until("one real generation", lambda: _generate_once(base, handle.served_model, api, spec.needs_model_pull))


def _not_ready_hint(last_error: str, has_log: bool, timeout_capped: bool) -> str:
    """What to do: a refusal is not fixed by waiting longer, nor is a wait that is capped."""
    if last_error.startswith(("HTTP 401", "HTTP 403")):
        return ("The server refused kitt's requests (it wants credentials kitt does not send); "
                "point kitt at a server that needs no API key, or check its access settings.")
    log = "Check the engine log above" if has_log else "The engine wrote no log"
    if timeout_capped:
        return (f"{log}; an already running endpoint gets at most 30 s, so check that it is up, "
                "reachable and serving the model.")
    return f"{log}; raise --ready-timeout for large models."


def _check_alive(runner: Runner, stage: str) -> None:
    status = runner.exit_status()
    if status is not None:
        raise EngineDied(
            f"{runner.spec.name} exited with status {status} while starting ({stage})",
            hint="The engine log above says why; fix the model path, engine arguments or GPU setup.",
            log_tail=runner.log_tail(50),
        )


def _pull(base: str, model: str, deadline: float) -> str | None:
    status, body = http_json("POST", base + "/api/pull", {"model": model, "stream": False}, timeout=max(deadline - time.monotonic(), 1))
    if status != 200:
        raise EngineNotReady(f"ollama could not pull {model!r}: {body}", hint="Check the model name and tag.")
    return None


def _generate_once(base: str, model: str, api: str, preload: bool) -> str | None:
    if preload:
        # Load the weights and keep them resident, so the first measured request does not pay for it.
        http_json("POST", base + "/api/generate", {"model": model, "keep_alive": "60m"}, timeout=600)
    if api == "chat":
        path, body = "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": "Hello"}]}
    else:
        path, body = "/v1/completions", {"model": model, "prompt": "Hello"}
    body.update(max_tokens=2, temperature=0.0)
    status, payload = http_json("POST", base + path, body, timeout=300)
    if status == 200 and isinstance(payload, dict) and payload.get("choices"):
        return None
    return f"HTTP {status}: {' '.join(str(payload).split())[:200]}"
