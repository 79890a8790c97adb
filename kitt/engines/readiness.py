"""Engine readiness: health 200, then the model listed, then one real generation.

A health endpoint can answer 200 while weights are still loading, and a model list can name a
model that cannot yet generate, so only a real generation ends the wait. While waiting, the
engine's process or container is watched: if it exits, the wait ends at once with its log.
Every request goes out under the run's :class:`~kitt.net.NetPolicy` (key, headers, proxy);
an answer that waiting cannot fix (401/403: the key; a redirect: the URL) ends the wait at once.
"""

from __future__ import annotations

import json
import time
import urllib.error
from typing import Any, Callable

from kitt.net import NetPolicy, Redirected, open_url, scrub
from kitt.engines.base import EngineSpec, Runner, ServerHandle
from kitt.errors import EngineDied, EngineNotReady
from kitt.redact import redact_url

POLL_SECONDS = 0.5
HEALTH_PROBE_SECONDS = 10.0  # one health or model-list probe, never past the --ready-timeout deadline
MIN_PROBE_SECONDS = 0.1  # the last probe before the deadline still gets this long


class Rejected(Exception):
    """The engine refused the credentials (HTTP 401 or 403): waiting will not help."""

    def __init__(self, status: int, what: str) -> None:
        super().__init__(f"HTTP {status} to {what}")
        self.status = status


def http_json(
    method: str, url: str, body: Any = None, timeout: float = 10.0, net: NetPolicy | None = None
) -> tuple[int, Any]:
    """A small JSON request under ``net``; returns (status, parsed body or text). 401/403 raise Rejected."""
    data = None if body is None else json.dumps(body).encode()
    status, raw = open_url(net, method, url, data, timeout)
    if status in (401, 403):
        raise Rejected(status, f"{method} {redact_url(url)}")
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
    net: NetPolicy | None = None,
    endpoint_flag: str = "--endpoint",
) -> None:
    """Wait for the engine: health, the model listed, one real generation. A refused key stops at
    once; a wait that runs out says what was last seen and what to do about it.

    ``timeout`` (--ready-timeout) bounds the whole wait, every probe included: no request waits
    past the deadline (a health probe at most HEALTH_PROBE_SECONDS, the generation the time left).
    ``endpoint_flag`` names the flag that gave the URL, for the hint when nothing answers."""
    spec = runner.spec
    net = net or NetPolicy()
    deadline = time.monotonic() + timeout
    base = handle.base_url.rstrip("/")
    answered = [False]  # whether any probe got an HTTP answer (else the URL is what to check)

    def left(cap: float | None = None) -> float:
        remaining = max(deadline - time.monotonic(), MIN_PROBE_SECONDS)
        return remaining if cap is None else min(cap, remaining)

    def call(method: str, url: str, body: Any = None, timeout: float | None = None) -> tuple[int, Any]:
        result = http_json(
            method, url, body, timeout=left(HEALTH_PROBE_SECONDS) if timeout is None else timeout, net=net
        )
        answered[0] = True
        return result

    def until(stage: str, attempt: Callable[[], str | None]) -> None:
        """Retry ``attempt`` (None when done, else what is still wrong) until it passes or time is up."""
        on_stage(stage)
        last_error = ""
        while True:
            _check_alive(runner, stage)
            try:
                problem = attempt()
            except Rejected as exc:
                raise EngineNotReady(
                    f"{spec.name} refused kitt's credentials: {exc}",
                    hint=f"Set the API key in ${net.api_key_env}"
                    + (" (it is empty now)" if net.api_key is None else "")
                    + "; --api-key-env names another variable, --header adds a gateway's header.",
                ) from None
            except Redirected as exc:
                raise EngineNotReady(
                    f"{spec.name} at {redact_url(base)}: {exc}",
                    hint="Use the URL the redirect points at as --endpoint.",
                ) from None
            except (urllib.error.URLError, OSError, ValueError) as exc:
                problem = scrub(str(getattr(exc, "reason", exc)), net)
            if problem is None:
                return
            last_error = problem or last_error
            if time.monotonic() >= deadline:
                detail = f" (last answer: {last_error})" if last_error else ""
                log_tail = runner.log_tail(50)
                raise EngineNotReady(
                    f"{spec.name} was not ready within {timeout:g} s, stuck at: {stage}{detail}",
                    hint=_hint(handle.mode, base, last_error, log_tail, answered[0], endpoint_flag),
                    log_tail=log_tail,
                )
            time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))

    def health() -> str | None:
        status, _ = call("GET", base + spec.health_path)
        return None if status == 200 else f"HTTP {status}"

    def listed() -> str | None:
        status, payload = call("GET", base + spec.models_path)
        names = listed_models(spec, payload)
        return None if model_matches(handle.served_model, names) else f"HTTP {status}, models: {names or 'none'}"

    until(f"GET {spec.health_path} answering 200", health)
    if spec.needs_model_pull:
        until(f"pulling {handle.served_model}", lambda: _pull(call, base, handle.served_model, left()))
    until(f"{handle.served_model} listed by GET {spec.models_path}", listed)
    until(
        "one real generation", lambda: _generate_once(call, base, handle.served_model, api, spec.needs_model_pull, left)
    )


def _check_alive(runner: Runner, stage: str) -> None:
    status = runner.exit_status()
    if status is not None:
        raise EngineDied(
            f"{runner.spec.name} exited with status {status} while starting ({stage})",
            hint="The engine log above says why; fix the model path, engine arguments or GPU setup.",
            log_tail=runner.log_tail(50),
        )


def _hint(
    mode: str, base: str, last_error: str, log_tail: str, answered: bool = True, endpoint_flag: str = "--endpoint"
) -> str:
    """What to do about a wait that ran out: the URL when nothing answered, else the log and the timeout."""
    unreachable = any(s in last_error for s in ("refused", "not known", "No route", "unreachable", "resolution"))
    if mode == "endpoint" and (unreachable or not answered):
        return (
            f"Nothing answered at {redact_url(base)}: check {endpoint_flag} (host, port, http or https), "
            "or raise --ready-timeout if it is slow to answer."
        )
    if mode == "endpoint":
        return "The endpoint answered but is not serving the model yet; raise --ready-timeout if it is still loading."
    return (
        "Check the engine log above" if log_tail.strip() else "The engine wrote no log"
    ) + "; raise --ready-timeout for large models."


def _pull(call: Callable[..., tuple[int, Any]], base: str, model: str, timeout: float) -> str | None:
    status, body = call("POST", base + "/api/pull", {"model": model, "stream": False}, timeout=timeout)
    if status != 200:
        raise EngineNotReady(f"ollama could not pull {model!r}: {body}", hint="Check the model name and tag.")
    return None


def _generate_once(
    call: Callable[..., tuple[int, Any]], base: str, model: str, api: str, preload: bool, left: Callable[[], float]
) -> str | None:
    if preload:
        # Load the weights and keep them resident, so the first measured request does not pay for it.
        call("POST", base + "/api/generate", {"model": model, "keep_alive": "60m"}, timeout=left())
    if api == "chat":
        path, body = "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": "Hello"}]}
    else:
        path, body = "/v1/completions", {"model": model, "prompt": "Hello"}
    body.update(max_tokens=2, temperature=0.0)
    status, payload = call("POST", base + path, body, timeout=left())
    if status == 200 and isinstance(payload, dict) and payload.get("choices"):
        return None
    return f"HTTP {status}: {' '.join(str(payload).split())[:200]}"
