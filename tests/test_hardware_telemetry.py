"""Hardware fingerprint and GPU telemetry, on recorded NVML answers and without a GPU."""

from __future__ import annotations

import json

import pytest

from fake_nvml import FIXTURES, FakeNVML
from kitt import hardware, telemetry

FIXTURE_FILES = sorted(p.name for p in FIXTURES.glob("*.json"))


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_hardware_and_summary_match_the_fixture(name):
    fixture = json.loads((FIXTURES / name).read_text())
    nvml = FakeNVML(fixture)
    hw = hardware.collect(nvml)
    for key, value in fixture["expected_hardware"].items():
        assert hw[key] == value, key
    # Replay the sampler exactly as it ran when the fixture was recorded.
    sampler = telemetry.GpuSampler(nvml, interval=3600)
    sampler.start()
    for _ in range(fixture["samples"] - 2):
        sampler.samples.append(sampler._sample())
    sampler.stop()
    summary = sampler.summary(output_tokens=1000)
    for key, value in fixture["expected_summary_for_1000_tokens"].items():
        assert summary[key] == pytest.approx(value, rel=1e-3), key


def test_energy_falls_back_to_integrated_power_without_the_counter():
    fixture = json.loads((FIXTURES / "synthetic-h100-sxm.json").read_text())
    del fixture["calls"]["nvmlDeviceGetTotalEnergyConsumption[0]"]
    sampler = telemetry.GpuSampler(FakeNVML(fixture), interval=3600)
    sampler.start()
    sampler.samples.append(sampler._sample())
    sampler.stop()
    summary = sampler.summary(output_tokens=10)
    assert summary["gpu_energy_j"] is not None and summary["gpu_energy_j"] >= 0
    assert summary["gpu_mean_power_w"] == pytest.approx((100 + 600 + 650) / 3)


def test_no_gpu_gives_null_fields_and_a_note():
    nvml, note = telemetry.load_nvml()
    if nvml is not None:
        pytest.skip("this machine has a working NVML; the no-GPU path is exercised elsewhere")
    assert "NVML" in note
    sampler = telemetry.GpuSampler(None, note)
    sampler.start()
    sampler.stop()
    assert sampler.summary(100) == {name: None for name in telemetry.GPU_FIELDS}
    hw = hardware.collect(None, note)
    assert hw["gpu_count"] == 0 and hw["gpus"] == [] and hw["gpu_note"] == note
    assert hw["fingerprint"] and len(hw["fingerprint"]) == 16


def test_fingerprint_ignores_what_differs_between_identical_machines():
    base = {
        "gpus": [{"name": "NVIDIA H100 80GB HBM3", "memory_total_mib": 81559, "uuid": "GPU-a"}],
        "cpu_model": "AMD EPYC 9654",
        "cpu_count": 16,
        "driver_version": "550",
        "kernel": "6.1",
    }
    twin = json.loads(json.dumps(base))
    twin["gpus"][0]["uuid"] = "GPU-b"
    twin["driver_version"], twin["kernel"] = "555", "6.8"
    assert hardware.fingerprint(base) == hardware.fingerprint(twin)
    other = json.loads(json.dumps(base))
    other["gpus"][0]["name"] = "NVIDIA A100-SXM4-80GB"
    assert hardware.fingerprint(base) != hardware.fingerprint(other)
    assert "1x NVIDIA H100 80GB HBM3" in hardware.describe(base)


def test_prometheus_parsing_and_deltas():
    text = """# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="tiny"} 120.0
vllm:generation_tokens_total{engine="1",model_name="tiny"} 30
vllm:num_requests_running{model_name="tiny"} 2
tgi_request_generated_tokens_sum 4.5e2
garbage line
"""
    parsed = telemetry.parse_prometheus(text)
    assert parsed["vllm:generation_tokens_total"] == 150
    assert parsed["tgi_request_generated_tokens_sum"] == 450
    after = dict(parsed, **{"vllm:generation_tokens_total": 214})
    assert telemetry.counter_delta(parsed, after, "vllm:generation_tokens_total") == 64
    assert telemetry.counter_delta(None, after, "vllm:generation_tokens_total") is None
    assert telemetry.counter_delta(parsed, after, "missing") is None


def test_prefix_cache_counters_over_a_window():
    """vLLM counts hits and queries; llama.cpp counts cached and uncached prompt tokens apart (issue 25)."""
    before = {
        "vllm:prefix_cache_hits_total": 100.0,
        "vllm:prefix_cache_queries_total": 400.0,
        "llamacpp:prompt_tokens_cached_total": 10.0,
        "llamacpp:prompt_tokens_total": 50.0,
    }
    after = {
        "vllm:prefix_cache_hits_total": 612.0,
        "vllm:prefix_cache_queries_total": 1040.0,
        "llamacpp:prompt_tokens_cached_total": 266.0,
        "llamacpp:prompt_tokens_total": 114.0,
    }
    vllm = ("vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total")
    assert telemetry.prefix_cache_delta(before, after, *vllm) == (512.0, 640.0)
    assert telemetry.prefix_cache_delta(
        before, after, "llamacpp:prompt_tokens_cached_total", None, "llamacpp:prompt_tokens_total"
    ) == (256.0, 320.0)
    assert telemetry.prefix_cache_delta(before, None, *vllm) is None  # no scrape: nothing, not a zero
    assert telemetry.prefix_cache_delta(before, {"vllm:prefix_cache_hits_total": 1.0}, *vllm) is None
    assert telemetry.prefix_cache_delta(before, after, None, None) is None  # an engine kitt reads no counter of
