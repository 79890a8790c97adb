"""Suites and run parameters: load a suite, apply command-line overrides, validate.

A suite is YAML (built-in ones ship in ``kitt/suites/``)::

    name: quick
    api: chat                 # or completions; default: the engine's usual API
    warmup: 2                 # requests per load level, excluded from metrics
    repeats: 3                # each repeat is its own result with run_number 1..N; or
    # repeats: auto           # stop each level once every gated metric is decided (kitt.sequential):
    # min_repeats: 3          #   A/B pairs, or one arm's repeats against a history (--history-dir),
    # max_repeats: 10         #   at least min_repeats and at most max_repeats
    seed: 42
    max_error_rate: 0.0       # a level with more failed requests than this fails the run
    slo: {ttft_ms: 500, tpot_ms: 50, e2el_ms: 10000}   # optional: adds request_goodput
    tests:
      - name: latency
        concurrency: [1, 4]   # closed loop, one level each; or
        request_rate: [2.0]   # open loop (requests/s)
        arrival: poisson      # open loop: poisson (default), gamma (with burstiness), constant
        burstiness: 0.5       # gamma only: the gaps' shape; 1 is Poisson, below 1 burstier
        ramp_up_s: 0          # open loop: the rate rises linearly from zero over this many seconds
        num_requests: 16      # per level (with duration_s: a cap, default 1,000)
        duration_s: 60        # optional: no new request after this many seconds; in-flight ones finish
        input_len: 128        # a number, {mean, stdev, min, max} (truncated normal) or {uniform: [lo, hi]}
        output_len: 64        # the same forms
        mix:                  # or instead of input_len and output_len: a weighted mixture
          - {weight: 0.8, input_len: 200, output_len: 100}
        dataset: {path: prompts.jsonl, format: openai-chat, sample: shuffle}   # or the user's own prompts
        prefix: {groups: 2, len: 256, skew: 0}   # optional: each prompt opens with one of 2 shared 256-token prefixes
        turns: {count: 3, think_ms: 500}         # optional: sessions of 3 turns (num_requests counts sessions)
      - name: replay          # or a trace replayed on its own timestamps (level label: trace)
        trace: {path: trace.jsonl, format: mooncake, speedup: 2, block_size: 512}

Every error names the file and the field path, e.g. ``suite.tests[1].concurrency[0]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kitt.net import NetPolicy
from kitt.errors import UsageError
from kitt.workload import lengths
from kitt.workload.arrivals import ARRIVALS, Arrival
from kitt.workload.datasets import FORMATS, SAMPLES, DatasetSpec, read_dataset
from kitt.workload.lengths import Length, MixEntry, Normal, Uniform
from kitt.workload.prefixes import PrefixSpec
from kitt.workload.traces import DEFAULT_BLOCK_SIZE, TraceSpec, read_trace
from kitt.workload.traces import FORMATS as TRACE_FORMATS
from kitt.workload.sessions import Think, TurnsSpec

BUILTIN_SUITES = ("quick", "standard", "performance", "chat", "capacity", "assistant")
APIS = ("completions", "chat")

_SUITE_KEYS = {
    "name",
    "description",
    "api",
    "warmup",
    "repeats",
    "seed",
    "max_error_rate",
    "slo",
    "tests",
    "min_repeats",
    "max_repeats",
}
_TEST_KEYS = {
    "name",
    "concurrency",
    "request_rate",
    "num_requests",
    "input_len",
    "output_len",
    "mix",
    "dataset",
    "arrival",
    "burstiness",
    "ramp_up_s",
    "duration_s",
    "capacity",
    "prefix",
    "trace",
    "turns",
}
_NORMAL_KEYS = {"mean", "stdev", "min", "max"}
_MIX_KEYS = {"weight", "input_len", "output_len"}
_DATASET_KEYS = {"path", "format", "sample"}
_PREFIX_KEYS = {"groups", "len", "skew"}
_TRACE_KEYS = {"path", "format", "speedup", "block_size"}
# What a trace test takes from its trace, so may not set: its load, lengths and prompts.
_NOT_WITH_TRACE = (
    "concurrency",
    "request_rate",
    "capacity",
    "dataset",
    "prefix",
    "mix",
    "input_len",
    "output_len",
    "arrival",
    "burstiness",
    "ramp_up_s",
    "turns",
)
_TURNS_KEYS = {"count", "think_ms"}
_SLO_KEYS = {"ttft_ms", "tpot_ms", "e2el_ms"}
_CAPACITY_KEYS = {"over", "min", "max", "slo", "precision_pct", "max_probes"}
# A capacity SLO's keys: each a p99 latency limit (ms) or the largest failed fraction.
CAPACITY_SLO_KEYS = ("p99_ttft_ms", "p99_tpot_ms", "p99_e2el_ms", "max_error_rate")
CAPACITY_OVER = ("concurrency", "request_rate")

# Limits (README, "Limits"): past them a run would only end in a MemoryError or measure nothing.
MAX_TOKENS = 1_000_000  # input_len and output_len
MAX_REQUESTS = 1_000_000  # num_requests and warmup, per level
MAX_PROMPT_TOKENS = 100_000_000  # num_requests x input_len: every prompt of a level is built up front
MAX_REPEATS = 1_000
AUTO = "auto"  # repeats: auto (sequential decisions, kitt.sequential)
AUTO_MIN_REPEATS, AUTO_MAX_REPEATS = 3, 10
DURATION_REQUESTS = 1_000  # num_requests of a duration_s level that names none: a cap, not a target
MAX_DURATION_S = 86_400.0
MIN_RATE, MAX_RATE = 0.001, 1_000_000.0  # requests/s; below one request in 1,000 s nothing is measured
MAX_PORT = 65535
MAX_PREFIX_GROUPS = 100_000
MAX_TURNS = 1_000  # turns in a session
MAX_THINK_MS = 3_600_000.0  # an hour between turns
MAX_SKEW = 100.0  # 1/k^skew: past this every request draws the first prefix anyway
# A gamma's shape: gaps with a coefficient of variation from 10 (all but simultaneous) to 0.03 (all but constant).
MIN_BURSTINESS, MAX_BURSTINESS = 0.01, 1_000.0
MAX_PROBES = 100  # a capacity search's measured levels; each is a whole level of requests
MAX_WEIGHT = 1e12  # a mixture entry's weight (the weights are relative; a sum must stay finite)
MAX_SHOWN = 200  # characters of a value quoted back in an error message


@dataclass(frozen=True)
class Level:
    """One load level: closed-loop ``concurrency`` streams, or open-loop arrivals at ``rate`` requests/s
    (or a trace's own timestamps, ``trace``, whose value is the speedup)."""

    kind: str  # "concurrency" | "rate" | "capacity" | "trace"
    value: float

    @property
    def label(self) -> str:
        if self.kind == "concurrency":
            return f"c{int(self.value)}"
        if self.kind in ("capacity", "trace"):
            return self.kind
        return f"r{self.value:g}"


@dataclass(frozen=True)
class CapacitySpec:
    """A capacity search (``capacity:`` in a test): the highest load in [min, max] whose measured
    level meets every SLO key. ``over`` is concurrency (streams) or request_rate (requests/s)."""

    over: str
    min: float
    max: float
    slo: dict[str, float]  # CAPACITY_SLO_KEYS -> limit
    precision_pct: float = 10.0
    max_probes: int = 12


@dataclass(frozen=True)
class TestSpec:
    name: str
    levels: tuple[Level, ...]
    num_requests: int  # with duration_s: the most a level sends
    input_len: Length  # a number, or a distribution (kitt.workload.lengths)
    output_len: Length
    mix: tuple[MixEntry, ...] = ()  # a weighted mixture instead of input_len and output_len
    dataset: DatasetSpec | None = None  # the user's prompts instead of synthetic ones
    arrival: Arrival = Arrival()  # open-loop levels only
    duration_s: float | None = None  # no new request after this many seconds of a level
    capacity: CapacitySpec | None = None  # a capacity search instead of fixed levels (kitt.capacity)
    prefix: PrefixSpec | None = None  # shared prefixes in front of every prompt (kitt.workload.prefixes)
    trace: TraceSpec | None = None  # a trace replayed on its timestamps (kitt.workload.traces)
    turns: TurnsSpec | None = None  # multi-turn sessions; num_requests counts sessions (kitt.workload.sessions)

    def test_name(self, level: Level) -> str:
        return f"{self.name}-{level.label}"


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    api: str | None  # None: the engine's default API
    warmup: int
    repeats: int
    seed: int
    max_error_rate: float
    slo: dict[str, float]
    tests: tuple[TestSpec, ...]
    source: str  # built-in name or file path, for messages and config.json
    # repeats: auto: (min_repeats, max_repeats), and ``repeats`` is max_repeats; None: fixed repeats.
    auto_repeats: tuple[int, int] | None = None


@dataclass(frozen=True)
class Overrides:
    """Command-line overrides; None leaves the suite's value."""

    concurrency: tuple[int, ...] | None = None
    request_rate: float | None = None
    num_requests: int | None = None
    input_len: int | None = None
    output_len: int | None = None
    duration_s: float | None = None
    dataset: str | None = None  # a path; its format is dataset_format
    dataset_format: str | None = None
    repeats: int | str | None = None  # a count, or AUTO
    min_repeats: int | None = None  # with AUTO
    max_repeats: int | None = None
    warmup: int | None = None
    seed: int | None = None
    api: str | None = None


@dataclass(frozen=True)
class BaselineArm:
    """A/B mode: what the baseline arm changes against the candidate (None: the same)."""

    model: str | None = None
    engine_image: str | None = None
    engine_args: tuple[str, ...] | None = None
    endpoint: str | None = None

    @classmethod
    def named(
        cls, model: str | None, image: str | None, args: list[str] | tuple[str, ...] | None, endpoint: str | None
    ) -> BaselineArm | None:
        """The arm the options name, or None when they name none (a plain run)."""
        if model is None and image is None and args is None and endpoint is None:
            return None
        return cls(model, image, tuple(args) if args is not None else None, endpoint)


AB_SCHEDULES = ("interleaved", "blocks")


@dataclass(frozen=True)
class RunConfig:
    """Everything ``kitt run`` needs, resolved. With ``baseline`` set the run is an A/B run:
    the candidate is this configuration, the baseline arm this configuration with the changes
    ``baseline`` names, measured side by side in balanced interleaved pairs (``ab_schedule``)."""

    model: str
    engine: str
    suite: Suite
    output: Path
    endpoint: str | None = None
    engine_image: str | None = None
    engine_args: tuple[str, ...] = ()
    port: int | None = None
    native: bool = False
    ready_timeout: float | None = None  # None: 900 s for an engine kitt starts, 30 s for an endpoint
    container_cli: str | None = None  # docker or podman; None: docker, else podman if only it is installed
    gpus: str = "all"  # all, none, or indexes like 0,1 (see kitt.engines.container.parse_gpus)
    extra: dict[str, Any] = field(default_factory=dict)
    baseline: BaselineArm | None = None
    ab_schedule: str = "interleaved"
    commit: str | None = None  # the source measured (GITHUB_SHA); None: ask git (kitt.provenance)
    branch: str | None = None  # its branch (GITHUB_REF_NAME)
    net: NetPolicy = field(default_factory=NetPolicy)  # key, headers, proxies, timeouts (kitt.net)
    # Docker mode: the host folder for the engines' persistent caches (the runner's tool cache); None: none.
    engine_cache: Path | None = None
    # repeats auto on one arm: the baseline jobs' result sets to decide against (as `kitt ci report`'s
    # history), at most ``history_limit`` of them, newest first.
    history_dir: Path | None = None
    history_limit: int = 10


def load_suite(name_or_path: str) -> Suite:
    """Load a built-in suite by name, or a YAML file by path."""
    from kitt.safeload import YAML_MAX_BYTES, parse_yaml, read_text

    if name_or_path in BUILTIN_SUITES:
        path = Path(__file__).parent / "suites" / f"{name_or_path}.yaml"
        source = name_or_path
    else:
        path = Path(name_or_path)
        source = str(path)
        if not path.is_file():
            raise UsageError(
                f"unknown suite {name_or_path!r}",
                hint=f"Use one of {', '.join(BUILTIN_SUITES)}, or the path of a suite YAML file.",
            )
    text = read_text(path, "suite file", UsageError, YAML_MAX_BYTES)
    return parse_suite(parse_yaml(text, source, UsageError), source)


def parse_suite(data: Any, source: str) -> Suite:
    v = _Validator(source)
    if not isinstance(data, dict):
        v.fail("suite", "must be a mapping with a 'tests' list")
    v.no_unknown(data, _SUITE_KEYS, "suite")
    slo_raw = data.get("slo") or {}
    if not isinstance(slo_raw, dict):
        v.fail("suite.slo", "must be a mapping of ttft_ms, tpot_ms, e2el_ms")
    v.no_unknown(slo_raw, _SLO_KEYS, "suite.slo")
    slo = {k: v.positive_number(val, f"suite.slo.{k}") for k, val in slo_raw.items()}
    tests_raw = data.get("tests")
    if not isinstance(tests_raw, list) or not tests_raw:
        v.fail("suite.tests", "must be a non-empty list of tests")
    tests = tuple(_parse_test(v, t, i, slo) for i, t in enumerate(tests_raw))
    names = [t.name for t in tests]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        v.fail("suite.tests", f"test names must be unique; repeated: {', '.join(duplicates)}")
    api = data.get("api")
    if api is not None:
        v.choice(api, APIS, "suite.api")
    max_error_rate = v.number(data.get("max_error_rate", 0.0), "suite.max_error_rate")
    if not 0.0 <= max_error_rate <= 1.0:
        v.fail("suite.max_error_rate", "must be between 0 and 1")
    repeats, auto_repeats = _parse_repeats(v, data)
    return check_suite_limits(
        Suite(
            name=v.string(data.get("name", Path(source).stem), "suite.name"),
            description=str(data.get("description", "")),
            api=api,
            warmup=v.integer(data.get("warmup", 0), "suite.warmup", minimum=0),
            repeats=repeats,
            seed=v.integer(data.get("seed", 0), "suite.seed", minimum=0),
            max_error_rate=max_error_rate,
            slo=slo,
            tests=tests,
            source=source,
            auto_repeats=auto_repeats,
        )
    )


def _parse_repeats(v: "_Validator", data: dict[str, Any]) -> tuple[int, tuple[int, int] | None]:
    """``repeats: N``, or ``repeats: auto`` with optional ``min_repeats`` and ``max_repeats``."""
    raw = data.get("repeats", 1)
    if raw != AUTO:
        if isinstance(raw, str):
            v.fail("suite.repeats", f"must be a whole number >= 1 or 'auto', got {raw!r}")
        for key in ("min_repeats", "max_repeats"):
            if key in data:
                v.fail(f"suite.{key}", "needs `repeats: auto` (a fixed count runs exactly `repeats`)")
        return v.integer(raw, "suite.repeats", minimum=1), None
    low = v.integer(data.get("min_repeats", AUTO_MIN_REPEATS), "suite.min_repeats", minimum=2)
    high = v.integer(data.get("max_repeats", max(AUTO_MAX_REPEATS, low)), "suite.max_repeats", minimum=2)
    if high < low:
        v.fail("suite.max_repeats", f"must be at least min_repeats ({low}), got {high}")
    return high, (low, high)


def resolve_repeats(suite: Suite, o: Overrides) -> tuple[int, tuple[int, int] | None]:
    """The suite's repeats after --repeats, --min-repeats and --max-repeats: (count or max, (min, max) or None)."""
    auto = o.repeats == AUTO or (o.repeats is None and suite.auto_repeats is not None)
    if not auto:
        if o.min_repeats is not None or o.max_repeats is not None:
            raise UsageError("--min-repeats and --max-repeats need --repeats auto (or `repeats: auto` in the suite)")
        return (o.repeats if isinstance(o.repeats, int) else suite.repeats), None
    low0, high0 = suite.auto_repeats or (AUTO_MIN_REPEATS, AUTO_MAX_REPEATS)
    low = o.min_repeats if o.min_repeats is not None else low0
    high = o.max_repeats if o.max_repeats is not None else max(high0, low)
    if low < 2:
        raise UsageError(f"--min-repeats must be at least 2 (the first look needs a variance), got {low}")
    if high < low:
        raise UsageError(f"--max-repeats ({high}) must be at least --min-repeats ({low})")
    return high, (low, high)


def _parse_test(v: "_Validator", raw: Any, index: int, suite_slo: dict[str, float] | None = None) -> TestSpec:
    where = f"suite.tests[{index}]"
    if not isinstance(raw, dict):
        v.fail(where, "must be a mapping")
    v.no_unknown(raw, _TEST_KEYS, where)
    trace = None
    if "trace" in raw:
        clash = next((key for key in _NOT_WITH_TRACE if key in raw), None)
        if clash is not None:
            v.fail(
                f"{where}.{clash}",
                "does not combine with 'trace': a trace gives the load (its timestamps), the lengths and the prompts",
            )
        trace = _parse_trace(v, raw["trace"], f"{where}.trace")
        levels: tuple[Level, ...] = (Level("trace", trace.speedup),)
    elif "capacity" in raw:
        if "concurrency" in raw or "request_rate" in raw:
            v.fail(where, "a capacity test searches its own load: drop 'concurrency' and 'request_rate'")
        levels = (Level("capacity", 0),)  # the search picks its levels (kitt.capacity)
    elif ("concurrency" in raw) == ("request_rate" in raw):
        v.fail(where, "needs exactly one of 'concurrency' (closed loop) or 'request_rate' (Poisson arrivals)")
    elif "concurrency" in raw:
        values = _as_list(raw["concurrency"])
        levels = tuple(
            Level("concurrency", v.integer(c, f"{where}.concurrency[{i}]", minimum=1)) for i, c in enumerate(values)
        )
    else:
        values = _as_list(raw["request_rate"])
        levels = tuple(Level("rate", v.positive_number(r, f"{where}.request_rate[{i}]")) for i, r in enumerate(values))
    if not levels:
        v.fail(where, "needs at least one load level")
    name = v.string(raw.get("name"), f"{where}.name")
    if not name.replace("_", "").replace(".", "").isalnum() or "-" in name:
        v.fail(f"{where}.name", "may hold only letters, digits, '_' and '.' (the level is appended with '-')")
    mix: tuple[MixEntry, ...] = ()
    if "mix" in raw:
        if "input_len" in raw or "output_len" in raw:
            v.fail(f"{where}.mix", "replaces input_len and output_len: give either the mixture or those two")
        mix = _parse_mix(v, raw["mix"], f"{where}.mix")
    duration = None
    if "duration_s" in raw:
        duration = v.positive_number(raw["duration_s"], f"{where}.duration_s")
        if duration > MAX_DURATION_S:
            v.fail(f"{where}.duration_s", f"must be at most {MAX_DURATION_S:,.0f} seconds, got {duration:g}")
    # A trace's default is all of it (apply_overrides caps num_requests at its length once read).
    default_requests = MAX_REQUESTS if trace else DURATION_REQUESTS if duration is not None else 32
    num_requests = v.integer(raw.get("num_requests", default_requests), f"{where}.num_requests", minimum=1)
    capacity = None
    if "capacity" in raw:
        capacity = parse_capacity(v, raw["capacity"], f"{where}.capacity", suite_slo or {}, num_requests)
    open_loop = "request_rate" in raw or (capacity is not None and capacity.over == "request_rate")
    if "turns" in raw and capacity is not None:
        v.fail(f"{where}.turns", "multi-turn sessions run at fixed load levels for now: drop capacity or turns")
    return TestSpec(
        name=name,
        levels=levels,
        num_requests=num_requests,
        input_len=_parse_length(v, raw.get("input_len", 128), f"{where}.input_len"),
        output_len=_parse_length(v, raw.get("output_len", 64), f"{where}.output_len"),
        mix=mix,
        dataset=_parse_dataset(v, raw["dataset"], f"{where}.dataset") if "dataset" in raw else None,
        arrival=_parse_arrival(v, raw, where, open_loop=open_loop),
        duration_s=duration,
        capacity=capacity,
        prefix=_parse_prefix(v, raw["prefix"], f"{where}.prefix") if "prefix" in raw else None,
        trace=trace,
        turns=_parse_turns(v, raw["turns"], f"{where}.turns") if "turns" in raw else None,
    )


def parse_capacity(
    v: "_Validator", raw: Any, where: str, suite_slo: dict[str, float], num_requests: int
) -> CapacitySpec:
    """``capacity: {over, min, max, slo, precision_pct, max_probes}``; the suite's ``slo`` (ttft_ms,
    tpot_ms, e2el_ms) and ``max_error_rate`` are the defaults of p99_ttft_ms, p99_tpot_ms, p99_e2el_ms."""
    if not isinstance(raw, dict):
        v.fail(where, "must be a mapping with over, min, max and slo")
    v.no_unknown(raw, _CAPACITY_KEYS, where)
    over = v.choice(raw.get("over"), CAPACITY_OVER, f"{where}.over")
    for key in ("min", "max"):
        if key not in raw:
            v.fail(f"{where}.{key}", "is required: the search's bounds")
    if over == "concurrency":
        low = float(v.integer(raw["min"], f"{where}.min", minimum=1))
        high = float(v.integer(raw["max"], f"{where}.max", minimum=1))
        if high > num_requests:
            v.fail(
                f"{where}.max",
                f"concurrency {high:g} is above num_requests {num_requests}: "
                "a level never has more streams than requests; raise num_requests",
            )
    else:
        low = v.positive_number(raw["min"], f"{where}.min")
        high = v.positive_number(raw["max"], f"{where}.max")
        if not (MIN_RATE <= low and high <= MAX_RATE):
            v.fail(where, f"request rates must be between {MIN_RATE:g} and {MAX_RATE:g} requests/s")
    if low >= high:
        v.fail(f"{where}.min", f"must be below max ({low:g} >= {high:g})")
    slo_raw = raw.get("slo", {})
    if not isinstance(slo_raw, dict):
        v.fail(f"{where}.slo", f"must be a mapping of {', '.join(CAPACITY_SLO_KEYS)}")
    v.no_unknown(slo_raw, set(CAPACITY_SLO_KEYS), f"{where}.slo")
    slo = {f"p99_{k}": val for k, val in suite_slo.items()}
    for key, value in slo_raw.items():
        if key == "max_error_rate":
            rate = v.number(value, f"{where}.slo.{key}")
            if not 0.0 <= rate < 1.0:
                v.fail(f"{where}.slo.{key}", f"must be at least 0 and below 1, got {value!r}")
            slo[key] = rate
        else:
            slo[key] = v.positive_number(value, f"{where}.slo.{key}")
    if not any(k in slo for k in CAPACITY_SLO_KEYS if k != "max_error_rate"):
        v.fail(
            f"{where}.slo",
            "a capacity search needs a latency goal: give p99_ttft_ms, p99_tpot_ms or p99_e2el_ms "
            "(here or in the suite's slo)",
        )
    precision = v.number(raw.get("precision_pct", 10.0), f"{where}.precision_pct")
    if not 0.0 < precision < 100.0:
        v.fail(f"{where}.precision_pct", f"must be above 0 and below 100, got {raw.get('precision_pct')!r}")
    max_probes = v.integer(raw.get("max_probes", 12), f"{where}.max_probes", minimum=2)
    if max_probes > MAX_PROBES:
        v.fail(
            f"{where}.max_probes", f"must be at most {MAX_PROBES} (each probe measures a whole level), got {max_probes}"
        )
    return CapacitySpec(
        over=over,
        min=low,
        max=high,
        slo={k: slo[k] for k in CAPACITY_SLO_KEYS if k in slo},
        precision_pct=precision,
        max_probes=max_probes,
    )


def capacity_to_dict(spec: CapacitySpec) -> dict[str, Any]:
    return {
        "over": spec.over,
        "min": spec.min,
        "max": spec.max,
        "slo": dict(spec.slo),
        "precision_pct": spec.precision_pct,
        "max_probes": spec.max_probes,
    }


def _parse_length(v: "_Validator", raw: Any, where: str) -> Length:
    """A number, {mean, stdev, min, max} or {uniform: [lo, hi]}."""
    if not isinstance(raw, dict):
        return v.integer(raw, where, minimum=1)
    if set(map(str, raw)) == {"uniform"}:
        bounds = raw["uniform"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            v.fail(f"{where}.uniform", f"must be a list [lo, hi] of two whole numbers, got {bounds!r}")
        lo = v.integer(bounds[0], f"{where}.uniform[0]", minimum=1)
        hi = v.integer(bounds[1], f"{where}.uniform[1]", minimum=1)
        if lo > hi:
            v.fail(f"{where}.uniform", f"lo {lo} is above hi {hi}")
        return Uniform(lo, hi)
    v.no_unknown(raw, _NORMAL_KEYS, where)
    missing = sorted(_NORMAL_KEYS - set(raw))
    if missing:
        v.fail(
            where,
            f"a distribution needs mean, stdev, min and max (missing: {', '.join(missing)}), "
            "or is {uniform: [lo, hi]}",
        )
    minimum = v.integer(raw["min"], f"{where}.min", minimum=1)
    maximum = v.integer(raw["max"], f"{where}.max", minimum=1)
    if minimum > maximum:
        v.fail(where, f"min {minimum} is above max {maximum}")
    mean = v.number(raw["mean"], f"{where}.mean")
    if not (math.isfinite(mean) and minimum <= mean <= maximum):
        v.fail(f"{where}.mean", f"must lie between min {minimum} and max {maximum}, got {raw['mean']!r}")
    stdev = v.number(raw["stdev"], f"{where}.stdev")
    if not (math.isfinite(stdev) and 0 <= stdev <= MAX_TOKENS):
        v.fail(f"{where}.stdev", f"must be a number from 0 to {MAX_TOKENS:,}, got {raw['stdev']!r}")
    return Normal(mean, stdev, minimum, maximum)


def _parse_mix(v: "_Validator", raw: Any, where: str) -> tuple[MixEntry, ...]:
    if not isinstance(raw, list) or not raw:
        v.fail(where, "must be a non-empty list of {weight, input_len, output_len}")
    entries = []
    for i, item in enumerate(raw):
        path = f"{where}[{i}]"
        if not isinstance(item, dict):
            v.fail(path, "must be a mapping {weight, input_len, output_len}")
        v.no_unknown(item, _MIX_KEYS, path)
        for key in sorted(_MIX_KEYS - set(item)):
            v.fail(f"{path}.{key}", "is missing")
        weight = v.number(item["weight"], f"{path}.weight")
        if not (math.isfinite(weight) and 0 <= weight <= MAX_WEIGHT):
            v.fail(f"{path}.weight", f"must be a number from 0 to {MAX_WEIGHT:g}, got {item['weight']!r}")
        entries.append(
            MixEntry(
                weight,
                _parse_length(v, item["input_len"], f"{path}.input_len"),
                _parse_length(v, item["output_len"], f"{path}.output_len"),
            )
        )
    if not any(entry.weight > 0 for entry in entries):
        v.fail(where, "needs at least one entry with a weight above 0")
    return tuple(entries)


def _parse_dataset(v: "_Validator", raw: Any, where: str) -> DatasetSpec:
    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, dict):
        v.fail(where, "must be a mapping {path, format, sample} or a path")
    v.no_unknown(raw, _DATASET_KEYS, where)
    path = v.string(raw.get("path"), f"{where}.path")
    fmt = v.choice(raw.get("format", "openai-chat"), FORMATS, f"{where}.format")
    sample = v.choice(raw.get("sample", SAMPLES[0]), SAMPLES, f"{where}.sample")
    return DatasetSpec(path=path, format=fmt, sample=sample)


def _parse_prefix(v: "_Validator", raw: Any, where: str) -> PrefixSpec:
    if not isinstance(raw, dict):
        v.fail(where, f"must be a mapping {{groups, len, skew}}, got {raw!r}")
    v.no_unknown(raw, _PREFIX_KEYS, where)
    for key in ("groups", "len"):
        if key not in raw:
            v.fail(f"{where}.{key}", "is missing (a prefix needs groups and len)")
    groups = v.integer(raw["groups"], f"{where}.groups", minimum=1)
    if groups > MAX_PREFIX_GROUPS:
        v.fail(f"{where}.groups", f"must be at most {MAX_PREFIX_GROUPS:,}, got {groups}")
    length = v.integer(raw["len"], f"{where}.len", minimum=1)
    skew = v.number(raw.get("skew", 0), f"{where}.skew")
    if not (math.isfinite(skew) and 0 <= skew <= MAX_SKEW):
        v.fail(f"{where}.skew", f"must be a number from 0 (uniform) to {MAX_SKEW:g}, got {raw.get('skew')!r}")
    return PrefixSpec(groups, length, skew)


def _parse_trace(v: "_Validator", raw: Any, where: str) -> TraceSpec:
    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, dict):
        v.fail(where, "must be a mapping {path, format, speedup, block_size} or a path")
    v.no_unknown(raw, _TRACE_KEYS, where)
    path = v.string(raw.get("path"), f"{where}.path")
    fmt = v.choice(raw.get("format", TRACE_FORMATS[0]), TRACE_FORMATS, f"{where}.format")
    speedup = v.positive_number(raw.get("speedup", 1.0), f"{where}.speedup")
    block_size = v.integer(raw.get("block_size", DEFAULT_BLOCK_SIZE), f"{where}.block_size", minimum=1)
    if block_size > MAX_TOKENS:
        v.fail(f"{where}.block_size", f"must be at most {MAX_TOKENS:,} tokens, got {block_size}")
    return TraceSpec(path=path, format=fmt, speedup=speedup, block_size=block_size)


