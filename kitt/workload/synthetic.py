"""Synthetic prompts: seeded, unique per request, about ``input_len`` tokens long.

A prompt is built from common English words that most BPE vocabularies encode as one token
each; ``kitt.workload.tokens`` then makes the lengths exact where a tokenizer can be asked. The
server's usage report gives the true prompt length, which is what the metrics use.

Lengths may be distributions (``kitt.workload.lengths``): they are drawn from a generator of
their own, so prompts of fixed lengths are the very prompts kitt always built for that seed.
"""

from __future__ import annotations

import random

from kitt.workload.lengths import Length, MixEntry, draw_pairs
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


def build_requests(
    count: int, input_len: Length, output_len: Length, seed: int, salt: str = "", mix: tuple[MixEntry, ...] = ()
) -> list[RequestSpec]:
    """``count`` prompts; the same seed and salt give the same prompts on every machine."""
    rng = random.Random(f"{seed}:{salt}")
    lengths = draw_pairs(count, input_len, output_len, mix, random.Random(f"{seed}:{salt}:lengths"))
    requests = []
    for index, (prompt_len, max_tokens) in enumerate(lengths):
        requests.append(
            RequestSpec(index=index, prompt=prompt_words(rng, prompt_len), max_tokens=max_tokens, input_len=prompt_len)
        )
    return requests


def prompt_words(rng: random.Random, length: int) -> str:
    """``length`` words: a distinct six-digit opening (it defeats prefix caching across requests), then common words."""
    return " ".join([f"{rng.randrange(10**6):06d}"] + rng.choices(_WORDS, k=max(length - 1, 0)))


def filler_words(rng: random.Random, count: int) -> list[str]:
    """``count`` more common words, to lengthen a prompt."""
    return rng.choices(_WORDS, k=count)


# Words for the last tokens of a fitted prompt: the common words and single letters, which
# every byte-pair vocabulary holds (a letter costs one or two tokens, a word one to four).
FINE_WORDS = tuple(_WORDS) + tuple("abcdefghijklmnopqrstuvwxyz")
