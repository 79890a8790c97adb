"""Produce the other tools' result files with the REAL tools, against kitt's sim server.

For each tool, three sides: ``baseline`` and ``same`` (the same server, another seed: an A/A
pair) and ``slower`` (TTFT and ITL 30% longer: a regression). Each side is three repeats at
two load levels, concurrency 2 and 6 (AIPerf, which runs one level per start and is slow to
start, only 2). The files land in ``OUT/<tool>/<side>/`` exactly as the tool wrote them.
Used by ``tests/importers/test_harness_tools.py`` (marker ``harness``) at test time, and, once, to
produce the committed files under ``tests/importers/fixtures``::

    python tests/importers/make_fixtures.py --tool vllm --out tests/importers/fixtures
    python tests/importers/make_fixtures.py --tool guidellm --out tests/importers/fixtures
    python tests/importers/make_fixtures.py --tool aiperf --out tests/importers/fixtures
    python tests/importers/make_fixtures.py --tool inference-perf --out tests/importers/fixtures
    python tests/importers/make_fixtures.py --tool llmperf --llmperf-src DIR --out tests/importers/fixtures
    python tests/importers/make_fixtures.py --tool genai-perf --out tests/importers/fixtures

(LLMPerf is not on PyPI: DIR is a checkout of ray-project/llmperf at harness_tools.LLMPERF_COMMIT.)

Standard library only; the tools run in their own environments (``harness_tools.py``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import harness_tools as tools  # noqa: E402

TTFT_MS, ITL_MS = 40.0, 8.0
SIDES = {"baseline": 1, "same": 2, "slower": 3}  # the sim server's seed; "slower" is SLOWDOWN times slower
SLOWDOWN = 1.3
LEVELS = (2, 6)
AIPERF_LEVELS = (2,)  # AIPerf starts a dozen services per run: about 2 minutes a run on a busy 2-core machine
REPEATS = 3
REQUESTS = 12  # per level and repeat
INPUT_LEN, OUTPUT_LEN = 16, 16
MODEL = "sim-model"


def start_sim(ttft: float, itl: float, seed: int) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kitt.engines.simserver",
            "--port",
            "0",
            "--model",
            MODEL,
            "--ttft-ms",
            str(ttft),
            "--itl-ms",
            str(itl),
            "--seed",
            str(seed),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    line = server.stdout.readline() if server.stdout else ""
    if not line.startswith("listening "):
        server.kill()
        raise RuntimeError(f"the sim server did not start: {line!r}")
    return server, f"http://127.0.0.1:{line.split()[1]}"


def stop_sim(server: subprocess.Popen[str]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def vllm_commands(
    url: str, out: Path, tokenizer: Path, levels: tuple[int, ...], repeats: int, requests: int
) -> list[list[str]]:
    """One command a repeat; ``make`` runs them all in one process (``_one_vllm_process``)."""
    commands = []
    for repeat in range(1, repeats + 1):
        runs: list[str] = []
        for level in levels:
            runs += [
                "--next",
                "--backend",
                "openai",
                "--base-url",
                url,
                "--endpoint",
                "/v1/completions",
                "--model",
                MODEL,
                "--tokenizer",
                str(tokenizer),
                "--dataset-name",
                "random",
                "--random-input-len",
                str(INPUT_LEN),
                "--random-output-len",
                str(OUTPUT_LEN),
                "--num-prompts",
                str(requests),
                "--max-concurrency",
                str(level),
                "--ignore-eos",
                "--ready-check-timeout-sec",
                "0",
                "--disable-tqdm",
                "--seed",
                str(repeat),
                "--percentile-metrics",
                "ttft,tpot,itl,e2el",
                "--metric-percentiles",
                "50,90,99",
                "--save-result",
                "--result-dir",
                str(out),
                "--result-filename",
                f"vllm-c{level}-run{repeat}.json",
            ]
        commands.append([str(tools.vllm_python()), str(HERE / "vllm_bench_runs.py"), *runs])
    return commands


def _one_vllm_process(commands: list[list[str]]) -> list[list[str]]:
    """vLLM's imports take ~15 s a start: every run goes to one ``vllm_bench_runs.py``, in order."""
    return [[*commands[0][:2], *(arg for command in commands for arg in command[2:])]]


def guidellm_commands(
    url: str, out: Path, tokenizer: Path, levels: tuple[int, ...], repeats: int, requests: int
) -> list[list[str]]:
    streams = ",".join(map(str, levels))
    return [
        [
            str(tools.guidellm_bin()),
            "run",
            "--backend",
            f"kind=openai_http,target={url},model={MODEL},request_format=/v1/completions",
            "--profile",
            "kind=concurrent",
            "--override",
            "profile.streams",
            streams,
            "--constraint",
            f"kind=max_requests,count={requests}",
            "--data",
            f"kind=synthetic_text,prompt_tokens={INPUT_LEN},output_tokens={OUTPUT_LEN}",
            "--tokenizer",
            f"kind=huggingface_auto,model={tokenizer}",
            "--output",
            f"kind=json,path={out / f'guidellm-run{repeat}.json'}",
            "--disable-console-interactive",
        ]
        for repeat in range(1, repeats + 1)
    ]


