"""Prompts from the user's own files: OpenAI chat JSONL, ShareGPT, or plain prompts.

Formats (each conversation sends its first user turn; a test with ``turns`` replays its user
turns in order, one a turn, with the engine's own answers in between: ``build_conversations``):

- ``openai-chat``: JSONL, one ``{"messages": [{"role", "content"}, ...]}`` a line (OpenAI batch
  and eval files); the answer is the first assistant message after that user turn;
- ``sharegpt``: a JSON array, or JSONL, of ``{"conversations": [{"from", "value"}, ...]}``, with
  ``from`` one of human/user, gpt/assistant/chatgpt/bard, system;
- ``prompts``: JSONL of ``{"prompt", "output_len"?}``, or plain text with one prompt a line.

A dataset file is untrusted input: it is read through ``kitt.safeload`` (at most
``DATASET_MAX_BYTES``, UTF-8 text, JSON nesting bounded) and at most ``MAX_PROMPTS`` prompts are
kept. Every problem names the file and, for a line, its number. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from kitt.errors import UsageError
from kitt.safeload import parse_json, read_text
from kitt.workload.lengths import Length, draw, upper
from kitt.workload.spec import RequestSpec

FORMATS = ("openai-chat", "sharegpt", "prompts")
SAMPLES = ("shuffle", "random", "order")  # without replacement, with replacement, in file order
DATASET_MAX_BYTES = 64 * 1024 * 1024
MAX_PROMPTS = 1_000_000
# Without a tokenizer an answer's length in tokens is estimated from its words (most English
# words are one token, some two).
TOKENS_PER_WORD = 1.3

_USER = {"user", "human"}
_ASSISTANT = {"assistant", "gpt", "chatgpt", "bard", "model"}


@dataclass(frozen=True)
class DatasetPrompt:
    text: str
    answer: str | None = None  # the dataset's answer to it, when the file has one
    output_len: int | None = None  # a length the file gives (``prompts`` format)
    later: tuple[tuple[str, str | None], ...] = ()  # the conversation's later user turns, each with its recorded answer


@dataclass(frozen=True)
class DatasetSpec:
    """A test's dataset: where, in which format, how sampled; once read, its prompts and sha256."""

    path: str
    format: str = "openai-chat"
    sample: str = "shuffle"
    sha256: str | None = None
    prompts: tuple[DatasetPrompt, ...] | None = field(default=None, repr=False, compare=False)

    def to_data(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "sample": self.sample,
            "sha256": self.sha256,
            "prompts": len(self.prompts) if self.prompts is not None else None,
        }


def read_dataset(spec: DatasetSpec) -> DatasetSpec:
    """``spec`` with its prompts read and checked; a UsageError naming the file (and line) if it is not usable."""
    path = Path(spec.path)
    what = f"dataset ({spec.format})"
    text = read_text(path, what, UsageError, DATASET_MAX_BYTES).removeprefix("\ufeff")  # a BOM (Windows editors)
    where = f"dataset {spec.path}"
    if not text.strip():
        raise UsageError(f"{where} is empty", hint="Point the dataset at a file with at least one prompt.")
    if spec.format == "sharegpt" and text.lstrip().startswith("["):
        data = parse_json(text, where, UsageError)
        if not isinstance(data, list):
            raise UsageError(f"{where}: not a JSON array of conversations")
        prompts = [_sharegpt(item, f"{where}, entry {i}") for i, item in enumerate(data[:MAX_PROMPTS])]
    else:
        prompts = [
            _parse_line(spec.format, line, f"{where}, line {number}")
            for number, line in _lines(text)
            if number is not None
        ]
    prompts = [p for p in prompts if p is not None]
    if not prompts:
        raise UsageError(f"{where} holds no prompt", hint=f"Check that it is in the {spec.format} format.")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return replace(spec, sha256=digest, prompts=tuple(prompts))


def _lines(text: str) -> Any:
    """(line number, line) of the non-blank lines, at most MAX_PROMPTS of them."""
    kept = 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            kept += 1
            if kept > MAX_PROMPTS:
                return
            yield number, line


