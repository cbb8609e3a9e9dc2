"""Prompt emphasis and long prompts, as AUTOMATIC1111's web UI reads them.

Syntax (A1111's ``parse_prompt_attention``, reproduced output for output; tests/test_prompt_weighting.py
holds A1111's own documented examples):

- ``(words)`` multiplies the attention weight of ``words`` by 1.1, ``((words))`` by 1.21;
- ``[words]`` divides it by 1.1;
- ``(words:1.3)`` multiplies it by 1.3 (weights multiply when nested); a weight that is not a
  number, such as ``(a:1.2.3)``, is an error (A1111 fails on it too);
- ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are literal characters; a backslash before anything
  else is dropped (``a\\b`` reads ``ab``, ``smile \\:)`` reads ``smile :)``);
- ``BREAK`` (upper case, as a word) ends the current 75-token chunk; inside brackets it is
  scaled like its neighbours and, as in A1111, then counts as the word "BREAK" (with that weight);
- unbalanced brackets never fail: a ``(`` or ``[`` left open applies to the rest of the prompt,
  a ``)`` or ``]`` with nothing to close is kept as text.

Weights are applied to the text encoder's output the way A1111 does ("original" emphasis):
each token's embedding is multiplied by its weight, then the whole chunk is rescaled so its mean
equals the unweighted chunk's mean. A prompt without emphasis gives exactly the embeddings of
diffusers' own ``encode_prompt``.

Prompts longer than the text encoder's window (77 tokens with BOS and EOS for CLIP) are split
into chunks of 75 tokens, as A1111 does: when a chunk fills up and a comma came within its last
``COMMA_BACKTRACK`` tokens, the text after that comma moves to the next chunk, so a phrase is not
cut in half. Each chunk is encoded as ``BOS + chunk + EOS + padding`` (diffusers' layout) and the
encodings are concatenated along the sequence axis: the U-Net's cross-attention takes any length,
so nothing is cut. The negative prompt is padded with empty chunks to the same number of chunks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1
BREAK = "BREAK"
BREAK_MARK = -1.0  # the weight that marks a chunk break in parse_emphasis' output (A1111's convention)
COMMA_BACKTRACK = 20  # A1111's default "comma_padding_backtrack"


class PromptSyntaxError(ValueError):
    """A prompt A1111 would not run either (a malformed emphasis weight)."""


# One lexical item of the emphasis syntax, tried in this order (A1111's alternatives):
_ITEM = re.compile(
    r"""
    \\[()\[\]\\]                      # escaped bracket or backslash: the character itself
  | \\                                 # any other backslash: dropped
  | [(\[]                               # an opening bracket
  | :\s*(?P<weight>[+-]?[.\d]+)\s*\)     # ':1.3)' closes a round bracket with a weight
  | [)\]]                               # a closing bracket
  | [^\\()\[\]:]+                       # plain text
  | :                                   # a colon that is not a weight is text
    """,
    re.VERBOSE,
)
_BREAK_WORD = re.compile(r"\s*\bBREAK\b\s*", re.S)


def is_break(fragment: str, weight: float) -> bool:
    """Whether a run of ``parse_emphasis`` is a chunk break (a BREAK outside any bracket)."""
    return fragment == BREAK and weight == BREAK_MARK


def parse_emphasis(text: str) -> list[tuple[str, float]]:
    """Split ``text`` into ``(fragment, weight)`` runs exactly as A1111's ``parse_prompt_attention``.

    Adjacent runs of equal weight are merged; a ``BREAK`` keyword is the run ``("BREAK", -1.0)``
    (see ``is_break``); the empty prompt is ``[("", 1.0)]``. Raises ``PromptSyntaxError`` for a
    round bracket closed by a weight that is not a number, e.g. ``(a:1.2.3)``.
    """
    runs: list[list] = []  # [fragment, weight] pairs, mutable so brackets can rescale ranges
    open_round: list[int] = []  # index into runs where each open '(' started
    open_square: list[int] = []

    def scale_from(start: int, factor: float) -> None:
        for run in runs[start:]:
            run[1] *= factor

    def add_text(fragment: str) -> None:
        for i, part in enumerate(_BREAK_WORD.split(fragment)):
            if i > 0:
                runs.append([BREAK, BREAK_MARK])
            runs.append([part, 1.0])

    for match in _ITEM.finditer(text):
        item = match.group(0)
        weight = match.group("weight")
        if item.startswith("\\"):
            runs.append([item[1:], 1.0])
        elif item == "(":
            open_round.append(len(runs))
        elif item == "[":
            open_square.append(len(runs))
        elif weight is not None and open_round:
            scale_from(open_round.pop(), _weight(weight, item))
        elif item == ")" and open_round:
            scale_from(open_round.pop(), ROUND_MULTIPLIER)
        elif item == "]" and open_square:
            scale_from(open_square.pop(), SQUARE_MULTIPLIER)
        else:
            add_text(item)

    # Brackets left open apply to the rest of the prompt.
    for start in open_round:
        scale_from(start, ROUND_MULTIPLIER)
    for start in open_square:
        scale_from(start, SQUARE_MULTIPLIER)

    merged: list[tuple[str, float]] = []
    for fragment, weight in runs:
        if merged and merged[-1][1] == weight:
            merged[-1] = (merged[-1][0] + fragment, weight)
        else:
            merged.append((fragment, weight))
    return merged or [("", 1.0)]


def literal_prompt(text: str) -> str:
    """``text`` with its brackets and backslashes escaped, so that it reads as plain words."""
    return re.sub(r"([()\[\]\\])", r"\\\1", text)


def _weight(number: str, item: str) -> float:
    try:
        return float(number)
    except ValueError:
        raise PromptSyntaxError(f"the emphasis weight in {item!r} is not a number") from None


@dataclass
class WeightedChunks:
    """Token ids and per-token weights, already cut into windows of the text encoder's length."""

    token_ids: list[list[int]]  # each: BOS + content + EOS + padding, length = window
    weights: list[list[float]]  # same shape; 1.0 on BOS, EOS and padding
    lengths: list[int]  # tokens before the padding (content + 2), for an attention mask


