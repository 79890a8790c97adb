"""Other tools' result files as kitt result sets: recognised by content, mapped to kitt's
definitions, compared and gated (A/A passes, a slowed candidate regresses), mismatches shown.

Every file under fixtures/ was written by the real tool: vllm bench serve, GuideLLM, AIPerf,
genai-perf, inference-perf and LLMPerf against kitt's sim server (fixtures/README.md has the
commands), and inference-perf's own published demo results.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kitt.ci import ReportOptions, build_report, load_baseline_history
from kitt.comparison import Verdict
from kitt.errors import ResultsError
from kitt.importers import has_results, load_results, readers, recognise
from support import run_kitt

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REAL = {
    "vllm": "vllm bench serve",
    "guidellm": "GuideLLM",
    "aiperf": "AIPerf",
    "inference-perf": "inference-perf",
    "genai-perf": "genai-perf",
}
WITHOUT_TPOT = {"llmperf": "LLMPerf"}  # real files of a tool that reports no TPOT (nor per-gap ITL)
# genai-perf counts output tokens with its own tokenizer only: the tiny model's splits each sim token in
# two, so its TPOT (E2EL - TTFT over that count) is about half the sim's 8 ms per token.
OWN_COUNT_TPOT = {"genai-perf": (2, 10)}
NO_MODEL = {"inference-perf"}  # its lifecycle reports do not name the model
GATED_LATENCY = ("median_ttft_ms", "p99_ttft_ms", "median_tpot_ms", "p99_tpot_ms", "median_e2el_ms", "p99_e2el_ms")


def report(current: Path, baseline: Path | None, **extra) -> object:
    return build_report(ReportOptions(results_dir=current, baseline_dir=baseline, **extra))


@pytest.mark.parametrize("tool", sorted(REAL))
def test_real_files_load_as_repeats_at_each_level(tool):
    result_set = load_results(FIXTURES / tool / "baseline")
    assert result_set.suite_name == REAL[tool]
    assert result_set.model == ("unknown" if tool in NO_MODEL else "sim-model")
    names = sorted({r.test_name for r in result_set.results})
    levels = ("-c2",) if tool == "aiperf" else ("-c2", "-c6")
    assert len(names) == len(levels) and all(n.endswith(levels) for n in names), names
    for name in names:
        runs = sorted(r.run_number for r in result_set.results if r.test_name == name)
        assert runs == [1, 2, 3]
    for result in result_set.results:
        assert result.passed and result.metrics["completed"] == 12 and result.metrics["failed"] == 0
        # The sim server's TTFT is 40 ms and each token 8 ms: every tool's figures are of that order.
        assert 30 < result.metrics["median_ttft_ms"] < 400
        low, high = OWN_COUNT_TPOT.get(tool, (5, 20))
        assert low < result.metrics["median_tpot_ms"] < high
        assert result.metrics["output_throughput"] > 0


def test_guidellm_names_apart_what_differs_and_says_so():
    result_set = load_results(FIXTURES / "guidellm" / "baseline")
    metrics = result_set.results[0].metrics
    # GuideLLM's TPOT includes the first token: larger than kitt's TPOT (its ITL) by about TTFT / tokens.
    assert metrics["median_e2el_per_token_ms"] > metrics["median_tpot_ms"]
    assert not any(name.endswith("_itl_ms") for name in metrics)  # GuideLLM keeps no per-gap times
    assert any("GuideLLM" in line and "first token" in line for line in result_set.definitions)
    markdown = report(FIXTURES / "guidellm" / "same", FIXTURES / "guidellm" / "baseline").markdown
    assert "its TPOT includes the first token" in markdown


@pytest.mark.parametrize("tool", sorted({**REAL, **WITHOUT_TPOT}))
def test_an_a_a_pair_shows_no_regression(tool):
    built = report(FIXTURES / tool / "same", FIXTURES / tool / "baseline", fail_on_regression=True)
    assert built.comparison.gating
    assert built.comparison.regressions == [] and built.exit_code == 0
    assert built.comparison.verdict in ("unchanged", "inconclusive", "improvement")


@pytest.mark.parametrize("tool", sorted(REAL))
def test_a_slowed_candidate_is_a_regression(tool):
    built = report(FIXTURES / tool / "slower", FIXTURES / tool / "baseline", fail_on_regression=True)
    assert built.comparison.gating and built.comparison.verdict == "regression" and built.exit_code == 1
    assert {row.metric for row in built.comparison.regressions} <= {
        *GATED_LATENCY,
        "median_itl_ms",
        "p99_itl_ms",
        "output_throughput",
    }
    # The server's ITL was slowed by 30%: TPOT moved that way, by well over the 5% threshold (less than 30%
    # where the clients' own overhead on a busy 2-core machine dilutes it).
    tpot = [r for r in built.comparison.rows if r.metric == "median_tpot_ms"]
    assert tpot and all(10 < r.change_pct < 50 for r in tpot), [(r.test, r.change_pct) for r in tpot]


def test_llmperf_files_load_as_repeats_and_keep_its_own_definitions():
    result_set = load_results(FIXTURES / "llmperf" / "baseline")
    assert result_set.suite_name == "LLMPerf" and result_set.model == "sim-model"
    names = sorted({r.test_name for r in result_set.results})
    assert names == ["concurrency-c2", "concurrency-c6"]
    for name in names:
        assert sorted(r.run_number for r in result_set.results if r.test_name == name) == [1, 2, 3]
    for result in result_set.results:
        metrics = result.metrics
        assert result.passed and metrics["completed"] == 12 and metrics["failed"] == 0
        assert 30 < metrics["median_ttft_ms"] < 400 and metrics["median_e2el_ms"] > metrics["median_ttft_ms"]
        # Its "inter-token latency": time to the last chunk over the chunks streamed (16 tokens, one
        # more chunk closing the stream), so close to E2EL / 17: neither kitt's TPOT (8 ms) nor ITL.
        assert metrics["median_e2el_per_token_ms"] == pytest.approx(metrics["median_e2el_ms"] / 17, rel=0.15)
        assert not any(key.endswith(("_tpot_ms", "_itl_ms")) for key in metrics)
        assert "output_throughput" not in metrics and metrics["output_throughput_own_tokens"] > 0
    assert any("re-tokenizing" in line for line in result_set.definitions)
    assert any("e2el_per_token" in line for line in result_set.definitions)


def test_a_slowed_llmperf_candidate_regresses_on_what_it_measures():
    built = report(FIXTURES / "llmperf" / "slower", FIXTURES / "llmperf" / "baseline", fail_on_regression=True)
    assert built.comparison.gating and built.comparison.verdict == "regression" and built.exit_code == 1
    assert {row.metric for row in built.comparison.regressions} <= set(GATED_LATENCY)
    e2el = [r for r in built.comparison.rows if r.metric == "median_e2el_ms"]
    assert e2el and all(10 < r.change_pct < 50 for r in e2el), [(r.test, r.change_pct) for r in e2el]
    assert "re-tokenizing" in built.markdown


def test_the_cli_gates_a_tools_files(tmp_path):
    done = run_kitt(
        "ci",
        "report",
        "--results-dir",
        str(FIXTURES / "vllm" / "slower"),
        "--baseline-dir",
        str(FIXTURES / "vllm" / "baseline"),
        "--fail-on-regression",
        "--output",
        str(tmp_path / "r.md"),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    text = (tmp_path / "r.md").read_text()
    assert "concurrency-c2" in text and "regress" in text.lower()


def test_a_baseline_from_another_tool_is_shown_not_gated():
    built = report(FIXTURES / "guidellm" / "slower", FIXTURES / "vllm" / "baseline", fail_on_regression=True)
    assert not built.comparison.gating and built.exit_code == 0
    assert ("suite", "vllm bench serve", "GuideLLM") in built.comparison.identity.differs
    assert "shown but not gated" in built.markdown
    # A gated metric only vLLM's files have (per-gap ITL) is not "missing" from GuideLLM's run: the
    # two tools measure different things, so nothing here reads as incomplete.
    only_vllm = [r for r in built.comparison.rows if r.metric == "median_itl_ms"]
    assert only_vllm and all(r.verdict.value == "only in baseline" for r in only_vllm)
    assert "incomplete" not in built.markdown.lower() and "missing" not in built.markdown.lower()


def test_kitt_results_against_a_tools_files_are_a_mismatch(tmp_path):
    from test_ci import write_run

    write_run(tmp_path / "kitt")
    built = report(FIXTURES / "vllm" / "same", tmp_path / "kitt")
    assert not built.comparison.gating and built.comparison.verdict == "not gated"


def test_files_are_recognised_by_content_not_by_name(tmp_path):
    for index, path in enumerate(sorted((FIXTURES / "guidellm" / "baseline").glob("*.json"))):
        (tmp_path / f"nested-{index}").mkdir()
        shutil.copy(path, tmp_path / f"nested-{index}" / f"{index}.json")
    (tmp_path / "notes.json").write_text('{"hello": "world"}')  # an unrelated JSON file is left alone
    (tmp_path / "benchmarks.json.bak").write_text("{}")
    result_set = load_results(tmp_path)
    assert result_set.suite_name == "GuideLLM" and len(result_set.results) == 6
    assert recognise({"hello": "world"}) is None and recognise([1, 2]) is None


def test_a_corrupt_or_mixed_folder_is_an_error(tmp_path):
    shutil.copytree(FIXTURES / "vllm" / "baseline", tmp_path / "one")
    (tmp_path / "one" / "cut.json").write_text('{"completed": 3, "dura')
    with pytest.raises(ResultsError, match="cut.json is not valid JSON"):
        load_results(tmp_path / "one")
    shutil.copytree(FIXTURES / "vllm" / "baseline", tmp_path / "two")
    shutil.copy(next((FIXTURES / "guidellm" / "baseline").glob("*.json")), tmp_path / "two")
    with pytest.raises(ResultsError, match="mixes result files of GuideLLM, vllm bench serve"):
        load_results(tmp_path / "two")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="no metrics.json and no other benchmark tool's result file"):
        load_results(tmp_path / "empty")


def test_vllm_append_result_files_hold_one_repeat_a_line(tmp_path):
    # What `vllm bench serve --append-result` writes: each run's json.dump, one a line.
    runs = [path.read_text() for path in sorted((FIXTURES / "vllm" / "baseline").glob("vllm-c2-run*.json"))]
    (tmp_path / "appended.json").write_text("\n".join(runs))
    result_set = load_results(tmp_path)
    assert [(r.test_name, r.run_number) for r in result_set.results] == [("concurrency-c2", n) for n in (1, 2, 3)]


def test_a_failed_request_fails_closed(tmp_path):
    source = sorted((FIXTURES / "vllm" / "same").glob("*.json"))
    for path in source:
        shutil.copy(path, tmp_path)
    data = json.loads(source[0].read_text())
    data.update(completed=data["completed"] - 1, failed=1)
    (tmp_path / source[0].name).write_text(json.dumps(data))
    built = report(tmp_path, FIXTURES / "vllm" / "baseline", fail_on_regression=True)
    assert built.comparison.incomplete and built.exit_code == 1


def test_a_history_of_baseline_jobs_from_subfolders(tmp_path):
    # Job folders named as kitt's history download names them; deliberately in the wrong order.
    for folder, side in (("01-run7", "baseline"), ("02-run9", "same")):
        shutil.copytree(FIXTURES / "vllm" / side, tmp_path / "history" / folder)
    jobs = load_baseline_history(tmp_path / "history")
    assert [job.suite_name for job in jobs] == ["vllm bench serve"] * 2
    assert jobs[0].timestamp > jobs[1].timestamp  # newest first, by the files' own dates
    assert has_results(tmp_path / "history") and not has_results(FIXTURES.parent / "pins")


@pytest.mark.parametrize("tool", ["aiperf", "genai-perf", "inference-perf", "llmperf"])
def test_a_tools_runs_in_a_folder_each_are_one_baseline_job(tool):
    # These tools write a folder per run (run1/, run2/, ...): that is one job's repeats, not a
    # history of one-repeat jobs.
    jobs = load_baseline_history(FIXTURES / tool / "baseline")
    assert len(jobs) == 1
    runs = sorted({r.run_number for r in jobs[0].results})
    assert runs == [1, 2, 3]


def test_inference_perf_reads_stages_not_the_whole_run_summary(tmp_path):
    run = FIXTURES / "inference-perf" / "baseline" / "run1"
    result_set = load_results(run)
    # load.type concurrent: each stage's "requested_rate" is its request count sent at once; the
    # level is the concurrency. The whole-run summary beside the stage files is not a level.
    assert sorted(r.test_name for r in result_set.results) == ["concurrency-c2", "concurrency-c6"]
    assert json.loads((run / "stage_0_lifecycle_metrics.json").read_text())["load_summary"]["requested_rate"] == 12
    assert any("spans every stage" in line for line in result_set.definitions)
    shutil.copy(run / "summary_lifecycle_metrics.json", tmp_path)  # alone, the summary is read as one level
    alone = load_results(tmp_path)
    assert [r.test_name for r in alone.results] == ["all-stages"] and alone.results[0].metrics["completed"] == 24


def test_inference_perf_names_apart_what_its_own_tokenizer_counted():
    # Run with use_server_output_tokens: true: TPOT is kitt's; its tokenizer split the sim's
    # tokens in two, so its ITL holds a gap of 0 inside each chunk and is not kitt's ITL.
    server = load_results(FIXTURES / "inference-perf" / "baseline" / "run1").results[0].metrics
    assert 5 < server["median_tpot_ms"] < 20 and server["median_itl_own_tokens_ms"] < 1
    assert "median_itl_ms" not in server and "output_throughput" in server
    # The same run without it (inference-perf's default): TPOT divided by its own count, about half.
    own = load_results(FIXTURES / "inference-perf" / "own-count")
    metrics = own.results[0].metrics
    assert "median_tpot_ms" not in metrics and "output_throughput" not in metrics
    assert metrics["median_tpot_own_tokens_ms"] < server["median_tpot_ms"] * 0.7
    assert metrics["output_throughput_own_tokens"] > 0 and metrics["request_throughput"] > 0
    assert any("use_server_output_tokens: true" in line for line in own.definitions)


def test_inference_perf_files_from_its_own_repository():
    # The project's published KubeCon demo results (constant load, seven rates), from an older
    # release that timed every streamed line: its TPOT and ITL are kept under their own names.
    result_set = load_results(FIXTURES / "upstream-inference-perf")
    levels = {r.test_name: r for r in result_set.results}
    assert len(levels) == len(result_set.results) == 7 and all(r.passed for r in result_set.results)
    assert {"rate-r1", "rate-r18.16", "rate-r103.98"} <= set(levels)
    first = levels["rate-r1"].metrics
    assert first["completed"] == 60 and first["request_rate"] == 1
    assert 20 < first["median_ttft_ms"] < 60 and first["median_e2el_ms"] > first["median_ttft_ms"]
    assert "median_tpot_ms" not in first and "median_tpot_own_tokens_ms" in first
    assert any("timed every streamed line" in line for line in result_set.definitions)
    prometheus = json.loads((FIXTURES / "upstream-inference-perf" / "summary_prometheus_metrics.json").read_text())
    assert recognise(prometheus) is None  # its server-metrics report is not a lifecycle report


def test_genai_perf_reads_its_load_from_either_input_config(tmp_path):
    source = next((FIXTURES / "genai-perf" / "baseline" / "run1" / "c6").rglob("profile_export_genai_perf.json"))
    data = json.loads(source.read_text())
    assert data["input_config"]["perf_analyzer"]["stimulus"] == {"concurrency": 6}
    assert [r.test_name for r in load_results(source.parent).results] == ["concurrency-c6"]
    # Releases before its config files (perf_analyzer@9fd7980) exported the flat CLI arguments.
    data["input_config"] = {"model": ["sim-model"], "concurrency": None, "request_rate": 4.0}
    (tmp_path / "profile_export_genai_perf.json").write_text(json.dumps(data))
    result_set = load_results(tmp_path)
    assert [r.test_name for r in result_set.results] == ["rate-r4"] and result_set.model == "sim-model"
    assert any("own tokenizer" in line for line in result_set.definitions)


def test_genai_perf_and_aiperf_share_a_shape_but_not_an_identity():
    genai = json.loads(next((FIXTURES / "genai-perf" / "baseline").rglob("profile_export_genai_perf.json")).read_text())
    aiperf = json.loads(next((FIXTURES / "aiperf" / "baseline").rglob("profile_export_aiperf.json")).read_text())
    assert recognise(genai).name == "genai_perf" and recognise(aiperf).name == "aiperf"
    assert set(readers()) == {"vllm_bench", "guidellm", "aiperf", "genai_perf", "inference_perf", "llmperf"}


def test_kitts_own_metrics_json_wins_over_other_files(tmp_path):
    from test_ci import write_run

    write_run(tmp_path)
    shutil.copy(next((FIXTURES / "vllm" / "baseline").glob("*.json")), tmp_path / "vllm.json")
    assert load_results(tmp_path).suite_name == "standard"
