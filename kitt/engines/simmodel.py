"""The sim's serving model: running slots and a queue, prefill and decode cost, a prefix cache.

Pure bookkeeping: times are passed in (seconds, on any clock), nothing here reads a clock or
touches a socket, so tests drive it directly (``tests/engines/test_simmodel.py``) and the server
(``simserver.py``) calls it when a request arrives, when its prefill ends, and when it finishes
or its client goes away. What it models, each part off by default:

- **Running slots and a queue** (``max_num_seqs``, vLLM's name; 0: no limit): at most N requests
  run at once; later ones wait in arrival order and start when a slot frees (at a running
  request's last token, or when its client goes away). The wait is part of their TTFT.
- **Prefill cost** (``prefill_ms_per_token``): each prompt token not served from the cache adds
  this much to the request's TTFT, after its base TTFT.
- **Decode cost that grows with the batch** (``itl_ms_per_seq``): each gap between events grows
  by this much per running request (counted when the gap starts).
- **A prefix cache within a KV budget** (``block_size``, ``kv_cache_tokens``, ``prefix_caching``):
  a prompt's full blocks of ``block_size`` tokens are keyed each by all tokens up to its end (a
  hash chained over the blocks, as vLLM does). When a request starts, its cached tokens are its
  leading blocks found in the cache, over at most ``prompt_tokens - 1`` tokens (vLLM always
  computes a prompt's last token, so a repeated 32-token prompt with 16-token blocks gets 16).
  When its prefill ends, all its full blocks enter the cache. The cache holds at most
  ``kv_cache_tokens // block_size`` blocks and evicts the least recently used; a request's blocks
  are touched last block first, so a prompt's tail is evicted before its head (vLLM frees blocks
  in the same order). The budget bounds cached blocks only: running requests' KV is bounded by
  the slots, not counted here. ``kv_cache_tokens`` 0 or ``prefix_caching`` False: no cache.

Counters in tokens, as vLLM's ``prefix_cache_queries``/``prefix_cache_hits``: every prompt token
of a request that starts is a query, every cached token a hit.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServingConfig:
    max_num_seqs: int = 0  # 0: no limit
    prefill_ms_per_token: float = 0.0
    itl_ms_per_seq: float = 0.0
    block_size: int = 16
    kv_cache_tokens: int = 0  # 0: no prefix cache
    prefix_caching: bool = True

    @property
    def caching(self) -> bool:
        return self.prefix_caching and self.kv_cache_tokens >= self.block_size

    @property
    def active(self) -> bool:
        """Whether anything is modelled; off, the server keeps its exact schedule untouched."""
        return bool(self.max_num_seqs > 0 or self.prefill_ms_per_token > 0 or self.itl_ms_per_seq > 0 or self.caching)


def block_keys(words: Sequence[str], block_size: int) -> list[int]:
    """One key per full block, each a hash of the key before it and its own tokens: a block's key
    stands for every token up to its end, so equal keys mean equal prefixes."""
    keys: list[int] = []
    key = 0
    for end in range(block_size, len(words) + 1, block_size):
        key = hash((key, *words[end - block_size : end]))
        keys.append(key)
    return keys


class PrefixCache:
    """Block keys in least-recently-used order, at most ``capacity_tokens // block_size`` of them."""

    def __init__(self, block_size: int, capacity_tokens: int) -> None:
        self.block_size = block_size
        self.capacity = capacity_tokens // block_size
        self.blocks: OrderedDict[int, None] = OrderedDict()
        self.queries = self.hits = self.evictions = 0

    def lookup(self, keys: Sequence[int], prompt_tokens: int) -> int:
        """The cached tokens of a starting request: its leading blocks found, short of its last token."""
        blocks, found = self.blocks, 0
        for key in keys[: max(prompt_tokens - 1, 0) // self.block_size]:
            if key not in blocks:
                break
            found += 1
        for key in reversed(keys[:found]):
            blocks.move_to_end(key)
        cached = found * self.block_size
        self.queries += prompt_tokens
        self.hits += cached
        return cached

    def insert(self, keys: Sequence[int]) -> None:
        """A request's prefill ended: its blocks enter (or are touched), tail first, evicting the oldest."""
        blocks = self.blocks
        for key in reversed(keys):
            if key in blocks:
                blocks.move_to_end(key)
            else:
                blocks[key] = None
                if len(blocks) > self.capacity:
                    blocks.popitem(last=False)
                    self.evictions += 1


class Request:
    """One request as the model sees it; ``owner`` is whatever the caller hangs on it."""

    __slots__ = ("arrival", "cached", "keys", "owner", "prompt_tokens", "start")

    def __init__(self, arrival: float, prompt_tokens: int, keys: Sequence[int] = (), owner: Any = None) -> None:
        self.arrival, self.prompt_tokens, self.keys, self.owner = arrival, prompt_tokens, keys, owner
        self.start: float | None = None
        self.cached = 0


class ServingModel:
    """Slots, the FIFO queue and the prefix cache of one server."""

    def __init__(self, config: ServingConfig) -> None:
        self.config = config
        self.cache = PrefixCache(config.block_size, config.kv_cache_tokens) if config.caching else None
        self.running = 0
        self.waiting: deque[Request] = deque()

    def _free_slot(self) -> bool:
        return not self.config.max_num_seqs or self.running < self.config.max_num_seqs

    def keys(self, words: Sequence[str]) -> list[int]:
        """The block keys of a prompt's tokens, or none when there is no cache to look them up in."""
        return block_keys(words, self.config.block_size) if self.cache is not None else []

    def arrive(self, request: Request) -> bool:
        """True when the request takes a slot now (then call :meth:`begin`); False when it waits."""
        if not self.waiting and self._free_slot():
            self.running += 1
            return True
        self.waiting.append(request)
        return False

    def begin(self, request: Request, now: float) -> float:
        """The request starts at ``now``: look up its cached tokens; returns its prefill in seconds."""
        request.start = now
        if self.cache is not None:
            request.cached = self.cache.lookup(request.keys, request.prompt_tokens)
        return (request.prompt_tokens - request.cached) * self.config.prefill_ms_per_token / 1e3

    def prefill_done(self, request: Request) -> None:
        if self.cache is not None:
            self.cache.insert(request.keys)

    def release(self, request: Request) -> list[Request]:
        """A running request finished or lost its client: the requests that take its slot, to begin now."""
        self.running -= 1
        started: list[Request] = []
        while self.waiting and self._free_slot():
            self.running += 1
            started.append(self.waiting.popleft())
        return started

    def withdraw(self, request: Request) -> None:
        """A waiting request lost its client: it leaves the queue."""
        try:
            self.waiting.remove(request)
        except ValueError:
            pass

    def decode_ms(self) -> float:
        """What the batch adds to the next gap between events, in ms (before any slowdown)."""
        return self.config.itl_ms_per_seq * self.running