def _parse_line(fmt: str, line: str, where: str) -> DatasetPrompt | None:
    if fmt == "prompts" and not line.lstrip().startswith("{"):
        return DatasetPrompt(line.strip())
    try:
        item = parse_json(line, where, UsageError)
    except UsageError:
        raise UsageError(f"{where}: not a JSON object ({fmt} format)", hint=_FORMAT_HINTS[fmt]) from None
    if fmt == "openai-chat":
        return _openai_chat(item, where)
    if fmt == "sharegpt":
        return _sharegpt(item, where)
    return _prompt(item, where)


_FORMAT_HINTS = {
    "openai-chat": 'Each line must be {"messages": [{"role": "user", "content": "..."}, ...]}.',
    "sharegpt": 'Each entry must be {"conversations": [{"from": "human", "value": "..."}, ...]}.',
    "prompts": 'Each line must be {"prompt": "...", "output_len": N} or plain text.',
}


def _openai_chat(item: Any, where: str) -> DatasetPrompt:
    messages = item.get("messages") if isinstance(item, dict) else None
    if not isinstance(messages, list):
        raise UsageError(f"{where}: no 'messages' list (openai-chat format)", hint=_FORMAT_HINTS["openai-chat"])
    turns = [(m.get("role"), _content(m.get("content"))) for m in messages if isinstance(m, dict)]
    return _first_exchange(turns, where, "openai-chat")


def _sharegpt(item: Any, where: str) -> DatasetPrompt:
    turns = item.get("conversations") if isinstance(item, dict) else None
    if not isinstance(turns, list):
        raise UsageError(f"{where}: no 'conversations' list (sharegpt format)", hint=_FORMAT_HINTS["sharegpt"])
    pairs = [(t.get("from"), t.get("value")) for t in turns if isinstance(t, dict)]
    return _first_exchange(pairs, where, "sharegpt")


def _first_exchange(turns: list[tuple[Any, Any]], where: str, fmt: str) -> DatasetPrompt:
    """The first user turn with text and its answer; the later user turns (each with the answer
    recorded before the next user turn, if any) for multi-turn sessions."""
    exchanges: list[tuple[str, str | None]] = []
    for i, (role, text) in enumerate(turns):
        if isinstance(role, str) and role in _USER and isinstance(text, str) and text.strip():
            answer = None
            for r, t in turns[i + 1 :]:
                if isinstance(r, str) and r in _USER:
                    break
                if isinstance(r, str) and r in _ASSISTANT and isinstance(t, str):
                    answer = t
                    break
            if not exchanges:  # the first answer: the first assistant message after it, as before
                answer = next(
                    (t for r, t in turns[i + 1 :] if isinstance(r, str) and r in _ASSISTANT and isinstance(t, str)),
                    None,
                )
            exchanges.append((text, answer))
    if exchanges:
        return DatasetPrompt(exchanges[0][0], answer=exchanges[0][1], later=tuple(exchanges[1:]))
    raise UsageError(f"{where}: the conversation has no user turn with text", hint=_FORMAT_HINTS[fmt])


def _content(content: Any) -> Any:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return content


