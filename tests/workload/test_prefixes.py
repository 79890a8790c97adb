"""kitt.workload.prefixes: shared prefixes of exact lengths, drawn seeded, in the workload's identity (issue 25)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Sequence

from kitt.config import load_suite, suite_to_dict
from kitt.report.sentences import sent_line
from kitt.workload.identity import workload_record
from kitt.workload.lengths import Uniform
from kitt.workload.plan import build_level
from kitt.workload.prefixes import PrefixSpec, build_prefixes, choose_groups
from kitt.workload.spec import request_body
from kitt.workload.tokens import fit
from test_compare import result_set


class DigitsAndPairs:
    """Each digit is a token, words with 'th' are two, every other word one, plus a BOS token."""

    method = "exact, test"
    max_model_len = None

    def count(self, prompts: Sequence[str]) -> list[int]:
        return [1 + sum(len(w) if w.isdigit() else 2 if "th" in w else 1 for w in p.split()) for p in prompts]


def fitted_prefixes(spec: PrefixSpec, counter: DigitsAndPairs, seed: int = 7) -> list[str]:
    fitted = fit(build_prefixes(spec, seed, "t"), counter, seed, "t:prefixes", synthetic=True)
    assert fitted.inexact == 0
    return [p.prompt for p in fitted.requests]


def test_prefixes_and_whole_prompts_hit_their_lengths_exactly() -> None:
    spec = PrefixSpec(groups=3, length=96)
    counter = DigitsAndPairs()  # digits a token each, 'th' words two, plus BOS: not one token a word
    texts = fitted_prefixes(spec, counter)
    assert counter.count(texts) == [96, 96, 96] and len(set(texts)) == 3
    requests = build_level(
        60, input_len=Uniform(5, 80), output_len=8, seed=7, salt="t-c1:1", prefix=spec, prefix_texts=texts
    )
    plain = build_level(60, input_len=Uniform(5, 80), output_len=8, seed=7, salt="t-c1:1")
    assert [r.input_len for r in requests] == [p.input_len + 96 for p in plain]  # P + the test's input length
    assert [r.prompt for r in requests] == [p.prompt for p in plain]  # the own prompts are main's, unchanged
    fitted = fit(requests, counter, 7, "t-c1:1", synthetic=True)
    assert fitted.inexact == 0
    assert counter.count([r.text for r in fitted.requests]) == [r.input_len for r in requests]
    assert all(r.prefix in texts and r.text.startswith(r.prefix + " ") for r in fitted.requests)  # never changed
    assert len({r.prefix for r in fitted.requests}) == 3


def test_the_same_seed_gives_the_same_requests_and_another_seed_others() -> None:
    spec = PrefixSpec(groups=4, length=32)
    a = build_prefixes(spec, 1, "t")
    assert a == build_prefixes(spec, 1, "t") and a != build_prefixes(spec, 2, "t") != build_prefixes(spec, 1, "u")
    assert [len(p.prompt.split()) for p in a] == [32] * 4 and len({p.prompt.split()[0] for p in a}) == 4
    assert choose_groups(spec, 50, 1, "x-c1:1") == choose_groups(spec, 50, 1, "x-c1:1")
    assert choose_groups(spec, 50, 1, "x-c1:1") != choose_groups(spec, 50, 1, "x-c1:2")


def test_groups_are_drawn_uniformly_or_with_a_zipf_like_skew() -> None:
    uniform = Counter(choose_groups(PrefixSpec(4, 8), 8000, 3, "s"))
    assert set(uniform) == {0, 1, 2, 3} and all(1800 < n < 2200 for n in uniform.values())
    skewed = Counter(choose_groups(PrefixSpec(4, 8, skew=1.0), 8000, 3, "s"))
    # Weights 1, 1/2, 1/3, 1/4 over 25/12: shares 0.48, 0.24, 0.16, 0.12.
    assert skewed[0] > skewed[1] > skewed[2] > skewed[3] > 0
    assert 0.45 < skewed[0] / 8000 < 0.51 and 1.8 < skewed[0] / skewed[1] < 2.2
    one = Counter(choose_groups(PrefixSpec(1, 8, skew=2.0), 100, 3, "s"))
    assert one == {0: 100}  # groups: 1 is one system prompt for everyone


def test_a_prefix_opens_the_prompt_in_both_apis() -> None:
    spec = PrefixSpec(1, 4)
    texts = [p.prompt for p in build_prefixes(spec, 1, "t")]
    request = build_level(1, input_len=3, output_len=2, seed=1, salt="s", prefix=spec, prefix_texts=texts)[0]
    chat = request_body(request, api="chat", model="m", stream_options={}, extra={})
    completions = request_body(request, api="completions", model="m", stream_options={}, extra={})
    assert chat["messages"] == [{"role": "user", "content": texts[0] + " " + request.prompt}]
    assert completions["prompt"] == texts[0] + " " + request.prompt and request.input_len == 7


def suite_with(tmp_path, prefix: str | None) -> dict:
    path = tmp_path / "s.yaml"
    line = "  - {name: a, concurrency: 2, input_len: 64, output_len: 8%s}\n" % (f", prefix: {prefix}" if prefix else "")
    path.write_text("name: p\nseed: 4\ntests:\n" + line)
    return suite_to_dict(load_suite(str(path)))


def test_the_prefix_is_part_of_the_workload_fingerprint(tmp_path) -> None:
    def record(prefix: str | None) -> dict:
        return workload_record(
            suite_with(tmp_path, prefix), api="completions", method="exact, engine /tokenize", sent={}
        )

    none, two = record(None), record("{groups: 2, len: 256}")
    assert none["plain"] and not two["plain"]
    assert two["tests"]["a"]["prefix"] == {"groups": 2, "len": 256, "skew": 0.0}
    fingerprints = {
        r["fingerprint"]
        for r in (
            none,
            two,
            record("{groups: 3, len: 256}"),
            record("{groups: 2, len: 128}"),
            record("{groups: 2, len: 256, skew: 1}"),
        )
    }
    assert len(fingerprints) == 5
    assert record("{groups: 2, len: 256}")["fingerprint"] == two["fingerprint"]


def test_the_sent_line_names_the_prefixes() -> None:
    workload = {
        "fingerprint": "f",
        "length_method": "exact, engine /tokenize",
        "plain": False,
        "tests": {
            "a": {
                "source": "synthetic",
                "requests": 16,
                "input_tokens": {"min": 320, "median": 320, "max": 320},
                "output_tokens": {"min": 8, "median": 8, "max": 8},
                "rates": [],
                "arrival": None,
                "prefix": {"groups": 2, "len": 256, "skew": 0.0},
            }
        },
    }
    current = replace(result_set({"a-c2": [{"median_ttft_ms": 10.0}]}), config={"workload": workload})
    assert sent_line(current) == (
        "Sent: synthetic prompts, 16 requests, input 320 tokens (exact), output 8, 2 shared prefixes of 256 tokens"
    )
    workload["tests"]["a"]["prefix"] = {"groups": 1, "len": 1024, "skew": 1.5}
    assert sent_line(current).endswith("1 shared prefix of 1,024 tokens (Zipf skew 1.5)")


class SmallVocabulary:
    """A 512-token BPE's shape: a word costs about a token per two letters, a digit a token."""

    method = "exact, test"
    max_model_len = None

    def count(self, prompts: Sequence[str]) -> list[int]:
        return [1 + sum(len(w) if w.isdigit() else (len(w) + 1) // 2 for w in p.split()) for p in prompts]


def test_a_short_own_prompt_after_a_long_prefix_is_exact_on_a_small_vocabulary() -> None:
    """The words to add or drop are the difference over the tokens per word of the whole text,
    prefix included (over the own words alone, a long prefix made every step one word)."""
    spec, counter = PrefixSpec(groups=2, length=512), SmallVocabulary()
    texts = fitted_prefixes(spec, counter)  # type: ignore[arg-type]
    requests = build_level(40, input_len=16, output_len=2, seed=7, salt="p-c1:1", prefix=spec, prefix_texts=texts)
    fitted = fit(requests, counter, 7, "p-c1:1", synthetic=True)
    assert fitted.inexact == 0
    assert set(counter.count([r.text for r in fitted.requests])) == {512 + 16}
