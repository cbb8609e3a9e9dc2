"""The text conditioning of each denoising step: prompt editing and alternation as embeddings.

A prompt with ``[from:to:when]`` or ``[a|b]`` (codec.diffusion.prompt_schedule) conditions
different steps with different texts; each distinct text, of the prompt or of the negative
prompt, is encoded once (codec.diffusion.prompt_weighting) and all share one length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sdcodec.codec.diffusion.prompt_schedule import at_step, prompt_schedule
from sdcodec.codec.diffusion.prompt_weighting import encode_weighted_texts, parse_emphasis


@dataclass
class StepConditioning:
    """(last step, embeddings) schedules of the prompt and of the negative prompt."""

    cond: list[tuple[int, torch.Tensor]]
    uncond: list[tuple[int, torch.Tensor]]

    def at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cond, uncond)`` for 0-based denoising step ``step``."""
        return at_step(self.cond, step), at_step(self.uncond, step)

    @property
    def changes(self) -> bool:
        """Whether any step is conditioned differently from the first."""
        return len(self.cond) > 1 or len(self.uncond) > 1


def encode_conditioning(components, prompt: str, negative: str, steps: int) -> StepConditioning:
    """Encode ``prompt`` and ``negative`` for a run scheduled over ``steps`` steps.

    ``steps`` is the full schedule's length (for img2img too, as in A1111: the steps run are
    counted from 0 against it). Embeddings are in the components' dtype, on their device.
    """
    cond_texts, uncond_texts = prompt_schedule(prompt, steps), prompt_schedule(negative, steps)
    texts = [text for _, text in cond_texts + uncond_texts]
    encoded = encode_weighted_texts(components.tokenizer, components.text_encoder, texts, components.device)
    encoded = {text: embeddings.to(components.dtype) for text, embeddings in encoded.items()}
    return StepConditioning(
        cond=[(end, encoded[text]) for end, text in cond_texts],
        uncond=[(end, encoded[text]) for end, text in uncond_texts],
    )


def check_prompt(prompt: str, steps: int) -> None:
    """Raise ``PromptSyntaxError`` (a ``ValueError``) for a prompt that could not be encoded, before any model loads."""
    for _, text in prompt_schedule(prompt, steps):
        parse_emphasis(text)
