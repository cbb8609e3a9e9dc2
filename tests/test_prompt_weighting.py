"""Prompt emphasis parsing, chunking of long prompts and weighting of the text embeddings."""

from __future__ import annotations

import math

import pytest
import torch

from sdcodec.benchmarks.sd15_random import byte_level_clip_tokenizer
from sdcodec.codec.diffusion.prompt_weighting import (
    BREAK,
    PromptSyntaxError,
    apply_weights,
    encode_weighted_pair,
    is_break,
    parse_emphasis,
    tokenize_weighted,
)

# A1111's own doctest examples for parse_prompt_attention (modules/prompt_parser.py), with the
# exact floats it prints: the weights must be bit-identical, not just close.
A1111_DOCTESTS = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    (r"\(literal\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [
            ("a ", 1.0),
            ("house", 1.5730000000000004),
            (" ", 1.1),
            ("on", 1.0),
            (" a ", 1.1),
            ("hill", 0.55),
            (", sun, ", 1.1),
            ("sky", 1.4641000000000006),
            (".", 1.1),
        ],
    ),
]

# Further prompts with what A1111's parse_prompt_attention returns for them (its algorithm, run by
# hand and checked against the published function), including the cases sdcodec once got wrong.
A1111_TABLE = [
    ("a cat", [("a cat", 1.0)]),
    ("a (red:1.3) cat", [("a ", 1.0), ("red", 1.3), (" cat", 1.0)]),
    ("(word)", [("word", 1.1)]),
    ("((word))", [("word", 1.1 * 1.1)]),
    ("[word]", [("word", 1 / 1.1)]),
    ("[[word]]", [("word", 1 / 1.1 / 1.1)]),
    ("((word:1.5))", [("word", 1.5 * 1.1)]),  # nested weights multiply
    ("a (b [c] d) e", [("a ", 1.0), ("b ", 1.1), ("c", 1 / 1.1 * 1.1), (" d", 1.1), (" e", 1.0)]),
    ("(a:0.5), (b:0)", [("a", 0.5), (", ", 1.0), ("b", 0.0)]),
    ("(a: 2 )", [("a", 2.0)]),  # spaces around the weight
    ("(a:-1)", [("a", -1.0)]),
    ("(a:.5)", [("a", 0.5)]),
    ("(a:5.)", [("a", 5.0)]),
    # escapes are literal text; any other backslash is dropped
    (r"\(not emphasis\)", [("(not emphasis)", 1.0)]),
    (r"\[x\] \\ y", [("[x] \\ y", 1.0)]),
    (r"a\b", [("ab", 1.0)]),
    (r"a \q", [("a q", 1.0)]),
    (r"smile \:)", [("smile :)", 1.0)]),
    ("\\", [("", 1.0)]),
    (r"(\(x\))", [("(x)", 1.1)]),
    # unbalanced brackets: an open one applies to the rest, a stray closer is text
    ("a (b", [("a ", 1.0), ("b", 1.1)]),
    ("a [b", [("a ", 1.0), ("b", 1 / 1.1)]),
    ("((a)", [("a", 1.1 * 1.1)]),
    ("a b)", [("a b)", 1.0)]),
    ("a] b", [("a] b", 1.0)]),
    ("(a]", [("a]", 1.1)]),
    ("]([)", [("]", 1.0)]),  # the ")" closes the "(" around nothing
    # colons that are not weights
    ("time: 3pm", [("time: 3pm", 1.0)]),
    ("(x:abc)", [("x:abc", 1.1)]),
    ("(:)", [(":", 1.1)]),
    (":1.2)", [(":1.2)", 1.0)]),  # a weight with no open bracket is text
    ("a:1.2.3)", [("a:1.2.3)", 1.0)]),
    ("", [("", 1.0)]),
    # BREAK: a chunk break outside brackets, the word "BREAK" (scaled) inside them
    ("a BREAK b", [("a", 1.0), (BREAK, -1.0), ("b", 1.0)]),
    ("BREAK a", [("", 1.0), (BREAK, -1.0), ("a", 1.0)]),
    ("a BREAK", [("a", 1.0), (BREAK, -1.0), ("", 1.0)]),
    ("(a BREAK b)", [("a", 1.1), (BREAK, -1.1), ("b", 1.1)]),
    ("[a BREAK b]", [("a", 1 / 1.1), (BREAK, -1 / 1.1), ("b", 1 / 1.1)]),
    ("BREAKFAST break", [("BREAKFAST break", 1.0)]),
]