def _parse_turns(v: "_Validator", raw: Any, where: str) -> TurnsSpec:
    """``{count, think_ms}``: count a whole number >= 1 or a length distribution; think_ms a number
    >= 0 or a distribution (milliseconds)."""
    if not isinstance(raw, dict):
        v.fail(where, f"must be a mapping {{count, think_ms}}, got {raw!r}")
    v.no_unknown(raw, _TURNS_KEYS, where)
    if "count" not in raw:
        v.fail(f"{where}.count", "is missing (the turns each session has, at least 1)")
    count = _parse_length(v, raw["count"], f"{where}.count")
    if lengths.upper(count) > MAX_TURNS:
        v.fail(f"{where}.count", f"must be at most {MAX_TURNS:,} turns, got {lengths.upper(count):,}")
    raw_think = raw.get("think_ms", 0)
    think: Think
    if isinstance(raw_think, dict):
        think = _parse_length(v, raw_think, f"{where}.think_ms")
    else:
        think = v.number(raw_think, f"{where}.think_ms")
        if not (math.isfinite(think) and 0 <= think <= MAX_THINK_MS):
            v.fail(
                f"{where}.think_ms",
                f"must be a number of milliseconds from 0 to {MAX_THINK_MS:,.0f}, got {raw_think!r}",
            )
    if not isinstance(think, float) and lengths.upper(think) > MAX_THINK_MS:
        v.fail(f"{where}.think_ms", f"must be at most {MAX_THINK_MS:,.0f} ms")
    return TurnsSpec(count, think)


