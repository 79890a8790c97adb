"""The GitHub Action, for both flavours: inputs -> benchmark -> baseline -> report -> comment -> gate.

    mode benchmark (composite action on a GPU host, or the Docker action against an endpoint):
        run the suite, write pull_request.json beside the results for a later report job;
        with ``engine: none``, run nothing: ``results-dir`` holds what an earlier step's own
        tool wrote (vllm bench serve, GuideLLM, AIPerf..., see kitt.importers)
    mode report (the Docker action in a workflow_run workflow, the fork-safe recipe):
        download the triggering run's results; the PR number they name is checked against GitHub

    then, in both: download the newest baseline from the base branch, compare, write the report,
    append it to the job summary, create or update the PR comment, set the step outputs, upload
    (Docker flavour only; the composite uses actions/upload-artifact) and gate.

Only this module, ``kitt.action_inputs`` (the inputs, read and checked up front) and
``kitt.github`` read the environment. The gate's decision is made before
anything is posted, so a failed comment never hides a regression, and a failed benchmark never
passes. Exit codes: 0 ok, 1 failure or regression (with fail-on-regression), 2 bad input.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from kitt.action_inputs import NO_ENGINE, ActionInputs, preflight, run_id_of
from kitt.errors import GitHubError, KittError, UsageError, print_engine_log
from kitt.github.actions_io import ActionsContext, Annotations, mask, set_outputs
from kitt.github.pulls import positive_int, write_pull_record

if TYPE_CHECKING:
    from kitt.ci import Notice


# --------------------------------------------------------------------------- the run


class ActionRun:
    def __init__(self, inputs: ActionInputs, context: ActionsContext) -> None:
        self.inputs = inputs
        self.context = context
        self.notes = Annotations(enabled=context.in_actions)
        self.exit_code = 0
        self._config: Any = None  # the benchmark's RunConfig, once preflight has checked the inputs
        self.outputs: dict[str, str] = {
            "results-dir": str(inputs.results_dir),
            "artifact-name": inputs.artifact_name,
            "passed": "false",
            "regressions": "0",
            "report": "",
            "metrics": "{}",
            "comment-url": "",
            "verdict": "error",
        }

    @property
    def matrix(self) -> bool:
        """Report mode on every artifact matching a pattern (``kitt-results-*``): one comment for all."""
        from kitt.github.baseline import is_pattern

        return self.inputs.mode == "report" and is_pattern(self.inputs.results_artifact)

    def fail(self, error: KittError) -> None:
        print_engine_log(error)
        self.notes.error(str(error))
        self.exit_code = max(self.exit_code, error.exit_code)

    def execute(self) -> int:
        try:
            self._preflight()
            benchmark_ok = self._results()
            if benchmark_ok is not None:
                self._report(benchmark_ok)
        except KittError as error:
            self.fail(error)
        except BaseException:
            # A bug (or a cancel) after the gate was decided must not leave passed=true behind.
            self.outputs.update(passed="false", verdict="error")
            raise
        finally:
            self._finish()
        return self.exit_code

    # ------------------------------------------------------------------ inputs

    def _preflight(self) -> None:
        """Every input checked before anything expensive starts (``kitt.action_inputs.preflight``)."""
        self._config = preflight(self.inputs, self.context)

    # ------------------------------------------------------------------ results

    def _results(self) -> bool | None:
        """Put the results in place. True: measured; False: the benchmark failed; None: nothing to report."""
        if self.inputs.mode == "report":
            from kitt.ci import fetch_run_results

            jobs = fetch_run_results(
                token=self.inputs.github_token,
                repo=self.context.repository or "",
                run_id=self.inputs.run_id or run_id_of(self.context) or 0,
                artifact=self.inputs.results_artifact,
                dest=self.inputs.results_dir,
                api_url=self.context.api_url,
            )
            if self.matrix:
                self.notes.notice(
                    f"Reporting on {jobs} results artifacts matching {self.inputs.results_artifact!r} in one comment."
                )
            # Fail closed: a benchmark run that was cancelled or failed never reports a pass,
            # whatever its (partial) artifact says.
            conclusion = self.context.event_object("workflow_run").get("conclusion")
            if conclusion is not None and conclusion != "success":
                self.notes.error(
                    f"The benchmark run's conclusion is {str(conclusion)[:40]!r}, so its results cannot pass."
                )
                return False
            return True
        if self.inputs.engine == NO_ENGINE:  # preflight found another tool's results in results-dir
            self._write_pull_request()
            return True
        from kitt.progress import Reporter
        from kitt.results import measured_anything
        from kitt.run import run_benchmark

        if self.inputs.hf_token:
            os.environ["HF_TOKEN"] = self.inputs.hf_token  # engines get it by name, never on a command line
        self._write_pull_request()
        try:
            run_benchmark(self._config, Reporter(groups=self.context.in_actions))
        except UsageError:
            raise
        except KittError as error:
            self.fail(error)
            if error.results_dir is not None:  # kept beside an earlier result set: nothing in results-dir is this run's
                self.outputs["results-dir"] = str(error.results_dir)  # so the artifact is this run's, not the earlier
                return None
            # Nothing measured (cancelled before the first level, say): the error above says it all.
            return False if measured_anything(self.inputs.results_dir) else None
        return True

    def _write_pull_request(self) -> None:
        """Record which pull request these results belong to, for a workflow_run report job."""
        number = self.inputs.pr or positive_int(self.context.event_object("pull_request").get("number"))
        write_pull_record(self.inputs.results_dir, number, self.context.event_object("pull_request", "head").get("sha"))

    # ------------------------------------------------------------------ report

    def _report(self, benchmark_ok: bool) -> None:
        from kitt.ci import ab_layout, base_branch_trend, build_report, publish_report

        pr, base_ref = self._pull_request()
        # An A/B run brings its own baseline arm: no baseline artifact is needed or downloaded.
        baseline_dir = None if ab_layout(self.inputs.results_dir) else self._baseline(base_ref)
        options = self.inputs.report_options(
            self.context,
            pr=pr,
            baseline_dir=baseline_dir,
            matrix=self.matrix,
            upstream_failure=None if benchmark_ok else self._upstream_failure(),
        )
        report = build_report(options)
        if (
            pr is not None
            and self.inputs.comment != "never"
            and not (self.context.repository and self.inputs.github_token)
        ):
            self.notes.warning("No comment: GITHUB_REPOSITORY or the github-token input is missing.")
        # The gate is decided in build_report, before anything is posted: nothing that happens
        # to the comment changes it.
        outcome = publish_report(report, options)
        self._tell(outcome.notices)
        self.exit_code = max(self.exit_code, outcome.exit_code, 0 if benchmark_ok else 1)
        self.outputs.update(
            report=str(options.report_file),
            regressions=str(report.regressions),
            metrics=compact_metrics(report.key_metrics),
            passed="true" if benchmark_ok and not report.gate_failed else "false",
            verdict=report.verdict,
            **{"comment-url": outcome.comment_url or ""},
        )
        default_branch = self.context.event_object("repository").get("default_branch")  # untrusted: any type
        # The history is the default branch's (no base ref on a push): only its own pushes extend it.
        if self.context.event_name == "push" and baseline_dir is not None and self.context.ref_name == default_branch:
            self._tell(
                base_branch_trend(
                    self.inputs.results_dir,
                    baseline_dir,
                    self.inputs.thresholds,
                    self.inputs.threshold,
                    self.context.summary_path,
                )
            )

    def _upstream_failure(self) -> str:
        """How the benchmark went wrong, for the report: the workflow run's conclusion in report mode."""
        conclusion = self.context.event_object("workflow_run").get("conclusion")
        if self.inputs.mode == "report" and isinstance(conclusion, str):
            return conclusion[:40]
        return "failure"

    def _pull_request(self) -> tuple[int | None, str | None]:
        """The PR to comment on and its base branch. In report mode the PR named by the (untrusted)
        artifact is accepted only if GitHub says its head is the commit the benchmark run built."""
        if self.inputs.mode != "report":
            return self.inputs.pr, self.context.base_ref
        from kitt.github.pulls import claimed_pull_request, verified_pull_request

        claimed, warning = (
            (self.inputs.pr, None) if self.inputs.pr else claimed_pull_request(self.inputs.results_dir, self.matrix)
        )
        if claimed is None:
            self.notes.warning(
                warning or "The results name no pull request (pull_request.json), so no comment is posted."
            )
            return None, None
        try:
            pr, base_ref, warning = verified_pull_request(
                token=self.inputs.github_token,
                repo=self.context.repository or "",
                claimed=claimed,
                built_sha=self.context.event_object("workflow_run").get("head_sha"),
                trusted=bool(self.inputs.pr),
                api_url=self.context.api_url,
            )
        except GitHubError as error:
            self.fail(error)  # no PR to comment on; the report still goes to the job summary
            return None, None
        if warning:
            self.notes.warning(warning)
        return pr, base_ref

    def _baseline(self, base_ref: str | None) -> Path | None:
        """The baseline folder: one baseline (history), or in a matrix one subfolder per job, named
        after the job's artifact (each job's baseline is the base branch's artifact of its own name)."""
        if not self.inputs.baseline_artifact:
            return None
        from kitt.ci import fetch_baselines

        jobs = [p.name for p in self.inputs.results_dir.iterdir() if p.is_dir()] if self.matrix else None
        found = fetch_baselines(
            token=self.inputs.github_token,
            repo=self.context.repository or "",
            artifact=self.inputs.baseline_artifact,
            jobs=jobs,
            base_branch=base_ref,
            api_url=self.context.api_url,
            history=self.inputs.baseline_history,
            temp_dir=self.context.temp_dir,
            keep_errors=True,
        )
        for error in found.errors:
            self.fail(error)  # an API error is a failure, but the report still goes out, uncompared
        self._tell(found.notices)
        return found.path

    def _tell(self, notices: Iterable[Notice]) -> None:
        for notice in notices:
            getattr(self.notes, notice.level)(notice.message)

    # ------------------------------------------------------------------ outputs

    def _finish(self) -> None:
        """Upload the results (the Docker flavour; the composite uses actions/upload-artifact), then
        write the annotations and the step outputs, whatever happened before."""
        if (
            self.context.flavour == "docker"
            and self.inputs.upload_artifact
            and Path(self.outputs["results-dir"]).is_dir()
        ):
            from kitt.github.artifacts import upload_from_environment

            try:
                upload_from_environment(self.inputs.artifact_name, Path(self.outputs["results-dir"]))
            except KittError as error:
                self.fail(error)
        self.notes.flush()
        set_outputs(self.outputs, self.context.output_path, self.notes)