def aiperf_commands(
    url: str, out: Path, tokenizer: Path, levels: tuple[int, ...], repeats: int, requests: int, multi_run: bool = False
) -> list[list[str]]:
    """One AIPerf start per repeat and level; or, with ``multi_run``, one per level with
    ``--num-profile-runs`` (AIPerf's own repeats: ``profile_runs/run_NNNN/`` and an aggregate)."""

    def command(level: int, repeat: int, extra: list[str], folder: str) -> list[str]:
        return [
            str(tools.aiperf_bin()),
            "profile",
            "--model",
            MODEL,
            "--url",
            url,
            "--endpoint-type",
            "completions",
            "--streaming",
            "--use-server-token-count",
            "--concurrency",
            str(level),
            "--request-count",
            str(requests),
            "--synthetic-input-tokens-mean",
            str(INPUT_LEN),
            "--synthetic-input-tokens-stddev",
            "0",
            "--output-tokens-mean",
            str(OUTPUT_LEN),
            "--output-tokens-stddev",
            "0",
            "--extra-inputs",
            "ignore_eos:true",
            "--tokenizer",
            str(tokenizer),
            "--random-seed",
            str(repeat),
            "--ui-type",
            "none",
            *extra,
            "--artifact-dir",
            str(out / folder),
        ]

    if multi_run:
        return [command(level, 1, ["--num-profile-runs", str(repeats)], f"c{level}") for level in levels]
    return [command(level, repeat, [], f"c{level}-run{repeat}") for repeat in range(1, repeats + 1) for level in levels]


INFERENCE_PERF_CONFIG = """\
load:
  type: concurrent
  num_workers: 1
  stages:
{stages}
api: {{type: completion, streaming: true}}
server: {{type: vllm, model_name: {model}, base_url: "{url}", ignore_eos: true}}
tokenizer: {{pretrained_model_name_or_path: "{tokenizer}"}}
data:
  type: random
  input_distribution: {{min: {input_len}, max: {input_len}, mean: {input_len}, std_dev: 0, type: fixed}}
  output_distribution: {{min: {output_len}, max: {output_len}, mean: {output_len}, std_dev: 0, type: fixed}}
report:
  request_lifecycle: {{summary: true, per_stage: true, per_request: false, use_server_output_tokens: true}}
  prometheus: null
storage:
  local_storage: {{path: "{out}"}}
"""


def inference_perf_commands(
    url: str, out: Path, tokenizer: Path, levels: tuple[int, ...], repeats: int, requests: int
) -> list[list[str]]:
    """One config file a repeat (inference-perf takes its load from one), beside the side's folder."""
    stages = "\n".join(f"  - {{num_requests: {requests}, concurrency_level: {level}}}" for level in levels)
    commands = []
    for repeat in range(1, repeats + 1):
        config = out.parent / f".{out.name}-run{repeat}.yml"
        config.write_text(
            INFERENCE_PERF_CONFIG.format(
                stages=stages,
                model=MODEL,
                url=url,
                tokenizer=tokenizer,
                input_len=INPUT_LEN,
                output_len=OUTPUT_LEN,
                out=out / f"run{repeat}",
            )
        )
        commands.append([str(tools.inference_perf_bin()), "--config_file", str(config)])
    return commands


LLMPERF_SOURCE: list[Path] = []  # set by --llmperf-src
LLMPERF_INPUT_LEN = 64  # its prompt template alone is about 50 tokens: a mean below loops forever


def llmperf_commands(
    url: str, out: Path, tokenizer: Path, levels: tuple[int, ...], repeats: int, requests: int
) -> list[list[str]]:
    """LLMPerf reads its endpoint from the environment; ``env`` passes it (and the HF home) per command."""
    source = LLMPERF_SOURCE[0]
    python, home = tools.llmperf_python(source), tools.llmperf_hf_home()
    environment = [
        "env",
        f"OPENAI_API_BASE={url}/v1",
        "OPENAI_API_KEY=kitt-sim",
        f"HF_HOME={home}",
        "RAY_USAGE_STATS_ENABLED=0",
    ]
    return [
        [
            *environment,
            str(python),
            str(source / "token_benchmark_ray.py"),
            "--model",
            MODEL,
            "--llm-api",
            "openai",
            "--num-concurrent-requests",
            str(level),
            "--max-num-completed-requests",
            str(requests),
            "--mean-input-tokens",
            str(LLMPERF_INPUT_LEN),
            "--stddev-input-tokens",
            "0",
            "--mean-output-tokens",
            str(OUTPUT_LEN),
            "--stddev-output-tokens",
            "0",
            "--timeout",
            "120",
            "--results-dir",
            str(out / f"run{repeat}" / f"c{level}"),
        ]
        for repeat in range(1, repeats + 1)
        for level in levels
    ]