def _parse_arrival(v: "_Validator", raw: dict[str, Any], where: str, *, open_loop: bool) -> Arrival:
    present = [key for key in ("arrival", "burstiness", "ramp_up_s") if key in raw]
    if not open_loop:
        if present:
            v.fail(f"{where}.{present[0]}", "applies to open-loop tests (request_rate) only")
        return Arrival()
    kind = v.choice(raw.get("arrival", "poisson"), ARRIVALS, f"{where}.arrival")
    burstiness = 1.0
    if "burstiness" in raw:
        if kind != "gamma":
            v.fail(f"{where}.burstiness", "applies to arrival: gamma only")
        burstiness = v.positive_number(raw["burstiness"], f"{where}.burstiness")
        if not MIN_BURSTINESS <= burstiness <= MAX_BURSTINESS:
            v.fail(
                f"{where}.burstiness",
                f"must be from {MIN_BURSTINESS:g} (burstiest) to {MAX_BURSTINESS:g} "
                f"(all but constant; 1 is Poisson), got {burstiness:g}",
            )
    ramp = 0.0
    if "ramp_up_s" in raw:
        ramp = v.number(raw["ramp_up_s"], f"{where}.ramp_up_s")
        if not (math.isfinite(ramp) and 0 <= ramp <= MAX_DURATION_S):
            v.fail(
                f"{where}.ramp_up_s", f"must be between 0 and {MAX_DURATION_S:,.0f} seconds, got {raw['ramp_up_s']!r}"
            )
    return Arrival(kind, burstiness, ramp)


