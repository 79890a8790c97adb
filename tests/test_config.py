"""Suites: built-ins load, custom files are validated with the file and field path in the message."""

from pathlib import Path

import pytest

from kitt.config import BUILTIN_SUITES, Overrides, apply_overrides, load_suite, parse_concurrency_list
from kitt.errors import UsageError


@pytest.mark.parametrize("name", BUILTIN_SUITES)
def test_builtin_suites_load(name):
    suite = load_suite(name)
    assert suite.name == name and suite.tests and suite.repeats >= 1


def write(tmp_path, text):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "tests: [{name: a, concurrency: 1, num_requests: 0}]",
            "suite.tests[0].num_requests: must be a whole number >= 1",
        ),
        ("tests: [{name: a, concurency: 1}]", "suite.tests[0].concurency: unknown key"),
        ("tests: [{name: a, concurrency: [1, -4]}]", "suite.tests[0].concurrency[1]"),
        ("tests: [{name: a}]", "needs exactly one of 'concurrency'"),
        ("tests: [{name: a, concurrency: 1, request_rate: 2}]", "needs exactly one of"),
        ("repeat: 3\ntests: [{name: a, concurrency: 1}]", "suite.repeat: unknown key"),
        ("api: grpc\ntests: [{name: a, concurrency: 1}]", "suite.api"),
        ("tests: []", "suite.tests: must be a non-empty list"),
        ("tests: [{name: a, concurrency: 1}, {name: a, concurrency: 2}]", "repeated: a"),
        ("tests: [{name: a-b, concurrency: 1}]", "suite.tests[0].name"),
        ("slo: {ttft: 5}\ntests: [{name: a, concurrency: 1}]", "suite.slo.ttft: unknown key"),
        ("max_error_rate: 2\ntests: [{name: a, concurrency: 1}]", "suite.max_error_rate"),
        ("tests: [{name: a, concurrency: 1}", "is not valid YAML"),
    ],
)
def test_bad_suite_names_file_and_field(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as info:
        load_suite(path)
    message = str(info.value)
    assert fragment in message and path in message
    assert info.value.exit_code == 2
    assert "\n" not in message


def test_unknown_suite_lists_builtins():
    with pytest.raises(UsageError, match="quick, standard, performance"):
        load_suite("nonexistent-suite")


def test_overrides_apply_to_every_test(tmp_path):
    suite = load_suite("performance")
    o = apply_overrides(suite, Overrides(concurrency=(2, 3), num_requests=5, output_len=7, repeats=2, warmup=0, seed=9))
    assert all([lv.value for lv in t.levels] == [2, 3] and t.num_requests == 5 and t.output_len == 7 for t in o.tests)
    assert (o.repeats, o.warmup, o.seed) == (2, 0, 9)
    rate = apply_overrides(suite, Overrides(request_rate=1.5))
    assert all(t.levels[0].kind == "rate" and t.levels[0].value == 1.5 for t in rate.tests)
    assert rate.tests[0].test_name(rate.tests[0].levels[0]) == "sweep-r1.5"


def test_concurrency_list_parsing():
    assert parse_concurrency_list("1, 4,16") == (1, 4, 16)
    for bad in ("", "a,b", "0", "1,-2"):
        with pytest.raises(UsageError):
            parse_concurrency_list(bad)


# ----------------------------------------------------------------------------- workloads (issue 24)

WORKLOAD_TEST = "tests:\n  - {name: a, %s}\n"


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        (
            "concurrency: 1, input_len: {mean: 100, stdev: -1, min: 10, max: 200}",
            "suite.tests[0].input_len.stdev: must be",
        ),
        ("concurrency: 1, input_len: {mean: 100, stdev: 5, min: 300, max: 200}", "input_len: min 300 is above max 200"),
        (
            "concurrency: 1, input_len: {mean: 900, stdev: 5, min: 10, max: 200}",
            "suite.tests[0].input_len.mean: must lie",
        ),
        ("concurrency: 1, input_len: {mean: 100, stdev: 5}", "needs mean, stdev, min and max (missing: max, min)"),
        ("concurrency: 1, output_len: {uniform: [9, 3]}", "suite.tests[0].output_len.uniform: lo 9 is above hi 3"),
        ("concurrency: 1, output_len: {uniform: 5}", "suite.tests[0].output_len.uniform: must be a list"),
        (
            "concurrency: 1, mix: [{weight: 0, input_len: 5, output_len: 5}]",
            "suite.tests[0].mix: needs at least one entry",
        ),
        ("concurrency: 1, mix: [{weight: -1, input_len: 5, output_len: 5}]", "suite.tests[0].mix[0].weight"),
        ("concurrency: 1, mix: [{weight: 1, input_len: 5}]", "suite.tests[0].mix[0].output_len: is missing"),
        ("concurrency: 1, input_len: 5, mix: [{weight: 1, input_len: 5, output_len: 5}]", "mix: replaces input_len"),
        (
            "request_rate: 1, arrival: gamma, burstiness: 0",
            "suite.tests[0].burstiness: must be a finite number greater than 0",
        ),
        ("request_rate: 1, arrival: bursty", "suite.tests[0].arrival: must be one of poisson, gamma, constant"),
        ("request_rate: 1, burstiness: 2", "suite.tests[0].burstiness: applies to arrival: gamma only"),
        ("request_rate: 1, ramp_up_s: -3", "suite.tests[0].ramp_up_s"),
        ("concurrency: 1, arrival: gamma", "suite.tests[0].arrival: applies to open-loop tests"),
        ("concurrency: 1, duration_s: 0", "suite.tests[0].duration_s: must be a finite number greater than 0"),
        ("concurrency: 1, dataset: {path: x, format: csv}", "suite.tests[0].dataset.format: must be one of"),
        ("concurrency: 1, dataset: {path: x, sample: all}", "suite.tests[0].dataset.sample: must be one of"),
    ],
)
def test_bad_workloads_name_the_field(tmp_path, fields, fragment):
    with pytest.raises(UsageError) as info:
        load_suite(write(tmp_path, WORKLOAD_TEST % fields))
    assert fragment in str(info.value)


