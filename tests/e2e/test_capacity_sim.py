"""Capacity at SLO on the real sim (``--max-num-seqs N``): the issue's truths, end to end.

With N running slots and a TTFT goal below one service time (the sim's 40 ms TTFT + 11 x 8 ms gaps
= 128 ms; the goal 100 ms), N streams never wait and N + 1 always make one request wait a whole
service time, so capacity over concurrency is exactly N in every repeat. An A/B run whose
candidate has 6 slots against the baseline's 8 is a capacity regression that fails the job; an
A/A run of 8 against 8 is not. Over request rate the same server is an N-server FIFO queue whose
truth is computed per repeat on the very arrival pattern kitt sent (tests/capacity_truth.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import capacity_truth as truth
from support import assert_no_engine_left, clean_environ, run_kitt, unique_model

from kitt.workload import arrivals

SUITE = """name: capacity-test
repeats: {repeats}
warmup: 0
tests:
  - name: chat
    num_requests: 24
    input_len: 16
    output_len: 12
    capacity: {{over: concurrency, min: 4, max: 12, slo: {{p99_ttft_ms: 100}}}}
"""


def capacity_run(
    tmp: Path, model: str, name: str, slots: int, baseline_slots: int | None = None, repeats: int = 2
) -> Path:
    suite = tmp / "capacity.yaml"
    suite.write_text(SUITE.format(repeats=repeats))
    out = tmp / name
    args = ["run", "-m", model, "-e", "sim", "-s", str(suite), "-o", str(out), f"--engine-arg=--max-num-seqs={slots}"]
    if baseline_slots is not None:
        args.append(f"--baseline-engine-arg=--max-num-seqs={baseline_slots}")
    done = run_kitt(*args, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def capacities(metrics_path: Path) -> list[float | None]:
    document = json.loads(metrics_path.read_text())
    return [r["metrics"]["capacity"] for r in document["results"] if r["test_name"] == "chat-capacity"]


def test_capacity_over_concurrency_is_exactly_the_slots_in_every_repeat(tmp_path: Path) -> None:
    model = unique_model()
    out = capacity_run(tmp_path, model, "five", slots=5, repeats=2)
    document = json.loads((out / "metrics.json").read_text())
    assert capacities(out / "metrics.json") == [5.0, 5.0]
    for result in document["results"]:
        assert result["metrics"]["capacity_upper"] == 6.0 and result["metrics"]["capacity_bound"] == 0.0
    # The curve keeps every probed level: the 5-stream level met the goal, the 6-stream one missed it.
    curves = document["capacity_curves"]
    assert [c["run_number"] for c in curves] == [1, 2]
    for curve in curves:
        by_load = {p["load"]: p for p in curve["probes"]}
        assert len(curve["probes"]) == document["results"][0]["metrics"]["capacity_probes"]
        assert by_load[5.0]["meets_slo"] and by_load[5.0]["p99_ttft_ms"] <= 100
        assert not by_load[6.0]["meets_slo"] and by_load[6.0]["p99_ttft_ms"] > 100
        assert all(p["output_throughput"] > 0 and p["per_user_tokens_per_s"] > 0 for p in curve["probes"])
    # summary.md draws run 1's curve (its SLO line, the capacity starred) and says where the boundary lies.
    summary = (out / "summary.md").read_text()
    levels = len(curves[0]["probes"])
    loads = len({p["load"] for p in curves[0]["probes"]})
    probed = f"{levels} levels" + (f" at {loads} loads" if loads != levels else "")
    assert (
        f"`chat-capacity`: {probed} probed in run 1; the SLO (p99 TTFT ≤ 100 ms) held up to 5 streams "
        "and failed at 6 streams."
    ) in summary, summary
    chart = summary.split("```mermaid")[1].split("```")[0]
    assert '"5 ★", "6"' in chart and 'line "SLO" [100,' in chart and 'line "this run"' in chart
    assert "| 5 |" in summary and "| 6 |" in summary  # the probe table
    assert_no_engine_left(model)


def report(out: Path, tmp: Path) -> tuple[int, str]:
    outputs = tmp / "outputs"
    outputs.write_text("")
    done = run_kitt(
        "ci",
        "report",
        "--results-dir",
        str(out),
        "--fail-on-regression",
        "--output",
        str(tmp / "report.md"),
        env=clean_environ(GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(outputs)),
    )
    return done.returncode, (tmp / "report.md").read_text()


def test_fewer_slots_is_a_capacity_regression_and_an_a_a_run_is_not(tmp_path: Path) -> None:
    model = unique_model()
    fewer = capacity_run(tmp_path, model, "ab", slots=6, baseline_slots=8, repeats=3)
    assert capacities(fewer / "baseline" / "metrics.json") == [8.0] * 3
    assert capacities(fewer / "candidate" / "metrics.json") == [6.0] * 3
    code, text = report(fewer, tmp_path)
    assert code == 1, text[:3000]
    headline = text.splitlines()[1]
    assert headline == "## ❌ 1 regression: capacity -25% (p99 TTFT ≤ 100 ms): 8 → 6 streams", headline
    # The curves, baseline beside the candidate: where each side's SLO held and failed.
    assert (
        "held up to 8 streams and failed at 9 streams in the baseline" in text
        and "held up to 6 streams and failed at 7 streams in this run" in text
    ), text[:3000]

    same = capacity_run(tmp_path, model, "aa", slots=8, baseline_slots=8, repeats=3)
    code, text = report(same, tmp_path)
    assert code == 0 and text.splitlines()[1].startswith("## ✅"), text[:3000]
    assert_no_engine_left(model)


RATE_SUITE = """name: capacity-rate
repeats: 1
warmup: 0
tests:
  - name: mixed
    duration_s: 3
    num_requests: 96
    mix: [{{weight: 3, input_len: 8, output_len: 12}}, {{weight: 1, input_len: 64, output_len: 12}}]
    capacity: {{over: request_rate, min: 1, max: 32, precision_pct: 10, slo: {{p99_ttft_ms: 100}}}}
