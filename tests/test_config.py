"""Suites: built-ins load, custom files are validated with the file and field path in the message."""

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
        ("tests: [{name: a, concurrency: 1, num_requests: 0}]", "suite.tests[0].num_requests: must be a whole number >= 1"),
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
