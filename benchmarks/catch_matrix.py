"""Which serving regressions each suite catches, on a real engine: docs/catch-matrix.md.

    .venv/bin/python benchmarks/catch_matrix.py [--suites assistant,quick] [--injections aa,no-prefix-caching,...]
        [--pairs 5] [--out DIR] [--model DIR] [--engine-arg=ARG ...] [--inject NAME=ARG ...] [--docker]
    .venv/bin/python benchmarks/catch_matrix.py --table --out DIR     # the table of a finished run

For every suite and every injection it runs one ``kitt run`` in A/B mode (both servers up, the
suite's levels in balanced interleaved pairs): the baseline arm an unchanged vLLM server, the
candidate the same server with one injected regression (or none: the A/A row). Then ``kitt ci
report --fail-on-regression`` on the two arms, as a workflow's report step runs it, gives the
verdict and the exit code; a cell shows the report's headline and that exit code. It prints the
Markdown table of docs/catch-matrix.md and writes every cell's numbers to OUT/matrix.json (every
run's result sets and report stay under OUT).

By default (this repository's machines, no GPU) the engine is vLLM's CPU build serving the small
random-weight model the tests generate (tests/e2e/vllm_cpu.py, about 4.1M parameters, a context of
8,192): kitt starts both servers natively from the test venv. On a GPU runner give ``--model``
(a Hugging Face id or folder), ``--docker`` (kitt's default: vLLM's image) and the arms' shared
``--engine-arg``s (e.g. ``--engine-arg=--gpu-memory-utilization=0.45`` so that both fit), and
replace the CPU's KV-cache injection with ``--inject kv-cache=--gpu-memory-utilization=0.2``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from e2e import vllm_cpu  # noqa: E402

# name: (what it does to the candidate, the candidate's extra engine arguments)
INJECTIONS: dict[str, tuple[str, list[str]]] = {
    "aa": ("A/A: no change", []),
    "no-prefix-caching": ("prefix caching off", ["--no-enable-prefix-caching"]),
    "max-num-seqs": ("at most 2 running sequences", ["--max-num-seqs=2"]),
    "max-num-batched-tokens": ("a prefill budget of 128 tokens a step", ["--max-num-batched-tokens=128"]),
    # 10,240 tokens of the small model's KV (4 KiB a token): just over one 8,192-token context,
    # against the baseline's 1 GiB (262,144 tokens).
    "kv-cache": ("a KV cache of 10,240 tokens", ["--kv-cache-memory-bytes=41943040"]),
}
CPU_ENGINE_ARGS = ["--max-model-len=8192", "--dtype=float32", "--enforce-eager", "--kv-cache-memory-bytes=1073741824"]


def cpu_environment() -> tuple[list[str], dict[str, str], Path]:
    """kitt's arguments, environment and the model for the CPU build: the test venv first on PATH,
    one unbound compute thread a server (tests/e2e/test_ab_vllm.py says why), the KV cache set by
    ``--kv-cache-memory-bytes`` alone (vLLM's CPU build lets ``VLLM_CPU_KVCACHE_SPACE`` override
    it, so it is left out), and a short TMPDIR for vLLM's sockets."""
    bin_dir = vllm_cpu.ensure_env()
    model = vllm_cpu.make_tiny_model(vllm_cpu.default_model_dir(size="small"), bin_dir / "python", "small")
    scratch = Path(tempfile.mkdtemp(prefix="kitt-cm-"))
    env = {
        **os.environ,
        **vllm_cpu.SERVER_ENV_OVERRIDES,
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "OMP_NUM_THREADS": "1",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "TMPDIR": str(scratch),
    }
    env.pop("VLLM_CPU_KVCACHE_SPACE")
    return ["--native", *(f"--engine-arg={arg}" for arg in CPU_ENGINE_ARGS)], env, model


def kitt(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kitt", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout
    )


def gated_rows(outputs: Path) -> list[dict]:
    """The report step's ``metrics`` output, one row per (test, gated metric)."""
    lines = outputs.read_text().splitlines()
    table = json.loads(lines[next(i for i, line in enumerate(lines) if line.startswith("metrics<<")) + 1])
    return [{"test": test, "metric": metric, **row} for test, rows in table.items() for metric, row in rows.items()]


def headline(report: Path) -> str:
    """A cell's words: the report's own headline (its first heading), e.g. "❌ 8 regressions:
    median TTFT +190% and p99 TTFT +159%, and 6 other metrics"."""
    return next(line[3:] for line in report.read_text().splitlines() if line.startswith("## "))


def cell_dir(out: Path, suite: str, injection: str) -> Path:
    """Where a cell's two result sets and its report live."""
    return out / suite.replace("/", "_") / injection


