"""The sim's tokenizer: one token per whitespace-separated word, a ChatML chat template, and ids.

A prompt's tokens are its words (``text.split()``), so a test can write a prompt of exactly N
tokens. Chat requests are rendered with a ChatML template whose markers are words too::

    <|im_start|> ROLE CONTENT... <|im_end|>      per message: its words + 3 tokens
    <|im_start|> assistant                       the generation prompt: 2 tokens

so a chat prompt counts ``sum(words + 3 per message) + 2`` tokens (the ``+ 2`` only with
``add_generation_prompt``, which chat completions always add, as vLLM does). ``/tokenize``, the
usage's ``prompt_tokens`` and the prefix cache all count this way, and all agree.

Token ids are a fixed vocabulary, the same in every sim process: a word of one to six lowercase
letters is its bijective base-26 number minus one (``a`` = 0, ``z`` = 25, ``aa`` = 26, ...,
``zzzzzz`` = 321,272,405), any other word is ``2**30`` plus 30 bits of its BLAKE2b hash. The
first kind maps back by arithmetic; the second by a table of the words this tokenizer has seen,
so ``detokenize(tokenize(text))`` gives ``text`` back with its whitespace made single spaces (an
id from neither kind, or a hashed one this process never saw, is not in the vocabulary).
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
TOKENS_PER_MESSAGE = 3  # <|im_start|>, the role, <|im_end|>
GENERATION_PROMPT = (IM_START, "assistant")

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_ORD_A = ord("a")
_MAX_LETTERS = 6
LETTER_WORDS = sum(26**n for n in range(1, _MAX_LETTERS + 1))  # ids 0 .. LETTER_WORDS - 1
HASHED_BASE = 2**30


class UnknownToken(ValueError):
    """A token id outside the sim's vocabulary."""


def message_text(content: Any) -> str:
    """A chat message's text: a string, or the text parts of an OpenAI content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def chat_words(messages: Iterable[dict[str, Any]], add_generation_prompt: bool = True) -> list[str]:
    """The tokens (words) of ``messages`` rendered with the ChatML template."""
    words: list[str] = []
    for message in messages:
        words.append(IM_START)
        words.append(str(message.get("role", "user")))
        words.extend(message_text(message.get("content")).split())
        words.append(IM_END)
    if add_generation_prompt:
        words.extend(GENERATION_PROMPT)
    return words


def chat_token_count(messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> int:
    """``len(chat_words(...))`` without building the list (the server's hot path)."""
    count = (len(GENERATION_PROMPT) if add_generation_prompt else 0) + TOKENS_PER_MESSAGE * len(messages)
    for message in messages:
        count += len(message_text(message.get("content")).split())
    return count


class Vocabulary:
    """Word <-> id, fixed for letter words and hashed (then remembered) for every other word."""

    def __init__(self) -> None:
        self.hashed: dict[int, str] = {}
        for word in (IM_START, IM_END):
            self.token_id(word)

    def token_id(self, word: str) -> int:
        if 0 < len(word) <= _MAX_LETTERS and word.isascii() and word.isalpha() and word.islower():
            value = 0
            for char in word:
                value = value * 26 + ord(char) - _ORD_A + 1
            return value - 1
        digest = hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=4).digest()
        token = HASHED_BASE + (int.from_bytes(digest, "big") & (HASHED_BASE - 1))
        self.hashed.setdefault(token, word)
        return token

    def word(self, token: int) -> str:
        if type(token) is int and 0 <= token < LETTER_WORDS:
            value, letters = token + 1, []
            while value:
                value, digit = divmod(value - 1, 26)
                letters.append(_LETTERS[digit])
            return "".join(reversed(letters))
        try:
            return self.hashed[token]
        except (KeyError, TypeError):
            raise UnknownToken(
                f"token id {token!r} is not in the sim's vocabulary "
                "(ids come from its /tokenize, or are below "
                f"{LETTER_WORDS})"
            ) from None

    def encode(self, words: Iterable[str]) -> list[int]:
        return [self.token_id(word) for word in words]

    def decode(self, tokens: Iterable[int]) -> list[str]:
        return [self.word(token) for token in tokens]
