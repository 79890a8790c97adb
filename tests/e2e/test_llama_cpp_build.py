"""The llama-server build's cache key and its failure without a compiler (no build runs here)."""

from __future__ import annotations

import pytest

from e2e import llama_cpp


def test_the_cache_key_follows_the_version_and_the_flags(monkeypatch, tmp_path):
    key = llama_cpp.server_dir(tmp_path).name
    assert key.startswith(f"llama-server-{llama_cpp.LLAMA_CPP_PYTHON_VERSION}-")
    monkeypatch.setattr(llama_cpp, "CMAKE_FLAGS", (*llama_cpp.CMAKE_FLAGS, "-DGGML_AVX512=ON"))
    assert llama_cpp.server_dir(tmp_path).name != key
    monkeypatch.setattr(llama_cpp, "LLAMA_CPP_PYTHON_VERSION", "0.0.1")
    assert llama_cpp.server_dir(tmp_path).name.startswith("llama-server-0.0.1-")


def test_missing_build_tools_fail_before_anything_is_downloaded(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no cmake, no c++
    with pytest.raises(RuntimeError, match=r"needs cmake and c\+\+, not found on PATH; install them"):
        llama_cpp.ensure_server(tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"{llama_cpp.server_dir(tmp_path).name}.lock"]
