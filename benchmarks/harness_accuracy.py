"""How exact is each benchmark client's clock, and what does it cost? kitt vs vllm bench serve vs GuideLLM.

Every (client, row) pair gets a fresh reference server (``benchmarks/reference_server.py``) with
the row's schedule; the client runs the row's closed-loop workload in its own process; the server
then writes its truth log, and the client's own output file is matched to it request by request.

Truth, per request, from the server's log (all ``CLOCK_MONOTONIC``):

- true TTFT = first event's write time - the request's arrival (its last byte read);
- true gaps = differences of consecutive event write times.

Errors are the client's figure minus the truth, computed identically for every client:

- TTFT error (signed; it is one-sided in practice): the client's TTFT minus the true TTFT. It holds
  whatever the client adds: time from its clock read to the request leaving, from the event's
  write to its clock read, and any queueing in between;
- per-gap ITL error: ``|client gap - true gap|`` for each gap (the client must see as many events as
  the server wrote, else the request counts as an event-count mismatch);
- per-request mean-gap error: ``|client (last - first) - true (last - first)| / (events - 1)``; the one
  ITL figure GuideLLM's report allows (it keeps first and last token times and a count per request).

Matching: the first event's text is ``" r<rid>"`` (the server's request id). vLLM's
``--save-detailed`` keeps ``generated_texts`` and GuideLLM's report keeps ``response_id``
(``cmpl-<rid>``); kitt's records keep no text, so kitt's wrapper saves each request's prompt head,
which the server logs too. Requests the server saw but no client output names (GuideLLM's backend
check) are left out.

Client CPU: a sampler thread reads ``utime + stime`` of the client's whole process tree from
``/proc`` every 20 ms (100 Hz accounting ticks). The figure is the CPU spent between the arrival
of the first matched request and the last matched event (interpolated), divided by the tokens
those requests streamed, per million. Start-up (imports, tokenizers, data generation) and
report writing fall outside that window, and differ by tool; what the window holds is the cost
of driving the load, which is what grows with a benchmark's size. For kitt two more figures:
``cpu_s_per_mtok_to_end``, the same window run on to the moment the load generator returned
(decoding deferred past the last event included), and ``sleeps_per_ktok``, how often the client
process went to sleep waiting (voluntary context switches over the level) per 1,000 tokens: a
client wakes once per sleep, and a wake-up costs CPU whatever it then reads.

Clients: ``kitt`` (``kitt.bench.loadgen.run_level``, through benchmarks/clients/kitt_bench.py),
``kitt-aiohttp`` (the load generator before kitt/bench/http.py, kept in benchmarks/clients),
``vllm`` (``vllm bench serve`` through benchmarks/clients/vllm_bench.py, in the venv of
tests/e2e/vllm_cpu.ensure_env or ``--vllm-python``) and ``guidellm`` (GuideLLM 0.8.1 in its own
venv under ~/.cache/kitt-bench). The results go to ``OUT/results.json`` and ``OUT/table.md``,
each run's files (client output, truth log, client log) to ``OUT/<row>-<client>/``.

    python benchmarks/harness_accuracy.py --out /tmp/accuracy          # every client, every row
    python benchmarks/harness_accuracy.py --clients kitt --rows short  # a quick look
    python benchmarks/harness_accuracy.py --render /tmp/accuracy/results.json
    python benchmarks/harness_accuracy.py --clients kitt --rows mixed  # the workload rows (kitt only)

The ``mixed`` rows are a production-shaped workload: prompts and answers from a ShareGPT file
this script writes (``OUT/chats.json``: 2,000 conversations, prompts of 8 to 1,500 words, answers
of 4 to 600, long-tailed), outputs capped at 256 tokens, sent open loop with gamma arrivals
(burstiness 0.5) at the rate that keeps about 64 or 256 requests in flight (Little's law with
the reference server's schedule). They add the median schedule lag (send minus due time), the
one figure an open loop adds to the clock's error.

The ``turns`` rows are multi-turn sessions (``kitt.workload.sessions``): 64 or 256 closed-loop
streams, each running sessions of 3 turns one after another (32-token messages, 64-token answers,
no think time), every later turn carrying the conversation so far; their schedule lag is each
send's delay past the moment it was due (a stream free, or the previous turn's answer in: with
no think time a turn cannot leave before its answer is decoded and the next turn built). The
``think`` rows are the same sessions with 20 ms between an answer and the next turn, and the
``thinkvar`` rows with a pause drawn from 1 to 100 ms. For these rows the lag is also given for the
later turns alone (a first turn leaves when a stream is free; a later one needs its answer
decoded and the next turn built first). The
``trace`` rows replay a Mooncake trace this script writes (``OUT/trace-c<N>.jsonl``: Poisson
timestamps at the rate that keeps about 64 or 256 requests in flight, 64-token outputs, 8 groups
sharing a 512-token block through ``hash_ids``) at its timestamps (``kitt.workload.traces``).
The ``poisson`` rows are the short rows' requests, single-turn, sent open loop with Poisson
arrivals at the trace rows' rates: the single-turn reference for rows whose requests are out of
phase with one another.

    python benchmarks/harness_accuracy.py --clients kitt --rows turns,think,thinkvar,trace,poisson  # sessions, traces

By default every event leaves at its own planned time, so requests that start at random moments
send their tokens spread over time. ``--server-step-ms 10`` makes the reference server send on
10 ms decode steps (the sim's ``--step-ms``), as a batching engine sends the tokens of every
running request together at the end of each step; the row names get ``-step10``.

    python benchmarks/harness_accuracy.py --clients kitt --rows mixed,turns,short --server-step-ms 10
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = Path.home() / ".cache" / "kitt-bench"
GUIDELLM_VERSION = "0.8.1"
TTFT_MS, ITL_MS = 50.0, 10.0


@dataclass(frozen=True)
class Row:
    shape: str  # short, chunked, long, mixed, turns, think, thinkvar, trace, poisson
    concurrency: int  # mixed: the mean number of requests in flight the rate aims at
    tokens_per_event: int
    output_len: int
    requests: int
    rate: float = 0.0  # mixed: gamma arrivals at this many requests/s
    burstiness: float = 0.0
    step_ms: float = 0.0  # --server-step-ms: the server sends on decode steps this long

    @property
    def name(self) -> str:
        return f"{self.shape}-c{self.concurrency}" + (f"-step{self.step_ms:g}" if self.step_ms else "")


def default_rows() -> list[Row]:
    """Short (64 tokens, one per event), chunked (256 tokens, four per event) and long (512, one)."""
    rows = []
    for shape, per_event, output, counts in (
        ("short", 1, 64, {1: 24, 16: 128, 64: 256, 256: 768}),
        ("chunked", 4, 256, {1: 24, 16: 128, 64: 256, 256: 768}),
        ("long", 1, 512, {1: 5, 16: 32, 64: 128, 256: 256}),
    ):
        rows += [Row(shape, c, per_event, output, n) for c, n in counts.items()]
    mean_seconds = (TTFT_MS + MIXED_MEAN_OUTPUT * ITL_MS) / 1e3
    rows += [
        Row("mixed", c, 1, MIXED_OUTPUT_CAP, n, rate=round(c / mean_seconds, 2), burstiness=0.5)
        for c, n in {64: 512, 256: 1536}.items()
    ]
    rows += [Row("turns", c, 1, 64, n) for c, n in {64: 128, 256: 512}.items()]  # sessions of TURNS turns
    rows += [Row("think", c, 1, 64, n) for c, n in {64: 128, 256: 512}.items()]  # the same, THINK_MS apart
    rows += [Row("thinkvar", c, 1, 64, n) for c, n in {64: 128, 256: 512}.items()]  # THINK_RANGE_MS apart
    trace_seconds = (TTFT_MS + TRACE_OUTPUT * ITL_MS) / 1e3
    rows += [
        Row("trace", c, 1, TRACE_OUTPUT, n, rate=round(c / trace_seconds, 2)) for c, n in {64: 512, 256: 1536}.items()
    ]
    # The short requests again, single-turn, but sent open loop at the trace rows' Poisson rate: a
    # row whose requests are out of phase with one another, as an open loop's and drifted
    # sessions' are (docs/performance.md, "What the extra CPU follows: requests out of phase").
    rows += [
        Row("poisson", c, 1, 64, n, rate=round(c / trace_seconds, 2), burstiness=1.0)
        for c, n in {64: 512, 256: 1536}.items()
    ]
    return rows


TURNS = 3
SESSION_SHAPES = ("turns", "think", "thinkvar")  # the rows whose requests are sessions of TURNS turns
THINK_MS = 20.0  # the think rows' pause between an answer and the next turn
THINK_RANGE_MS = (1, 100)  # the thinkvar rows': each pause drawn uniformly from this range
TRACE_OUTPUT = 64
TRACE_BLOCK = 512  # Mooncake's block size, kitt's default


def write_trace(path: Path, row: Row) -> None:
    """A Mooncake trace for a ``trace`` row: Poisson timestamps at ``row.rate``, ``row.requests``
    records of 545 to 576 tokens whose first 512-token block is one of 8 shared ones."""
    import random

    rng = random.Random(f"harness-accuracy-trace-{row.concurrency}")
    at, lines = 0.0, []
    for i in range(row.requests):
        lines.append(
            json.dumps(
                {
                    "timestamp": round(at * 1e3, 3),
                    "input_length": TRACE_BLOCK + 33 + i % 32,
                    "output_length": row.output_len,
                    "hash_ids": [i % 8],
                }
            )
        )
        at += rng.expovariate(row.rate)
    path.write_text("\n".join(lines) + "\n")


# The other clients would need their own options for these.
KITT_ONLY = ("mixed", *SESSION_SHAPES, "trace", "poisson")
MIXED_CONVERSATIONS = 2000
MIXED_OUTPUT_CAP = 256


def write_chats(path: Path) -> float:
    """The mixed rows' ShareGPT file (seeded, unique 48-character heads); returns the mean output
    length after the cap, in tokens as kitt estimates them without a tokenizer (1.3 a word)."""
    import random

    rng = random.Random("harness-accuracy-chats")
    words = "the of and to in is was for it with as on be at by from or have an they which one you were".split()
    conversations, outputs = [], []
    for i in range(MIXED_CONVERSATIONS):
        prompt_words = min(max(int(rng.lognormvariate(4.5, 1.0)), 8), 1500)
        answer_words = min(max(int(rng.lognormvariate(4.3, 0.9)), 4), 600)
        prompt = f"conversation {i:06d}: " + " ".join(rng.choices(words, k=prompt_words))
        answer = " ".join(rng.choices(words, k=answer_words))
        conversations.append(
            {"id": str(i), "conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}]}
        )
        outputs.append(max(1, min(round(answer_words * 1.3), MIXED_OUTPUT_CAP)))
    path.write_text(json.dumps(conversations))
    return statistics.mean(outputs)


# The mean output of write_chats' file (checked when the file is written).
MIXED_MEAN_OUTPUT = 117.9


@dataclass
class Seen:
    """One request as a client reported it, tied to the server's request id."""

    rid: int
    ttft: float
    gaps: list[float] | None  # None when the client keeps no per-gap times
    span: float | None  # first to last token event


