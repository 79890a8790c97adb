"""A different workload is a different thing measured: shown, not gated (like another suite),
and the report says in one line what was sent."""

from __future__ import annotations

from dataclasses import replace

from kitt.compare import compare_result_sets
from kitt.report.render import render_report
from kitt.report.sentences import sent_line
from kitt.workload.identity import fingerprint
from test_compare import BASE_VALUES, result_set

WORKLOAD = {
    "fingerprint": "aaaa",
    "length_method": "exact, engine /tokenize",
    "plain": False,
    "tests": {
        "chat": {
            "source": "dataset",
            "requests": 512,
            "dataset": {"format": "sharegpt", "sha256": "1a2b3c4d" * 8},
            "input_tokens": {"min": 12, "median": 210, "max": 1830},
            "output_tokens": {"min": 3, "median": 100, "max": 256},
            "skipped": 2,
            "rates": [4.0],
            "arrival": {"kind": "gamma", "burstiness": 0.5, "ramp_up_s": 0.0},
            "duration_s": None,
        }
    },
}


def sides(base_workload: dict | None, current_workload: dict | None):
    runs = {"throughput-c8": [dict(BASE_VALUES) for _ in range(5)]}
    base, current = result_set(runs), result_set(runs)
    if base_workload is not None:
        base = replace(base, config={"workload": base_workload})
    if current_workload is not None:
        current = replace(current, config={"workload": current_workload})
    return base, current


def test_another_workload_is_shown_not_gated_unless_allowed() -> None:
    base, current = sides(WORKLOAD, {**WORKLOAD, "fingerprint": "bbbb"})
    comparison = compare_result_sets(current, base)
    assert ("workload", "aaaa", "bbbb") in comparison.identity.differs and not comparison.gating
    assert compare_result_sets(current, base, allow_mismatch=True).gating
    assert "Not gated: the workload differs" in render_report(comparison, marker="<!-- kitt-benchmark -->")


def test_a_baseline_from_before_fingerprints_is_no_mismatch() -> None:
    base, current = sides(None, WORKLOAD)
    assert not compare_result_sets(current, base).identity.differs
    same = compare_result_sets(*reversed(sides(WORKLOAD, WORKLOAD)))
    assert not same.identity.differs


def test_the_line_of_what_was_sent() -> None:
    _, current = sides(None, WORKLOAD)
    assert sent_line(current) == (
        "Sent: ShareGPT sample (sha 1a2b3c), 512 requests, input 12–1,830 tokens "
        "(median 210, exact), output ≤ 256, gamma 4 req/s (burstiness 0.5), "
        "2 prompts skipped (past the context)"
    )
    assert sent_line(current) in render_report(compare_result_sets(current, None), marker="<!-- kitt-benchmark -->")
    _, plain = sides(None, {**WORKLOAD, "plain": True})
    assert sent_line(plain) == "" and sent_line(result_set({})) == ""


def test_fingerprint_is_stable_and_order_free() -> None:
    assert (
        fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1}) != fingerprint({"a": 2, "b": [1, 2]})
    )


def test_the_record_of_what_was_sent(tmp_path) -> None:
    from kitt.config import load_suite, suite_to_dict
    from kitt.workload.identity import workload_record

    sent = {"latency": {"inputs": [128] * 8, "outputs": [64] * 8, "skipped": 0, "inexact": 0}}
    quick = workload_record(
        suite_to_dict(load_suite("quick")), api="completions", method="exact, engine /tokenize", sent=sent
    )
    assert quick["plain"] and quick["tests"]["latency"]["input_tokens"] == {"min": 128, "median": 128, "max": 128}
    assert quick["tests"]["throughput"]["requests"] == 0 and quick["tests"]["latency"]["arrival"] is None
    chat = workload_record(suite_to_dict(load_suite("chat")), api="chat", method="exact, engine /tokenize", sent={})
    assert not chat["plain"] and chat["tests"]["chat"]["arrival"] == {
        "kind": "gamma",
        "burstiness": 0.5,
        "ramp_up_s": 0.0,
    }
    assert chat["tests"]["chat"]["rates"] == [2, 8] and chat["tests"]["chat"]["duration_s"] == 30

    def with_dataset(path: str, sha: str) -> str:
        suite = suite_to_dict(load_suite("quick"))
        suite["tests"][0]["dataset"] = {"path": path, "format": "sharegpt", "sample": "shuffle", "sha256": sha}
        return workload_record(suite, api="chat", method="approximate, ±12%", sent={})["fingerprint"]

    assert (
        with_dataset("/a/x.json", "1" * 64)
        == with_dataset("/b/y.json", "1" * 64)
        != with_dataset("/a/x.json", "2" * 64)
    )
    approx = workload_record(suite_to_dict(load_suite("quick")), api="completions", method="approximate, ±3%", sent={})
    assert approx["fingerprint"] != quick["fingerprint"]  # exact and approximate lengths are different workloads
    again = workload_record(suite_to_dict(load_suite("quick")), api="completions", method="approximate, ±40%", sent={})
    assert again["fingerprint"] == approx["fingerprint"]  # how approximate is measured, not part of the identity