def genai_perf_commands(
    url: str, out: Path, tokenizer: Path, levels: tuple[int, ...], repeats: int, requests: int
) -> list[list[str]]:
    """genai-perf drives perf_analyzer (one level a start); it writes into a folder it names itself."""
    genai_perf, settings = tools.genai_perf_env()
    return [
        [
            "env",
            *settings,
            str(genai_perf),
            "profile",
            "-m",
            MODEL,
            "--endpoint-type",
            "completions",
            "--streaming",
            "--url",
            url.removeprefix("http://"),
            "--concurrency",
            str(level),
            "--request-count",
            str(requests),
            "--synthetic-input-tokens-mean",
            str(INPUT_LEN),
            "--synthetic-input-tokens-stddev",
            "0",
            "--output-tokens-mean",
            str(OUTPUT_LEN),
            "--output-tokens-stddev",
            "0",
            "--random-seed",
            str(repeat),
            "--tokenizer",
            str(tokenizer),
            "--artifact-dir",
            str(out / f"run{repeat}" / f"c{level}"),
        ]
        for repeat in range(1, repeats + 1)
        for level in levels
    ]


COMMANDS = {
    "vllm": vllm_commands,
    "guidellm": guidellm_commands,
    "aiperf": aiperf_commands,
    "inference-perf": inference_perf_commands,
    "llmperf": llmperf_commands,
    "genai-perf": genai_perf_commands,
}
DEFAULT_LEVELS = {
    "vllm": LEVELS,
    "guidellm": LEVELS,
    "aiperf": AIPERF_LEVELS,
    "inference-perf": LEVELS,
    "llmperf": LEVELS,
    "genai-perf": LEVELS,
}


def make(
    tool: str,
    out: Path,
    levels: tuple[int, ...] | None = None,
    repeats: int = REPEATS,
    requests: int = REQUESTS,
    timeout: float = 300,
    slowdown: float = SLOWDOWN,
    multi_run: bool = False,
) -> dict[str, Path]:
    """Run ``tool`` against the sim server for each side; return each side's folder.

    ``slowdown``: how much slower the ``slower`` side's server is; ``multi_run``: AIPerf's own
    repeats in one start (``--num-profile-runs``) instead of one start per repeat."""
    tokenizer = tools.tokenizer_dir()
    folders, servers, per_side = {}, [], {}
    try:
        for side, seed in SIDES.items():
            ttft, itl = (TTFT_MS * slowdown, ITL_MS * slowdown) if side == "slower" else (TTFT_MS, ITL_MS)
            folder = folders[side] = out / tool / side
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            server, url = start_sim(ttft, itl, seed)
            servers.append(server)
            extra = {"multi_run": True} if multi_run else {}
            per_side[side] = COMMANDS[tool](
                url, folder, tokenizer, levels or DEFAULT_LEVELS[tool], repeats, requests, **extra
            )
        # The sides take turns, repeat by repeat, so that a machine slowing down over the minutes
        # this takes shifts all three alike: run side after side, a busy CI machine once read its
        # A/A pair as a 14% regression of p99 ITL (three repeats a side, all three slower).
        turns = [
            commands[i]
            for i in range(max(map(len, per_side.values())))
            for commands in per_side.values()
            if i < len(commands)
        ]
        if tool == "vllm":
            turns = _one_vllm_process(turns)
        log = out / tool / ".runs.log"
        for command in turns:
            with open(log, "a") as sink:
                code = subprocess.run(
                    command,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=tools.tool_env(offline=tool != "aiperf"),
                    timeout=timeout * (len(SIDES) if tool == "vllm" else 1),
                ).returncode
            if code != 0:
                raise RuntimeError(f"{tool} exited {code}; see {log}:\n{log.read_text()[-3000:]}")
    finally:
        for server in servers:
            stop_sim(server)
    return folders


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", choices=sorted(COMMANDS), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--llmperf-src", type=Path, help="a checkout of ray-project/llmperf (for --tool llmperf)")
    args = parser.parse_args()
    if args.tool == "llmperf":
        if args.llmperf_src is None:
            parser.error("--tool llmperf needs --llmperf-src DIR, a checkout of ray-project/llmperf")
        LLMPERF_SOURCE.append(args.llmperf_src.resolve())
    for side, folder in make(args.tool, args.out).items():
        print(side, folder)