def apply_overrides(suite: Suite, o: Overrides) -> Suite:
    """Command-line overrides apply to every test of the suite; then every dataset is read and
    checked (both shells call this before any engine starts)."""
    if (o.concurrency is not None or o.request_rate is not None) and all(t.capacity or t.trace for t in suite.tests):
        raise UsageError(
            f"{'--concurrency' if o.concurrency is not None else '--request-rate'} does not apply to "
            f"{suite.source}: its tests are capacity searches or trace replays, which pick their own load",
            hint="Drop the flag, or change the search's capacity min and max (a trace's speedup) in a suite file.",
        )
    tests = []
    for test in suite.tests:
        levels = test.levels
        if test.capacity is not None or test.trace is not None:
            pass  # the search picks its own levels; a trace's timestamps are its load
        elif o.request_rate is not None:
            levels = (Level("rate", o.request_rate),)
        elif o.concurrency is not None:
            levels = tuple(Level("concurrency", c) for c in o.concurrency)
        changes: dict[str, Any] = {}
        if o.input_len or o.output_len:  # a fixed length on the command line replaces a mixture's
            changes.update(
                mix=(),
                input_len=o.input_len or _mix_free(test, "input_len"),
                output_len=o.output_len or _mix_free(test, "output_len"),
            )
        if o.duration_s is not None:
            changes.update(duration_s=o.duration_s)
            if o.num_requests is None and test.duration_s is None and test.trace is None:  # a trace's is its length
                changes.update(num_requests=DURATION_REQUESTS)
        if test.trace is not None:
            pass  # a trace's prompts are its own: --dataset leaves it alone
        elif o.dataset is not None:
            changes.update(
                dataset=DatasetSpec(
                    path=o.dataset,
                    format=o.dataset_format or "openai-chat",
                    sample=test.dataset.sample if test.dataset else SAMPLES[0],
                )
            )
        elif o.dataset_format is not None:
            if test.dataset is None:
                raise UsageError("--dataset-format needs a dataset", hint="Name the file with --dataset PATH.")
            changes.update(dataset=replace(test.dataset, format=o.dataset_format))
        changes["num_requests"] = o.num_requests or changes.get("num_requests") or test.num_requests
        test = replace(test, levels=levels, **changes)
        if test.dataset is not None and test.dataset.prompts is None:
            test = replace(test, dataset=read_dataset(test.dataset))  # bad files fail here, before any engine starts
        if test.trace is not None:
            trace = test.trace if test.trace.records is not None else read_trace(test.trace)
            test = replace(test, trace=trace, num_requests=min(test.num_requests, len(trace.records or ())))
        tests.append(test)
    repeats, auto_repeats = resolve_repeats(suite, o)
    searched = [t.name for t in tests if t.capacity is not None]
    if auto_repeats is not None and searched:
        # repeats auto decides per level on A/B pairs of fixed levels; a search's levels differ per repeat.
        raise UsageError(
            f"repeats auto does not apply to capacity tests ({', '.join(searched)})",
            hint="Give a fixed count: --repeats N, or `repeats: N` in the suite.",
        )
    return check_suite_limits(
        replace(
            suite,
            tests=tuple(tests),
            repeats=repeats,
            auto_repeats=auto_repeats,
            warmup=o.warmup if o.warmup is not None else suite.warmup,
            seed=o.seed if o.seed is not None else suite.seed,
            api=o.api or suite.api,
        )
    )


