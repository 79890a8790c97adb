"""The ``kitt`` command: parse arguments, call the library, print one line on failure.

Heavy modules are imported inside the command functions, so ``kitt --help`` stays fast.
Exit codes: 0 success; 1 benchmark failure, missing results, API error, or a regression with
--fail-on-regression; 2 usage error.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NoReturn, Sequence

from kitt import __version__
from kitt.errors import KittError, UsageError, print_engine_log
from kitt.redact import neutralise, safe_line

if TYPE_CHECKING:
    from kitt.net import NetPolicy
    from kitt.github.actions_io import ActionsContext, Annotations

DESCRIPTION = "Benchmark LLM inference engines and gate pull requests on performance regressions."


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors as kitt's: one line, an ``::error`` annotation under Actions,
    exit 2 (argparse's own prints the whole usage block). ``--help`` is unchanged."""

    def error(self, message: str) -> NoReturn:
        raise SystemExit(report_failure(UsageError(f"{self.prog}: {message}", hint=f"See `{self.prog} --help`.")))


def _whole_number(text: str, minimum: int, maximum: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise argparse.ArgumentTypeError(f"expected a number <= {maximum}, got {value}")
    return value


def _port(text: str) -> int:
    return _whole_number(text, 1, 65535)


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def _repeats(text: str) -> int | str:
    return "auto" if text.strip().lower() == "auto" else _whole_number(text, 1)


def _float_above(text: str, minimum: float, inclusive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < minimum or (value == minimum and not inclusive) or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a number {'>=' if inclusive else '>'} {minimum:g}, got {text}")
    return value


# kitt.workload.datasets.FORMATS, written out so that ``kitt --help`` imports no workload code.
DATASET_FORMATS = ("openai-chat", "sharegpt", "prompts")


def _positive_float(text: str) -> float:
    return _float_above(text, 0.0, inclusive=False)


def _percentage(text: str) -> float:
    return _float_above(text, 0.0, inclusive=True)


def _cache_dir(text: str) -> Path:
    """A folder to mount into the engine's container: absolute, no ':' or ',' (they split a
    --volume spec), and not an existing file."""
    path = Path(text).expanduser().absolute()
    if not text.strip() or ":" in str(path) or "," in str(path):
        raise argparse.ArgumentTypeError(f"expected a folder path without ':' or ',', got {text!r}")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file, not a folder")
    return path


def _gpus(text: str) -> str:
    from kitt.engines.container import parse_gpus

    try:
        return parse_gpus(text)
    except UsageError:
        raise argparse.ArgumentTypeError(f"expected all, none or GPU indexes like 0,1, got {text!r}") from None


def _add_container_cli(parser: argparse.ArgumentParser) -> None:
    import os

    parser.add_argument(
        "--container-cli",
        choices=("docker", "podman"),
        default=os.environ.get("KITT_CONTAINER_CLI") or None,
        help="container CLI for Docker mode (default: $KITT_CONTAINER_CLI, else docker, "
        "else podman when only podman is installed)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kitt", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"kitt {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="benchmark a model on an engine and write a result set",
        description="Benchmark a model on an engine and write metrics.json, samples.jsonl, "
        "hardware.json, config.json and summary.md into OUTPUT.",
    )
    run.add_argument("-m", "--model", required=True, help="model id, local path (or GGUF file for llama-cpp)")
    run.add_argument("-e", "--engine", required=True, help="vllm, sglang, tgi, llama-cpp, ollama, sim or openai")
    run.add_argument(
        "-s",
        "--suite",
        default="quick",
        help="quick, standard, performance, chat, capacity, assistant, or a suite YAML path",
    )
    run.add_argument("-o", "--output", required=True, type=Path, help="directory for the result set")
    run.add_argument("--endpoint", help="URL of a running OpenAI-compatible server (engine openai)")
    run.add_argument("--concurrency", help="closed-loop streams for every test, a sweep like 1,4,16")
    run.add_argument(
        "--request-rate",
        type=_positive_float,
        help="open loop: arrivals at this many requests/s (Poisson, unless the suite says gamma or constant)",
    )
    run.add_argument("--num-requests", type=_positive_int, help="measured requests per repeat and level")
    run.add_argument(
        "--input-len",
        type=_positive_int,
        help="prompt length in tokens (exact where the engine has a tokenizer kitt can ask)",
    )
    run.add_argument("--output-len", type=_positive_int, help="output length in tokens")
    run.add_argument(
        "--duration",
        type=_positive_float,
        metavar="SECONDS",
        help="time-box every level: no new request after SECONDS (in-flight ones finish and count); "
        "with --num-requests, whichever comes first",
    )
    run.add_argument("--dataset", metavar="PATH", help="send prompts from this file instead of synthetic ones")
    run.add_argument("--dataset-format", choices=DATASET_FORMATS, help="the dataset's format (default: openai-chat)")
    run.add_argument(
        "--repeats",
        type=_repeats,
        help="repeats per level, or auto: A/B pairs, or repeats against "
        "--history-dir, until every gated metric is decided (docs/gpu-minutes.md)",
    )
    run.add_argument(
        "--history-dir",
        type=Path,
        metavar="DIR",
        help="with --repeats auto on one arm: decide each level against these baseline jobs' result sets, "
        "one per subfolder (as `kitt ci report --baseline-dir` takes a history; at least 3 jobs)",
    )
    run.add_argument(
        "--min-repeats",
        type=_positive_int,
        help="with --repeats auto: pairs (or repeats) before the first look (default 3)",
    )
    run.add_argument(
        "--max-repeats", type=_positive_int, help="with --repeats auto: pairs (or repeats) at most (default 10)"
    )
    run.add_argument("--warmup", type=_non_negative_int, help="warm-up requests per level, not measured")
    run.add_argument("--seed", type=_non_negative_int, help="seed for prompts and arrival times")
    run.add_argument("--api", choices=("completions", "chat"), help="OpenAI API to call (default: the engine's)")
    run.add_argument("--engine-image", help="Docker image to run instead of the engine's default")
    run.add_argument(
        "--engine-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra server argument, repeatable (use --engine-arg=--flag for dashes)",
    )
    run.add_argument("--port", type=_port, help="host port for the engine (default: a free one)")
    run.add_argument("--native", action="store_true", help="run the engine's own server command, not Docker")
    run.add_argument(
        "--engine-cache",
        type=_cache_dir,
        metavar="DIR",
        help="Docker mode: keep the engines' compile caches here between runs "
        "(default under Actions: $RUNNER_TOOL_CACHE/kitt/engine-cache)",
    )
    _add_container_cli(run)
    run.add_argument(
        "--gpus", type=_gpus, default="all", help="GPUs for the container: all (default), none, or indexes like 0,1"
    )
    run.add_argument(
        "--ready-timeout",
        type=_positive_float,
        help="seconds to wait for the engine (default: 900, or 30 for an --endpoint)",
    )
    net = run.add_argument_group("network (the engine's endpoint)", "HTTP(S)_PROXY and NO_PROXY are honoured")
    net.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="variable holding the API key, sent as a bearer token (default: OPENAI_API_KEY)",
    )
    net.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a header for every request to the engine, repeatable (values never written out)",
    )
    net.add_argument(
        "--request-timeout",
        type=_positive_float,
        metavar="S",
        help="seconds for one whole response (default: 60 + 0.5 per output token)",
    )
    ab = run.add_argument_group(
        "A/B in one job",
        "Any of these runs a baseline arm beside the candidate (the options "
        "above) in balanced interleaved pairs, writing OUTPUT/baseline and OUTPUT/candidate",
    )
    ab.add_argument("--baseline-engine-image", metavar="IMAGE", help="the baseline arm's Docker image")
    ab.add_argument(
        "--baseline-engine-arg",
        action="append",
        metavar="ARG",
        help="the baseline arm's server argument, repeatable (replaces --engine-arg for that arm)",
    )
    ab.add_argument("--baseline-model", metavar="MODEL", help="the baseline arm's model")
    ab.add_argument("--baseline-endpoint", metavar="URL", help="the baseline arm's running server (engine openai)")
    ab.add_argument(
        "--ab-schedule",
        choices=("interleaved", "blocks"),
        default="interleaved",
        help="interleaved: both servers up, pairs back to back (default); blocks: one server at a time, "
        "ABBA, for models that fit only once",
    )
    run.set_defaults(handler=_cmd_run)

    engines = commands.add_parser("engines", help="list engines, prepare one, or remove leftovers")
    engine_commands = engines.add_subparsers(dest="engines_command", required=True, metavar="ACTION")
    listing = engine_commands.add_parser("list", help="print the engines and their modes")
    listing.set_defaults(handler=_cmd_engines_list)
    setup = engine_commands.add_parser("setup", help="pull the engine's image, or check its native command")
    setup.add_argument("name")
    setup.add_argument("--native", action="store_true")
    setup.add_argument("--engine-image")
    _add_container_cli(setup)
    setup.set_defaults(handler=_cmd_engines_setup)
    cleanup = engine_commands.add_parser("cleanup", help="remove engine containers left by dead kitt runs")
    cleanup.add_argument("--all", action="store_true", help="remove every kitt container on this host")
    _add_container_cli(cleanup)
    cleanup.set_defaults(handler=_cmd_engines_cleanup)

    ci = commands.add_parser("ci", help="CI helpers")
    ci_commands = ci.add_subparsers(dest="ci_command", required=True, metavar="ACTION")
    report = ci_commands.add_parser("report", help="compare with a baseline, report, comment and gate")
    report.add_argument(
        "--results-dir",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="directory with the new metrics.json (or another tool's result files: vllm bench serve, GuideLLM, AIPerf...); repeat it to report on a matrix's jobs in one "
        "comment (each job is named after its folder)",
    )
    report.add_argument(
        "--jobs-dir",
        type=Path,
        metavar="DIR",
        help="instead of --results-dir: a folder with one result set per subfolder (one per matrix "
        "job, as download-artifact's `pattern:` writes them), all in one comment",
    )
    report.add_argument(
        "--baseline-dir",
        type=Path,
        help="directory with the baseline metrics.json or tool files (optional); "
        "for several jobs, one subfolder per job, named like the job's folder",
    )
    report.add_argument(
        "--baseline-artifact",
        metavar="NAME",
        help="download the baseline: the newest artifact NAME from the base branch (needs --repo); "
        "for several jobs, a pattern: each job's baseline is the artifact of its folder's name",
    )
    report.add_argument(
        "--baseline-history",
        type=_positive_int,
        default=10,
        metavar="N",
        help="compare with up to N baseline jobs, newest first (downloaded with --baseline-artifact, "
        "or one per subfolder of --baseline-dir); 3 or more measure run-to-run drift (default 10)",
    )
    report.add_argument(
        "--base-branch",
        help="with --baseline-artifact: the branch (default: $GITHUB_BASE_REF, else the repository's default branch)",
    )
    report.add_argument("--github-token", help="token to post the PR comment (default: $GITHUB_TOKEN)")
    report.add_argument("--repo", help="owner/repo")
    report.add_argument("--pr", type=_positive_int, help="pull request number")
    report.add_argument("--output", type=Path, help="write the report to this file instead of posting it")
    report.add_argument("--threshold", type=_percentage, default=5.0, help="regression threshold in percent")
    report.add_argument("--thresholds", type=Path, help="YAML of per-metric thresholds in percent")
    report.add_argument("--fail-on-regression", action="store_true", help="exit 1 when a regression is found")
    report.add_argument("--comment-key", help="own one comment per key (matrix jobs)")
    report.add_argument("--summary", action="store_true", help="append the report to $GITHUB_STEP_SUMMARY")
    report.add_argument(
        "--allow-hardware-mismatch", action="store_true", help="gate even when the baseline ran on different hardware"
    )
    report.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="gate even when the baseline measured another model, engine or suite",
    )
    report.add_argument(
        "--require-comment",
        action="store_true",
        help="fail when the comment cannot be posted (e.g. a fork's read-only token)",
    )
    report.set_defaults(handler=_cmd_ci_report)
    trend = ci_commands.add_parser(
        "trend",
        help="find change points in the base branch's history of jobs",
        description="Find where each gated metric's level changed over a history of "
        "jobs (one result set per subfolder of --history-dir), and which commit it was.",
    )
    trend.add_argument("--history-dir", required=True, type=Path, help="folder with one result set per subfolder")
    trend.add_argument("--output", type=Path, help="write the Markdown here instead of printing it")
    trend.add_argument("--json", type=Path, help="write the change points as JSON here")
    trend.add_argument("--thresholds", type=Path, help="YAML of per-metric thresholds: which metrics are searched")
    trend.add_argument("--summary", action="store_true", help="append the Markdown to $GITHUB_STEP_SUMMARY")
    trend.set_defaults(handler=_cmd_ci_trend)
    upload = ci_commands.add_parser(
        "upload-artifact",
        help="upload files as an artifact of this workflow run",
        description="Upload files with GitHub's artifacts v4 protocol. Needs "
        "ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL, which the runner gives to "
        "Docker and JavaScript actions.",
    )
    upload.add_argument("--name", required=True, help="artifact name, unique in the run")
    upload.add_argument("path", type=Path, help="a file or a directory")
    upload.add_argument("--retention-days", type=_positive_int)
    upload.set_defaults(handler=_cmd_ci_upload)
    return parser


