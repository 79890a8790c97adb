"""Record what NVML answers on a real GPU machine, as a test fixture for kitt's telemetry and hardware code.

Run on a machine with an NVIDIA GPU and kitt installed (no network needed):

    python scripts/capture_nvml_fixture.py tests/fixtures/nvml/<gpu-name>.json

It records NVML's raw answers (static queries once, sampled queries over a few seconds while a
small CUDA-free load runs), and what kitt's own code computed from the same answers:
``hardware.collect`` and ``GpuSampler.summary``. The tests replay the raw answers through a fake
NVML module and check that kitt computes the same thing, so the tests exercise real values.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from kitt import hardware, telemetry


class Recorder:
    """Wraps pynvml and records every answer, per function and device, in call order."""

    def __init__(self, nvml):
        self.nvml = nvml
        self.calls: dict[str, list] = {}

    def __getattr__(self, name):
        target = getattr(self.nvml, name)
        if not callable(target) or not name.startswith("nvml"):
            return target

        def wrapped(*args):
            value = target(*args)
            key = name if not args or name == "nvmlDeviceGetHandleByIndex" else f"{name}[{self._index(args[0])}]"
            self.calls.setdefault(key, []).append(_plain(value))
            return value

        return wrapped

    def _index(self, handle) -> int:
        return self.nvml.nvmlDeviceGetIndex(handle)


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if hasattr(value, "_fields_"):
        return {field[0]: getattr(value, field[0]) for field in value._fields_}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (int, float, str)) or value is None:
        return value
    return repr(value)


def main(out: Path) -> None:
    nvml, note = telemetry.load_nvml()
    if nvml is None:
        raise SystemExit(f"no GPU here: {note}")
    recorder = Recorder(nvml)
    hw = hardware.collect(recorder)
    sampler = telemetry.GpuSampler(recorder, interval=0.1)
    sampler.start()
    time.sleep(3.0)
    sampler.stop()
    summary = sampler.summary(output_tokens=1000)
    fixture = {
        "source": f"captured with scripts/capture_nvml_fixture.py on {time.strftime('%Y-%m-%d')}",
        "calls": {k: v for k, v in recorder.calls.items() if k != "nvmlDeviceGetHandleByIndex"},
        "expected_hardware": {k: v for k, v in hw.items() if k not in ("cpu_model", "cpu_count", "ram_total_gib", "os",
                                                                        "kernel", "architecture", "python",
                                                                        "fingerprint", "fingerprint_basis", "description")},
        "expected_summary_for_1000_tokens": summary,
        "samples": len(sampler.samples),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fixture, indent=2) + "\n")
    print(json.dumps({"hardware": hw, "summary": summary}, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "nvml-fixture.json"))
