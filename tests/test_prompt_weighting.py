"""Prompt emphasis parsing, chunking of long prompts and weighting of the text embeddings."""

from __future__ import annotations

import math

import pytest
import torch

from sdcodec.benchmarks.sd15_random import byte_level_clip_tokenizer
from sdcodec.codec.diffusion.prompt_weighting import (
    BREAK,
    apply_weights,
    encode_weighted_pair,
    parse_emphasis,
    tokenize_weighted,
)


def approx_runs(runs):
    return [(text, None if weight is None else pytest.approx(weight)) for text, weight in runs]


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("a cat", [("a cat", 1.0)]),
        ("a (red:1.3) cat", [("a ", 1.0), ("red", 1.3), (" cat", 1.0)]),
        ("(word)", [("word", 1.1)]),
        ("((word))", [("word", 1.1 * 1.1)]),
        ("[word]", [("word", 1 / 1.1)]),
        ("[[word]]", [("word", 1 / 1.1**2)]),
        ("((word:1.5))", [("word", 1.5 * 1.1)]),  # nested weights multiply
        ("a (b [c] d) e", [("a ", 1.0), ("b ", 1.1), ("c", 1.0), (" d", 1.1), (" e", 1.0)]),
        ("(a:0.5), (b:0)", [("a", 0.5), (", ", 1.0), ("b", 0.0)]),
        ("(a: 2 )", [("a", 2.0)]),  # spaces around the weight
        ("(a:-1)", [("a", -1.0)]),
        ("(a:.5)", [("a", 0.5)]),
        # escapes are literal text
        (r"\(not emphasis\)", [("(not emphasis)", 1.0)]),
        (r"\[x\] \\ y", [("[x] \\ y", 1.0)]),
        (r"a \q", [("a \\q", 1.0)]),  # a backslash before anything else stays
        (r"(\(x\))", [("(x)", 1.1)]),
        # unbalanced brackets: an open one applies to the rest, a stray closer is text
        ("a (b", [("a ", 1.0), ("b", 1.1)]),
        ("a [b", [("a ", 1.0), ("b", 1 / 1.1)]),
        ("((a)", [("a", 1.1 * 1.1)]),
        ("a b)", [("a b)", 1.0)]),
        ("a] b", [("a] b", 1.0)]),
        ("(a]", [("a]", 1.1)]),
        # colons that are not weights
        ("time: 3pm", [("time: 3pm", 1.0)]),
        ("(x:abc)", [("x:abc", 1.1)]),
        ("", [("", 1.0)]),
        ("a BREAK b", [("a", 1.0), (BREAK, None), ("b", 1.0)]),
        ("BREAKFAST", [("BREAKFAST", 1.0)]),
    ],
)
def test_parse_emphasis(prompt, expected):
    assert parse_emphasis(prompt) == approx_runs(expected)


def test_parse_emphasis_never_fails_on_bracket_soup():
    for prompt in ["((((", "))))", "[[(", "(:)", ":1.2)", "(a:1.2.3)", "\\", "(((a:2)", "]([)"]:
        runs = parse_emphasis(prompt)
        assert runs and all(isinstance(text, str) for text, _ in runs)


@pytest.fixture(scope="module")
def tokenizer():
    return byte_level_clip_tokenizer(model_max_length=77)


def test_short_prompt_is_one_window_with_weights_on_its_tokens(tokenizer):
    chunks = tokenize_weighted(tokenizer, "a (cat:1.5)")
    assert len(chunks.token_ids) == 1
    ids, weights = chunks.token_ids[0], chunks.weights[0]
    assert len(ids) == len(weights) == 77
    plain = tokenizer("a cat").input_ids  # BOS, tokens, EOS
    assert ids[: len(plain)] == plain  # emphasis syntax does not reach the tokenizer
    assert ids[len(plain) :] == [tokenizer.pad_token_id] * (77 - len(plain))
    cat_tokens = len(plain) - 3  # minus BOS, 'a', EOS
    assert weights[:2] == [1.0, 1.0]
    assert weights[2 : 2 + cat_tokens] == [1.5] * cat_tokens
    assert all(w == 1.0 for w in weights[2 + cat_tokens :])
    assert chunks.lengths == [len(plain)]


