"""What kitt costs before it measures anything: command start-up, imports and a cold install.

    python benchmarks/startup.py            # start-up and import figures (seconds)
    python benchmarks/startup.py --install  # also a cold install of requirements.lock (network)

The figures go into docs/performance.md with the machine and this command. Start-up is the
median of repeated runs of the real CLI in a child process; the install is one run into a new
virtual environment with pip's cache disabled, as on a fresh CI runner.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_MODULES = "github, numpy, jinja2, yaml, requests, pynvml, actions_toolkit.core"


def timed(command: list[str], runs: int, cwd: Path = ROOT) -> float:
    """Median wall time of ``command`` over ``runs`` runs (after one warm-up run)."""
    subprocess.run(command, cwd=cwd, capture_output=True, check=True)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def sample_results(root: Path) -> Path:
    """A small result set made by the sim engine, to time `kitt ci report --output` on."""
    out = root / "results"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "kitt",
            "run",
            "-m",
            "sim-model",
            "-e",
            "sim",
            "-o",
            str(out),
            "--num-requests",
            "4",
            "--repeats",
            "2",
            "--warmup",
            "0",
            "--output-len",
            "8",
        ],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return out


def cold_install(root: Path) -> tuple[float, int]:
    """Seconds and bytes for `pip install --constraint requirements.lock .` into a new venv."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    started = time.perf_counter()
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--constraint",
            str(ROOT / "requirements.lock"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file())
    return seconds, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--install", action="store_true", help="also time a cold install (needs the network)")
    args = parser.parse_args()
    kitt = [sys.executable, "-m", "kitt"]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        results = sample_results(root)
        figures = {
            "python -c pass": timed([sys.executable, "-c", "pass"], args.runs),
            "kitt --help": timed([*kitt, "--help"], args.runs),
            "kitt ci report --output": timed(
                [*kitt, "ci", "report", "--results-dir", str(results), "--output", str(root / "report.md")], args.runs
            ),
            f"import {RUNTIME_MODULES}": timed([sys.executable, "-c", f"import {RUNTIME_MODULES}"], args.runs),
        }
        if args.install:
            seconds, size = cold_install(root)
            figures["cold install (s)"] = seconds
            figures["installed venv (MB)"] = size / 1e6
        shutil.rmtree(root / "venv", ignore_errors=True)
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}, indent=1))


if __name__ == "__main__":
    main()
