"""``kitt ci report`` end to end: files in, Markdown and exit codes out, comments through the double."""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path
from typing import Any

import pytest

from github_double.fixtures import github_contract, github_double  # noqa: F401  (the GitHub REST double)
from kitt import cli
from kitt.ci import Notice, ReportOptions, execute_ci_report
from kitt.errors import GitHubError, ResultsError, UsageError
from kitt.github.http import RetryPolicy
from kitt.github.comments import CommentForbidden, CommentResult, upsert_pr_comment
from kitt.results import write_json

FAST_RETRY = RetryPolicy(first_delay_s=0.01)

PR = 7
WIGGLE = (-0.02, 0.0, 0.015, 0.01, -0.012)
BASE = {
    "median_ttft_ms": 41.0,
    "p99_ttft_ms": 95.0,
    "median_tpot_ms": 8.2,
    "p99_tpot_ms": 11.5,
    "median_itl_ms": 7.9,
    "p99_itl_ms": 16.5,
    "median_e2el_ms": 1100.0,
    "p99_e2el_ms": 1600.0,
    "output_throughput": 900.0,
    "request_throughput": 3.1,
    "failed": 0.0,
    "gpu_peak_memory_mib": None,
}

# Upstream KITT's metrics.json, written by hand: no schema_version, a naive timestamp, no load level
# in the test name (concurrency among the metrics), names we do not know, a nested value.
UPSTREAM_BASELINE = """{
  "suite_name": "standard",
  "timestamp": "2025-04-30T08:00:00",
  "engine": "vllm",
  "model": "meta-llama/Llama-3.1-8B",
  "passed": true,
  "total_time_seconds": 412.7,
  "results": [
    {"test_name": "throughput", "run_number": 1, "passed": true, "errors": [],
     "metrics": {"concurrency": 8, "median_ttft_ms": 40.2, "p99_ttft_ms": 96.1, "median_tpot_ms": 8.1,
                 "output_throughput": 905.3, "avg_latency_ms": 1130.0, "tokens_per_second": 905.3,
                 "engine_info": {"version": "0.6.3"}, "gpu_name": "NVIDIA H100"}},
    {"test_name": "throughput", "run_number": 2, "passed": true, "errors": [],
     "metrics": {"concurrency": 8, "median_ttft_ms": 41.0, "p99_ttft_ms": 93.8, "median_tpot_ms": 8.3,
                 "output_throughput": 898.1, "avg_latency_ms": 1125.0, "tokens_per_second": 898.1,
                 "engine_info": {"version": "0.6.3"}, "gpu_name": "NVIDIA H100"}}
  ]
}
"""


def write_run(
    directory: Path,
    *,
    change: dict[str, float] | None = None,
    repeats: int = 5,
    fingerprint: str = "h100-3f9a",
    timestamp: str = "2025-05-01T10:00:00.000Z",
    levels: tuple[int, ...] = (8,),
    passed: bool = True,
    model: str = "meta-llama/Llama-3.1-8B",
    config: dict[str, Any] | None = None,
) -> Path:
    """A result set as ``kitt run`` writes it, with fixed (not random) repeat-to-repeat noise."""
    results = []
    for level in levels:
        for run in range(1, repeats + 1):
            metrics: dict[str, float | None] = {"concurrency": float(level)}
            for index, (name, value) in enumerate(BASE.items()):
                wiggle = 1 + WIGGLE[(run + index) % len(WIGGLE)]
                metrics[name] = (
                    None if value is None else value * (change or {}).get(name, 1.0) * (wiggle if value else 1)
                )
            results.append(
                {
                    "test_name": f"throughput-c{level}",
                    "run_number": run,
                    "passed": True,
                    "metrics": metrics,
                    "errors": [],
                }
            )
    document = {
        "schema_version": 1,
        "kitt_version": "0.1.0",
        "suite_name": "standard",
        "timestamp": timestamp,
        "engine": "vllm",
        "model": model,
        "passed": passed,
        "total_time_seconds": 400.0,
        "results": results,
    }
    write_json(directory / "metrics.json", document)
    if config is not None:
        write_json(directory / "config.json", config)
    write_json(
        directory / "hardware.json",
        {"fingerprint": fingerprint, "gpu_count": 1, "gpus": [{"name": "NVIDIA H100 80GB HBM3"}]},
    )
    return directory