# ---------------------------------------------------------------------------- clients


class Client:
    name = ""

    def command(self, row: Row, url: str, out: Path) -> list[str]:
        raise NotImplementedError

    def load(self, out: Path, log: dict[str, Any]) -> list[Seen]:
        raise NotImplementedError

    def extra(self, out: Path) -> dict[str, Any]:
        return {}

    def finished(self, out: Path) -> float | None:
        """When the client had done all of the level's work (its clock), where it says."""
        return None

    def sleeps(self, out: Path) -> int | None:
        return None


class Kitt(Client):
    name = "kitt"

    def __init__(self, aiohttp: bool = False) -> None:
        self.aiohttp = aiohttp
        if aiohttp:
            self.name = "kitt (aiohttp, before)"

    def command(self, row: Row, url: str, out: Path) -> list[str]:
        mixed = (
            ["--dataset", str(out.parent / "chats.json"), "--rate", str(row.rate), "--burstiness", str(row.burstiness)]
            if row.shape == "mixed"
            else []
        )
        mixed += ["--rate", str(row.rate), "--burstiness", "1"] if row.shape == "poisson" else []
        mixed += ["--turns", str(TURNS)] if row.shape in SESSION_SHAPES else []
        mixed += ["--think-ms", str(THINK_MS)] if row.shape == "think" else []
        low, high = THINK_RANGE_MS
        mixed += ["--think-ms", str(low), "--think-max-ms", str(high)] if row.shape == "thinkvar" else []
        mixed += ["--trace", str(out.parent / f"trace-c{row.concurrency}.jsonl")] if row.shape == "trace" else []
        return (
            [
                sys.executable,
                str(HERE / "clients" / "kitt_bench.py"),
                "--url",
                url,
                "--concurrency",
                str(row.concurrency),
                "--num-requests",
                str(row.requests),
                "--output-len",
                str(row.output_len),
                "--out",
                str(out / "kitt.json"),
            ]
            + (["--aiohttp"] if self.aiohttp else [])
            + mixed
        )

    def finished(self, out: Path) -> float | None:
        return json.loads((out / "kitt.json").read_text()).get("finished")

    def sleeps(self, out: Path) -> int | None:
        """How often the client slept waiting (voluntary context switches) during the level."""
        return json.loads((out / "kitt.json").read_text()).get("sleeps")

    def extra(self, out: Path) -> dict[str, Any]:
        """The schedule lag (send minus due time); for sessions also of their later turns alone
        (a first turn goes when a stream is free, a later one when its answer is in: that is the
        send the next turn's building can make late)."""
        sent = [
            r
            for r in json.loads((out / "kitt.json").read_text())["requests"]
            if r.get("scheduled") is not None and r["sent"]
        ]
        lags = _stats("schedule_lag_ms", [(r["sent"] - r["scheduled"]) * 1e3 for r in sent])
        later = [(r["sent"] - r["scheduled"]) * 1e3 for r in sent if (r.get("turn") or 1) > 1]
        if later:
            lags.update(_stats("later_turn_lag_ms", later))
        return lags

    def load(self, out: Path, log: dict[str, Any]) -> list[Seen]:
        # On prompt head and the server's prompt count: a session's turns share their head, and so
        # may a trace's requests; those still alike pair up in order (server arrival, client send).
        by_prompt: dict[tuple[str, int | None], list[int]] = {}
        for r in sorted(log["requests"], key=lambda r: r["arrival"]):
            by_prompt.setdefault((r["prompt_head"], r["prompt_tokens"]), []).append(r["rid"])
        seen = []
        for r in sorted(json.loads((out / "kitt.json").read_text())["requests"], key=lambda r: r["sent"] or 0):
            rids = by_prompt.get((r["prompt_head"], r.get("prompt_tokens")))
            if r["error"] is None and rids and r["events"]:
                events = r["events"]
                seen.append(
                    Seen(
                        rids.pop(0),
                        events[0] - r["sent"],
                        [b - a for a, b in zip(events, events[1:])],
                        events[-1] - events[0],
                    )
                )
        return seen


