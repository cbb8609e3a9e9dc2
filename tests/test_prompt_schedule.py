"""Prompt editing [a:b:N] and alternation [a|b]: the schedule, and the conditioning each step gets."""

from __future__ import annotations

import pytest
import torch

from sdcodec.codec.diffusion.conditioning import encode_conditioning
from sdcodec.codec.diffusion.generate import check_options, generate
from sdcodec.codec.diffusion.prompt_schedule import at_step, prompt_schedule
from sdcodec.codec.diffusion.prompt_weighting import encode_weighted_texts
from sdcodec.codec.diffusion.sd_pipeline import load_sd_components

# A1111's own doctest examples for get_learned_conditioning_prompt_schedules (10 steps). Its
# example 'a [{b|d{:.5] c' is left out: A1111's current grammar no longer parses it as its
# doctest says (it returns the prompt unchanged, and so does this module).
A1111_DOCTESTS = [
    ("test", [(10, "test")]),
    ("a [b:3]", [(3, "a "), (10, "a b")]),
    ("a [b: 3]", [(3, "a "), (10, "a b")]),
    ("a [[[b]]:2]", [(2, "a "), (10, "a [[b]]")]),
    ("[(a:2):3]", [(3, ""), (10, "(a:2)")]),
    ("a [b : c : 1] d", [(1, "a b  d"), (10, "a  c  d")]),
    ("a[b:[c:d:2]:1]e", [(1, "abe"), (2, "ace"), (10, "ade")]),
    ("a [unbalanced", [(10, "a [unbalanced")]),
    ("a [b:.5] c", [(5, "a  c"), (10, "a b c")]),
    ("((a][:b:c [d:3]", [(3, "((a][:b:c "), (10, "((a][:b:c d")]),
    ("[a|(b:1.1)]", [(step, "a" if step % 2 else "(b:1.1)") for step in range(1, 11)]),
    ("[fe|]male", [(step, "female" if step % 2 else "male") for step in range(1, 11)]),
    ("[fe|||]male", [(step, "female" if step % 4 == 1 else "male") for step in range(1, 11)]),
]

# A1111's documented example (the comment at the top of its prompt_parser.py), 100 steps.
A1111_LANDSCAPE = (
    "fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75]"
    "[ in foreground::0.6][ in background:0.25] [shoddy:masterful:0.5]"
)
A1111_LANDSCAPE_SCHEDULE = [
    (25, "fantasy landscape with a mountain and an oak in foreground shoddy"),
    (50, "fantasy landscape with a lake and an oak in foreground in background shoddy"),
    (60, "fantasy landscape with a lake and an oak in foreground in background masterful"),
    (75, "fantasy landscape with a lake and an oak in background masterful"),
    (100, "fantasy landscape with a lake and a christmas tree in background masterful"),
]


@pytest.mark.parametrize("prompt, expected", A1111_DOCTESTS)
def test_schedule_matches_a1111_doctests(prompt, expected):
    assert prompt_schedule(prompt, 10) == expected


def test_schedule_matches_a1111_documented_example():
    assert prompt_schedule(A1111_LANDSCAPE, 100) == A1111_LANDSCAPE_SCHEDULE


def test_fraction_needs_a_decimal_point_and_steps_are_capped():
    assert prompt_schedule("[a:b:1]", 10) == [(1, "a"), (10, "b")]  # step 1
    assert prompt_schedule("[a:b:1.0]", 10) == [(10, "a")]  # 1.0 x 10 steps: never switches
    assert prompt_schedule("[a:b:40]", 10) == [(10, "a")]
    assert prompt_schedule("[a:b:0]", 10) == [(10, "b")]  # switched before the first step


def test_step_lookup_is_a1111s_first_entry_ending_at_or_after_the_step():
    schedule = prompt_schedule("[cat:dog:2]", 4)  # [(2, 'cat'), (4, 'dog')]
    assert [at_step(schedule, step) for step in range(4)] == ["cat", "cat", "cat", "dog"]
    alternating = prompt_schedule("[cat|dog]", 4)
    assert [at_step(alternating, step) for step in range(4)] == ["cat", "cat", "dog", "cat"]


@pytest.fixture(scope="module")
def components(tiny_pipeline_dir):
    return load_sd_components(str(tiny_pipeline_dir), device="cpu")


def test_each_distinct_text_is_encoded_once_at_one_length(components):
    long_text = ", ".join(["a very detailed painting of a cat"] * 8)  # several chunks
    conditioning = encode_conditioning(components, f"[{long_text}:dog:2]", "[blurry|]", 4)
    assert conditioning.changes
    assert [end for end, _ in conditioning.cond] == [2, 4]
    assert [end for end, _ in conditioning.uncond] == [1, 2, 3, 4]
    shapes = {tensor.shape for _, tensor in conditioning.cond + conditioning.uncond}
    assert len(shapes) == 1  # the short texts are padded to the long one's chunks
    # the two 'blurry' steps share one tensor, and so do the two empty ones
    assert conditioning.uncond[0][1] is conditioning.uncond[2][1]
    assert conditioning.uncond[1][1] is conditioning.uncond[3][1]
    assert not encode_conditioning(components, "a cat", "", 4).changes


def unet_text_inputs(components, **options) -> list[torch.Tensor]:
    """The encoder_hidden_states of every U-Net call of one generation."""
    seen = []

    def record(module, args, kwargs):
        seen.append(kwargs["encoder_hidden_states"].detach().clone())

    handle = components.unet.register_forward_pre_hook(record, with_kwargs=True)
    try:
        generate(components, seed=3, width=64, height=64, **options)
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("a [cat:dog:2] drawing", ["a cat drawing"] * 3 + ["a dog drawing"] * 2),
        ("a [cat:dog:0.5] drawing", ["a cat drawing"] * 3 + ["a dog drawing"] * 2),  # 0.5 x 5 = step 2
        ("a [cat|dog] drawing", ["a cat drawing", "a cat drawing", "a dog drawing", "a cat drawing", "a dog drawing"]),
    ],
)
def test_generation_switches_the_conditioning_at_the_right_step(components, prompt, expected):
    calls = unet_text_inputs(components, prompt=prompt, negative="", steps=5, guidance=7.5)
    assert len(calls) == 5
    texts = encode_weighted_texts(components.tokenizer, components.text_encoder, [*expected, ""], "cpu")
    for step, (batch, text) in enumerate(zip(calls, expected)):
        uncond, cond = batch.chunk(2)  # with guidance the U-Net sees [uncond, cond]
        assert torch.equal(uncond, texts[""]), step
        assert torch.equal(cond, texts[text]), step


def test_negative_prompt_editing_without_guidance_changes_nothing_but_the_prompt(components):
    calls = unet_text_inputs(components, prompt="[red|blue] car", negative="[x:y:1]", steps=3, guidance=1.0)
    texts = encode_weighted_texts(components.tokenizer, components.text_encoder, ["red car", "blue car"], "cpu")
    assert [torch.equal(batch, texts["red car"]) for batch in calls] == [True, True, False]
    assert torch.equal(calls[2], texts["blue car"])


def test_a_malformed_weight_in_any_step_is_refused_before_generation():
    with pytest.raises(ValueError, match="not a number"):
        check_options(steps=4, guidance=7.5, width=64, height=64, scheduler="ddim", prompt="[a:(b:1.2.3):2]")
