"""The real benchmark tools for the bring-your-own-harness tests, each in its own cached venv.

    vllm bench serve   the vLLM CPU venv that tests/e2e/vllm_cpu.py builds (already part of the suite)
    GuideLLM 0.8.1     <cache>/guidellm-0.8.1, the pins in pins/guidellm-0.8.1.txt installed with
                       --no-deps; GuideLLM's data loader imports torch, pinned at 2.13.0, which pip
                       takes from the CPU build these machines keep on disk (pip's find-links,
                       /opt/wheels); unpinned, it would pull a multi-GB CUDA build
    AIPerf 0.13.0      <cache>/aiperf-0.13.0, pins/aiperf-0.13.0.txt the same way (no torch)
    inference-perf     <cache>/inference-perf-0.7.0, pins/inference-perf-0.7.0.txt the same way (no
      0.7.0            torch in its resolution), on a Python >= 3.12 (it requires one): python3.13,
                       python3.12 on PATH or pyenv's; for tests/importers/make_fixtures.py only
    LLMPerf f1d6bed    <cache>/llmperf-f1d6bed: not on PyPI, so its source is a checkout of
                       ray-project/llmperf@f1d6bed (passed in: no GitHub at test time), installed
                       editable (its sonnet.txt is no package data) over pins/llmperf-f1d6bed.txt
                       (its imports' resolution: ray, pandas, transformers<5, boto3, pydantic<2.5)
                       on Python 3.10 (it requires < 3.11); for make_fixtures.py only
    genai-perf 0.0.16  <cache>/genai-perf-0.0.16, pins/genai-perf-0.0.16.txt as _venv does, plus the
                       perf_analyzer it drives: PyPI's perf-analyzer is a placeholder; tritonclient
                       2.47.0's manylinux wheel carries a perf_analyzer binary this glibc (2.36) runs
                       (2.52-2.60 need glibc 2.38; 2.48-2.51 untried); it needs libcudart.so.12 (the
                       nvidia-cuda-runtime-cu12 wheel, also pinned; no GPU is used) and libb64.so.0d
                       (Debian's libb64-0d); for make_fixtures.py only

The pins are pip's own resolution (``pip install --dry-run --report r.json TOOL==VERSION`` in a
fresh venv), less triton and the nvidia-*/cuda-* wheels. Measured on 2026-12-01 with pip's cache
disabled (load 2.4-4.7): GuideLLM's venv in 141 s, AIPerf's in 162 s.

The cache is ``$KITT_TEST_CACHE`` or ``~/.cache/kitt-tests``. A venv is reused when its stamp
matches its pins; build one by hand with ``python tests/importers/harness_tools.py guidellm``.
Standard library only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
import vllm_cpu  # noqa: E402

GUIDELLM_VERSION = "0.8.1"
AIPERF_VERSION = "0.13.0"
INFERENCE_PERF_VERSION = "0.7.0"
LLMPERF_COMMIT = "f1d6bed47e4501b0e371082b41601b59ab55269f"
GENAI_PERF_VERSION = "0.0.16"
LLMPERF_TOKENIZER = "hf-internal-testing/llama-tokenizer"  # hard-coded in LLMPerf
_STAMP = "kitt-stamp.json"


def tool_env(offline: bool = True) -> dict[str, str]:
    """What every tool runs with: offline, no proxy for loopback, no caller's PYTHONPATH.

    AIPerf 0.13.0 in HF offline mode looks a local tokenizer folder up as a cached hub repo
    and fails; online, it loads the folder directly (and asks no hub for a local path)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    # GuideLLM spawns up to 10 worker processes, each importing it anew; one serves these few streams,
    # and it starts in about 25 s instead of 37 here.
    env.update(
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        DO_NOT_TRACK="1",
        VLLM_NO_USAGE_STATS="1",
        PYTHONUNBUFFERED="1",
        GUIDELLM__MAX_WORKER_PROCESSES="1",
    )
    if offline:
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    else:
        for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            env.pop(key, None)
    return env