def _mix_free(test: TestSpec, field_name: str) -> Length:
    """The test's own length, or for a mixture the first entry's (a flag replaces the other side)."""
    if test.mix:
        return getattr(test.mix[0], field_name)
    return getattr(test, field_name)


def check_suite_limits(suite: Suite) -> Suite:
    """Refuse values past kitt's limits. A concurrency above ``num_requests`` is lowered to it: a
    level labelled c64 with 16 requests never has more than 16 in flight, so it is named c16."""
    hint = "Change it in the suite file or on the command line; see Limits in the README."

    def fail(problem: str) -> None:
        raise UsageError(f"{suite.source}: {problem}", hint=hint)

    if suite.repeats > MAX_REPEATS:
        fail(f"repeats {suite.repeats} is above the limit of {MAX_REPEATS:,}")
    if suite.warmup > MAX_REQUESTS:
        fail(f"warmup {suite.warmup} is above the limit of {MAX_REQUESTS:,} requests")
    for test in suite.tests:
        where = f"test {test.name!r}"
        if test.trace is not None:
            _check_trace_limits(test, fail)
            continue
        pairs = [(e.input_len, e.output_len) for e in test.mix] or [(test.input_len, test.output_len)]
        longest_input = max(lengths.upper(i) for i, _ in pairs) + (test.prefix.length if test.prefix else 0)
        first = "prefix len + input_len" if test.prefix else "input_len"
        for name, value in ((first, longest_input), ("output_len", max(lengths.upper(o) for _, o in pairs))):
            if value > MAX_TOKENS:
                fail(f"{where}: {name} {value} is above the limit of {MAX_TOKENS:,} tokens")
        if test.prefix is not None and test.prefix.groups * test.prefix.length > MAX_PROMPT_TOKENS:
            fail(
                f"{where}: prefix groups x len is {test.prefix.groups * test.prefix.length:,} tokens, "
                f"above the limit of {MAX_PROMPT_TOKENS:,}"
            )
        if test.num_requests > MAX_REQUESTS:
            fail(f"{where}: num_requests {test.num_requests} is above the limit of {MAX_REQUESTS:,}")
        if test.turns is not None and test.num_requests * lengths.upper(test.turns.count) > MAX_REQUESTS:
            fail(
                f"{where}: num_requests x turns is {test.num_requests * lengths.upper(test.turns.count):,} "
                f"requests, above the limit of {MAX_REQUESTS:,} per level"
            )
        if test.num_requests * longest_input > MAX_PROMPT_TOKENS:
            fail(
                f"{where}: num_requests x input_len is {test.num_requests * longest_input:,} prompt tokens, "
                f"above the limit of {MAX_PROMPT_TOKENS:,} per level"
            )
        spec = test.capacity
        if spec is not None and spec.over == "concurrency" and spec.max > test.num_requests:
            fail(
                f"{where}: capacity max {spec.max:g} streams is above num_requests {test.num_requests}: "
                "a level never has more streams than requests; raise num_requests"
            )
        if test.duration_s is not None and not (
            math.isfinite(test.duration_s) and 0 < test.duration_s <= MAX_DURATION_S
        ):
            fail(f"{where}: duration_s {test.duration_s:g} must be above 0 and at most {MAX_DURATION_S:,.0f} seconds")
        for level in test.levels:
            if level.kind == "rate" and not (math.isfinite(level.value) and MIN_RATE <= level.value <= MAX_RATE):
                fail(f"{where}: request_rate {level.value:g} must be between {MIN_RATE:g} and {MAX_RATE:g} requests/s")
    return replace(suite, tests=tuple(_cap_concurrency(test) for test in suite.tests))


