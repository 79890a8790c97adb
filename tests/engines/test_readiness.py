"""How readiness reads each engine's model list."""

from kitt.engines import get_engine
from kitt.engines.readiness import listed_models, model_matches


def test_openai_style_listing():
    payload = {"object": "list", "data": [{"id": "tiny-llama", "object": "model"}, {"id": "other"}]}
    assert listed_models(get_engine("vllm"), payload) == ["tiny-llama", "other"]


def test_ollama_tags_listing_with_implicit_latest():
    payload = {"models": [{"name": "llama3.2:latest", "model": "llama3.2:latest"}]}
    names = listed_models(get_engine("ollama"), payload)
    assert model_matches("llama3.2", names) and model_matches("llama3.2:latest", names)
    assert not model_matches("llama3.1", names)


def test_tgi_info_reports_the_model_id():
    assert listed_models(get_engine("tgi"), {"model_id": "/models/tiny", "max_total_tokens": 1024}) == ["/models/tiny"]
    assert model_matches("tiny", ["/models/tiny"])


def test_garbage_lists_nothing():
    for payload in (None, "text", {"data": "x"}, {"data": [1, 2]}):
        assert listed_models(get_engine("vllm"), payload) == []