def _net_policy(args: argparse.Namespace) -> NetPolicy:
    """The network policy: the key and proxies come from the environment here, the one place the CLI reads them."""
    import os

    from kitt.net import NetPolicy

    return NetPolicy.from_environ(
        os.environ, api_key_env=args.api_key_env, headers=args.header, request_timeout=args.request_timeout
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from kitt.config import BaselineArm, Overrides, RunConfig, apply_overrides, load_suite, parse_concurrency_list
    from kitt.github.actions_io import ActionsContext
    from kitt.progress import Reporter
    from kitt.run import run_benchmark

    if args.concurrency and args.request_rate:
        raise UsageError("--concurrency and --request-rate exclude each other", hint="Pick closed or open loop.")
    overrides = Overrides(
        concurrency=parse_concurrency_list(args.concurrency) if args.concurrency else None,
        request_rate=args.request_rate,
        num_requests=args.num_requests,
        input_len=args.input_len,
        output_len=args.output_len,
        duration_s=args.duration,
        dataset=args.dataset,
        dataset_format=args.dataset_format,
        repeats=args.repeats,
        min_repeats=args.min_repeats,
        max_repeats=args.max_repeats,
        warmup=args.warmup,
        seed=args.seed,
        api=args.api,
    )
    config = RunConfig(
        model=args.model,
        engine=args.engine,
        suite=apply_overrides(load_suite(args.suite), overrides),
        output=args.output,
        endpoint=args.endpoint,
        engine_image=args.engine_image,
        engine_args=tuple(args.engine_arg),
        port=args.port,
        native=args.native,
        ready_timeout=args.ready_timeout,
        baseline=BaselineArm.named(
            args.baseline_model, args.baseline_engine_image, args.baseline_engine_arg, args.baseline_endpoint
        ),
        ab_schedule=args.ab_schedule,
        container_cli=args.container_cli,
        gpus=args.gpus,
        net=_net_policy(args),
        history_dir=args.history_dir,
    )
    context = ActionsContext.from_environment()
    _mask_run_secrets(config.net, (args.endpoint, args.baseline_endpoint), context.in_actions)
    config = replace(
        config,
        commit=context.sha,
        branch=context.ref_name,  # recorded in config.json
        engine_cache=args.engine_cache or context.engine_cache,
    )
    outcome = run_benchmark(config, Reporter(groups=context.in_actions))
    print(safe_line(f"Results written to {outcome.output}"))
    if config.baseline is not None:
        print(
            safe_line(
                f"Compare: kitt ci report --results-dir {outcome.output / 'candidate'} "
                f"--baseline-dir {outcome.output / 'baseline'}"
            )
        )
    return 0


def _mask_run_secrets(net: NetPolicy, urls: Sequence[str | None], in_actions: bool) -> None:
    """Under Actions, every credential of the run (key, headers, proxy and URL passwords) is masked."""
    from kitt.github.actions_io import mask
    from kitt.redact import url_secrets

    for secret in (*net.secrets(), *(s for url in urls for s in url_secrets(url))):
        mask(secret, in_actions)


def _cmd_engines_list(args: argparse.Namespace) -> int:
    from kitt.engines import ENGINES

    for spec in ENGINES.values():
        print(f"{spec.name:<10} {'/'.join(spec.modes):<15} {spec.description}")
    return 0


def _cmd_engines_setup(args: argparse.Namespace) -> int:
    from kitt.engines import get_engine

    spec = get_engine(args.name)
    if args.native or "docker" not in spec.modes:
        if "native" in spec.modes or spec.default_mode == "sim":
            from kitt.engines.native import check_native_command

            print(f"{spec.name}: native command found at {check_native_command(spec)}")
        else:
            print(f"{spec.name}: nothing to set up ({spec.description})")
        return 0
    from kitt.engines.container import qualified_image, resolve_cli
    from kitt.engines.docker import ensure_image, image_digest

    cli = resolve_cli(args.container_cli)
    image = qualified_image(cli, args.engine_image or spec.image or "")
    ensure_image(image, cli=cli)
    print(f"{spec.name}: {image} is present ({image_digest(image, cli=cli) or 'no registry digest'})")
    return 0


def _cmd_engines_cleanup(args: argparse.Namespace) -> int:
    from kitt.engines.container import resolve_cli
    from kitt.engines.docker import remove_orphans

    removed = remove_orphans(everything=args.all, cli=resolve_cli(args.container_cli))
    print(safe_line(f"removed {len(removed)} container(s)" + (f": {' '.join(removed)}" if removed else "")))
    return 0


def _cmd_ci_report(args: argparse.Namespace) -> int:
    import os

    from kitt.ci import ReportOptions, execute_ci_report
    from kitt.github.actions_io import ActionsContext, Annotations, mask, set_outputs

    context = ActionsContext.from_environment()
    token = args.github_token or os.environ.get("GITHUB_TOKEN") or None
    mask(token, context.in_actions)
    annotations = Annotations(enabled=context.in_actions)
    if bool(args.results_dir) == bool(args.jobs_dir):
        raise UsageError(
            "give --results-dir (once per job) or --jobs-dir, one of the two",
            hint="For example `--results-dir kitt-results`; see `kitt ci report --help`.",
        )
    first, *more = args.results_dir or [args.jobs_dir]
    baseline_dir = args.baseline_dir
    if args.baseline_artifact:
        baseline_dir = _download_baseline(args, token, context, annotations)
    options = ReportOptions(
        results_dir=first,
        more_results=tuple(more),
        results_are_jobs=args.jobs_dir is not None,
        baseline_dir=baseline_dir,
        github_token=token,
        repo=args.repo,
        pr=args.pr,
        output=args.output,
        threshold=args.threshold,
        thresholds_file=args.thresholds,
        fail_on_regression=args.fail_on_regression,
        comment_key=args.comment_key,
        summary=args.summary,
        allow_hardware_mismatch=args.allow_hardware_mismatch,
        allow_mismatch=args.allow_mismatch,
        baseline_history=args.baseline_history,
        require_comment=args.require_comment,
        summary_path=context.summary_path,
        api_url=context.api_url,
        run_url=context.run_url,
        repo_url=f"{context.server_url.rstrip('/')}/{args.repo}" if args.repo else None,
    )
    outcome = execute_ci_report(options)
    annotations.tell(outcome.notices)
    annotations.flush()
    if context.in_actions:
        set_outputs(outcome.outputs, context.output_path, annotations)
    return outcome.exit_code


def _download_baseline(
    args: argparse.Namespace, token: str | None, context: ActionsContext, annotations: Annotations
) -> Path | None:
    from kitt.ci import fetch_baselines
    from kitt.github.baseline import is_pattern

    if not (token and args.repo):
        raise UsageError("--baseline-artifact needs --repo and a token (--github-token or GITHUB_TOKEN)")
    if args.baseline_dir:
        raise UsageError("give --baseline-dir or --baseline-artifact, not both")
    jobs = [p for p in args.results_dir if p.is_dir()] if len(args.results_dir) > 1 else []
    if args.jobs_dir and args.jobs_dir.is_dir():
        jobs = [p for p in args.jobs_dir.iterdir() if p.is_dir()]
    if jobs and not is_pattern(args.baseline_artifact):
        raise UsageError(
            "for several jobs, --baseline-artifact must be a pattern (e.g. 'kitt-results-*')",
            hint="Each job is compared with the base branch's artifact named like its folder.",
        )
    found = fetch_baselines(
        token=token,
        repo=args.repo,
        artifact=args.baseline_artifact,
        jobs=[p.name for p in jobs] if jobs else None,
        base_branch=args.base_branch or context.base_ref,
        api_url=context.api_url,
        history=args.baseline_history,
        temp_dir=context.temp_dir,
    )
    annotations.tell(found.notices)
    return found.path


def _cmd_ci_trend(args: argparse.Namespace) -> int:
    from kitt.ci import write_text
    from kitt.github.actions_io import ActionsContext, Annotations, append_summary
    from kitt.report.trend import render_trend
    from kitt.thresholds import load_thresholds
    from kitt.trend import analyse, load_history, write_change_points

    thresholds = load_thresholds(args.thresholds)
    trend = analyse(load_history(args.history_dir), thresholds)
    markdown = render_trend(trend)
    if args.json:
        write_change_points(args.json, trend.change_points)
    if args.output:
        write_text(args.output, markdown, "the trend")
    else:
        sys.stdout.write(neutralise(markdown))
    if args.summary:
        context = ActionsContext.from_environment()
        annotations = Annotations(enabled=context.in_actions)
        # As `ci report` does: a missing or unwritable step summary is a warning, never a traceback.
        if context.summary_path is None:
            annotations.warning(
                "--summary was given but there is no step summary file to append to (GITHUB_STEP_SUMMARY is unset)."
            )
        else:
            try:
                append_summary(markdown, context.summary_path)
            except OSError as exc:
                annotations.warning(
                    f"Could not append to the step summary {context.summary_path}: {exc.strerror or exc}"
                )
    return 0


def _cmd_ci_upload(args: argparse.Namespace) -> int:
    from kitt.github.artifacts import upload_from_environment

    result = upload_from_environment(args.name, args.path, retention_days=args.retention_days)
    print(safe_line(f"uploaded artifact {result.name} ({result.size} bytes, {result.digest}), id {result.id}"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KittError as exc:
        return report_failure(exc)


def report_failure(exc: KittError) -> int:
    """Print the engine log (if any), then the one-line error, as an annotation under Actions."""
    from kitt.github.actions_io import ActionsContext, Annotations

    print_engine_log(exc)
    context = ActionsContext.from_environment()
    if context.in_actions:
        Annotations(enabled=True).error(str(exc))
    print(f"kitt: error: {exc}", file=sys.stderr)
    return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