class VllmBench(Client):
    name = "vllm bench serve"

    def __init__(self, python: Path, tokenizer: Path) -> None:
        self.python, self.tokenizer = python, tokenizer

    def command(self, row: Row, url: str, out: Path) -> list[str]:
        return [
            str(self.python),
            str(HERE / "clients" / "vllm_bench.py"),
            "--backend",
            "openai",
            "--base-url",
            url,
            "--endpoint",
            "/v1/completions",
            "--model",
            "reference",
            "--tokenizer",
            str(self.tokenizer),
            "--dataset-name",
            "random",
            "--random-input-len",
            "32",
            "--random-output-len",
            str(row.output_len),
            "--num-prompts",
            str(row.requests),
            "--max-concurrency",
            str(row.concurrency),
            "--ignore-eos",
            "--ready-check-timeout-sec",
            "0",
            "--disable-tqdm",
            "--save-result",
            "--save-detailed",
            "--result-dir",
            str(out),
            "--result-filename",
            "vllm.json",
        ]

    def load(self, out: Path, log: dict[str, Any]) -> list[Seen]:
        data = json.loads((out / "vllm.json").read_text())
        seen = []
        for text, ttft, itls in zip(data["generated_texts"], data["ttfts"], data["itls"]):
            match = re.match(r"\s*r(\d+)", text or "")
            if match and ttft:
                seen.append(Seen(int(match.group(1)), ttft, list(itls), sum(itls)))
        return seen


