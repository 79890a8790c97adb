"""The sim's serving model on its own: slots and queue, prefill cost, the block-hashed LRU cache."""

from __future__ import annotations

from kitt.engines.simmodel import PrefixCache, Request, ServingConfig, ServingModel, block_keys


def words(n: int, tag: str = "w") -> list[str]:
    return [f"{tag}{i}" for i in range(n)]


def test_off_by_default_and_a_cache_needs_a_budget_of_a_block():
    assert not ServingConfig().active
    assert not ServingConfig(kv_cache_tokens=15).caching and ServingConfig(kv_cache_tokens=16).caching
    assert not ServingConfig(kv_cache_tokens=4096, prefix_caching=False).active
    assert ServingConfig(max_num_seqs=1).active and ServingConfig(itl_ms_per_seq=0.1).active


def test_slots_then_a_fifo_queue_that_a_freed_slot_or_a_lost_client_drains():
    model = ServingModel(ServingConfig(max_num_seqs=2))
    a, b, c, d, e = (Request(0.0, 1, owner=name) for name in "abcde")
    assert [model.arrive(r) for r in (a, b, c, d, e)] == [True, True, False, False, False]
    assert model.running == 2 and list(model.waiting) == [c, d, e]
    model.withdraw(d)  # d's client went away while it waited
    assert model.release(a) == [c] and model.running == 2
    assert model.release(b) == [e] and model.release(c) == [] and model.running == 1
    unlimited = ServingModel(ServingConfig(prefill_ms_per_token=1.0))
    assert all(unlimited.arrive(Request(0.0, 1)) for _ in range(1000))


def test_prefill_costs_each_uncached_token_and_decode_grows_with_the_batch():
    model = ServingModel(ServingConfig(prefill_ms_per_token=0.5, itl_ms_per_seq=0.25, kv_cache_tokens=1024))
    prompt = words(40)
    first = Request(0.0, 40, model.keys(prompt))
    assert model.arrive(first) and model.begin(first, 1.0) == 40 * 0.5 / 1e3 and first.start == 1.0
    assert model.decode_ms() == 0.25
    model.prefill_done(first)
    again = Request(2.0, 40, model.keys(prompt))
    assert model.arrive(again) and model.decode_ms() == 0.5
    assert model.begin(again, 2.0) == (40 - 32) * 0.5 / 1e3 and again.cached == 32


def test_a_block_is_keyed_by_every_token_up_to_its_end():
    shared = words(32)
    assert block_keys(shared + ["x"], 16) == block_keys(shared, 16) and len(block_keys(shared + ["x"], 16)) == 2
    other_start = ["y"] + shared[1:]
    assert block_keys(other_start, 16)[1] != block_keys(shared, 16)[1]  # same 2nd block, different history
    cache = PrefixCache(16, 1024)
    cache.insert(block_keys(shared + words(10, "a"), 16))
    assert cache.lookup(block_keys(shared + words(20, "b"), 16), 52) == 32  # the shared prefix hits
    assert cache.lookup(block_keys(other_start + words(20, "b"), 16), 52) == 0
    assert cache.lookup(block_keys(shared, 16), 32) == 16  # the last prompt token is always computed
    assert (cache.queries, cache.hits) == (52 + 52 + 32, 32 + 16)


def cycle_hit_rate(prompts: int, blocks_each: int, budget_blocks: int, rounds: int = 5) -> float:
    """Requests cycling over distinct prompts, one at a time: the measured hit rate."""
    cache = PrefixCache(16, budget_blocks * 16)
    texts = [block_keys(words(blocks_each * 16 + 1, f"p{i}-"), 16) for i in range(prompts)]
    for _ in range(rounds):
        for keys in texts:
            cache.lookup(keys, blocks_each * 16 + 1)
            cache.insert(keys)
    return cache.hits / cache.queries


def test_lru_within_the_budget_keeps_what_fits_of_each_prompt_head_first():
    # 4 prompts of 3 blocks (+1 token) in a cycle: between two visits of a prompt the other three
    # touch 9 blocks, so of its own blocks budget - 9 survive, head first (tails go first). Once
    # warm (rounds 2-5, 4/5 of the requests) each request hits that many blocks, at most 3.
    for budget in range(6, 14):
        expected_blocks = min(max(budget - 9, 0), 3)
        rate = cycle_hit_rate(prompts=4, blocks_each=3, budget_blocks=budget)
        assert abs(rate - (4 / 5) * expected_blocks * 16 / 49) < 1e-9, budget


def test_a_prompts_tail_is_evicted_before_its_head():
    cache = PrefixCache(16, 4 * 16)
    long = block_keys(words(4 * 16 + 1, "long"), 16)
    cache.insert(long)
    cache.insert(block_keys(words(2 * 16, "short"), 16))  # 2 new blocks evict 2 of the long prompt's
    assert cache.evictions == 2 and cache.lookup(long, 4 * 16 + 1) == 2 * 16