def _check_trace_limits(test: TestSpec, fail: Any) -> None:
    """A trace test's limits, from its records once read (its lengths come from the file)."""
    where = f"test {test.name!r}"
    assert test.trace is not None
    if test.duration_s is not None and not (math.isfinite(test.duration_s) and 0 < test.duration_s <= MAX_DURATION_S):
        fail(f"{where}: duration_s {test.duration_s:g} must be above 0 and at most {MAX_DURATION_S:,.0f} seconds")
    records = (test.trace.records or ())[: test.num_requests]
    for name, values in (
        ("input_length", [r.input_len for r in records]),
        ("output_length", [r.output_len for r in records]),
    ):
        if values and max(values) > MAX_TOKENS:
            fail(f"{where}: the trace's longest {name} {max(values)} is above the limit of {MAX_TOKENS:,} tokens")
    total = sum(r.input_len for r in records)
    if total > MAX_PROMPT_TOKENS:
        fail(
            f"{where}: the trace's first {len(records):,} requests hold {total:,} prompt tokens, above the limit of "
            f"{MAX_PROMPT_TOKENS:,} per level; lower num_requests"
        )


def _cap_concurrency(test: TestSpec) -> TestSpec:
    levels: list[Level] = []
    for level in test.levels:
        if level.kind == "concurrency" and level.value > test.num_requests:
            level = Level("concurrency", test.num_requests)
        if level not in levels:
            levels.append(level)
    return replace(test, levels=tuple(levels))


