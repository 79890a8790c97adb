"""The sim's tokenizer: words are tokens, the ChatML overhead is fixed, ids round-trip."""

from __future__ import annotations

import pytest

from kitt.engines.simtokens import HASHED_BASE, LETTER_WORDS, UnknownToken, Vocabulary, chat_token_count, chat_words


def test_letter_words_are_bijective_base_26():
    vocabulary = Vocabulary()
    assert vocabulary.encode(["a", "z", "aa", "az", "ba"]) == [0, 25, 26, 51, 52]
    assert vocabulary.token_id("zzzzzz") == LETTER_WORDS - 1
    for token in (0, 25, 26, 701, 702, 18277, 18278, 123456789, LETTER_WORDS - 1):
        assert vocabulary.token_id(vocabulary.word(token)) == token


def test_other_words_hash_the_same_in_every_process_and_round_trip_where_seen():
    first, second = Vocabulary(), Vocabulary()
    words = "The cat, sat on 42 mats. Ünïcode lowercaseword".split()
    tokens = first.encode(words)
    assert tokens == second.encode(words)
    assert [t >= HASHED_BASE for t in tokens] == [True, True, False, False, True, True, True, True]
    assert first.decode(tokens) == words
    with pytest.raises(UnknownToken):
        Vocabulary().word(tokens[0])  # a hashed id maps back only where its word was seen
    for bad in (-1, LETTER_WORDS, HASHED_BASE - 1, 1.5, True, "3"):
        with pytest.raises(UnknownToken):
            first.word(bad)  # type: ignore[arg-type]


def test_chat_template_adds_three_tokens_per_message_and_two_for_the_generation_prompt():
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hello  there"}, {"type": "text", "text": "x"}]},
    ]
    words = chat_words(messages)
    assert words == [
        "<|im_start|>",
        "system",
        "be",
        "brief",
        "<|im_end|>",
        "<|im_start|>",
        "user",
        "hello",
        "there",
        "x",
        "<|im_end|>",
        "<|im_start|>",
        "assistant",
    ]
    assert chat_token_count(messages) == len(words) == 5 + 2 * 3 + 2
    assert chat_token_count(messages, add_generation_prompt=False) == len(chat_words(messages, False)) == 11
