"""A stand-in for pynvml that replays recorded NVML answers (see scripts/capture_nvml_fixture.py).

NVML needs an NVIDIA driver, which no test machine here has; this replays a fixture's answers
in the order they were recorded, so kitt's hardware and telemetry code run on real-shaped values.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "nvml"


class NVMLError(Exception):
    pass


class FakeNVML:
    NVML_CLOCK_SM = 1

    def __init__(self, fixture: dict[str, Any]) -> None:
        self._calls = {key: list(values) for key, values in fixture["calls"].items()}
        self._cursor: dict[str, int] = {}

    @classmethod
    def load(cls, name: str) -> "FakeNVML":
        return cls(json.loads((FIXTURES / name).read_text()))

    def _answer(self, key: str) -> Any:
        if key not in self._calls:
            raise NVMLError(f"NVML_ERROR_NOT_SUPPORTED ({key} was not recorded)")
        values = self._calls[key]
        index = self._cursor.get(key, 0)
        self._cursor[key] = index + 1
        return values[min(index, len(values) - 1)]  # the last answer repeats, like a steady GPU

    def remaining(self, key: str) -> int:
        return len(self._calls[key]) - self._cursor.get(key, 0)

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("nvml"):
            raise AttributeError(name)

        def call(*args: Any) -> Any:
            if name == "nvmlDeviceGetHandleByIndex":
                return args[0]
            key = f"{name}[{args[0]}]" if args else name
            value = self._answer(key)
            return SimpleNamespace(**value) if isinstance(value, dict) else value

        return call