"""


def test_over_request_rate_each_probe_is_a_level_of_the_tests_workload(tmp_path: Path) -> None:
    """Probes build their requests through the workload plan (a mixture, exact lengths through the
    sim's /tokenize, time-boxed by duration_s); 2 slots of 30 + 11 x 10 ms serve at most 14.3
    req/s, so no rate above that can meet a TTFT goal of 100 ms."""
    suite = tmp_path / "rate.yaml"
    suite.write_text(RATE_SUITE.format())
    out = tmp_path / "rate"
    done = run_kitt(
        "run",
        "-m",
        unique_model(),
        "-e",
        "sim",
        "-s",
        str(suite),
        "-o",
        str(out),
        "--engine-arg=--max-num-seqs=2",
        "--engine-arg=--ttft-ms=30",
        "--engine-arg=--itl-ms=10",
        "--engine-arg=--ttft-cv=0",
        "--engine-arg=--itl-cv=0",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads((out / "metrics.json").read_text())
    (result,) = document["results"]
    metrics = result["metrics"]
    assert result["test_name"] == "mixed-capacity" and metrics["capacity_bound"] == 0.0, metrics
    assert 1.0 <= metrics["capacity"] < 2 / 0.140, metrics
    assert metrics["capacity_upper"] <= metrics["capacity"] * 1.10 + 1e-9  # bracketed within the precision
    (curve,) = document["capacity_curves"]
    assert len(curve["probes"]) == metrics["capacity_probes"] and curve["over"] == "request_rate"
    sent = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert sent and {(s["prompt_tokens"], s["completion_tokens"]) for s in sent} <= {(8, 12), (64, 12)}
    config = json.loads((out / "config.json").read_text())
    assert config["workload"]["length_method"] == "exact, engine /tokenize"
    assert config["workload"]["tests"]["mixed"]["requests"] == len(sent)
    assert config["suite"]["tests"][0]["capacity"]["over"] == "request_rate"


TRUTH_SUITE = """name: capacity-truth
repeats: 2
warmup: 0
seed: {seed}
tests:
  - name: chat
    num_requests: {requests}
    input_len: 8
    output_len: {output_len}
    capacity: {{over: request_rate, min: 20, max: 160, precision_pct: {precision}, slo: {{p99_ttft_ms: {slo_ms}}}}}
"""
SLOTS, TTFT_MS, ITL_MS, OUTPUT_LEN, SLO_MS, REQUESTS, PRECISION = 8, 40.0, 10.0, 7, 80.0, 60, 10.0
SEED = 3  # its two repeats' truths move by under 4% when the goal moves by the jitter allowed (asserted below)
JITTER_MS = 5.0  # what kitt's measured p99 TTFT may differ from the queue's: loopback, event loops, a loaded CI box


def test_over_request_rate_capacity_is_within_its_precision_of_the_queues_truth(tmp_path: Path) -> None:
    """N slots with a fixed service time are an N-server FIFO queue; kitt sends every probe of a
    repeat the same unit-rate Poisson pattern scaled by 1/rate, so each probe's p99 TTFT and each
    repeat's capacity (the highest rate whose p99 TTFT meets the goal) are computed exactly by
    simulating the queue on that pattern (tests/capacity_truth.py). kitt's capacity must lie within
    its stated precision of that truth in every repeat, the truth taken with the goal moved by the
    timing jitter allowed, and each probe's measured p99 within that jitter of the queue's."""
    service = (TTFT_MS + (OUTPUT_LEN - 1) * ITL_MS) / 1e3
    suite = tmp_path / "truth.yaml"
    suite.write_text(
        TRUTH_SUITE.format(seed=SEED, requests=REQUESTS, output_len=OUTPUT_LEN, precision=PRECISION, slo_ms=SLO_MS)
    )
    out = tmp_path / "truth"
    done = run_kitt(
        "run",
        "-m",
        unique_model(),
        "-e",
        "sim",
        "-s",
        str(suite),
        "-o",
        str(out),
        f"--engine-arg=--max-num-seqs={SLOTS}",
        f"--engine-arg=--ttft-ms={TTFT_MS:g}",
        f"--engine-arg=--itl-ms={ITL_MS:g}",
        "--engine-arg=--ttft-cv=0",
        "--engine-arg=--itl-cv=0",
        "--engine-arg=--prefill-ms-per-token=0",
        "--engine-arg=--itl-ms-per-seq=0",
        "--engine-arg=--kv-cache-tokens=0",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads((out / "metrics.json").read_text())
    curves = {c["run_number"]: c for c in document["capacity_curves"]}
    assert len(document["results"]) == 2
    for result in document["results"]:
        run, metrics = result["run_number"], result["metrics"]
        unit = arrivals.schedule(arrivals.Arrival(), 1.0, REQUESTS, f"{SEED}:chat-capacity:{run}:arrivals")
        truths = [
            truth.truth_rate(unit, SLOTS, service, TTFT_MS / 1e3, (SLO_MS + d) / 1e3, 1.0, 1000.0)
            for d in (-JITTER_MS, 0.0, JITTER_MS)
        ]
        low, exact, high = truths
        assert high / low < 1.08, truths  # the seed's precondition: the truth is well conditioned
        for probe in curves[run]["probes"]:
            computed = truth.p99_ttft(unit, probe["load"], SLOTS, service, TTFT_MS / 1e3) * 1e3
            assert abs(probe["p99_ttft_ms"] - computed) <= JITTER_MS, (run, probe, computed)
        assert metrics["capacity_bound"] == 0.0, metrics
        capacity, upper = metrics["capacity"], metrics["capacity_upper"]
        assert upper <= capacity * (1 + PRECISION / 100) + 1e-9, metrics
        # Within the stated precision of the truth: the truth lies in [capacity, upper].
        assert low / (1 + PRECISION / 100) <= capacity <= high, (run, metrics, truths)
