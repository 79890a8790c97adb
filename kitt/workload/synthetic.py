"""Synthetic prompts: seeded, unique per request, about ``input_len`` tokens long.

kitt has no tokenizer (it would cost every user a large install), so a prompt is built from
common English words that most BPE vocabularies encode as one token each. The server's usage
report gives the true prompt length, which is what the metrics use.
"""

from __future__ import annotations

import random

from kitt.workload.spec import RequestSpec

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


def build_requests(count: int, input_len: int, output_len: int, seed: int, salt: str = "") -> list[RequestSpec]:
    """``count`` prompts; the same seed and salt give the same prompts on every machine."""
    rng = random.Random(f"{seed}:{salt}")
    requests = []
    for index in range(count):
        # A distinct opening per request defeats prefix caching across requests.
        words = [f"{rng.randrange(10**6):06d}"] + rng.choices(_WORDS, k=max(input_len - 1, 0))
        requests.append(RequestSpec(index=index, prompt=" ".join(words), max_tokens=output_len))
    return requests