def check_run_config(config: RunConfig, *, history_to_come: bool = False) -> None:
    """What a suite cannot say about a run: the model, the port, the endpoint URL, the timeout.

    ``history_to_come``: a single-arm ``repeats: auto`` run whose history is downloaded later
    (the action, before the benchmark) passes; the history's own checks run once it is there."""
    if not config.model.strip():
        raise UsageError("the model name is empty", hint="Pass a model id or path with -m / the `model` input.")
    if config.port is not None and not 1 <= config.port <= MAX_PORT:
        raise UsageError(f"port {config.port} is not between 1 and {MAX_PORT}")
    if config.ready_timeout is not None and not (math.isfinite(config.ready_timeout) and config.ready_timeout > 0):
        raise UsageError(f"the ready timeout must be a finite number of seconds above 0, got {config.ready_timeout!r}")
    if config.baseline is None and config.ab_schedule != "interleaved":
        raise UsageError(
            f"--ab-schedule {config.ab_schedule} needs an A/B run",
            hint="Name the baseline arm with --baseline-engine-image, --baseline-engine-arg, "
            "--baseline-model or --baseline-endpoint.",
        )
    if config.history_dir is not None and config.baseline is not None:
        raise UsageError(
            "--history-dir and an A/B baseline arm exclude each other: an A/B run decides against its own baseline arm",
            hint="Drop --history-dir, or drop the --baseline-* flags to judge one arm against the history.",
        )
    if config.history_dir is not None and config.suite.auto_repeats is None:
        raise UsageError(
            "--history-dir needs --repeats auto: it is what each level's repeats are decided against",
            hint="Add --repeats auto (or `repeats: auto` in the suite), or drop --history-dir.",
        )
    if (
        config.suite.auto_repeats is not None
        and config.baseline is None
        and config.history_dir is None
        and not history_to_come
    ):
        raise UsageError(
            "--repeats auto needs something to decide against: an A/B baseline arm or a history of baseline jobs",
            hint="Name the baseline arm with --baseline-engine-image, --baseline-engine-arg, --baseline-model or "
            "--baseline-endpoint, or pass --history-dir DIR (the baseline jobs' result sets), or give a number "
            "of repeats.",
        )
    if config.suite.auto_repeats is not None and config.ab_schedule == "blocks":
        raise UsageError(
            "--repeats auto needs --ab-schedule interleaved",
            hint="ABBA blocks would restart the engines for every round of pairs; give a number of repeats.",
        )
    if config.endpoint is not None:
        check_endpoint(config.endpoint)