def options(tmp_path: Path, **overrides: Any) -> ReportOptions:
    values: dict[str, Any] = {"results_dir": tmp_path / "current", "baseline_dir": tmp_path / "baseline"}
    values.update(overrides)
    return ReportOptions(**values)


def run(opts: ReportOptions, **kwargs: Any) -> tuple[int, str, list[Notice]]:
    out = io.StringIO()
    outcome = execute_ci_report(opts, stdout=out, **kwargs)
    return outcome.exit_code, out.getvalue(), outcome.notices


@pytest.fixture
def regressed(tmp_path: Path) -> Path:
    write_run(tmp_path / "baseline")
    write_run(tmp_path / "current", change={"p99_tpot_ms": 1.2}, timestamp="2025-05-02T10:00:00.000Z")
    return tmp_path


# --------------------------------------------------------------------------- output and exit codes


def test_prints_the_report_without_token_or_output(regressed: Path) -> None:
    code, printed, notices = run(options(regressed))
    assert code == 0  # a regression alone does not fail without --fail-on-regression
    assert printed.startswith("<!-- kitt-benchmark -->\n## ❌ 1 regression: ")
    assert [n.level for n in notices] == ["warning"] and "p99_tpot_ms regressed +20.0%" in notices[0].message


def test_fail_on_regression_exits_one(regressed: Path) -> None:
    code, _, notices = run(options(regressed, fail_on_regression=True))
    assert code == 1 and notices[0].level == "error"


def test_output_writes_a_file_instead_of_printing(regressed: Path) -> None:
    target = regressed / "out" / "report.md"
    code, printed, _ = run(options(regressed, output=target, comment_key="llama"))
    assert code == 0 and printed == ""
    assert target.read_text().startswith("<!-- kitt-benchmark:llama -->\n")


def test_newest_metrics_json_is_used_recursively(tmp_path: Path) -> None:
    write_run(tmp_path / "baseline")
    write_run(tmp_path / "current" / "old", change={"median_ttft_ms": 2.0}, timestamp="2025-05-01T09:00:00Z")
    write_run(tmp_path / "current" / "new", timestamp="2025-05-01T11:00:00Z")
    code, printed, _ = run(options(tmp_path, fail_on_regression=True))
    assert code == 0 and "## ✅ No regressions" in printed


def test_summary_appends_to_the_given_path(regressed: Path) -> None:
    summary = regressed / "step_summary.md"
    summary.write_text("# earlier step\n")
    outcome = execute_ci_report(options(regressed, summary=True, summary_path=summary, output=regressed / "r.md"))
    assert outcome.summary_written
    assert summary.read_text().startswith("# earlier step\n<!-- kitt-benchmark -->")


def test_outputs_for_the_action(regressed: Path) -> None:
    outcome = execute_ci_report(options(regressed, output=regressed / "r.md", run_url="https://x/runs/1"))
    outputs = outcome.outputs
    assert outputs["verdict"] == "regression" and outputs["regressions"] == "1" and outputs["comment-url"] == ""
    key_metrics = json.loads(outputs["metrics"])
    assert key_metrics["throughput-c8"]["p99_tpot_ms"]["verdict"] == "regression"
    assert key_metrics["throughput-c8"]["p99_tpot_ms"]["change_pct"] == pytest.approx(20.0)
    assert "https://x/runs/1" in outcome.report.markdown


# --------------------------------------------------------------------------- inputs: missing, corrupt, other


def test_missing_results_directory_is_exit_one(tmp_path: Path) -> None:
    with pytest.raises(ResultsError) as caught:
        run(options(tmp_path))
    assert caught.value.exit_code == 1 and "current does not exist" in str(caught.value)


