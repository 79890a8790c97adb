"""The action's inputs: read, parsed and checked before anything expensive starts.

Part of the action, not the library: :meth:`ActionInputs.from_environment` reads the
environment the runner gives the action (``INPUT_*`` as both flavours spell them, and
``KITT_CONTAINER_CLI``, the proxy variables and the API key's variable through
:meth:`kitt.net.NetPolicy.from_environ`) from the mapping ``kitt.action.main`` passes it,
``os.environ`` under Actions. With ``kitt/action.py`` and ``kitt/github/`` it is the only code
that reads environment variables. Each bad input is one :class:`~kitt.errors.UsageError` that
names the input (exit 2). :func:`preflight` then checks what needs more than the string (the
thresholds file, the suite, the engine, the comment key, the artifact name, the A/B arms), so a
typo fails in seconds, not after the benchmark; ``kitt.action.ActionRun`` calls it first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from kitt.net import NetPolicy
from kitt.config import AB_SCHEDULES
from kitt.errors import UsageError
from kitt.workload.datasets import FORMATS as DATASET_FORMATS

if TYPE_CHECKING:
    from kitt.ci import ReportOptions
    from kitt.github.actions_io import ActionsContext

MODES = ("benchmark", "report")
MAX_HISTORY = 100  # baseline jobs to download
COMMENT_POLICIES = ("always", "on-regression", "never")
NO_ENGINE = "none"  # engine: none, bring your own harness: report on files in results-dir
REPORT_FILE = "report.md"  # the report's copy in results-dir (the `report` output names it)
_TRUE, _FALSE = ("true", "True", "TRUE"), ("false", "False", "FALSE")


def read_input(env: Mapping[str, str], name: str, default: str = "") -> str:
    """An input as the runner passes it: INPUT_<NAME> with hyphens kept (Docker actions), or
    with underscores (what the composite action's ``env:`` can spell). Whitespace is trimmed."""
    upper = name.upper()
    for key in (f"INPUT_{upper}", f"INPUT_{upper.replace('-', '_')}"):
        if key in env:
            return env[key].strip()
    return default


@dataclass(frozen=True)
class ActionInputs:
    mode: str
    model: str
    engine: str
    suite: str
    baseline_artifact: str
    baseline_history: int
    allow_mismatch: bool
    results_artifact: str
    run_id: int | None
    pr: int | None
    github_token: str
    threshold: float
    thresholds: Path | None
    fail_on_regression: bool
    results_dir: Path
    endpoint: str | None
    engine_image: str | None
    engine_args: tuple[str, ...]
    baseline_engine_image: str | None
    baseline_engine_args: tuple[str, ...] | None
    baseline_model: str | None
    baseline_endpoint: str | None
    ab_schedule: str
    repeats: int | str | None  # a count, "auto" or None (the suite's)
    native: bool
    comment: str
    comment_key: str
    artifact_name: str
    upload_artifact: bool
    hf_token: str
    container_cli: str | None = None  # None: docker, else podman when only podman is installed
    gpus: str = "all"
    dataset: str | None = None  # a file of the user's prompts, instead of the suite's synthetic ones
    dataset_format: str = "openai-chat"
    net: NetPolicy = field(default_factory=NetPolicy)  # the API key from the variable input api-key-env names

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> "ActionInputs":
        get = lambda name, default="": read_input(env, name, default)  # noqa: E731
        mode = _choice(get("mode", "benchmark"), "mode", MODES)
        engine = get("engine", "vllm")
        suite = get("suite", "quick")
        model = get("model")
        if mode == "benchmark" and not model and engine != NO_ENGINE:
            raise UsageError("input 'model' is required to benchmark", hint="Set `with: model: <model id or path>`.")
        results_artifact = get("results-artifact", "kitt-results")
        # In report mode the results artifact tells the matrix jobs apart; else engine/model/suite do.
        key = get("comment-key") or (results_artifact if mode == "report" else derive_comment_key(engine, model, suite))
        prefix = "kitt-report" if mode == "report" else "kitt-results"
        return cls(
            mode=mode,
            model=model,
            engine=engine,
            suite=suite,
            baseline_artifact=get("baseline-artifact"),
            baseline_history=_whole(get("baseline-history", "10"), "baseline-history", MAX_HISTORY) or 10,
            allow_mismatch=_boolean(get("allow-mismatch", "false"), "allow-mismatch"),
            results_artifact=results_artifact,
            run_id=_whole(get("run-id"), "run-id"),
            pr=_whole(get("pr"), "pr"),
            github_token=get("github-token"),
            threshold=_number(get("threshold", "5"), "threshold"),
            thresholds=Path(get("thresholds")) if get("thresholds") else None,
            fail_on_regression=_boolean(get("fail-on-regression", "true"), "fail-on-regression"),
            results_dir=Path(get("results-dir", "kitt-results") or "kitt-results"),
            endpoint=get("endpoint") or None,
            engine_image=get("engine-image") or None,
            engine_args=_lines(get("engine-args")),
            baseline_engine_image=get("baseline-engine-image") or None,
            baseline_engine_args=_lines(get("baseline-engine-args")) if get("baseline-engine-args") else None,
            baseline_model=get("baseline-model") or None,
            baseline_endpoint=get("baseline-endpoint") or None,
            ab_schedule=_choice(get("ab-schedule", "interleaved"), "ab-schedule", AB_SCHEDULES),
            repeats=_repeats(get("repeats")),
            dataset=get("dataset") or None,
            dataset_format=_choice(
                get("dataset-format", "openai-chat") or "openai-chat", "dataset-format", DATASET_FORMATS
            ),
            native=_boolean(get("native", "false"), "native"),
            comment=_choice(get("comment", "always"), "comment", COMMENT_POLICIES),
            comment_key=key,
            artifact_name=get("artifact-name") or artifact_name_for(prefix, key),
            upload_artifact=_boolean(get("upload-artifact", "true"), "upload-artifact"),
            hf_token=get("hf-token"),
            container_cli=_container_cli(get("container-cli") or env.get("KITT_CONTAINER_CLI", "")),
            gpus=_gpus(get("gpus", "all") or "all"),
            net=NetPolicy.from_environ(env, api_key_env=get("api-key-env") or None),
        )

    @property
    def matrix(self) -> bool:
        """Report mode on every artifact matching a pattern (``kitt-results-*``): one comment for all."""
        from kitt.github.baseline import is_pattern

        return self.mode == "report" and is_pattern(self.results_artifact)

    def initial_outputs(self) -> dict[str, str]:
        """The step outputs before anything ran: what a failure at any step leaves behind."""
        return {
            "results-dir": str(self.results_dir),
            "artifact-name": self.artifact_name,
            "passed": "false",
            "regressions": "0",
            "report": "",
            "metrics": "{}",
            "comment-url": "",
            "verdict": "error",
        }

    def report_options(
        self, context: ActionsContext, *, pr: int | None, baseline_dir: Path | None, upstream_failure: str | None
    ) -> ReportOptions:
        """The report these inputs ask for: what the run found (the pull request, the baseline
        folder, a matrix, the benchmark job's failed conclusion) joins the inputs and the runner's
        context; the action always writes the job summary and keeps the report in results-dir."""
        from kitt.ci import ReportOptions

        return ReportOptions(
            results_dir=self.results_dir,
            results_are_jobs=self.matrix,
            baseline_dir=baseline_dir,
            github_token=self.github_token or None,
            repo=context.repository if pr is not None else None,
            pr=pr,
            threshold=self.threshold,
            thresholds_file=self.thresholds,
            fail_on_regression=self.fail_on_regression,
            comment_key=self.comment_key,
            allow_mismatch=self.allow_mismatch,
            baseline_history=self.baseline_history,
            upstream_failure=upstream_failure,
            summary=True,
            comment_policy=self.comment,
            report_file=self.results_dir / REPORT_FILE,
            print_report=False,
            summary_path=context.summary_path,
            api_url=context.api_url,
            run_url=context.run_url,
            repo_url=f"{context.server_url.rstrip('/')}/{context.repository}" if context.repository else None,
        )


def derive_comment_key(engine: str, model: str, suite: str) -> str:
    """engine/model/suite, so that each job of a matrix owns its own comment."""
    model_name = Path(model.rstrip("/")).name if model else "model"
    suite_name = Path(suite).stem if suite.endswith((".yaml", ".yml")) else suite
    return re.sub(r"[^A-Za-z0-9._/:+=-]+", "-", f"{engine}/{model_name}/{suite_name}")[:100]


def artifact_name_for(prefix: str, key: str) -> str:
    """An artifact name GitHub accepts (no " : < > | * ? \\ / or newlines) derived from the key."""
    return re.sub(r'[":<>|*?\\/\r\n]+', "-", f"{prefix}-{key}").strip("-")


def _lines(value: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in value.splitlines() if line.strip())


def _choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise UsageError(f"input '{name}' must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _boolean(value: str, name: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"input '{name}' must be true or false, got {value!r}")


def _whole(value: str, name: str, maximum: int | None = None) -> int | None:
    if not value:
        return None
    # ASCII digits only: str.isdigit() also accepts "²" and "٣", which int() rejects or reads.
    if not re.fullmatch(r"[0-9]{1,15}", value) or int(value) < 1 or (maximum is not None and int(value) > maximum):
        limit = f" up to {maximum}" if maximum is not None else ""
        raise UsageError(f"input '{name}' must be a positive whole number{limit}, got {value[:40]!r}")
    return int(value)


def _container_cli(value: str) -> str | None:
    return _choice(value, "container-cli", ("docker", "podman")) if value else None


def _gpus(value: str) -> str:
    from kitt.engines.container import parse_gpus

    try:
        return parse_gpus(value)
    except UsageError:
        raise UsageError(f"input 'gpus' must be all, none or GPU indexes like 0,1, got {value!r}") from None


def _number(value: str, name: str) -> float:
    # Plain decimal notation: float() would also take "inf", "nan", "1_0" and non-ASCII digits.
    if not re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,9})?", value):
        raise UsageError(f"input '{name}' must be a number of 0 or more like 5 or 2.5, got {value[:40]!r}")
    return float(value)