def test_workload_fields_resolve_and_are_recorded(tmp_path):
    from kitt.config import suite_to_dict
    from kitt.workload.arrivals import Arrival
    from kitt.workload.lengths import Normal, Uniform

    suite = load_suite(
        write(
            tmp_path,
            WORKLOAD_TEST
            % (
                "request_rate: [2], arrival: gamma, burstiness: 0.5, ramp_up_s: 3, duration_s: 30, "
                "input_len: {mean: 100, stdev: 20, min: 10, max: 200}, output_len: {uniform: [8, 16]}"
            ),
        )
    )
    test = suite.tests[0]
    assert test.input_len == Normal(100, 20, 10, 200) and test.output_len == Uniform(8, 16)
    assert test.arrival == Arrival("gamma", 0.5, 3.0) and test.duration_s == 30
    assert test.num_requests == 1000  # a duration level's default cap
    written = suite_to_dict(suite)["tests"][0]
    assert written["input_len"] == {"mean": 100, "stdev": 20, "min": 10, "max": 200}
    assert written["arrival"] == {"kind": "gamma", "burstiness": 0.5, "ramp_up_s": 3.0} and written["duration_s"] == 30
    plain = suite_to_dict(load_suite("quick"))["tests"][0]
    assert set(plain) == {"name", "levels", "num_requests", "input_len", "output_len"}  # as config.json always read


def test_duration_and_dataset_overrides(tmp_path):
    data = tmp_path / "p.txt"
    data.write_text("one\ntwo\n")
    suite = apply_overrides(load_suite("quick"), Overrides(duration_s=5.0, dataset=str(data), dataset_format="prompts"))
    assert all(t.duration_s == 5.0 and t.num_requests == 1000 and len(t.dataset.prompts) == 2 for t in suite.tests)
    capped = apply_overrides(load_suite("quick"), Overrides(duration_s=5.0, num_requests=7))
    assert all(t.num_requests == 7 for t in capped.tests)
    with pytest.raises(UsageError, match="--dataset-format needs a dataset"):
        apply_overrides(load_suite("quick"), Overrides(dataset_format="prompts"))


# ----------------------------------------------------------------------------- shared prefixes (issue 25)