def test_corrupt_current_results_are_exit_one_never_a_pass(tmp_path: Path) -> None:
    write_run(tmp_path / "baseline")
    (tmp_path / "current").mkdir()
    (tmp_path / "current" / "metrics.json").write_text('{"results": [')
    with pytest.raises(ResultsError, match="is not valid JSON"):
        run(options(tmp_path, fail_on_regression=True))


def test_corrupt_baseline_is_exit_one_not_no_baseline(tmp_path: Path) -> None:
    write_run(tmp_path / "current")
    (tmp_path / "baseline" / "run").mkdir(parents=True)
    (tmp_path / "baseline" / "run" / "metrics.json").write_text("not json")
    with pytest.raises(ResultsError, match="baseline/run/metrics.json is not valid JSON"):
        run(options(tmp_path))


def test_current_without_results_is_exit_one(tmp_path: Path) -> None:
    write_run(tmp_path / "current", levels=())
    with pytest.raises(ResultsError, match="holds no test results"):
        run(options(tmp_path))


@pytest.mark.parametrize("make", ["missing", "empty", "no_metrics"])
def test_missing_or_empty_baseline_says_no_baseline_yet(tmp_path: Path, make: str) -> None:
    write_run(tmp_path / "current")
    if make != "missing":
        (tmp_path / "baseline").mkdir()
    if make == "no_metrics":
        (tmp_path / "baseline" / "notes.txt").write_text("nothing here")
    code, printed, notices = run(options(tmp_path, fail_on_regression=True))
    assert code == 0 and "## 📊 No baseline yet" in printed
    assert notices == [
        Notice(
            "notice", f"No baseline yet under {tmp_path / 'baseline'}: the report shows this run without a comparison."
        )
    ]


def test_baseline_from_other_hardware_is_shown_not_gated(tmp_path: Path) -> None:
    write_run(tmp_path / "baseline", fingerprint="a100-77c1")
    write_run(tmp_path / "current", change={"median_ttft_ms": 1.5})
    code, printed, notices = run(options(tmp_path, fail_on_regression=True))
    assert code == 0 and "## ⚠️ Not gated: the hardware differs" in printed
    assert notices[0].level == "warning" and "--allow-hardware-mismatch" in notices[0].message
    code, _, _ = run(options(tmp_path, fail_on_regression=True, allow_hardware_mismatch=True))
    assert code == 1


def test_upstream_kitt_baseline_is_matched_and_compared(tmp_path: Path) -> None:
    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / "metrics.json").write_text(UPSTREAM_BASELINE)
    write_run(tmp_path / "current", repeats=2, change={"median_ttft_ms": 1.3})
    code, printed, _ = run(options(tmp_path, fail_on_regression=True))
    assert code == 1  # median_ttft_ms +30%: matched by test name and concurrency 8
    changed = printed.split("### What changed")[1].split("<details>")[0]
    assert "**median TTFT** ms ↓" in changed and "`throughput` at concurrency | 8 |" in changed
    assert "avg_latency_ms" in printed and "tokens_per_second" in printed  # unknown: shown, not gated
    assert "The baseline has no hardware fingerprint" in printed
    assert "Only in the current run, so not compared: " in printed


def test_metric_missing_from_current_is_a_clear_problem(tmp_path: Path) -> None:
    write_run(tmp_path / "baseline")
    write_run(tmp_path / "current")
    document = json.loads((tmp_path / "current" / "metrics.json").read_text())
    for result in document["results"]:
        del result["metrics"]["p99_itl_ms"]
    write_json(tmp_path / "current" / "metrics.json", document)
    code, printed, notices = run(options(tmp_path))
    assert code == 0 and notices[0].level == "warning"
    assert "gated metrics missing from the current run (present in the baseline): p99_itl_ms" in notices[0].message
    assert "## ⚠️ Results incomplete, so the gate fails" in printed
    assert run(options(tmp_path, fail_on_regression=True))[0] == 1