def preflight(inputs: ActionInputs, context: ActionsContext) -> Any:
    """Check every input that can be checked before anything expensive starts (the engine, a
    download), so a typo in `thresholds` fails in seconds, not after the benchmark."""
    from kitt.github.comments import comment_marker
    from kitt.results import prepare_output_dir
    from kitt.thresholds import load_thresholds

    _as_input("threshold", lambda: load_thresholds(None, inputs.threshold))
    _as_input("thresholds", lambda: load_thresholds(inputs.thresholds, inputs.threshold))
    _as_input("comment-key", lambda: comment_marker(inputs.comment_key))
    if context.flavour == "docker" and inputs.upload_artifact:
        from kitt.github.artifacts import validate_artifact_name

        _as_input("artifact-name", lambda: validate_artifact_name(inputs.artifact_name))
    if inputs.mode == "report" and not ((inputs.run_id or run_id_of(context)) and context.repository):
        raise UsageError(
            "report mode needs the benchmark run's id", hint="Run it from a workflow_run workflow, or set `run-id`."
        )
    if inputs.mode == "benchmark" and inputs.engine == NO_ENGINE:
        _check_own_results(inputs.results_dir)
    if inputs.baseline_artifact and not context.repository:
        raise UsageError("baseline-artifact needs GITHUB_REPOSITORY", hint="Run inside GitHub Actions.")
    if inputs.mode == "report" and inputs.baseline_artifact:
        from kitt.github.baseline import is_pattern

        if is_pattern(inputs.results_artifact) and not is_pattern(inputs.baseline_artifact):
            raise UsageError(
                "with a results-artifact pattern, baseline-artifact must be a pattern too",
                hint="Set `baseline-artifact` to the same pattern: each job is compared with the base branch's "
                "artifact of its own name.",
            )
    if inputs.engine != NO_ENGINE:  # with engine none the folder holds another tool's files already
        _as_input("results-dir", lambda: prepare_output_dir(inputs.results_dir, "directory"))
    if inputs.mode == "benchmark" and inputs.engine != NO_ENGINE:
        return _run_config(inputs, context)
    return None