def vllm_python() -> Path:
    return vllm_cpu.ensure_env() / "python"


def tokenizer_dir() -> Path:
    """The tiny model's folder (a BPE tokenizer.json) that every tool's synthetic prompts use."""
    return vllm_cpu.make_tiny_model(vllm_cpu.default_model_dir(), vllm_python())


def _venv(name: str, version: str, check: str) -> Path:
    root = vllm_cpu.cache_root() / f"{name}-{version}"
    bin_dir = root / "bin"
    pins = (HERE / "pins" / f"{name}-{version}.txt").read_text().split()
    wanted = {"pins": pins, "flags": ["--no-deps"]}
    with vllm_cpu._locked(root.parent / f"{root.name}.lock"):
        if vllm_cpu._read_json(root / _STAMP) == wanted and (bin_dir / "python").exists():
            return bin_dir
        started = time.monotonic()
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, stdout=sys.stderr)
        requirements = root / "requirements.txt"
        requirements.write_text("\n".join(pins) + "\n")
        subprocess.run(
            [
                str(bin_dir / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--progress-bar",
                "off",
                "--disable-pip-version-check",
                "-r",
                str(requirements),
            ],
            check=True,
            stdout=sys.stderr,
            env=tool_env(),
        )
        subprocess.run([str(bin_dir / "python"), "-c", check], check=True, stdout=sys.stderr, env=tool_env())
        (root / _STAMP).write_text(json.dumps(wanted, sort_keys=True) + "\n")
        print(f"[tools] {name} {version} venv ready in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return bin_dir


def guidellm_bin() -> Path:
    return _venv("guidellm", GUIDELLM_VERSION, "import guidellm.__main__") / "guidellm"


def aiperf_bin() -> Path:
    return _venv("aiperf", AIPERF_VERSION, "import aiperf.cli") / "aiperf"


def python312() -> Path | None:
    """A Python >= 3.12 (inference-perf requires one), or None where this machine has none."""
    found = [shutil.which(name) for name in ("python3.13", "python3.12")]
    found += [str(p) for p in sorted((Path.home() / ".pyenv" / "versions").glob("3.1[23]*/bin/python"))]
    for candidate in filter(None, found):
        probe = subprocess.run(
            [candidate, "-c", "import sys, venv; print(sys.version_info >= (3, 12))"], capture_output=True, text=True
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return Path(candidate)
    return None


def inference_perf_bin() -> Path:
    """inference-perf 0.7.0 in its own venv, built like _venv's but on a Python >= 3.12."""
    python = python312()
    if python is None:
        raise RuntimeError("inference-perf needs Python >= 3.12 and none was found (python3.12, pyenv)")
    version = INFERENCE_PERF_VERSION
    root = vllm_cpu.cache_root() / f"inference-perf-{version}"
    bin_dir = root / "bin"
    pins = (HERE / "pins" / f"inference-perf-{version}.txt").read_text().split()
    wanted = {"pins": pins, "flags": ["--no-deps"], "python": str(python)}
    with vllm_cpu._locked(root.parent / f"{root.name}.lock"):
        if vllm_cpu._read_json(root / _STAMP) != wanted or not (bin_dir / "inference-perf").exists():
            started = time.monotonic()
            shutil.rmtree(root, ignore_errors=True)
            subprocess.run([str(python), "-m", "venv", str(root)], check=True, stdout=sys.stderr)
            (root / "requirements.txt").write_text("\n".join(pins) + "\n")
            subprocess.run(
                [
                    str(bin_dir / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-deps",
                    "--progress-bar",
                    "off",
                    "--disable-pip-version-check",
                    "-r",
                    str(root / "requirements.txt"),
                ],
                check=True,
                stdout=sys.stderr,
                env=tool_env(),
            )
            subprocess.run(
                [str(bin_dir / "python"), "-c", "import inference_perf.main"],
                check=True,
                stdout=sys.stderr,
                env=tool_env(),
            )
            (root / _STAMP).write_text(json.dumps(wanted, sort_keys=True) + "\n")
            print(f"[tools] inference-perf {version} venv ready in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return bin_dir / "inference-perf"


def _python(version: str) -> Path | None:
    """pyenv's newest ``version``.x, else ``python<version>`` on PATH (a pyenv shim may not run: not first)."""
    found = sorted((Path.home() / ".pyenv" / "versions").glob(f"{version}.*/bin/python"))
    on_path = shutil.which(f"python{version}")
    return found[-1] if found else Path(on_path) if on_path else None


def llmperf_python(source: Path) -> Path:
    """A venv for LLMPerf at ``source`` (a checkout of ray-project/llmperf at LLMPERF_COMMIT)."""
    python = _python("3.10")
    if python is None:
        raise RuntimeError("LLMPerf requires Python < 3.11 and no python3.10 was found (PATH, pyenv)")
    if not (source / "token_benchmark_ray.py").is_file():
        raise RuntimeError(f"{source} is not a checkout of ray-project/llmperf (no token_benchmark_ray.py)")
    root = vllm_cpu.cache_root() / f"llmperf-{LLMPERF_COMMIT[:7]}"
    bin_dir = root / "bin"
    pins = (HERE / "pins" / f"llmperf-{LLMPERF_COMMIT[:7]}.txt").read_text().split()
    wanted = {"pins": pins, "flags": ["--no-deps"], "python": str(python), "source": str(source)}
    with vllm_cpu._locked(root.parent / f"{root.name}.lock"):
        if vllm_cpu._read_json(root / _STAMP) != wanted or not (bin_dir / "python").exists():
            shutil.rmtree(root, ignore_errors=True)
            subprocess.run([str(python), "-m", "venv", str(root)], check=True, stdout=sys.stderr)
            (root / "requirements.txt").write_text("\n".join(pins) + "\n")
            pip = [
                str(bin_dir / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--progress-bar",
                "off",
                "--disable-pip-version-check",
            ]
            subprocess.run([*pip, "-r", str(root / "requirements.txt")], check=True, stdout=sys.stderr, env=tool_env())
            subprocess.run([*pip, "-e", str(source)], check=True, stdout=sys.stderr, env=tool_env())
            (root / _STAMP).write_text(json.dumps(wanted, sort_keys=True) + "\n")
    return bin_dir / "python"


def llmperf_hf_home() -> Path:
    """An HF home whose hub cache holds the tiny model's tokenizer under LLMPerf's hard-coded name.

    LLMPerf loads ``hf-internal-testing/llama-tokenizer`` from the hub, which cannot be reached
    here; offline, transformers finds this snapshot instead. Its counts are the tiny tokenizer's."""
    home = vllm_cpu.cache_root() / "llmperf-hf-home"
    repo = home / "hub" / f"models--{LLMPERF_TOKENIZER.replace('/', '--')}"
    snapshot = repo / "snapshots" / ("0" * 39 + "1")
    snapshot.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_dir() / name, snapshot / name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(snapshot.name)
    return home


def genai_perf_env() -> tuple[Path, list[str]]:
    """genai-perf, and the ``NAME=value`` settings that let it find perf_analyzer and its libraries."""
    import ctypes.util

    if ctypes.util.find_library("b64") is None:
        raise RuntimeError("perf_analyzer needs libb64.so.0d: apt-get install libb64-0d")
    bin_dir = _venv("genai-perf", GENAI_PERF_VERSION, "import genai_perf.main")
    if not (bin_dir / "perf_analyzer").exists():
        raise RuntimeError(f"{bin_dir} has no perf_analyzer: the tritonclient pin must be its manylinux wheel")
    cudart = sorted(bin_dir.parent.glob("lib/python*/site-packages/nvidia/cuda_runtime/lib"))
    return bin_dir / "genai-perf", [
        f"PATH={bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        f"LD_LIBRARY_PATH={cudart[0] if cudart else ''}",
    ]


if __name__ == "__main__":
    print({"guidellm": guidellm_bin, "aiperf": aiperf_bin, "vllm": vllm_python}[sys.argv[1]]())