def test_bad_thresholds_file_is_exit_two(regressed: Path) -> None:
    path = regressed / "thresholds.yml"
    path.write_text("median_ttft: 5\n")
    with pytest.raises(UsageError) as caught:
        run(options(regressed, thresholds_file=path))
    assert caught.value.exit_code == 2 and "thresholds.yml: median_ttft is not a known metric" in str(caught.value)


def test_thresholds_file_can_switch_the_regressed_metric_off(regressed: Path) -> None:
    path = regressed / "thresholds.yml"
    path.write_text("p99_tpot_ms: off\n")
    assert run(options(regressed, thresholds_file=path, fail_on_regression=True))[0] == 0


# --------------------------------------------------------------------------- the PR comment


def test_comment_is_posted_with_the_keyed_marker(regressed: Path) -> None:
    calls: list[dict[str, Any]] = []

    def fake_upsert(**kwargs: Any) -> CommentResult:
        calls.append(kwargs)
        return CommentResult("https://github.com/o/r/pull/7#issuecomment-1", 1, "created")

    outcome = execute_ci_report(
        options(regressed, github_token="t0k", repo="o/r", pr=PR, comment_key="gpu-a", api_url="https://ghe/api/v3"),
        upsert=fake_upsert,
    )
    (call,) = calls
    assert call["key"] == "gpu-a" and call["api_url"] == "https://ghe/api/v3" and call["pr"] == PR
    assert call["body"].startswith("<!-- kitt-benchmark:gpu-a -->\n")
    assert outcome.comment_url == "https://github.com/o/r/pull/7#issuecomment-1" and not outcome.printed


def test_partial_comment_arguments_print_and_warn(regressed: Path) -> None:
    code, printed, notices = run(options(regressed, github_token="t0k", repo="o/r"))
    assert code == 0 and printed.startswith("<!--")
    assert Notice("warning", "Not posting a PR comment: --pr not given.") in notices


def test_forbidden_comment_is_a_warning_and_goes_to_the_step_summary(regressed: Path) -> None:
    def forbidden(**kwargs: Any) -> CommentResult:
        raise CommentForbidden("GitHub refused to comment (HTTP 403)", hint="Give the job pull-requests: write.")

    summary = regressed / "summary.md"
    opts = options(regressed, github_token="ro", repo="o/r", pr=PR, summary_path=summary)
    code, _, notices = run(opts, upsert=forbidden)
    assert code == 0 and summary.read_text().startswith("<!-- kitt-benchmark -->")
    assert any(n.level == "warning" and "HTTP 403" in n.message for n in notices)
    # The gate still stands when the comment fails, and --require-comment makes the 403 fatal.
    opts.fail_on_regression = True
    assert run(opts, upsert=forbidden)[0] == 1
    opts.fail_on_regression, opts.require_comment = False, True
    assert run(opts, upsert=forbidden)[0] == 1


def test_other_api_errors_are_exit_one_with_the_report_kept(regressed: Path) -> None:
    def broken(**kwargs: Any) -> CommentResult:
        raise GitHubError("GitHub answered HTTP 502 while creating the comment")

    summary = regressed / "summary.md"
    code, _, notices = run(options(regressed, github_token="t", repo="o/r", pr=PR, summary_path=summary), upsert=broken)
    assert code == 1 and summary.exists()
    assert Notice("error", "GitHub answered HTTP 502 while creating the comment") in notices


def test_comment_created_then_updated_through_the_github_double(regressed: Path, github_double: Any) -> None:
    github_double.add_pull(PR)
    repo = github_double.repo.full_name
    upsert = functools.partial(upsert_pr_comment, retry=FAST_RETRY)
    opts = options(regressed, github_token=github_double.token, repo=repo, pr=PR, api_url=github_double.api_url)
    first = execute_ci_report(opts, upsert=upsert)
    write_run(regressed / "current", timestamp="2025-05-03T10:00:00.000Z")  # the fix is pushed
    second = execute_ci_report(opts, upsert=upsert)
    assert (first.comment_action, second.comment_action) == ("created", "updated")
    assert first.comment_url == second.comment_url
    (comment,) = github_double.comments(PR)
    assert comment.body.startswith("<!-- kitt-benchmark -->\n## ✅ No regressions")