def run_id_of(context: ActionsContext) -> int | None:
    """The id of the workflow run that triggered this one (``workflow_run``), if the event names one."""
    from kitt.github.pulls import positive_int

    return positive_int(context.event_object("workflow_run").get("id"))


def _check_own_results(folder: Path) -> None:
    """engine: none: the results another tool wrote must be there before anything else is done."""
    from kitt.importers import has_results

    if not folder.is_dir() or not has_results(folder):
        what = "does not exist" if not folder.is_dir() else "holds no metrics.json and no result file kitt knows"
        raise UsageError(
            f"engine 'none' reports on results-dir, but {folder} {what}",
            hint="Point `results-dir` at the folder your benchmark step wrote (vllm bench serve --save-result, "
            "GuideLLM's JSON report, AIPerf, genai-perf, inference-perf or LLMPerf), or set an engine.",
        )


def _repeats(text: str) -> int | str | None:
    """The repeats input: empty (the suite's), a whole number, or auto (A/B, or against baseline-artifact)."""
    if text.strip().lower() == "auto":
        return "auto"
    return _whole(text, "repeats")


def _run_config(inputs: ActionInputs, context: ActionsContext) -> Any:
    from kitt.config import BaselineArm, Overrides, RunConfig, apply_overrides, check_run_config, load_suite
    from kitt.engines import choose_mode, get_engine

    spec = _as_input("engine", lambda: get_engine(inputs.engine))
    _as_input("endpoint", lambda: choose_mode(spec, native=inputs.native, endpoint=inputs.endpoint))
    overrides = Overrides(
        repeats=inputs.repeats, dataset=inputs.dataset, dataset_format=inputs.dataset_format if inputs.dataset else None
    )
    suite = _as_input("suite", lambda: load_suite(inputs.suite))
    suite = _as_input("dataset" if inputs.dataset else "suite", lambda: apply_overrides(suite, overrides))
    config = RunConfig(
        model=inputs.model,
        engine=inputs.engine,
        suite=suite,
        output=inputs.results_dir,
        endpoint=inputs.endpoint,
        engine_image=inputs.engine_image,
        engine_args=inputs.engine_args,
        native=inputs.native,
        baseline=BaselineArm.named(
            inputs.baseline_model, inputs.baseline_engine_image, inputs.baseline_engine_args, inputs.baseline_endpoint
        ),
        ab_schedule=inputs.ab_schedule,
        container_cli=inputs.container_cli,
        gpus=inputs.gpus,
        commit=context.sha,
        branch=context.ref_name,
        net=inputs.net,
        engine_cache=context.engine_cache,
        history_limit=inputs.baseline_history,
    )
    single_arm_auto = config.suite.auto_repeats is not None and config.baseline is None
    if single_arm_auto and not inputs.baseline_artifact:
        raise UsageError(
            "input 'repeats': auto needs something to decide against: an A/B baseline arm or a baseline history",
            hint="Set `baseline-artifact` (the base branch's results, at least 3 jobs: `baseline-history`), "
            "or a baseline-* input for an A/B run, or give a number of repeats.",
        )
    # A single-arm auto run's history is downloaded after this check, before the benchmark (kitt.action).
    _as_input(
        "endpoint" if inputs.endpoint else "model",
        lambda: check_run_config(config, history_to_come=single_arm_auto),
    )
    if config.baseline is not None:
        from kitt.run import ab_arm_configs

        _as_input(
            "baseline-engine-image"
            if inputs.baseline_engine_image
            else "baseline-endpoint"
            if inputs.baseline_endpoint
            else "baseline-engine-args",
            lambda: ab_arm_configs(config),
        )
    return config


def _as_input(name: str, check: Any) -> Any:
    """Run ``check``; a UsageError is re-worded to name the action input (CLI flags mean nothing here)."""
    try:
        return check()
    except UsageError as error:
        hint = error.hint if error.hint and "--" not in error.hint else None
        raise UsageError(f"input '{name}': {error.message}", hint=hint) from None