def tokenize_weighted(tokenizer, prompt: str, *, comma_backtrack: int = COMMA_BACKTRACK) -> WeightedChunks:
    """Tokenize an emphasised prompt into as many full windows as it needs (at least one).

    A window that fills up while a comma is among its last ``comma_backtrack`` tokens is closed
    after that comma, and the tokens after it open the next window (A1111's comma padding
    backtrack; 0 turns it off). Tokenizers without a ``,</w>`` token (not CLIP's) never backtrack.
    """
    window = tokenizer.model_max_length
    if window is None or window > 10_000:  # tokenizers without a limit report a huge number
        raise ValueError("the tokenizer has no model_max_length; cannot chunk prompts")
    content = window - 2
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    comma = tokenizer.get_vocab().get(",</w>")

    chunks_ids: list[list[int]] = []
    chunks_weights: list[list[float]] = []
    lengths: list[int] = []
    ids: list[int] = []
    weights: list[float] = []
    last_comma = -1  # position of the last comma in the open window

    def close_chunk() -> None:
        nonlocal ids, weights, last_comma
        fill = content - len(ids)
        chunks_ids.append([bos] + ids + [eos] + [pad] * fill)
        chunks_weights.append([1.0] + weights + [1.0] + [1.0] * fill)
        lengths.append(len(ids) + 2)
        ids, weights, last_comma = [], [], -1

    runs = parse_emphasis(prompt)
    texts = [fragment for fragment, weight in runs if not is_break(fragment, weight)]
    tokenized = iter(tokenizer(texts, add_special_tokens=False, verbose=False).input_ids) if texts else iter(())
    for fragment, weight in runs:
        if is_break(fragment, weight):
            close_chunk()
            continue
        for token in next(tokenized):
            if comma is not None and token == comma:
                last_comma = len(ids)
            elif len(ids) == content and last_comma >= 0 and len(ids) - last_comma <= comma_backtrack:
                moved_ids, moved_weights = ids[last_comma + 1 :], weights[last_comma + 1 :]
                ids, weights = ids[: last_comma + 1], weights[: last_comma + 1]
                close_chunk()
                ids, weights = moved_ids, moved_weights
            if len(ids) == content:
                close_chunk()
            ids.append(token)
            weights.append(weight)
    if ids or not chunks_ids:
        close_chunk()
    return WeightedChunks(chunks_ids, chunks_weights, lengths)


def pad_chunks(chunks: WeightedChunks, count: int, tokenizer) -> WeightedChunks:
    """Append empty windows (BOS + EOS + padding) until there are ``count``."""
    empty = tokenize_weighted(tokenizer, "")
    missing = max(count - len(chunks.token_ids), 0)
    return WeightedChunks(
        chunks.token_ids + empty.token_ids * missing,
        chunks.weights + empty.weights * missing,
        chunks.lengths + empty.lengths * missing,
    )


@torch.inference_mode()
def encode_chunks(text_encoder, chunks: WeightedChunks, device: torch.device | str) -> torch.Tensor:
    """Encode each window, apply weights with mean restoration, concatenate: (1, window * n, dim)."""
    use_mask = bool(getattr(text_encoder.config, "use_attention_mask", False))
    encoded = []
    for ids, weights, length in zip(chunks.token_ids, chunks.weights, chunks.lengths):
        input_ids = torch.tensor([ids], device=device)
        mask = None
        if use_mask:  # as diffusers does for encoders trained with one: padding masked out
            mask = (torch.arange(len(ids), device=device) < length).long().unsqueeze(0)
        hidden = text_encoder(input_ids, attention_mask=mask)[0]
        if any(w != 1.0 for w in weights):
            hidden = apply_weights(hidden, torch.tensor(weights, dtype=hidden.dtype, device=hidden.device))
        encoded.append(hidden)
    return torch.cat(encoded, dim=1)


def apply_weights(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """A1111's original emphasis: scale each token, then restore the chunk's mean."""
    original_mean = hidden.float().mean()
    scaled = hidden * weights.reshape(1, -1, 1)
    new_mean = scaled.float().mean()
    if not math.isfinite(new_mean.item()) or abs(new_mean.item()) < 1e-12:
        return scaled  # mean restoration undefined (e.g. every weight 0): keep the plain scaling
    return scaled * (original_mean / new_mean).to(hidden.dtype)


def encode_weighted_pair(
    tokenizer, text_encoder, prompt: str, negative: str, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings for a prompt and its negative, with the same number of chunks."""
    encoded = encode_weighted_texts(tokenizer, text_encoder, [prompt, negative], device)
    return encoded[prompt], encoded[negative]


def encode_weighted_texts(
    tokenizer, text_encoder, texts: list[str], device: torch.device | str
) -> dict[str, torch.Tensor]:
    """Embeddings of each distinct text, all padded with empty chunks to the same length
    (so any of them can stand in for another at a denoising step)."""
    chunks = {text: tokenize_weighted(tokenizer, text) for text in dict.fromkeys(texts)}
    count = max(len(chunk.token_ids) for chunk in chunks.values())
    return {
        text: encode_chunks(text_encoder, pad_chunks(chunk, count, tokenizer), device) for text, chunk in chunks.items()
    }
