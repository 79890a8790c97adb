"""The GitHub Action, for both flavours: inputs -> benchmark -> baseline -> report -> comment -> gate.

    mode benchmark (composite action on a GPU host, or the Docker action against an endpoint):
        run the suite, write pull_request.json beside the results for a later report job;
        with ``repeats: auto`` and no A/B arm, the baseline history is downloaded first and each
        level is decided against it (the report reuses that download);
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

import os
from pathlib import Path
from typing import Any, Mapping

from kitt.action_inputs import NO_ENGINE, ActionInputs, preflight, run_id_of
from kitt.ci import (
    ab_layout,
    base_branch_trend,
    build_report,
    fetch_baselines,
    fetch_run_results,
    publish_report,
)
from kitt.errors import GitHubError, KittError, UsageError, print_engine_log
from kitt.github.actions_io import ActionsContext, Annotations, mask, set_outputs
from kitt.github.artifacts import upload_from_environment
from kitt.github.pulls import report_pull_request, write_pull_record
from kitt.progress import Reporter
from kitt.redact import url_secrets
from kitt.results import measured_anything
from kitt.run import against_history, run_benchmark


# --------------------------------------------------------------------------- the run


class ActionRun:
    """One step of the action, in order: check every input, put the results in place (benchmark or
    download), report, then upload and set the outputs whatever happened. Each step's work lives
    in the library (``action_inputs``, ``run``, ``ci``, ``github``); this class only sequences the
    steps and keeps the exit code and the step outputs."""

    def __init__(self, inputs: ActionInputs, context: ActionsContext) -> None:
        self.inputs = inputs
        self.context = context
        self.notes = Annotations(enabled=context.in_actions)
        self.exit_code = 0
        self.config: Any = None  # the benchmark's RunConfig, once preflight has checked the inputs
        self.outputs = inputs.initial_outputs()
        # The baseline download, once made: before the benchmark for a single-arm repeats auto run
        # (its history), else for the report; (folder,) so that "downloaded, none found" is kept too.
        self._downloaded: tuple[Path | None] | None = None

    def fail(self, error: KittError) -> None:
        print_engine_log(error)
        self.notes.error(str(error))
        self.exit_code = max(self.exit_code, error.exit_code)

    def execute(self) -> int:
        try:
            self.config = preflight(self.inputs, self.context)  # before anything expensive starts
            benchmark_ok = self._download() if self.inputs.mode == "report" else self._benchmark()
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

    def _download(self) -> bool:
        """Report mode: the triggering run's results. False when that run did not succeed: a
        cancelled or failed benchmark never reports a pass, whatever its (partial) artifact says."""
        found = fetch_run_results(
            token=self.inputs.github_token,
            repo=self.context.repository or "",
            run_id=self.inputs.run_id or run_id_of(self.context) or 0,
            artifact=self.inputs.results_artifact,
            dest=self.inputs.results_dir,
            api_url=self.context.api_url,
        )
        self.notes.tell(found)
        conclusion = self.context.workflow_conclusion
        if conclusion not in (None, "success"):
            self.notes.error(f"The benchmark run's conclusion is {conclusion!r}, so its results cannot pass.")
            return False
        return True

    def _benchmark(self) -> bool | None:
        """True: measured; False: the benchmark failed; None: nothing of this run's to report."""
        write_pull_record(self.inputs.results_dir, self.inputs.pr, self.context.event_object("pull_request"))
        if self.inputs.engine == NO_ENGINE:  # preflight found another tool's results in results-dir
            return True
        if self.inputs.hf_token:
            os.environ["HF_TOKEN"] = self.inputs.hf_token  # engines get it by name, never on a command line
        config, history = self.config, None
        if config.suite.auto_repeats is not None and config.baseline is None:  # decided against the history
            folder = self._baseline(self.context.base_ref)
            config, history, warning = against_history(
                config, folder, self.inputs.baseline_history, self.inputs.baseline_artifact
            )
            if warning:
                self.notes.warning(warning)
        try:
            run_benchmark(config, Reporter(groups=self.context.in_actions), history)
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

    def _report(self, benchmark_ok: bool) -> None:
        pr, base_ref = self._pull_request()
        # An A/B run brings its own baseline arm: no baseline artifact is needed or downloaded.
        baseline_dir = None if ab_layout(self.inputs.results_dir) else self._baseline(base_ref)
        failure = None if benchmark_ok else (self.context.workflow_conclusion or "failure")
        options = self.inputs.report_options(self.context, pr=pr, baseline_dir=baseline_dir, upstream_failure=failure)
        report = build_report(options)
        # The gate is decided in build_report, before anything is posted: nothing that happens
        # to the comment changes it.
        outcome = publish_report(report, options)
        self.notes.tell(outcome.notices)
        self.exit_code = max(self.exit_code, outcome.exit_code, 0 if benchmark_ok else 1)
        passed = benchmark_ok and not report.gate_failed
        self.outputs.update(outcome.outputs, report=str(options.report_file), passed=str(passed).lower())
        if baseline_dir is not None:
            self.notes.tell(
                base_branch_trend(
                    self.inputs.results_dir, baseline_dir, self.inputs.thresholds, self.inputs.threshold, self.context
                )
            )

    def _pull_request(self) -> tuple[int | None, str | None]:
        """The PR to comment on and its base branch; in report mode as GitHub confirms it."""
        if self.inputs.mode != "report":
            return self.inputs.pr, self.context.base_ref
        try:
            pr, base_ref, warning = report_pull_request(
                token=self.inputs.github_token,
                repo=self.context.repository or "",
                results_dir=self.inputs.results_dir,
                jobs=self.inputs.matrix,
                given=self.inputs.pr,
                built_sha=self.context.event_object("workflow_run").get("head_sha"),
                api_url=self.context.api_url,
            )
        except GitHubError as error:
            self.fail(error)  # no PR to comment on; the report still goes to the job summary
            return None, None
        if warning:
            self.notes.warning(warning)
        return pr, base_ref

    def _baseline(self, base_ref: str | None) -> Path | None:
        """The baseline folder (``ci.fetch_baselines``); an API error fails the job, but the report
        still goes out, uncompared. Downloaded once: a second call (the report after a single-arm
        repeats auto run) gets the same folder."""
        if self._downloaded is None:
            self._downloaded = (self._download_baseline(base_ref),)
        return self._downloaded[0]

    def _download_baseline(self, base_ref: str | None) -> Path | None:
        if not self.inputs.baseline_artifact:
            return None
        found = fetch_baselines(
            token=self.inputs.github_token,
            repo=self.context.repository or "",
            artifact=self.inputs.baseline_artifact,
            jobs=[p.name for p in self.inputs.results_dir.iterdir() if p.is_dir()] if self.inputs.matrix else None,
            base_branch=base_ref,
            api_url=self.context.api_url,
            history=self.inputs.baseline_history,
            temp_dir=self.context.temp_dir,
            keep_errors=True,
        )
        for error in found.errors:
            self.fail(error)
        self.notes.tell(found.notices)
        return found.path

    def _finish(self) -> None:
        """Upload the results (the Docker flavour; the composite uses actions/upload-artifact), then
        write the annotations and the step outputs, whatever happened before."""
        results = Path(self.outputs["results-dir"])
        if self.context.flavour == "docker" and self.inputs.upload_artifact and results.is_dir():
            try:
                upload_from_environment(self.inputs.artifact_name, results)
            except KittError as error:
                self.fail(error)
        self.notes.flush()
        set_outputs(self.outputs, self.context.output_path, self.notes)


FAILED_OUTPUTS = {"passed": "false", "verdict": "error", "regressions": "0"}  # inputs unreadable: nothing ran


def main(environ: Mapping[str, str] | None = None) -> int:
    env: Mapping[str, Any] = os.environ if environ is None else environ
    context = ActionsContext.from_environment(env)
    try:
        inputs = ActionInputs.from_environment(env)
    except UsageError as error:
        notes = Annotations(enabled=context.in_actions)
        notes.error(str(error))
        set_outputs(FAILED_OUTPUTS, context.output_path, notes)
        return error.exit_code
    urls = (inputs.endpoint, inputs.baseline_endpoint)
    for secret in (
        inputs.github_token,
        inputs.hf_token,
        *inputs.net.secrets(),
        *(s for u in urls for s in url_secrets(u)),
    ):
        mask(secret, context.in_actions)
    return ActionRun(inputs, context).execute()