class GuideLLM(Client):
    name = f"GuideLLM {GUIDELLM_VERSION}"

    def __init__(self, bin_dir: Path, tokenizer: Path) -> None:
        self.bin_dir, self.tokenizer = bin_dir, tokenizer

    def command(self, row: Row, url: str, out: Path) -> list[str]:
        return [
            str(self.bin_dir / "guidellm"),
            "run",
            "--backend",
            f"kind=openai_http,target={url},model=reference,request_format=/v1/completions",
            "--profile",
            f"kind=concurrent,streams={row.concurrency}",
            "--constraint",
            f"kind=max_requests,count={row.requests}",
            "--data",
            f"kind=synthetic_text,prompt_tokens=32,output_tokens={row.output_len}",
            "--tokenizer",
            f"kind=huggingface_auto,model={self.tokenizer}",
            "--output",
            f"kind=json,path={out / 'guidellm.json'}",
            "--disable-console-interactive",
        ]

    def load(self, out: Path, log: dict[str, Any]) -> list[Seen]:
        data = json.loads((out / "guidellm.json").read_text())
        seen = []
        for benchmark in data["benchmarks"]:
            for r in benchmark["requests"]["successful"]:
                match = re.match(r"cmpl-(\d+)$", r.get("response_id") or "")
                t = r["info"]["timings"]
                if match and t.get("first_token_iteration") and t.get("request_start"):
                    seen.append(
                        Seen(
                            int(match.group(1)),
                            t["first_token_iteration"] - t["request_start"],
                            None,
                            t["last_token_iteration"] - t["first_token_iteration"],
                        )
                    )
        return seen


