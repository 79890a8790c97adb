"""hardware.json: what a benchmark ran on, and a fingerprint that says when two runs are comparable.

The fingerprint covers what decides performance and stays put between runs on the same kind of
machine: GPU models, count and memory, CPU model and core count. It leaves out what differs
between identical machines or changes under maintenance (hostname, GPU UUIDs, driver and kernel
versions, free memory); those are still recorded in hardware.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from types import ModuleType
from typing import Any


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def gpu_inventory(nvml: ModuleType | None) -> dict[str, Any]:
    if nvml is None:
        return {"gpu_count": 0, "gpus": [], "driver_version": None, "cuda_version": None}
    gpus = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        entry: dict[str, Any] = {
            "index": index,
            "name": _text(nvml.nvmlDeviceGetName(handle)),
            "memory_total_mib": int(nvml.nvmlDeviceGetMemoryInfo(handle).total // 2**20),
            "uuid": _text(nvml.nvmlDeviceGetUUID(handle)),
        }
        for key, call in (
            ("power_limit_w", lambda h: nvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1e3),
            ("max_sm_clock_mhz", lambda h: nvml.nvmlDeviceGetMaxClockInfo(h, nvml.NVML_CLOCK_SM)),
            ("compute_capability", lambda h: ".".join(map(str, nvml.nvmlDeviceGetCudaComputeCapability(h)))),
        ):
            try:
                entry[key] = call(handle)
            except Exception:  # older GPUs or drivers lack some queries
                entry[key] = None
        gpus.append(entry)
    try:
        cuda = nvml.nvmlSystemGetCudaDriverVersion_v2()
        cuda_version = f"{cuda // 1000}.{cuda % 1000 // 10}"
    except Exception:
        cuda_version = None
    return {
        "gpu_count": len(gpus),
        "gpus": gpus,
        "driver_version": _text(nvml.nvmlSystemGetDriverVersion()),
        "cuda_version": cuda_version,
    }


def _cpu_model(cpuinfo: Path) -> str:
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib(meminfo: Path) -> float | None:
    try:
        for line in meminfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _os_name(os_release: Path) -> str:
    try:
        for line in os_release.read_text(encoding="utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}"


def fingerprint(hardware: dict[str, Any]) -> str:
    """A short stable hash of the performance-relevant hardware, plus a readable basis."""
    basis = fingerprint_basis(hardware)
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


def fingerprint_basis(hardware: dict[str, Any]) -> dict[str, Any]:
    return {
        "gpus": sorted(
            f"{g.get('name')} {round((g.get('memory_total_mib') or 0) / 1024)}GiB" for g in hardware.get("gpus", [])
        ),
        "cpu_model": hardware.get("cpu_model"),
        "cpu_count": hardware.get("cpu_count"),
    }


def describe(hardware: dict[str, Any]) -> str:
    """One line for humans: "1x NVIDIA H100 80GB HBM3 · AMD EPYC 9654 (16 cores)"."""
    gpus = hardware.get("gpus") or []
    if gpus:
        names: dict[str, int] = {}
        for gpu in gpus:
            names[gpu.get("name", "GPU")] = names.get(gpu.get("name", "GPU"), 0) + 1
        gpu_text = ", ".join(f"{count}x {name}" for name, count in names.items())
    else:
        gpu_text = "no GPU"
    return f"{gpu_text} · {hardware.get('cpu_model')} ({hardware.get('cpu_count')} cores)"


def collect(nvml: ModuleType | None, note: str | None = None, root: Path = Path("/")) -> dict[str, Any]:
    """hardware.json's content. ``nvml`` is pynvml after nvmlInit, or None without a GPU."""
    hardware: dict[str, Any] = gpu_inventory(nvml)
    hardware.update(
        cpu_model=_cpu_model(root / "proc/cpuinfo"),
        cpu_count=os.cpu_count(),
        ram_total_gib=_ram_gib(root / "proc/meminfo"),
        os=_os_name(root / "etc/os-release"),
        kernel=platform.release(),
        architecture=platform.machine(),
        python=platform.python_version(),
        gpu_note=note,
    )
    hardware["fingerprint_basis"] = fingerprint_basis(hardware)
    hardware["fingerprint"] = fingerprint(hardware)
    hardware["description"] = describe(hardware)
    return hardware