def check_endpoint(endpoint: str) -> None:
    """An http(s) URL with a host and, if any, a numeric port within 1..65535."""
    from urllib.parse import urlsplit

    problem = None
    try:
        parsed = urlsplit(endpoint)
        port = parsed.port
    except ValueError as exc:
        problem = f"its port is not a number between 1 and {MAX_PORT} ({exc})"
    else:
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            problem = "it is not an http(s) URL with a host"
        elif port == 0:
            problem = f"its port is not a number between 1 and {MAX_PORT}"
    if problem:
        raise UsageError(f"endpoint {endpoint[:200]!r}: {problem}", hint="Use a URL like http://127.0.0.1:8000.")


def suite_to_dict(suite: Suite) -> dict[str, Any]:
    """The resolved suite as plain data, for config.json."""
    return {
        "name": suite.name,
        "source": suite.source,
        "description": suite.description,
        "api": suite.api,
        "warmup": suite.warmup,
        "repeats": suite.repeats if suite.auto_repeats is None else AUTO,
        **(
            {}
            if suite.auto_repeats is None
            else {"min_repeats": suite.auto_repeats[0], "max_repeats": suite.auto_repeats[1]}
        ),
        "seed": suite.seed,
        "max_error_rate": suite.max_error_rate,
        "slo": dict(suite.slo),
        "tests": [
            {
                "name": t.name,
                "levels": [{"kind": lv.kind, "value": lv.value} for lv in t.levels],
                "num_requests": t.num_requests,
                # A trace's lengths are its records': the unused defaults are not written.
                **(
                    {}
                    if t.trace
                    else {"input_len": lengths.to_data(t.input_len), "output_len": lengths.to_data(t.output_len)}
                ),
                **_workload_fields(t),
                **({"capacity": capacity_to_dict(t.capacity)} if t.capacity else {}),
            }
            for t in suite.tests
        ],
    }


def _workload_fields(test: TestSpec) -> dict[str, Any]:
    """What a test sends beyond fixed lengths, written only when set (so config.json of the
    built-in fixed-length suites reads as it always did)."""
    fields: dict[str, Any] = {}
    if test.mix:
        fields["mix"] = [
            {"weight": e.weight, "input_len": lengths.to_data(e.input_len), "output_len": lengths.to_data(e.output_len)}
            for e in test.mix
        ]
    if test.dataset is not None:
        fields["dataset"] = test.dataset.to_data()
    open_loop = any(level.kind == "rate" for level in test.levels) or (
        test.capacity and test.capacity.over == "request_rate"
    )
    if open_loop and test.arrival != Arrival():
        fields["arrival"] = {
            "kind": test.arrival.kind,
            "burstiness": test.arrival.burstiness,
            "ramp_up_s": test.arrival.ramp_up_s,
        }
    if test.duration_s is not None:
        fields["duration_s"] = test.duration_s
    if test.prefix is not None:
        fields["prefix"] = test.prefix.to_data()
    if test.trace is not None:
        fields["trace"] = test.trace.to_data()
    if test.turns is not None:
        fields["turns"] = test.turns.to_data()
    return fields


def parse_concurrency_list(text: str) -> tuple[int, ...]:
    """``"1,4,16"`` -> (1, 4, 16), for the --concurrency flag and the action input."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--concurrency takes comma-separated whole numbers like 1,4,16, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise UsageError(f"--concurrency values must be positive whole numbers, got {text!r}")
    return values


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class _Validator:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> None:
        if len(problem) > MAX_SHOWN:  # a value quoted back (a 100,000-item list) must not flood the log
            problem = problem[:MAX_SHOWN] + "…"
        raise UsageError(f"{self.source}: {path}: {problem}")

    def no_unknown(self, mapping: dict[str, Any], allowed: set[str], path: str) -> None:
        unknown = sorted(set(map(str, mapping)) - allowed)
        if unknown:
            self.fail(f"{path}.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "must be a non-empty string")
        return value.strip()

    def integer(self, value: Any, path: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(path, f"must be a whole number >= {minimum}, got {value!r}")
        return value

    def number(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"must be a number, got {value!r}")
        try:
            return float(value)
        except OverflowError:
            self.fail(path, "is too large a number")
            raise

    def choice(self, value: Any, allowed: tuple[str, ...], path: str) -> str:
        if value not in allowed:
            self.fail(path, f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def positive_number(self, value: Any, path: str) -> float:
        number = self.number(value, path)
        if not (number > 0 and math.isfinite(number)):
            self.fail(path, f"must be a finite number greater than 0, got {value!r}")
        return number