@pytest.mark.parametrize(
    ("prefix", "fragment"),
    [
        ("{groups: 0, len: 256}", "suite.tests[0].prefix.groups: must be a whole number >= 1, got 0"),
        ("{groups: 2, len: 0}", "suite.tests[0].prefix.len: must be a whole number >= 1, got 0"),
        ("{groups: 2, len: -5}", "suite.tests[0].prefix.len: must be a whole number >= 1, got -5"),
        ("{groups: 2.5, len: 8}", "suite.tests[0].prefix.groups: must be a whole number"),
        ("{groups: 2, len: 8, skew: -1}", "suite.tests[0].prefix.skew: must be a number from 0 (uniform) to 100"),
        ("{groups: 2, len: 8, skew: .nan}", "suite.tests[0].prefix.skew: must be a number from 0"),
        ("{groups: 2, len: 8, skew: high}", "suite.tests[0].prefix.skew: must be a number, got 'high'"),
        ("{groups: 2}", "suite.tests[0].prefix.len: is missing"),
        ("{groups: 2, len: 8, size: 3}", "suite.tests[0].prefix.size: unknown key"),
        ("256", "suite.tests[0].prefix: must be a mapping {groups, len, skew}"),
        ("{groups: 100001, len: 8}", "suite.tests[0].prefix.groups: must be at most 100,000"),
    ],
)
def test_bad_prefixes_name_the_field(tmp_path, prefix, fragment):
    with pytest.raises(UsageError) as info:
        load_suite(write(tmp_path, WORKLOAD_TEST % f"concurrency: 1, prefix: {prefix}"))
    assert fragment in str(info.value)


def test_a_bad_prefix_exits_2_in_one_line_before_any_engine_starts(tmp_path):
    from support import run_kitt, unique_model

    suite = write(tmp_path, WORKLOAD_TEST % "concurrency: 1, prefix: {groups: 0, len: 256}")
    done = run_kitt("run", "-m", unique_model(), "-e", "sim", "-s", suite, "-o", str(tmp_path / "out"), timeout=60)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("kitt: error:")]
    assert len(errors) == 1 and "prefix.groups: must be a whole number >= 1, got 0" in errors[0]
    assert "Starting" not in done.stdout + done.stderr and not (tmp_path / "out").exists()


def test_a_prefix_counts_toward_the_prompt_limits(tmp_path):
    suite = load_suite(
        write(tmp_path, WORKLOAD_TEST % "concurrency: 1, input_len: 10, prefix: {groups: 3, len: 999990}")
    )
    assert suite.tests[0].prefix.length == 999_990 and suite.tests[0].prefix.skew == 0
    with pytest.raises(UsageError, match=r"test 'a': prefix len \+ input_len 1000001 is above the limit"):
        load_suite(write(tmp_path, WORKLOAD_TEST % "concurrency: 1, input_len: 10, prefix: {groups: 1, len: 999991}"))


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("request_rate", "[.inf]", "must be a finite number greater than 0"),
        ("request_rate", "[1.0e-300]", "must be between 0.001"),
        ("output_len", "10000000", "above the limit of 1,000,000 tokens"),
        ("num_requests", "100000000000", "above the limit of 1,000,000"),
        ("input_len", "1" + "0" * 400, "above the limit"),
    ],
)
def test_out_of_range_suite_values_are_usage_errors(tmp_path: Path, field: str, value: str, fragment: str) -> None:
    body = {"concurrency": "[1]", "num_requests": "2", field: value}
    if field == "request_rate":
        body.pop("concurrency")
    path = tmp_path / "s.yaml"
    path.write_text("tests:\n  - name: t\n" + "".join(f"    {k}: {v}\n" for k, v in body.items()))
    with pytest.raises(UsageError, match=fragment) as caught:
        load_suite(str(path))
    assert "\n" not in str(caught.value)


def test_concurrency_above_the_requests_is_capped_and_named_for_what_it_is() -> None:
    suite = apply_overrides(load_suite("standard"), Overrides(concurrency=(1, 4, 64, 100), num_requests=8))
    first = suite.tests[0]
    assert [first.test_name(level) for level in first.levels] == [f"{first.name}-c{c}" for c in (1, 4, 8)]
