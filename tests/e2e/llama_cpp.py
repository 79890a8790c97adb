"""A real llama.cpp ``llama-server`` (CPU build) for kitt's end-to-end tests.

No wheel or binary of llama.cpp's server is served here, but the
``llama-cpp-python`` sdist on PyPI vendors the whole llama.cpp tree,
``tools/server`` included. This module builds that server once and serves the
tiny test model with it:

* :func:`ensure_server` downloads the sdist with pip, builds ``llama-server``
  with CMake in a temporary folder (12-17 minutes on 2 cores; 829 s here
  under ``nice`` beside other jobs; 17 MB kept) and moves the
  result into the cache, keyed by the version and the build flags; the
  vendored GGUF converter (``convert_hf_to_gguf.py``, ``conversion/``,
  ``gguf-py/``) is kept beside it;
* :func:`make_tiny_gguf` converts the tiny model of ``vllm_cpu`` to an f32
  GGUF (1.5 MB) under the vLLM test environment's Python (which has torch,
  transformers and numpy). The converter knows a BPE pre-tokenizer only by
  the hash of a known model's tokens, so it rejects the tiny tokenizer's; it
  is told ``gpt-2``, which that tokenizer is (HF's ByteLevel with its regex is
  GPT-2's split): llama-server's ``/tokenize`` gives the same ids as the HF
  tokenizer (checked on "The quick brown fox, 42 times! Hello world.");
* :func:`server_command`, :func:`start_server`, :func:`wait_ready` and
  :func:`stop_server` run it on 127.0.0.1 in its own process group.

Standard library only, never imports kitt, so it runs as a script too::

    python tests/e2e/llama_cpp.py server      # build (once), print the llama-server path
    python tests/e2e/llama_cpp.py gguf        # also make the tiny GGUF, print its path
    python tests/e2e/llama_cpp.py smoke       # start, check one request, stop

The cache folder is ``$KITT_TEST_CACHE`` or ``~/.cache/kitt-tests``. The
build needs ``cmake`` and a C++ compiler (``apt-get install cmake g++``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vllm_cpu  # noqa: E402  (a sibling module, standard library only)

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
HOST = vllm_cpu.HOST
#: The name ``/v1/models`` lists (``--alias``) and requests send as ``model``.
SERVED_MODEL_NAME = vllm_cpu.SERVED_MODEL_NAME
CONTEXT_SIZE = 1024

#: CMake configure flags. A static build (``BUILD_SHARED_LIBS=OFF``) so the
#: binary still runs after it is moved into the cache; no OpenSSL, no curl:
#: the server needs neither HTTPS nor model downloads.
CMAKE_FLAGS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DGGML_NATIVE=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DBUILD_SHARED_LIBS=OFF",
)
BUILD_JOBS = 2
#: What is kept of the vendored tree beside the binary, for the GGUF converter.
_CONVERTER_FILES = ("convert_hf_to_gguf.py", "conversion", "gguf-py")
_STAMP = "kitt-stamp.json"


def _log(message: str) -> None:
    print(f"[llama_cpp] {message}", file=sys.stderr, flush=True)


def _build_key() -> str:
    steps = {"version": LLAMA_CPP_PYTHON_VERSION, "cmake": list(CMAKE_FLAGS)}
    digest = hashlib.sha256(json.dumps(steps, sort_keys=True).encode()).hexdigest()
    return f"llama-server-{LLAMA_CPP_PYTHON_VERSION}-{digest[:12]}"


def server_dir(cache_dir: Path | None = None) -> Path:
    """The cache folder of this version and these flags (may not exist yet)."""
    return (cache_dir or vllm_cpu.cache_root()) / _build_key()


def _require_tools() -> None:
    """Fail at once, saying what to install, rather than after the download."""
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(
            f"building llama-server needs {' and '.join(missing)}, not found on PATH; "
            "install them (Debian: apt-get install cmake g++)"
        )


def _build_into(work: Path, dest: Path) -> None:
    """Download the sdist and build llama-server in ``work``; fill ``dest``."""
    vllm_cpu._run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
            "-d",
            str(work),
        ]
    )
    sdist = work / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
    vllm_cpu._run(["tar", "xzf", str(sdist), "-C", str(work)])
    source = work / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}" / "vendor" / "llama.cpp"
    build = work / "build"
    vllm_cpu._run(["cmake", "-S", str(source), "-B", str(build), *CMAKE_FLAGS])
    vllm_cpu._run(["cmake", "--build", str(build), "--target", "llama-server", f"-j{BUILD_JOBS}"])
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(build / "bin" / "llama-server", dest / "bin" / "llama-server")
    for name in _CONVERTER_FILES:
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name)
        else:
            shutil.copy2(source / name, dest / name)


def ensure_server(cache_dir: Path | None = None) -> Path:
    """Build ``llama-server`` once into the cache; return the binary's path.

    The build runs in a temporary folder beside the cache entry and is moved
    into place only when it is complete (a rename), so an interrupted build
    leaves nothing that looks finished. A lock makes parallel callers build
    once.
    """
    dest = server_dir(cache_dir)
    binary = dest / "bin" / "llama-server"
    with vllm_cpu._locked(dest.parent / f"{dest.name}.lock"):
        if (dest / _STAMP).is_file() and binary.is_file():
            return binary
        _require_tools()
        _log(f"building llama-server {LLAMA_CPP_PYTHON_VERSION} into {dest}")
        started = time.monotonic()
        dest.parent.mkdir(parents=True, exist_ok=True)
        for stale in dest.parent.glob(f".{dest.name}-*"):  # a build killed mid-way (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}-") as tmp:
            staged = Path(tmp) / "out"
            _build_into(Path(tmp), staged)
            version = subprocess.run(
                [str(staged / "bin" / "llama-server"), "--version"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if version.returncode != 0:
                raise RuntimeError(f"the new llama-server does not run: {version.stderr}")
            (staged / _STAMP).write_text(
                json.dumps(
                    {
                        "version": LLAMA_CPP_PYTHON_VERSION,
                        "cmake": list(CMAKE_FLAGS),
                        "server_version": (version.stdout + version.stderr).strip(),
                        "build_seconds": round(time.monotonic() - started),
                    },
                    indent=1,
                    sort_keys=True,
                )
                + "\n"
            )
            shutil.rmtree(dest, ignore_errors=True)
            os.rename(staged, dest)
        _log(f"llama-server built in {time.monotonic() - started:.0f} s")
    return binary


# ---------------------------------------------------------------------------
# The tiny GGUF

# Run under the vLLM venv's Python: argv[1] is the folder kept from the
# vendored tree; the rest are convert_hf_to_gguf.py's own arguments. The tiny
# tokenizer's pre-tokenizer is HF's ByteLevel with its regex, which is GPT-2's
# split, but the converter recognises a pre-tokenizer only by the hash of a
# known model's tokens; it is told the name.
_CONVERT_PROGRAM = r"""
import sys
tree = sys.argv.pop(1)
sys.path[:0] = [tree + "/gguf-py", tree]
import conversion.base
conversion.base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
import convert_hf_to_gguf
sys.argv[0] = "convert_hf_to_gguf.py"
convert_hf_to_gguf.main()
"""


def make_tiny_gguf(model_dir: Path, python: Path, cache_dir: Path | None = None) -> Path:
    """The tiny model in ``model_dir`` as an f32 GGUF in the cache (made once); its path.

    ``python`` is the vLLM venv's interpreter (it has torch and transformers).
    The file is made again when the model's files, the converter or this
    program change: the stamp beside it records all three.
    """
    tree = ensure_server(cache_dir).parent.parent
    model_stamp = vllm_cpu._read_json(Path(model_dir) / vllm_cpu._STAMP) or {}
    wanted = {
        "model_files": model_stamp.get("files") or vllm_cpu._files_digest(Path(model_dir)),
        "converter": tree.name,
        "program": vllm_cpu._sha256(_CONVERT_PROGRAM.encode()),
    }
    key = vllm_cpu._sha256(json.dumps(wanted, sort_keys=True).encode())[:12]
    dest = (cache_dir or vllm_cpu.cache_root()) / f"tiny-llama-{key}.gguf"
    stamp = dest.with_suffix(".json")
    with vllm_cpu._locked(dest.parent / f".{dest.name}.lock"):
        if dest.is_file() and vllm_cpu._read_json(stamp) == {**wanted, "sha256": vllm_cpu._sha256(dest.read_bytes())}:
            return dest
        _log(f"converting {model_dir} to {dest}")
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".gguf-") as tmp:
            staged = Path(tmp) / dest.name
            vllm_cpu._run(
                [
                    str(python),
                    "-c",
                    _CONVERT_PROGRAM,
                    str(tree),
                    str(model_dir),
                    "--outtype",
                    "f32",
                    "--outfile",
                    str(staged),
                ],
                env=vllm_cpu._clean_env({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}),
                shown=f"{python} -c <convert_hf_to_gguf with the gpt-2 pre-tokenizer> {model_dir}",
            )
            digest = vllm_cpu._sha256(staged.read_bytes())
            os.replace(staged, dest)
        stamp.write_text(json.dumps({**wanted, "sha256": digest}, indent=1, sort_keys=True) + "\n")
    return dest


def tiny_gguf(cache_dir: Path | None = None) -> tuple[Path, Path]:
    """(llama-server binary, tiny GGUF): everything built or reused from the cache."""
    binary = ensure_server(cache_dir)
    python = vllm_cpu.ensure_env(cache_dir) / "python"
    model_dir = vllm_cpu.make_tiny_model(vllm_cpu.default_model_dir(cache_dir), python)
    return binary, make_tiny_gguf(model_dir, python, cache_dir)


# ---------------------------------------------------------------------------
# The server


def server_command(binary: Path, gguf: Path, port: int) -> list[str]:
    """The command line that serves ``gguf`` on 127.0.0.1:``port`` (one slot, CPU)."""
    return [
        str(binary),
        "--model",
        str(gguf),
        "--alias",
        SERVED_MODEL_NAME,
        "--host",
        HOST,
        "--port",
        str(port),
        "--ctx-size",
        str(CONTEXT_SIZE),
        "--metrics",
        "--threads",
        "1",
    ]


def start_server(binary: Path, gguf: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """Start the server in a new process group; stop it with :func:`stop_server`."""
    command = server_command(binary, gguf, port)
    guarded = [sys.executable, "-c", vllm_cpu._DIE_WITH_PARENT, str(os.getpid()), *command]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            guarded,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> float:
    """Poll ``/health`` until 200 (503 while the model loads); the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"llama-server exited with code {proc.returncode}")
        with contextlib.suppress(OSError):
            if vllm_cpu._get(f"http://{HOST}:{port}/health", timeout=2.0)[0] == 200:
                return time.monotonic() - started
        time.sleep(0.2)
    raise TimeoutError(f"llama-server not healthy after {timeout:.0f} s")


stop_server = vllm_cpu.stop_server  # the whole process group: SIGTERM, then SIGKILL


def _smoke(binary: Path, gguf: Path) -> int:
    port = vllm_cpu.free_port()
    with tempfile.TemporaryDirectory(prefix="kitt-llama-smoke-") as tmp:
        log_path = Path(tmp) / "server.log"
        proc = start_server(binary, gguf, port, log_path)
        try:
            _log(f"healthy after {wait_ready(port, proc):.1f} s")
            body = json.dumps(
                {"model": SERVED_MODEL_NAME, "prompt": "Hello", "max_tokens": 8, "ignore_eos": True}
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
    parser.add_argument("--cache-dir", type=Path, default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("server", help="build llama-server (once), print its path")
    sub.add_parser("gguf", help="also make the tiny GGUF (once), print its path")
    sub.add_parser("smoke", help="start the server, check one request, stop")
    args = parser.parse_args(argv)
    if args.command == "server":
        print(ensure_server(args.cache_dir))
        return 0
    binary, gguf = tiny_gguf(args.cache_dir)
    if args.command == "gguf":
        print(gguf)
        return 0
    return _smoke(binary, gguf)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