def test_read_only_token_through_the_github_double(regressed: Path, github_double: Any, tmp_path: Path) -> None:
    github_double.add_pull(PR)
    summary = tmp_path / "summary.md"
    opts = options(
        regressed,
        github_token=github_double.read_only_token,
        repo=github_double.repo.full_name,
        pr=PR,
        api_url=github_double.api_url,
        summary_path=summary,
        fail_on_regression=True,
    )
    outcome = execute_ci_report(opts, upsert=functools.partial(upsert_pr_comment, retry=FAST_RETRY))
    assert outcome.exit_code == 1  # the regression, not the 403
    assert github_double.comments(PR) == [] and summary.read_text().startswith("<!-- kitt-benchmark -->")
    assert github_double.read_only_token not in " ".join(n.message for n in outcome.notices)


# --------------------------------------------------------------------------- the CLI shell


def test_cli_runs_the_flow(regressed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["ci", "report", "--results-dir", str(regressed / "current"), "--baseline-dir", str(regressed / "baseline")]
    assert cli.main([*args, "--fail-on-regression"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("<!-- kitt-benchmark -->") and "p99_tpot_ms regressed" in captured.err
    assert cli.main(["ci", "report", "--results-dir", str(regressed / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_big_report_is_cut_for_the_comment_but_not_for_the_step_summary(tmp_path: Path) -> None:
    levels = tuple(range(1, 151))
    write_run(tmp_path / "baseline", levels=levels, repeats=2)
    write_run(tmp_path / "current", levels=levels, repeats=2, change={"p99_ttft_ms": 1.3})
    bodies: list[str] = []

    def fake_upsert(**kwargs: Any) -> CommentResult:
        bodies.append(kwargs["body"])
        return CommentResult("https://github.com/o/r/pull/7#issuecomment-2", 2, "updated")

    summary = tmp_path / "summary.md"
    opts = options(tmp_path, github_token="t", repo="o/r", pr=PR, summary=True, summary_path=summary)
    outcome = execute_ci_report(opts, upsert=fake_upsert)
    (body,) = bodies
    assert (
        len(body) < 65_536 and "limit for a comment" in body and body.startswith("<!-- kitt-benchmark -->\n## ❌ 150")
    )
    full = summary.read_text()
    assert len(full) > 65_536 and "cut" not in full and full.count("#### `throughput-c") == 150
    assert outcome.exit_code == 0 and outcome.summary_written


def test_upstream_cli_shape_posts_and_upserts_through_the_double(regressed: Path, github_double: Any) -> None:
    """KITT's documented invocation, as a user's workflow runs it: a child process, GITHUB_API_URL set."""
    import subprocess
    import sys

    from support import REPO, clean_environ

    github_double.add_pull(PR)
    env = clean_environ(
        GITHUB_API_URL=github_double.api_url, GITHUB_ACTIONS="true", GITHUB_TOKEN=github_double.token
    )  # the token from the environment, as documented
    command = [
        sys.executable,
        "-m",
        "kitt",
        "ci",
        "report",
        "--results-dir",
        str(regressed / "current"),
        "--baseline-dir",
        str(regressed / "baseline"),
        "--repo",
        github_double.repo.full_name,
        "--pr",
        str(PR),
        "--comment-key",
        "h100",
    ]
    runs = [subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO, timeout=120) for _ in range(2)]
    for done in runs:
        assert done.returncode == 0, done.stderr
        # The runner swallows ::add-mask:: and hides the value everywhere after it; no other line has it.
        lines = (done.stdout + done.stderr).splitlines()
        assert lines[0] == f"::add-mask::{github_double.token}"
        assert not any(github_double.token in line for line in lines[1:])
    (comment,) = github_double.comments(PR)
    assert comment.body.startswith("<!-- kitt-benchmark:h100 -->")
    assert "::notice::PR comment created" in runs[0].stdout and "::notice::PR comment updated" in runs[1].stdout
    failing = subprocess.run(
        [*command, "--fail-on-regression"], env=env, capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert failing.returncode == 1 and "::error::throughput-c8 p99_tpot_ms regressed" in failing.stdout


def test_baseline_artifact_flag_downloads_the_base_branch_baseline(regressed: Path, github_double: Any) -> None:
    """`--baseline-artifact NAME` finds main's newest artifact (not a fork's) and compares with it."""
    import io
    import subprocess
    import sys
    import zipfile

    from support import REPO, clean_environ

    def zipped(folder: Path) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path in folder.rglob("*"):
                archive.write(path, path.relative_to(folder).as_posix())
        return buffer.getvalue()

    github_double.add_artifact("kitt-results", content=zipped(regressed / "baseline"), head_branch="main")
    # A fork's artifact named like the baseline, on a branch named main, newer: must be ignored.
    github_double.add_artifact(
        "kitt-results", content=zipped(regressed / "current"), head_branch="main", from_fork=True
    )
    env = clean_environ(GITHUB_API_URL=github_double.api_url, GITHUB_TOKEN=github_double.token)
    command = [
        sys.executable,
        "-m",
        "kitt",
        "ci",
        "report",
        "--results-dir",
        str(regressed / "current"),
        "--baseline-artifact",
        "kitt-results",
        "--repo",
        github_double.repo.full_name,
        "--output",
        str(regressed / "report.md"),
        "--fail-on-regression",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "p99_tpot_ms" in (regressed / "report.md").read_text() and "p99_tpot_ms regressed" in done.stderr
    missing = subprocess.run(
        [*command[:8], "absent", *command[9:]], env=env, capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert missing.returncode == 0 and "No baseline: no artifact named 'absent'" in missing.stderr
    assert "no baseline yet" in (regressed / "report.md").read_text().lower()


# --------------------------------------------------------------------------- verdicts that fail closed


def test_a_run_cancelled_after_one_of_ten_repeats_is_incomplete_and_fails(tmp_path: Path) -> None:
    write_run(tmp_path / "baseline", repeats=10)
    write_run(
        tmp_path / "current",
        repeats=1,
        passed=False,
        timestamp="2025-05-02T10:00:00.000Z",
        config={"suite": {"repeats": 10}},
    )
    code, text, notices = run(options(tmp_path, fail_on_regression=True))
    assert code == 1
    headline = text.splitlines()[1]
    assert "✅" not in headline and "incomplete" in headline
    assert "throughput-c8 ran 1 of 10 repeats." in text and "passed: false" in text
    assert any(n.level == "error" and "1 of 10 repeats" in n.message for n in notices)


def test_a_failed_benchmark_job_upstream_makes_the_report_incomplete(tmp_path: Path) -> None:
    write_run(tmp_path / "baseline")
    write_run(tmp_path / "current", timestamp="2025-05-02T10:00:00.000Z")
    outcome = execute_ci_report(
        options(tmp_path, upstream_failure="cancelled", fail_on_regression=True), stdout=io.StringIO()
    )
    assert outcome.exit_code == 1 and outcome.outputs["verdict"] == "incomplete"
    assert "conclusion: cancelled" in outcome.report.markdown  # type: ignore[union-attr]


def test_another_model_is_shown_not_gated_unless_allowed(tmp_path: Path) -> None:
    write_run(tmp_path / "baseline", model="other/model")
    write_run(tmp_path / "current", change={"p99_tpot_ms": 1.3}, timestamp="2025-05-02T10:00:00.000Z")
    code, text, _ = run(options(tmp_path, fail_on_regression=True))
    assert code == 0 and "Not gated: the model differs" in text and "--allow-mismatch" in text
    code, _, _ = run(options(tmp_path, fail_on_regression=True, allow_mismatch=True))
    assert code == 1


def test_a_changed_engine_image_is_named_in_the_headline_and_does_not_block(tmp_path: Path) -> None:
    write_run(tmp_path / "baseline", config={"engine_image_digest": "sha256:" + "ab" * 32})
    write_run(
        tmp_path / "current",
        timestamp="2025-05-02T10:00:00.000Z",
        config={"engine_image_digest": "sha256:" + "cd" * 32},
    )
    code, text, _ = run(options(tmp_path, fail_on_regression=True))
    assert code == 0
    assert "✅" in text.splitlines()[1] and "vllm image changed: sha256:abababababab… → sha256:cdcdcdcdcdcd…" in text


def test_a_history_of_baseline_jobs_is_read_newest_first_and_named(tmp_path: Path) -> None:
    for day in (1, 2, 3, 4):
        write_run(
            tmp_path / "baseline" / f"job-{day}",
            timestamp=f"2025-04-0{day}T10:00:00.000Z",
            change={"median_ttft_ms": 1 + 0.01 * day},
        )
    write_run(tmp_path / "current", timestamp="2025-05-02T10:00:00.000Z")
    outcome = execute_ci_report(options(tmp_path, baseline_history=3), stdout=io.StringIO())
    comparison = outcome.report.comparison  # type: ignore[union-attr]
    assert comparison.design == "history" and len(comparison.history) == 3
    assert [r.timestamp.day for r in comparison.history] == [4, 3, 2]
    assert "Compared with 3 baseline jobs (2025-04-02 to 2025-04-04)" in outcome.report.markdown  # type: ignore[union-attr]
    single = execute_ci_report(options(tmp_path, baseline_history=1), stdout=io.StringIO()).report
    assert single.comparison.design == "single"  # type: ignore[union-attr]
    assert "run-to-run drift was not measured" in single.markdown  # type: ignore[union-attr]


def test_ci_report_on_several_result_sets_writes_one_report_with_each_jobs_own_baseline(tmp_path: Path, capsys) -> None:
    from kitt.cli import main

    write_run(tmp_path / "jobs" / "vllm-llama", change={"median_e2el_ms": 1.4})
    write_run(tmp_path / "jobs" / "sglang-llama", change={"median_e2el_ms": 1.4})
    # Only vllm-llama has a baseline; sglang-llama's regression cannot be seen without one.
    write_run(tmp_path / "base" / "vllm-llama", timestamp="2025-04-30T10:00:00.000Z")
    args = ["ci", "report", "--baseline-dir", str(tmp_path / "base"), "--fail-on-regression"]
    code = main(
        [
            *args,
            "--results-dir",
            str(tmp_path / "jobs" / "vllm-llama"),
            "--results-dir",
            str(tmp_path / "jobs" / "sglang-llama"),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 1 and printed.count("<!-- kitt-benchmark") == 1
    assert printed.splitlines()[1] == "## ❌ 1 of 2 jobs regressed · 1 without a baseline"
    assert "### vllm-llama: ❌ 1 regression: median E2E +40%" in printed
    assert "### sglang-llama: 📊 No baseline yet" in printed
    # --jobs-dir: the same jobs as subfolders of one folder (as download-artifact's pattern writes them).
    assert main([*args, "--jobs-dir", str(tmp_path / "jobs")]) == 1
    again = capsys.readouterr().out
    assert again.index("### sglang-llama") < again.index("### vllm-llama")  # sorted by name


def test_ci_report_refuses_two_jobs_of_one_name_and_no_results(tmp_path: Path, capsys) -> None:
    from kitt.cli import main

    write_run(tmp_path / "a" / "job")
    write_run(tmp_path / "b" / "job")
    assert (
        main(
            ["ci", "report", "--results-dir", str(tmp_path / "a" / "job"), "--results-dir", str(tmp_path / "b" / "job")]
        )
        == 2
    )
    assert "same name" in capsys.readouterr().err
    assert main(["ci", "report"]) == 2
    assert "--results-dir (once per job) or --jobs-dir" in capsys.readouterr().err
