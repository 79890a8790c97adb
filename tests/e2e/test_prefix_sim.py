"""Shared prefixes and the engine's prefix cache end to end on the sim (issue 25): the sim's
block-hashed cache serves the shared prefixes, its counters give prefix_cache_hit_rate, and with
caching off the rate is 0 and TTFT higher (the sim charges prefill per uncached prompt token)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from support import run_kitt, unique_model

NO_NOISE = ["--ttft-ms=30", "--itl-ms=5", "--ttft-cv=0", "--itl-cv=0"]
SUITE = (
    "name: shared\napi: {api}\nrepeats: 3\nwarmup: 2\nseed: 11\ntests:\n"
    "  - {{name: pfx, concurrency: [4], num_requests: 16, input_len: 64, output_len: 8,\n"
    "     prefix: {{groups: 2, len: 256}}}}\n"
)


def read(out: Path) -> tuple[list[dict], list[dict], dict, dict]:
    metrics = json.loads((out / "metrics.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return (
        metrics["results"],
        [s for s in samples if not s["warmup"]],
        json.loads((out / "config.json").read_text()),
        metrics,
    )


def test_a_candidate_that_turns_caching_off_sends_the_same_requests_and_is_caught(tmp_path: Path) -> None:
    """One A/B run, as a pull request that breaks prefix caching: the baseline arm with the sim's
    cache (its default) and usage.prompt_tokens_details, the candidate with --no-enable-prefix-caching."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.format(api="completions"))
    out = tmp_path / "ab"
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
        *[f"--engine-arg={a}" for a in [*NO_NOISE, "--no-enable-prefix-caching"]],
        *[f"--baseline-engine-arg={a}" for a in [*NO_NOISE, "--enable-prompt-tokens-details"]],
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    on_results, on_samples, on_config, on_metrics = read(out / "baseline")
    off_results, off_samples, off_config, off_metrics = read(out / "candidate")
    # Both arms sent the same workload: the same fingerprint and the same exact lengths, request by request.
    assert on_config["workload"]["fingerprint"] == off_config["workload"]["fingerprint"]
    assert on_config["workload"]["tests"]["pfx"]["prefix"] == {"groups": 2, "len": 256, "skew": 0.0}
    key = lambda s: (s["run_number"], s["index"])  # noqa: E731
    assert sorted((key(s), s["prompt_tokens"]) for s in on_samples) == sorted(
        (key(s), s["prompt_tokens"]) for s in off_samples
    )
    assert {s["prompt_tokens"] for s in on_samples} == {256 + 64}  # exact: the prefix plus the test's input length
    for result in on_results:
        m = result["metrics"]
        assert m["prefix_cache_hit_rate"] > 0.5, m["prefix_cache_hit_rate"]
        mine = [s for s in on_samples if s["run_number"] == result["run_number"]]
        assert m["cached_prompt_tokens"] == sum(s["cached_tokens"] for s in mine) > 0  # from the usage
    for result in off_results:
        assert result["metrics"]["prefix_cache_hit_rate"] < 0.05 and result["metrics"]["cached_prompt_tokens"] == 0
    assert all(s["cached_tokens"] is None for s in off_samples)  # no usage details without the flag
    on_ttft = statistics.median(r["metrics"]["median_ttft_ms"] for r in on_results)
    off_ttft = statistics.median(r["metrics"]["median_ttft_ms"] for r in off_results)
    assert on_ttft < off_ttft, (on_ttft, off_ttft)
    assert any("usage.prompt_tokens_details.cached_tokens" in n for n in on_metrics["notes"])
    assert any("prefix caching off" in n for n in off_metrics["notes"])
    assert "2 shared prefixes of 256 tokens" in (out / "candidate" / "summary.md").read_text()
    # The report shows the hit rate; it gates only when the thresholds file names it.
    shown = report(out, tmp_path / "shown")
    row = "| `prefix_cache_hit_rate` ↑ |"
    assert row in shown and "not gated" in shown.split(row, 1)[1].split("\n")[0]
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_text("prefix_cache_hit_rate: 10\n")
    gated = report(out, tmp_path / "gated", "--thresholds", str(thresholds))
    assert "regression" in gated.split(row, 1)[1].split("\n")[0]


def report(out: Path, folder: Path, *extra: str) -> str:
    folder.mkdir()
    done = run_kitt("ci", "report", "--results-dir", str(out), "--output", str(folder / "report.md"), *extra)
    assert done.returncode == 0, done.stderr[-2000:]
    return (folder / "report.md").read_text()


def test_chat_prompts_open_with_the_prefix(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.format(api="chat"))
    out = tmp_path / "chat"
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
        *[f"--engine-arg={a}" for a in NO_NOISE],
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results, samples, config, metrics = read(out)
    assert {s["prompt_tokens"] for s in samples} == {256 + 64}  # the template counted once, lengths exact
    assert config["workload"]["length_method"] == "exact, engine /tokenize"
    for result in results:
        assert result["metrics"]["prefix_cache_hit_rate"] > 0.5
        assert result["metrics"]["cached_prompt_tokens"] > 0  # from the counter: no usage details asked for
    assert any(
        "cached_prompt_tokens is the change of the engine's vllm:prefix_cache_hits_total" in n for n in metrics["notes"]
    )