def ensure_guidellm() -> Path:
    """GuideLLM's own venv under ~/.cache/kitt-bench (CPU torch from /opt/wheels when there)."""
    venv = CACHE / f"guidellm-{GUIDELLM_VERSION}"
    if (venv / "bin" / "guidellm").exists():
        return venv / "bin"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    wheels = sorted(Path("/opt/wheels").glob("torch-*+cpu-*.whl"))
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", *map(str, wheels[-1:]), f"guidellm[recommended]=={GUIDELLM_VERSION}"],
        check=True,
    )
    return venv / "bin"


def ensure_tokenizer(python: Path) -> Path:
    """The tiny BPE tokenizer that vLLM's random dataset and GuideLLM's synthetic data need."""
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    import vllm_cpu

    return vllm_cpu.make_tiny_model(CACHE / "tiny-model", python)


# ---------------------------------------------------------------------------- measuring


class CpuSampler(threading.Thread):
    """(monotonic time, CPU seconds of the whole process tree) every ``period`` seconds."""

    def __init__(self, pid: int, period: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        tree, rescan = {self.pid}, 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= rescan:
                tree, rescan = _descendants(self.pid), now + 0.5
            total = 0
            for pid in tree:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
            self.samples.append((now, total / self.tick))
            self.stop.wait(self.period)

    def at(self, when: float) -> float:
        samples = self.samples
        for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
            if t0 <= when <= t1:
                return c0 + (c1 - c0) * (when - t0) / (t1 - t0) if t1 > t0 else c1
        return samples[-1][1] if samples and when > samples[-1][0] else (samples[0][1] if samples else 0.0)


def _descendants(root: int) -> set[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += parents.get(pid, [])
    return found


def start_server(row: Row, log: Path) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "reference_server.py"),
            "--port",
            "0",
            "--ttft-ms",
            str(TTFT_MS),
            "--itl-ms",
            str(ITL_MS),
            "--tokens-per-event",
            str(row.tokens_per_event),
            "--step-ms",
            str(row.step_ms),
            "--log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = server.stdout.readline() if server.stdout else ""
    if not line.startswith("listening "):
        server.kill()
        raise RuntimeError(f"the reference server did not start: {line!r}")
    return server, f"http://127.0.0.1:{line.split()[1]}"


def stop_server(server: subprocess.Popen[str], log: Path) -> dict[str, Any]:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    return json.loads(log.read_text())


def run_one(client: Client, row: Row, out: Path, timeout: float) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    load = Path("/proc/loadavg").read_text().split()[0]
    log_path = out / "truth.json"
    server, url = start_server(row, log_path)
    env = dict(
        os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", NO_PROXY="127.0.0.1,localhost", PYTHONPATH=str(ROOT)
    )
    command = client.command(row, url, out)
    try:
        with open(out / "client.log", "w") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            sampler = CpuSampler(process.pid)
            sampler.start()
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                code = -9
            finally:
                sampler.stop.set()
                sampler.join()
    finally:
        log = stop_server(server, log_path)
    if code != 0:
        tail = (out / "client.log").read_text()[-2000:]
        return {"client": client.name, "row": asdict(row), "error": f"exit {code}: {tail}"}
    return (
        score(client, row, client.load(out, log), log, sampler, client.finished(out), client.sleeps(out))
        | client.extra(out)
        | {"command": shlex.join(command), "loadavg_1m": load}
    )


def score(
    client: Client,
    row: Row,
    seen: list[Seen],
    log: dict[str, Any],
    sampler: CpuSampler | None,
    finished: float | None = None,
    sleeps: int | None = None,
) -> dict[str, Any]:
    """Errors against the truth log, CPU per million tokens, and the achieved token rate."""
    truth = {r["rid"]: r for r in log["requests"]}
    ttft_err, gap_err, gap_signed, mean_gap_err, mismatched = [], [], [], [], 0
    matched = []
    for s in seen:
        t = truth.get(s.rid)
        if t is None or not t["events"]:
            continue
        events = t["events"]
        matched.append(t)
        ttft_err.append((s.ttft - (events[0] - t["arrival"])) * 1e3)
        true_gaps = [b - a for a, b in zip(events, events[1:])]
        if s.gaps is not None:
            if len(s.gaps) != len(true_gaps):
                mismatched += 1
            else:
                for c, g in zip(s.gaps, true_gaps):
                    gap_err.append(abs(c - g) * 1e3)
                    gap_signed.append((c - g) * 1e3)
        if s.span is not None and len(events) > 1:
            mean_gap_err.append(abs(s.span - (events[-1] - events[0])) / (len(events) - 1) * 1e3)
    result: dict[str, Any] = {
        "client": client.name,
        "row": asdict(row),
        "matched": len(matched),
        "server_requests": len(log["requests"]),
        "event_count_mismatch": mismatched,
    }
    result |= _stats("ttft_err_ms", ttft_err) | _stats("itl_err_ms", gap_err) | _stats("mean_gap_err_ms", mean_gap_err)
    result["itl_err_signed_median_ms"] = statistics.median(gap_signed) if gap_signed else None
    step, origin = row.step_ms / 1e3, log.get("step_origin", 0.0)

    def due(planned: float) -> float:  # with steps, an event is due at the end of its plan's step
        return origin + math.ceil((planned - origin) / step - 1e-9) * step if step else planned

    lateness = [
        (e - due(t["arrival"] + (t["ttft_ms"] + i * t["itl_ms"]) / 1e3)) * 1e3
        for t in matched
        for i, e in enumerate(t["events"])
    ]
    result |= _stats("server_lateness_ms", lateness)
    if matched:
        begin = min(t["arrival"] for t in matched)
        end = max(t["events"][-1] for t in matched)
        tokens = sum(sum(t["tokens"]) for t in matched)
        result["window_s"] = end - begin
        result["tokens"] = tokens
        result["token_rate"] = tokens / (end - begin)
        if sampler is not None and sampler.samples:
            cpu = sampler.at(end) - sampler.at(begin)
            result["client_cpu_s"] = cpu
            result["cpu_s_per_mtok"] = cpu / tokens * 1e6
            if sleeps is not None:
                result["sleeps_per_ktok"] = sleeps / tokens * 1e3
            if finished is not None:
                result["cpu_s_per_mtok_to_end"] = (sampler.at(max(finished, end)) - sampler.at(begin)) / tokens * 1e6
    return result


def _stats(name: str, values: list[float]) -> dict[str, float | None]:
    if not values:
        return {f"{name}_median": None, f"{name}_p99": None}
    ordered = sorted(values)
    rank = 0.99 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    p99 = ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
    return {f"{name}_median": statistics.median(ordered), f"{name}_p99": p99}


# ---------------------------------------------------------------------------- report


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if abs(value) < 100 else f"{value:.0f}"


def _lag_label(row: dict[str, Any]) -> str:
    if row["shape"] == "turns":
        return f"{TURNS}-turn sessions, {row['concurrency']} streams (send after the previous answer)"
    if row["shape"] == "think":
        return f"{TURNS}-turn sessions, {row['concurrency']} streams (send {THINK_MS:g} ms after the previous answer)"
    if row["shape"] == "thinkvar":
        low, high = THINK_RANGE_MS
        return f"{TURNS}-turn sessions, {row['concurrency']} streams (send {low}-{high} ms after the previous answer)"
    kind = {"trace": "trace replay,", "poisson": "short, Poisson"}.get(row["shape"], "gamma")
    return f"{kind} {row['rate']:g} req/s, ≈{row['concurrency']} in flight"


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| client | row (c, tokens/event, output) | TTFT error median / p99 (ms) | per-gap ITL error median / p99 (ms)"
        " | per-request mean-gap error median (ms) | client CPU s per 1M tokens | token rate (tok/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        row = r["row"]
        label = f"{row['shape']} c={row['concurrency']} ({row['tokens_per_event']}, {row['output_len']})"
        if row["shape"] in SESSION_SHAPES:
            low, high = THINK_RANGE_MS
            think = {"think": f", think {THINK_MS:g} ms", "thinkvar": f", think {low}-{high} ms"}.get(row["shape"], "")
            label = (
                f"multi-turn, {TURNS} turns a session{think}, {row['concurrency']} streams, output {row['output_len']}"
            )
        elif row["shape"] == "trace":
            label = f"Mooncake trace replay, {row['rate']:g} req/s, ≈{row['concurrency']} in flight, output {row['output_len']}"
        elif row["shape"] == "poisson":
            label = f"short, single turn, Poisson {row['rate']:g} req/s, ≈{row['concurrency']} in flight, output {row['output_len']}"
        elif row.get("rate"):
            label = f"mixed ShareGPT, gamma {row['rate']:g} req/s (burstiness {row['burstiness']:g}), ≈{row['concurrency']} in flight, output ≤ {row['output_len']}"
        if row.get("step_ms"):
            label += f", events on {row['step_ms']:g} ms steps"
        if "error" in r:
            lines.append(f"| {r['client']} | {label} | failed: {r['error'][:80]!r} | | | | |")
            continue
        itl = (
            "n/a (keeps a per-request mean only)"
            if r["itl_err_ms_median"] is None
            else f"{_fmt(r['itl_err_ms_median'], 3)} / {_fmt(r['itl_err_ms_p99'])}"
        )
        lines.append(
            f"| {r['client']} | {label} | {_fmt(r['ttft_err_ms_median'])} / {_fmt(r['ttft_err_ms_p99'])} | {itl}"
            f" | {_fmt(r['mean_gap_err_ms_median'], 3)} | {_fmt(r.get('cpu_s_per_mtok'), 1)}"
            f" | {_fmt(r.get('token_rate'), 0)} |"
        )
    lagged = [
        r
        for r in results
        if "error" not in r
        and (r["row"].get("rate") or r["row"]["shape"] in SESSION_SHAPES)
        and r.get("schedule_lag_ms_median") is not None
    ]
    if lagged:
        lines += [
            "",
            "| client | row | schedule lag median / p99 (ms) | later turns alone: median / p99 (ms) |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['client']} | {_lag_label(r['row'])}"
            f" | {_fmt(r['schedule_lag_ms_median'], 3)} / {_fmt(r['schedule_lag_ms_p99'], 3)}"
            + (
                f" | {_fmt(r['later_turn_lag_ms_median'], 3)} / {_fmt(r['later_turn_lag_ms_p99'], 3)} |"
                if r.get("later_turn_lag_ms_median") is not None
                else " | |"
            )
            for r in lagged
        ]
    lines += [
        "",
        "Highest token rate with a median ITL error under 1 ms (per-gap; GuideLLM: per-request mean gap):",
        "",
    ]
    for name in dict.fromkeys(r["client"] for r in results):
        rates = [
            r["token_rate"]
            for r in results
            if r["client"] == name
            and "error" not in r
            and ((r["itl_err_ms_median"] if r["itl_err_ms_median"] is not None else r["mean_gap_err_ms_median"]) or 99)
            < 1.0
        ]
        lines.append(f"- {name}: {max(rates):.0f} tokens/s" if rates else f"- {name}: none of the rows")
    return "\n".join(lines)


def verdicts(results: list[dict[str, Any]], subject: str = "kitt") -> str:
    """For each row: ``subject``'s figure against half of the best other tool (vllm bench serve, GuideLLM)."""
    others = {"vllm bench serve", f"GuideLLM {GUIDELLM_VERSION}"}
    metrics = (
        ("TTFT error median", "ttft_err_ms_median"),
        ("TTFT error p99", "ttft_err_ms_p99"),
        ("ITL error median", "itl_err_ms_median"),
        ("ITL error p99", "itl_err_ms_p99"),
        ("CPU per 1M tokens", "cpu_s_per_mtok"),
    )
    lines = [
        "| row | " + " | ".join(f"{name}: {subject} / half of best other" for name, _ in metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    rows = dict.fromkeys((r["row"]["shape"], r["row"]["concurrency"]) for r in results)
    for shape, concurrency in rows:
        same = [
            r
            for r in results
            if (r["row"]["shape"], r["row"]["concurrency"]) == (shape, concurrency) and "error" not in r
        ]
        mine = next((r for r in same if r["client"] == subject), None)
        if mine is None:
            continue
        cells = []
        for _, key in metrics:
            best = [r[key] for r in same if r["client"] in others and r.get(key) is not None]
            if mine.get(key) is None or not best:
                cells.append("n/a")
                continue
            half = min(best) / 2
            cells.append(f"{_fmt(mine[key], 3)} / {_fmt(half, 3)} {'ok' if mine[key] <= half else '**missed**'}")
        lines.append(f"| {shape} c={concurrency} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if line.startswith("Model name")
        ),
        "?",
    )
    return f"{model}, {os.cpu_count()} CPUs, Python {platform.python_version()}, Linux {platform.release()}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/kitt-accuracy"))
    parser.add_argument("--clients", default="kitt,vllm,guidellm")
    parser.add_argument("--rows", default="short,chunked,long", help="shapes to run, or row names like short-c64")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every row's request count")
    parser.add_argument(
        "--server-step-ms",
        type=float,
        default=0.0,
        help="the reference server sends events at the ends of decode steps this long, as a batching engine does",
    )
    parser.add_argument(
        "--vllm-python", type=Path, help="the vLLM venv's python (default: tests/e2e/vllm_cpu.ensure_env)"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per client run")
    parser.add_argument("--render", type=Path, help="print the tables of a saved results.json; measure nothing")
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(args.render.read_text())
        print(f"{saved['date']}; {saved['machine']}; load average before {' '.join(saved['loadavg_before'])}\n")
        print(markdown(saved["results"]) + "\n\n" + verdicts(saved["results"]))
        return

    wanted = args.rows.split(",")
    rows = [r for r in default_rows() if r.shape in wanted or r.name in wanted]
    rows = [
        replace(r, requests=max(int(r.requests * args.scale), r.concurrency), step_ms=args.server_step_ms) for r in rows
    ]
    clients: list[Client] = []
    names = args.clients.split(",")
    tokenizer_python: Path | None = None
    if "kitt-aiohttp" in names:
        clients.append(Kitt(aiohttp=True))
    if "kitt" in names:
        clients.append(Kitt())
    if "vllm" in names:
        python = args.vllm_python
        if python is None:
            sys.path.insert(0, str(ROOT / "tests" / "e2e"))
            import vllm_cpu

            python = vllm_cpu.ensure_env() / "python"
        tokenizer_python = python
        clients.append(VllmBench(python, CACHE / "tiny-model"))
    if "guidellm" in names:
        bin_dir = ensure_guidellm()
        tokenizer_python = tokenizer_python or bin_dir / "python"
        clients.append(GuideLLM(bin_dir, CACHE / "tiny-model"))
    if tokenizer_python is not None:
        ensure_tokenizer(tokenizer_python)

    args.out.mkdir(parents=True, exist_ok=True)
    if any(row.shape == "mixed" for row in rows):
        mean_output = write_chats(args.out / "chats.json")
        assert abs(mean_output - MIXED_MEAN_OUTPUT) < 0.5, f"MIXED_MEAN_OUTPUT is {mean_output:.1f} now: update it"
    for row in rows:
        if row.shape == "trace":
            write_trace(args.out / f"trace-c{row.concurrency}.jsonl", row)
    clients_for_mixed = [c for c in clients if isinstance(c, Kitt) and not c.aiohttp]
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    results = []
    for row in rows:
        for client in clients:
            if row.shape in KITT_ONLY and client not in clients_for_mixed:
                continue  # the other clients would need their own dataset and arrival options
            slug = re.sub(r"\W+", "-", client.name.lower()).strip("-")
            result = run_one(client, row, args.out / f"{row.name}-{slug}", args.timeout)
            results.append(result)
            print(json.dumps({k: v for k, v in result.items() if k != "command"}), file=sys.stderr, flush=True)
    summary = {
        "date": started,
        "machine": machine(),
        "loadavg_before": load_before,
        "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
        "command": shlex.join([sys.executable, *sys.argv]),
        "server": {"ttft_ms": TTFT_MS, "itl_ms": ITL_MS},
        "results": results,
    }
    (args.out / "results.json").write_text(json.dumps(summary, indent=1))
    table = markdown(results) + "\n\n" + verdicts(results)
    (args.out / "table.md").write_text(table + "\n")
    print(f"{started}; {summary['machine']}; load average before {' '.join(load_before)}\n\n{table}")


if __name__ == "__main__":
    main()
