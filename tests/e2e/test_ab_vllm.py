"""A/B in one job against two real vLLM CPU servers of the tiny model, up at the same time.

The candidate arm runs with ``--max-num-seqs=1``, which makes vLLM serve four concurrent streams
one at a time: measurably slower. The A/B run must catch it; an A/A run (both arms alike) must not
find a regression.
"""

from __future__ import annotations

import json

import pytest

from support import run_kitt
from e2e.test_ab_sim import report

pytestmark = pytest.mark.vllm

from e2e.test_vllm_cpu import ENGINE_ARGS, kitt_env, vllm, wait_until_gone  # noqa: E402,F401  (the fixture)

# Six pairs: on two CPU cores shared by both servers the slower arm's TTFT varies widely from pair
# to pair (a 95% CI of +41% ... +1974% around +440% with four pairs), so more pairs are needed.
LOAD = [
    "-s",
    "quick",
    "--concurrency",
    "4",
    "--num-requests",
    "8",
    "--repeats",
    "6",
    "--warmup",
    "2",
    "--output-len",
    "32",
]
BASELINE_ARGS = [arg.replace("--engine-arg=", "--baseline-engine-arg=") for arg in ENGINE_ARGS]


# The gate's family here: the key metrics a team would gate such a change on. With all 18 default
# metrics, Holm left even +440% TTFT inconclusive in one CI rehearsal: honest, but it tests nothing.
THRESHOLDS = "median_ttft_ms: 5\nmedian_e2el_ms: 5\noutput_throughput: 5\n" + "".join(
    f"{m}: off\n"
    for m in ("p99_ttft_ms", "median_tpot_ms", "p99_tpot_ms", "median_itl_ms", "p99_itl_ms", "p99_e2el_ms")
)


def ab_env(bin_dir):
    """kitt's environment for two vLLM servers up at once. By default vLLM binds each server's
    compute thread to the same core (its log: "core ids=[0]", "reserved_cpus=[1]" on this 2-core
    machine), so the two arms take turns on one core and an A/A run read +251% TTFT on one arm
    (CI rehearsal, stop 33). Unbound, with one compute thread each, the scheduler gives each
    server a core of its own."""
    return {**kitt_env(bin_dir), "VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}


def ab(vllm, tmp_path, name: str, candidate_extra: list[str]) -> tuple[int, str, dict[str, str]]:
    """``kitt run`` A/B on two native vLLM servers of the tiny model (the candidate with
    ``candidate_extra``), then the report step on the two arms."""
    bin_dir, model_dir = vllm
    out = tmp_path / name
    done = run_kitt(
        "run",
        "-e",
        "vllm",
        "--native",
        "-m",
        str(model_dir),
        "-o",
        str(out),
        *ENGINE_ARGS,
        *LOAD,
        *candidate_extra,
        *BASELINE_ARGS,
        env=ab_env(bin_dir),
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert wait_until_gone() == [], "both vLLM servers must be gone"
    for arm in ("baseline", "candidate"):
        metrics = json.loads((out / arm / "metrics.json").read_text())
        assert metrics["passed"] and all(r["metrics"]["failed"] == 0 for r in metrics["results"])
    scratch = tmp_path / f"{name}-report"
    scratch.mkdir()
    (scratch / "thresholds.yml").write_text(THRESHOLDS)
    return report(out, scratch, "--thresholds", str(scratch / "thresholds.yml"))


def test_vllm_ab(vllm, tmp_path):
    """A slower vLLM arm never reads unchanged, a failed gate is a proven TTFT regression, and an A/A pair passes. (A short name: vLLM's IPC sockets live in
    the test's tmp folder, and a Unix socket path must stay under 108 characters.)"""
    code, text, verdicts = ab(vllm, tmp_path, "slower", ["--engine-arg=--max-num-seqs=1"])
    assert "A/B in one job (interleaved)" in text and "--max-num-seqs=1" in text
    # Four streams served one at a time: every key metric must move the worse way, past the
    # threshold, and none may read unchanged or improved. Whether six pairs also prove it is not
    # fixed here: a real vLLM on two shared cores spreads the pairs widely. In CI rehearsals one
    # run proved latency-c4 TTFT (+488%) and left throughput-c4 TTFT (+234%, p = 0.014 after Holm)
    # inconclusive; another left all six inconclusive (TTFT +195% and +237%), exit 0. The sim A/B
    # test (tests/e2e/test_ab_sim.py) holds "a slower arm is caught" on a server whose noise is known.
    assert set(verdicts.values()) <= {"regression", "inconclusive"}, verdicts
    ttft = {key: verdict for key, verdict in verdicts.items() if key.endswith(":median_ttft_ms")}
    assert len(ttft) == 2, verdicts
    # A failed gate is a proven regression, and the queue shows in TTFT first.
    assert (code == 1) == ("regression" in verdicts.values()), (code, verdicts)
    assert code == 0 or "regression" in ttft.values(), verdicts
    code, text, verdicts = ab(vllm, tmp_path, "same", [])
    assert code == 0 and "regression" not in verdicts.values(), text[:4000]
    assert "The arms are identical (an A/A run)" in text