def _prompt(item: Any, where: str) -> DatasetPrompt:
    prompt = item.get("prompt") if isinstance(item, dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        raise UsageError(f"{where}: no 'prompt' string (prompts format)", hint=_FORMAT_HINTS["prompts"])
    output_len = item.get("output_len")
    if output_len is not None and (isinstance(output_len, bool) or not isinstance(output_len, int) or output_len < 1):
        raise UsageError(
            f"{where}: output_len must be a whole number >= 1, got {json.dumps(output_len)[:40]}",
            hint=_FORMAT_HINTS["prompts"],
        )
    return DatasetPrompt(prompt, output_len=output_len)


def sample(spec: DatasetSpec, count: int, rng: random.Random) -> list[DatasetPrompt]:
    """``count`` prompts as ``spec.sample`` says: ``shuffle`` (without replacement; a new shuffled
    pass when the file runs out), ``random`` (with replacement) or ``order`` (file order, cycling)."""
    prompts = list(spec.prompts or ())
    if spec.sample == "random":
        return [rng.choice(prompts) for _ in range(count)]
    chosen: list[DatasetPrompt] = []
    while len(chosen) < count:
        batch = prompts[:]
        if spec.sample == "shuffle":
            rng.shuffle(batch)
        chosen.extend(batch[: count - len(chosen)])
    return chosen


def build_conversations(
    turn_counts: list[int],
    spec: DatasetSpec,
    output_len: Length,
    seed: int,
    salt: str,
    count_tokens: Callable[[list[str]], list[int]] | None = None,
) -> tuple[list[RequestSpec], list[int]]:
    """Sessions from the dataset's conversations: one sampled (as ``build_requests`` samples) per
    entry of ``turn_counts``, sending its user turns in order, at most that many (fewer when the
    conversation has fewer). Each turn's output length is its recorded answer's, capped by
    ``output_len``, else drawn; the recorded answers are never sent. Returns the turns, session
    after session, and how many turns each session got."""
    rng = random.Random(f"{seed}:{salt}:dataset")
    chosen = sample(spec, len(turn_counts), rng)
    exchanges = [
        [(p.text, p.answer, p.output_len), *((t, a, None) for t, a in p.later)][:n] for p, n in zip(chosen, turn_counts)
    ]
    flat = [e for conversation in exchanges for e in conversation]
    lengths = _output_lengths([(answer, given) for _, answer, given in flat], output_len, rng, count_tokens)
    requests = [
        RequestSpec(index=i, prompt=text, max_tokens=n) for i, ((text, _, _), n) in enumerate(zip(flat, lengths))
    ]
    return requests, [len(c) for c in exchanges]


def _output_lengths(
    items: list[tuple[str | None, int | None]],
    output_len: Length,
    rng: random.Random,
    count_tokens: Callable[[list[str]], list[int]] | None,
) -> list[int]:
    """Each (recorded answer, given length)'s output length, as ``build_requests`` decides it."""
    cap = upper(output_len)
    answers = sorted({a for a, given in items if given is None and a and a.strip()})
    if count_tokens is not None and answers:
        answer_tokens = dict(zip(answers, count_tokens(answers)))
    else:
        answer_tokens = {a: round(len(a.split()) * TOKENS_PER_WORD) for a in answers}
    out = []
    for answer, given in items:
        if given is not None:
            out.append(min(given, cap))
        elif answer in answer_tokens:
            out.append(max(1, min(answer_tokens[answer], cap)))
        else:
            out.append(draw(output_len, rng))
    return out


def build_requests(
    count: int,
    spec: DatasetSpec,
    output_len: Length,
    seed: int,
    salt: str,
    count_tokens: Callable[[list[str]], list[int]] | None = None,
) -> list[RequestSpec]:
    """``count`` requests from the dataset. The output length is the answer's token length where
    the file has one (counted in one batch by ``count_tokens``, else estimated from its words),
    capped by the test's ``output_len``; else drawn from ``output_len``."""
    rng = random.Random(f"{seed}:{salt}:dataset")
    cap = upper(output_len)
    chosen = sample(spec, count, rng)
    answers = sorted({p.answer for p in chosen if p.output_len is None and p.answer and p.answer.strip()})
    if count_tokens is not None and answers:
        answer_tokens = dict(zip(answers, count_tokens(answers)))
    else:
        answer_tokens = {a: round(len(a.split()) * TOKENS_PER_WORD) for a in answers}
    requests = []
    for index, prompt in enumerate(chosen):
        if prompt.output_len is not None:
            max_tokens = min(prompt.output_len, cap)
        elif prompt.answer in answer_tokens:
            max_tokens = max(1, min(answer_tokens[prompt.answer], cap))
        else:
            max_tokens = draw(output_len, rng)
        requests.append(RequestSpec(index=index, prompt=prompt.text, max_tokens=max_tokens))
    return requests
