"""Synthetic prompts: seeded, unique per request, about ``input_len`` tokens long.

kitt has no tokenizer (it would cost every user a large install), so a prompt is built from
common English words that most BPE vocabularies encode as one token each. The server's usage
report gives the true prompt length, which is what the metrics use.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

_WORDS = (
    "the of and to in is was he for it with as his on be at by had are but from or have an they "
    "which one you were all we her she there would their will when who him been has more if no "
    "out so said what up its about than into them can only other time new some could these two "
    "may first then do any like my now over such our man me even most made after also did many "
    "before must through back years where much your way well down should because each just those "
    "people how too little state good very make world still own see men work long get here between "
    "both life being under never day same another know while last might us great old year off come "
    "since against go came right used take three"
).split()


@dataclass(frozen=True, slots=True)
class RequestSpec:
    index: int
    prompt: str
    max_tokens: int


def build_requests(count: int, input_len: int, output_len: int, seed: int, salt: str = "") -> list[RequestSpec]:
    """``count`` prompts; the same seed and salt give the same prompts on every machine."""
    rng = random.Random(f"{seed}:{salt}")
    requests = []
    for index in range(count):
        # A distinct opening per request defeats prefix caching across requests.
        words = [f"{rng.randrange(10**6):06d}"] + rng.choices(_WORDS, k=max(input_len - 1, 0))
        requests.append(RequestSpec(index=index, prompt=" ".join(words), max_tokens=output_len))
    return requests


def request_body(
    spec: RequestSpec,
    *,
    api: str,
    model: str,
    stream_options: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The JSON body of one streaming request to ``/v1/completions`` or ``/v1/chat/completions``."""
    body: dict[str, Any] = {"model": model, "max_tokens": spec.max_tokens, "stream": True, "temperature": 0.0}
    if api == "chat":
        body["messages"] = [{"role": "user", "content": spec.prompt}]
    else:
        body["prompt"] = spec.prompt
    if stream_options:
        body["stream_options"] = stream_options
    for key, value in extra.items():
        body[key] = spec.max_tokens if value == "{output_len}" else value
    return body


def api_path(api: str) -> str:
    return "/v1/chat/completions" if api == "chat" else "/v1/completions"