METRICS_OUTPUT_LIMIT = 64 * 1024  # a job's outputs share 1 MB; a huge sweep must not take it all


def compact_metrics(key_metrics: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The ``metrics`` output: every key metric's numbers, or only current values when that is too long."""
    full = json.dumps(key_metrics, sort_keys=True, separators=(",", ":"), allow_nan=False)
    if len(full) <= METRICS_OUTPUT_LIMIT:
        return full
    current = {test: {name: row.get("current") for name, row in rows.items()} for test, rows in key_metrics.items()}
    short = json.dumps(current, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return short if len(short) <= METRICS_OUTPUT_LIMIT else "{}"


def main(environ: Mapping[str, str] | None = None) -> int:
    env: Mapping[str, Any] = os.environ if environ is None else environ
    context = ActionsContext.from_environment(env)
    try:
        inputs = ActionInputs.from_environment(env)
    except UsageError as error:
        notes = Annotations(enabled=context.in_actions)
        notes.error(str(error))
        set_outputs({"passed": "false", "verdict": "error", "regressions": "0"}, context.output_path, notes)
        return error.exit_code
    from kitt.redact import url_secrets

    urls = (inputs.endpoint, inputs.baseline_endpoint)
    for secret in (
        inputs.github_token,
        inputs.hf_token,
        *inputs.net.secrets(),
        *(s for u in urls for s in url_secrets(u)),
    ):
        mask(secret, context.in_actions)
    return ActionRun(inputs, context).execute()