def run_cell(suite: str, injection: str, extra: list[str], args, base: list[str], env, model: str) -> dict:
    out = cell_dir(args.out, suite, injection)
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    run = kitt(
        "run", "-e", "vllm", "-m", model, "-s", suite, "-o", str(out), "--repeats", str(args.pairs),
        *args.kitt_arg, *base, *(f"--engine-arg={arg}" for arg in extra),
        *(arg.replace("--engine-arg=", "--baseline-engine-arg=") for arg in base if arg.startswith("--engine-arg=")),
        env=env, timeout=args.timeout,
    )  # fmt: skip
    cell = {"suite": suite, "injection": injection, "candidate_args": extra, "run_exit": run.returncode}
    cell["minutes"] = round((time.monotonic() - started) / 60, 1)
    if run.returncode != 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.log").write_text(run.stdout + run.stderr)
        return {**cell, "cell": f"run failed (exit {run.returncode}), see {out / 'run.log'}"}
    outputs = out / "outputs.txt"
    outputs.write_text("")
    report_env = {**env, "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(outputs)}
    report = kitt(
        "ci", "report", "--results-dir", str(out), "--fail-on-regression", "--output", str(out / "report.md"),
        *args.report_arg, env=report_env, timeout=300,
    )  # fmt: skip
    if report.returncode not in (0, 1):
        (out / "report.log").write_text(report.stdout + report.stderr)
        return {**cell, "cell": f"report failed (exit {report.returncode}), see {out / 'report.log'}"}
    rows = gated_rows(outputs)
    metrics = {
        arm: [r["metrics"] for r in json.loads((out / arm / "metrics.json").read_text())["results"]]
        for arm in ("baseline", "candidate")
    }
    hit_rate = {
        arm: [m.get("prefix_cache_hit_rate") for m in runs if m.get("prefix_cache_hit_rate") is not None]
        for arm, runs in metrics.items()
    }
    return {
        **cell,
        "report_exit": report.returncode,
        "cell": headline(out / "report.md"),
        "rows": rows,
        "prefix_cache_hit_rate": {arm: round(sum(v) / len(v), 3) if v else None for arm, v in hit_rate.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", default="assistant,quick", help="comma-separated suite names or YAML paths")
    parser.add_argument(
        "--injections", default=",".join(INJECTIONS), help="comma-separated, of " + ", ".join(INJECTIONS)
    )
    parser.add_argument("--inject", action="append", default=[], metavar="NAME=ARG", help="add or replace an injection")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "catch-matrix-out")
    parser.add_argument("--model", help="default: the small test model on vLLM's CPU build")
    parser.add_argument("--docker", action="store_true", help="kitt's Docker mode (GPU runners), not the CPU venv")
    parser.add_argument("--engine-arg", action="append", default=[], help="both arms' engine arguments (with --docker)")
    parser.add_argument(
        "--kitt-arg", action="append", default=[], help="extra arguments to kitt run, e.g. --kitt-arg=--duration=10"
    )
    parser.add_argument("--report-arg", action="append", default=[], help="extra arguments to kitt ci report")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per kitt run")
    parser.add_argument("--table", action="store_true", help="only print the table of the run in --out")
    args = parser.parse_args()

    injections = dict(INJECTIONS)
    for spec in args.inject:
        name, _, arg = spec.partition("=")
        injections[name] = (arg, [arg])
    wanted = args.injections.split(",")
    unknown = [name for name in wanted if name not in injections]
    if unknown or args.pairs < 2:
        parser.error(f"unknown injection {unknown[0]}" if unknown else "--pairs must be at least 2")
    if args.table:
        print_table(json.loads((args.out / "matrix.json").read_text()), args.out)
        return 0
    if args.docker:
        if not args.model:
            parser.error("--docker needs --model")
        base, env, model = [f"--engine-arg={arg}" for arg in args.engine_arg], dict(os.environ), args.model
    else:
        base, env, model_dir = cpu_environment()
        model = args.model or str(model_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    cells = []
    for suite in args.suites.split(","):
        for name in wanted:
            cell = {"what": injections[name][0], **run_cell(suite, name, injections[name][1], args, base, env, model)}
            cells.append(cell)
            print(f"{suite} / {name}: {cell['cell']} ({cell['minutes']} min)", file=sys.stderr, flush=True)
            (args.out / "matrix.json").write_text(json.dumps(cells, indent=1) + "\n")
    print_table(cells, args.out)
    return 0


def print_table(cells: list[dict], out: Path) -> None:
    """The Markdown table: a row per injection, a column per suite, each cell the report's headline
    and ``kitt ci report --fail-on-regression``'s exit code."""
    suites = list(dict.fromkeys(c["suite"] for c in cells))
    print("| Injected into the candidate | " + " | ".join(f"`{s}`" for s in suites) + " |")
    print("|---|" + "---|" * len(suites))
    for name in dict.fromkeys(c["injection"] for c in cells):
        found = {c["suite"]: c for c in cells if c["injection"] == name}
        text = []
        for suite in suites:
            cell = found.get(suite)
            report = cell_dir(out, suite, name) / "report.md"
            if cell is None:
                text.append("not run")
            elif "report_exit" in cell:
                text.append(f"{headline(report)} (exit {cell['report_exit']})")
            else:
                text.append(cell["cell"])
        what = next(iter(found.values())).get("what") or INJECTIONS[name][0]
        print(f"| {what} | " + " | ".join(text) + " |")


if __name__ == "__main__":
    sys.exit(main())