def test_long_prompt_is_split_into_75_token_windows_never_cut(tokenizer):
    words = " ".join(f"w{i}" for i in range(60))  # byte-level: 'w12' is 3 tokens -> ~170 tokens
    content = tokenizer(words, add_special_tokens=False).input_ids
    chunks = tokenize_weighted(tokenizer, words)
    assert len(chunks.token_ids) == math.ceil(len(content) / 75) >= 3
    recovered = []
    for ids, length in zip(chunks.token_ids, chunks.lengths):
        assert len(ids) == 77
        assert ids[0] == tokenizer.bos_token_id and ids[length - 1] == tokenizer.eos_token_id
        recovered += ids[1 : length - 1]
    assert recovered == content  # every token kept, in order


def test_break_starts_a_new_window(tokenizer):
    chunks = tokenize_weighted(tokenizer, "a cat BREAK a dog")
    assert len(chunks.token_ids) == 2
    first = chunks.token_ids[0][1 : chunks.lengths[0] - 1]
    second = chunks.token_ids[1][1 : chunks.lengths[1] - 1]
    assert first == tokenizer("a cat", add_special_tokens=False).input_ids
    assert second == tokenizer("a dog", add_special_tokens=False).input_ids


def test_apply_weights_scales_tokens_and_restores_the_mean():
    torch.manual_seed(0)
    hidden = torch.randn(1, 5, 8) + 0.5
    weights = torch.tensor([1.0, 1.0, 1.5, 1.0, 1.0])
    weighted = apply_weights(hidden, weights)
    assert weighted.mean().item() == pytest.approx(hidden.mean().item(), rel=1e-5)
    ratio = weighted / hidden
    # every token is multiplied by weight * one common factor
    common = ratio[0, 0, 0]
    assert torch.allclose(ratio[0, 2], torch.full((8,), 1.5) * common, rtol=1e-4)
    assert torch.allclose(ratio[0, 4], torch.full((8,), 1.0) * common, rtol=1e-4)


@pytest.fixture(scope="module")
def text_encoder(tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config).eval()


def test_embeddings_grow_with_the_prompt_and_negative_is_padded_to_match(tokenizer, text_encoder):
    short, short_negative = encode_weighted_pair(tokenizer, text_encoder, "a cat", "", "cpu")
    assert short.shape == short_negative.shape == (1, 77, 32)
    long_prompt = ", ".join(["a very detailed painting of a cat"] * 8)  # > 200 tokens
    long, negative = encode_weighted_pair(tokenizer, text_encoder, long_prompt, "blurry", "cpu")
    windows = len(tokenize_weighted(tokenizer, long_prompt).token_ids)
    assert windows >= 3
    assert long.shape == negative.shape == (1, 77 * windows, 32)
    # the negative's extra windows are the empty prompt's encoding
    empty, _ = encode_weighted_pair(tokenizer, text_encoder, "", "", "cpu")
    assert torch.equal(negative[:, 77:154], empty)
    # a long negative pads the prompt instead
    cond, uncond = encode_weighted_pair(tokenizer, text_encoder, "a cat", long_prompt, "cpu")
    assert cond.shape == uncond.shape == (1, 77 * windows, 32)
    assert torch.equal(cond[:, :77], short)


def test_emphasis_changes_only_through_weights(tokenizer, text_encoder):
    plain, _ = encode_weighted_pair(tokenizer, text_encoder, "a red cat", "", "cpu")
    neutral, _ = encode_weighted_pair(tokenizer, text_encoder, "a (red:1.0) cat", "", "cpu")
    emphasised, _ = encode_weighted_pair(tokenizer, text_encoder, "a (red:1.4) cat", "", "cpu")
    escaped, _ = encode_weighted_pair(tokenizer, text_encoder, r"a \(red\) cat", "", "cpu")
    assert torch.equal(plain, neutral)
    assert not torch.allclose(plain, emphasised)
    assert emphasised.mean().item() == pytest.approx(plain.mean().item(), rel=1e-4, abs=1e-6)
    assert not torch.allclose(plain, escaped)  # literal brackets are tokens
