"""Telemetry during a run: GPU samples through NVML, and the engine's Prometheus counters.

GPU sampling runs in a background thread (NVML calls release the GIL and take microseconds) and
summarizes into flat metrics. Without a GPU, or without the NVIDIA driver, every GPU field is
None and ``note`` says why: a run never fails for lack of a GPU.

The engine's ``/metrics`` is scraped before and after each measured repeat; the difference of
its generated-token counter is checked against the client's own count of completion tokens.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from kitt.net import NetPolicy, Redirected, open_url

GPU_FIELDS = (
    "gpu_peak_memory_mib",
    "gpu_mean_utilization_pct",
    "gpu_mean_power_w",
    "gpu_energy_j",
    "gpu_energy_per_output_token_j",
)


def load_nvml() -> tuple[ModuleType | None, str | None]:
    """(pynvml, None) when NVML initialises, else (None, the reason)."""
    try:
        import pynvml
    except ImportError as exc:  # nvidia-ml-py is a dependency, but be explicit if it is missing
        return None, f"nvidia-ml-py is not installed ({exc})"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...
        return None, f"NVML unavailable ({type(exc).__name__}: {exc}); GPU fields are null"
    return pynvml, None


@dataclass
class _Sample:
    at: float
    memory_mib: float  # summed over GPUs
    utilization_pct: float  # mean over GPUs
    power_w: float | None  # summed over GPUs


@dataclass
class GpuSampler:
    """Samples every GPU every ``interval`` seconds between ``start`` and ``stop``."""

    nvml: ModuleType | None
    note: str | None = None
    interval: float = 0.1
    samples: list[_Sample] = field(default_factory=list)
    _energy_start_mj: float | None = None
    _energy_end_mj: float | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def _handles(self) -> list[Any]:
        assert self.nvml is not None
        return [self.nvml.nvmlDeviceGetHandleByIndex(i) for i in range(self.nvml.nvmlDeviceGetCount())]

    def _total_energy_mj(self) -> float | None:
        try:  # Volta and newer: a hardware energy counter beats integrating power samples
            return float(sum(self.nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles()))
        except Exception:
            return None

    def _sample(self) -> _Sample:
        nvml = self.nvml
        memory, utilization, power = 0.0, [], 0.0
        power_known = True
        for handle in self._handles():
            memory += nvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
            utilization.append(float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
            try:
                power += nvml.nvmlDeviceGetPowerUsage(handle) / 1e3
            except Exception:
                power_known = False
        mean_util = sum(utilization) / len(utilization) if utilization else 0.0
        return _Sample(time.monotonic(), memory, mean_util, power if power_known else None)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.samples.append(self._sample())
            except Exception as exc:  # a GPU falling off the bus must not kill the benchmark
                self.note = f"GPU sampling stopped: {type(exc).__name__}: {exc}"
                return

    def start(self) -> None:
        if self.nvml is None:
            return
        self.samples.clear()
        self._stop.clear()
        self._energy_start_mj = self._total_energy_mj()
        self.samples.append(self._sample())
        self._thread = threading.Thread(target=self._loop, name="kitt-gpu-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._thread = None
        self.samples.append(self._sample())
        self._energy_end_mj = self._total_energy_mj()

    def summary(self, output_tokens: float) -> dict[str, float | None]:
        """Flat GPU metrics of the last start/stop window (all None without a GPU)."""
        if self.nvml is None or len(self.samples) < 2:
            return {name: None for name in GPU_FIELDS}
        powers = [s.power_w for s in self.samples if s.power_w is not None]
        if self._energy_start_mj is not None and self._energy_end_mj is not None:
            energy = (self._energy_end_mj - self._energy_start_mj) / 1e3
        elif len(powers) == len(self.samples):
            energy = sum((b.at - a.at) * (a.power_w + b.power_w) / 2 for a, b in zip(self.samples, self.samples[1:]))
        else:
            energy = None
        return {
            "gpu_peak_memory_mib": max(s.memory_mib for s in self.samples),
            "gpu_mean_utilization_pct": sum(s.utilization_pct for s in self.samples) / len(self.samples),
            "gpu_mean_power_w": sum(powers) / len(powers) if powers else None,
            "gpu_energy_j": energy,
            "gpu_energy_per_output_token_j": energy / output_tokens if energy is not None and output_tokens else None,
        }


_SAMPLE_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([^\s]+)")


def parse_prometheus(text: str) -> dict[str, float]:
    """Prometheus text exposition -> {metric name: value summed over its label sets}."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE_LINE.match(line)
        if not match:
            continue
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        totals[match.group(1)] = totals.get(match.group(1), 0.0) + value
    return totals


def scrape(url: str, timeout: float = 5.0, net: NetPolicy | None = None) -> dict[str, float] | None:
    """The engine's counters, or None when it has no /metrics (a warning, never a failure).

    The scrape goes out under the run's network policy (key, headers, proxy), like every request."""
    try:
        status, raw = open_url(net, "GET", url, timeout=timeout)
    except (OSError, ValueError, Redirected):
        return None
    return parse_prometheus(raw.decode("utf-8", "replace")) if status == 200 else None


def counter_delta(before: dict[str, float] | None, after: dict[str, float] | None, name: str | None) -> float | None:
    if not name or before is None or after is None or name not in after:
        return None
    return after[name] - before.get(name, 0.0)


def prefix_cache_delta(
    before: dict[str, float] | None,
    after: dict[str, float] | None,
    hits: str | None,
    queries: str | None,
    misses: str | None = None,
) -> tuple[float, float] | None:
    """(cached prompt tokens, prompt tokens looked up) over a window, from the prefix cache's
    counters: ``hits`` and ``queries`` (vLLM), or ``hits`` and ``misses`` counted apart (llama.cpp:
    the queries are both); None when the engine does not expose them."""
    hit = counter_delta(before, after, hits)
    looked = counter_delta(before, after, queries) if not misses else None
    if misses and hit is not None:
        missed = counter_delta(before, after, misses)
        looked = None if missed is None else hit + missed
    return None if hit is None or looked is None else (hit, looked)