@pytest.mark.parametrize("prompt, expected", A1111_DOCTESTS + A1111_TABLE)
def test_parse_emphasis_matches_a1111(prompt, expected):
    assert parse_emphasis(prompt) == expected


@pytest.mark.parametrize("prompt", ["(a:1.2.3)", "(a:.)", "((a:1..5))", "x (y:1.2.3.4) z"])
def test_malformed_weight_is_an_error_as_in_a1111(prompt):
    with pytest.raises(PromptSyntaxError, match="not a number"):
        parse_emphasis(prompt)


def test_parse_emphasis_never_fails_on_bracket_soup():
    for prompt in ["((((", "))))", "[[(", "(:)", ":1.2)", "\\", "(((a:2)", "]([)", "\\\\(", "[(]:)"]:
        runs = parse_emphasis(prompt)
        assert runs and all(isinstance(text, str) for text, _ in runs)


def test_break_only_outside_brackets_splits_chunks():
    assert is_break(*parse_emphasis("a BREAK b")[1])
    assert not is_break(*parse_emphasis("(a BREAK b)")[1])


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


def chunk_contents(chunks):
    """The content tokens of each window (without BOS, EOS and padding)."""
    return [ids[1 : length - 1] for ids, length in zip(chunks.token_ids, chunks.lengths)]


def test_a_comma_near_the_end_of_a_window_moves_the_rest_to_the_next(tokenizer):
    a, b, comma = (tokenizer.convert_tokens_to_ids(t) for t in ("a</w>", "b</w>", ",</w>"))
    # 60 'a', a comma at position 60, 20 'b': the window fills at 75 tokens with the comma
    # 15 tokens back (within A1111's 20), so the 'b's all start the second window.
    prompt = "a " * 60 + ", " + "(" + "b " * 20 + ":1.5)"
    chunks = tokenize_weighted(tokenizer, prompt)
    assert chunk_contents(chunks) == [[a] * 60 + [comma], [b] * 20]
    assert chunks.weights[1][1:21] == [1.5] * 20  # the weights travel with their tokens
    # without backtracking (A1111's setting 0) the cut is at exactly 75 tokens
    plain = tokenize_weighted(tokenizer, prompt, comma_backtrack=0)
    assert chunk_contents(plain) == [[a] * 60 + [comma] + [b] * 14, [b] * 6]


def test_a_comma_further_back_than_20_tokens_does_not_move_text(tokenizer):
    a, b, comma = (tokenizer.convert_tokens_to_ids(t) for t in ("a</w>", "b</w>", ",</w>"))
    chunks = tokenize_weighted(tokenizer, "a " * 54 + ", " + "b " * 30)  # comma 21 tokens before the end
    assert chunk_contents(chunks) == [[a] * 54 + [comma] + [b] * 20, [b] * 10]
    near = tokenize_weighted(tokenizer, "a " * 55 + ", " + "b " * 30)  # exactly 20 back: moves
    assert chunk_contents(near) == [[a] * 55 + [comma], [b] * 30]


def test_break_starts_a_new_window(tokenizer):
    chunks = tokenize_weighted(tokenizer, "a cat BREAK a dog")
    assert len(chunks.token_ids) == 2
    first = chunks.token_ids[0][1 : chunks.lengths[0] - 1]
    second = chunks.token_ids[1][1 : chunks.lengths[1] - 1]
    assert first == tokenizer("a cat", add_special_tokens=False).input_ids
    assert second == tokenizer("a dog", add_special_tokens=False).input_ids


def test_break_inside_brackets_is_the_scaled_word_as_in_a1111(tokenizer):
    chunks = tokenize_weighted(tokenizer, "(a BREAK b)")
    assert len(chunks.token_ids) == 1
    word = tokenizer("BREAK", add_special_tokens=False).input_ids
    content = chunk_contents(chunks)[0]
    assert content == tokenizer("a", add_special_tokens=False).input_ids + word + [
        tokenizer.convert_tokens_to_ids("b</w>")
    ]
    assert chunks.weights[0][1 : 1 + len(content)] == [1.1] + [-1.1] * len(word) + [1.1]


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
