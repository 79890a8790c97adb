"""Does the sim keep its plan with the serving model on, and its speed with it off?

Each configuration starts a fresh sim server with a truth log, drives it with kitt's own load
generator (``kitt.bench.loadgen.run_level``, in this process) at ``--streams`` closed-loop
streams, stops it and reads the log. Per configuration:

- ``lag_ms``: per request, the most any of its events left late against the server's own plan
  (``send time - deadline``, measured by the server as it sends); shown as p50, p99 and max over
  requests, and the share of requests whose every event left within 1 ms; and how late each
  request's first event left (due at its start + TTFT + prefill), p50 and p99;
- ``token_rate``: tokens the server sent / (last event - first arrival), from its log;
- ``ttft_err``: kitt's TTFT minus the true TTFT (first send - arrival), median and p99, ms;
- ``server_cpu_us_per_event``: the server process's CPU time (utime + stime, whole run, start-up
  included) per event it sent: what the model costs, much less sensitive to a busy machine than
  lateness is.

Configurations:

- ``off``: the reference server's exact schedule (``benchmarks/reference_server.py``: TTFT 50 ms,
  ITL 10 ms, 4 tokens per event, 256 tokens) with no serving model: the harness yardstick (its
  lateness is computed from that plan, ``arrival + TTFT + i x ITL``, as harness_accuracy does);
- ``defaults``: the sim engine spec's small GPU deployment (8 slots, prefill 0.1 ms/token,
  +0.5 ms ITL per running request, a 64 Ki-token cache), one 64-token request per stream, so
  248 of them queue at the start and start as slots free;
- ``wide``: as many slots as streams, prefill 0.1 ms per uncached token, +0.02 ms ITL per
  running request, a 64 Ki-token cache, 4 tokens per event, 256 tokens, and 512-token prompts
  whose first 256 tokens every request shares (cache hits and LRU churn on every request).

``--trees A,B`` runs each configuration from each source tree in turn, ``--pairs`` times
(A B B A ...), to compare the yardstick before and after a change on a busy machine (a tree from
before the serving model runs ``off`` only). ``KEEP_LOG=1`` keeps each run's truth log in ``--out``.

    python benchmarks/sim_serving.py --out /tmp/sim-serving
    python benchmarks/sim_serving.py --configs off --trees /tmp/kitt-before,. --pairs 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from kitt.bench.loadgen import Target, run_level  # noqa: E402
from kitt.bench.records import RequestRecord  # noqa: E402
from kitt.workload.spec import RequestSpec  # noqa: E402
from kitt.workload.synthetic import build_requests  # noqa: E402
from kitt.config import Level  # noqa: E402
from kitt.engines.specs import SIM_SERVING_DEFAULTS  # noqa: E402

EXACT = ["--ttft-cv", "0", "--itl-cv", "0"]


def configs(streams: int) -> dict[str, dict[str, Any]]:
    shared = " ".join(f"s{i}" for i in range(256))
    wide_prompts = [f"{shared} " + " ".join(r.prompt.split()[:256]) for r in build_requests(3 * streams, 256, 256, 1)]
    return {
        "off": {
            "args": ["--ttft-ms", "50", "--itl-ms", "10", "--tokens-per-event", "4"],
            "prompts": [r.prompt for r in build_requests(3 * streams, 32, 256, 0)],
            "output_len": 256,
        },
        "defaults": {
            "args": list(SIM_SERVING_DEFAULTS),
            "prompts": [r.prompt for r in build_requests(streams, 128, 64, 0)],
            "output_len": 64,
        },
        "wide": {
            "args": [
                "--max-num-seqs",
                str(streams),
                "--prefill-ms-per-token",
                "0.1",
                "--itl-ms-per-seq",
                "0.02",
                "--kv-cache-tokens",
                "65536",
                "--ttft-ms",
                "50",
                "--itl-ms",
                "10",
                "--tokens-per-event",
                "4",
            ],
            "prompts": wide_prompts,
            "output_len": 256,
        },
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def server_cpu_s(pid: int) -> float:
    """utime + stime of the server process so far (before it writes its log)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(name: str, config: dict[str, Any], streams: int, tree: Path, out: Path) -> dict[str, Any]:
    log = out / f"{name}-{tree.name or 'tree'}-{time.monotonic_ns()}.json"
    env = dict(os.environ, PYTHONPATH=str(tree))
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kitt.engines.simserver",
            "--port",
            "0",
            "--model",
            "bench",
            *EXACT,
            *config["args"],
            "--log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tree,
    )
    line = server.stdout.readline() if server.stdout else ""
    if not line.startswith("listening "):
        server.kill()
        raise RuntimeError(f"the sim did not start: {line!r}")
    load = Path("/proc/loadavg").read_text().split()[0]
    specs = [RequestSpec(index=i, prompt=p, max_tokens=config["output_len"]) for i, p in enumerate(config["prompts"])]
    records: list[RequestRecord] = []
    try:
        asyncio.run(
            run_level(
                Target(base_url=f"http://127.0.0.1:{line.split()[1]}", model="bench"),
                specs,
                Level("concurrency", streams),
                test_name=name,
                run_number=1,
                sink=records,
            )
        )
        cpu = server_cpu_s(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    truth = json.loads(log.read_text())
    if not os.environ.get("KEEP_LOG"):
        log.unlink()
    logged = [r for r in truth["requests"] if r["events"]]
    by_head = {r["prompt_head"]: r for r in logged}
    ttft_err = []
    if len(by_head) == len(logged):  # requests are matched by their prompt's head (wide's heads are all alike)
        ttft_err = [
            ((rec.events[0] - rec.sent) - (t["events"][0] - t["arrival"])) * 1e3
            for rec in records
            if rec.events and (t := by_head.get(specs[rec.index].prompt[:48]))
        ]
    if name == "off":  # the plan is known exactly (and older trees log no lag_ms): arrival + TTFT + i x ITL
        lag = [
            max((e - r["arrival"]) * 1e3 - r["ttft_ms"] - i * r["itl_ms"] for i, e in enumerate(r["events"]))
            for r in logged
        ]
    else:
        lag = [r["lag_ms"] for r in logged]
    # First events: due at start + TTFT + prefill in every tree (older trees start at arrival).
    first = [
        ((r["events"][0] - r.get("start", r["arrival"])) * 1e3 - r["ttft_ms"] - r.get("prefill_ms", 0.0))
        for r in logged
    ]
    begin, end = min(r["arrival"] for r in logged), max(r["events"][-1] for r in logged)
    return {
        "config": name,
        "tree": str(tree),
        "streams": streams,
        "requests": len(logged),
        "errors": sum(1 for r in records if r.error),
        "loadavg_1m": load,
        "lag_p50_ms": statistics.median(lag),
        "lag_p99_ms": percentile(lag, 0.99),
        "lag_max_ms": max(lag),
        "first_p50_ms": statistics.median(first),
        "first_p99_ms": percentile(first, 0.99),
        "within_1ms_pct": 100.0 * sum(1 for v in lag if v < 1.0) / len(lag),
        "token_rate": sum(sum(r["tokens"]) for r in logged) / (end - begin),
        "server_cpu_us_per_event": cpu / sum(len(r["events"]) for r in logged) * 1e6,
        "ttft_err_p50_ms": statistics.median(ttft_err) if ttft_err else None,
        "ttft_err_p99_ms": percentile(ttft_err, 0.99) if ttft_err else None,
        "cached_tokens_mean": statistics.mean(r.get("cached_tokens", 0) for r in logged),
        "queue_ms_max": max(r.get("queue_ms", 0.0) for r in logged),
    }


def row(result: dict[str, Any]) -> str:
    def f(v: Any, d: int = 2) -> str:
        return "n/a" if v is None else f"{v:.{d}f}"

    return (
        f"| {result['config']} | {Path(result['tree']).name or result['tree']} | {result['streams']} | "
        f"{result['requests']} | {f(result['lag_p50_ms'], 3)} / {f(result['lag_p99_ms'], 3)} / "
        f"{f(result['lag_max_ms'], 3)} | {f(result['first_p50_ms'], 3)} / {f(result['first_p99_ms'], 3)} | "
        f"{f(result['within_1ms_pct'], 1)} | {result['token_rate']:.0f} | "
        f"{f(result['ttft_err_p50_ms'], 3)} / {f(result['ttft_err_p99_ms'], 3)} | "
        f"{result['server_cpu_us_per_event']:.1f} | {result['cached_tokens_mean']:.0f} | "
        f"{result['queue_ms_max']:.0f} | {result['loadavg_1m']} |"
    )


HEADER = (
    "| config | tree | streams | requests | lag p50 / p99 / max (ms) | first event late p50 / p99 (ms) | "
    "requests within 1 ms (%) | tokens/s | "
    "kitt TTFT error p50 / p99 (ms) | server CPU per event (us) | mean cached tokens | max queue wait (ms) | "
    "load avg |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/kitt-sim-serving"))
    parser.add_argument("--streams", type=int, default=256)
    parser.add_argument("--configs", default="off,defaults,wide")
    parser.add_argument("--trees", default=str(ROOT), help="comma-separated source trees to run the server from")
    parser.add_argument("--pairs", type=int, default=1, help="with two trees: runs of each, in A B B A order")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    every = configs(args.streams)
    results = []
    print(
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}\n"
    )
    print(HEADER, flush=True)
    for name in args.configs.split(","):
        order: list[Path] = []
        for pair in range(args.pairs):
            order += trees if pair % 2 == 0 else trees[::-1]
        for tree in order:
            result = run(name, every[name], args.streams, tree, args.out)
            results.append(result)
            print(row(result), flush=True)
    (args.out / "results.json").write_text(json.dumps({"command": " ".join(sys.argv), "results": results}, indent=1))


if __name__ == "__main__":
    main()
