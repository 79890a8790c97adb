"""KITT: benchmark LLM inference engines and gate pull requests on performance regressions."""

__version__ = "0.1.0"
