"""Prompt editing and alternation: which prompt text conditions which denoising step (A1111's syntax).

- ``[from:to:when]`` uses ``from`` up to step ``when``, then ``to``; ``[to:when]`` adds ``to``
  after step ``when``; ``[from::when]`` removes ``from`` after it. ``when`` with a decimal point
  is a fraction of the steps (``0.25``), without one a step number (``10``).
- ``[a|b|c]`` alternates the texts step after step (``[fe|]male``: female, male, female, ...).
- Everything else, ``(emphasis:1.2)`` included, is passed through unchanged for
  ``codec.diffusion.prompt_weighting`` to read; a prompt this grammar cannot parse is used as is.

The grammar and the step rules reproduce A1111's ``get_learned_conditioning_prompt_schedules``
(without its hires-fix offsets), so a prompt schedules the same here as there; the parser is
lark's Earley parser, as in A1111. Step ``s`` (0-based, counted over the denoising steps actually
run) uses the first entry whose end step is >= ``s`` (``at_step``), as A1111's samplers do.
"""

from __future__ import annotations

import functools
from typing import TypeVar

import lark

_GRAMMAR = r"""
!start: (prompt | /[][():]/+)*
prompt: (emphasized | scheduled | alternate | plain | WHITESPACE)*
!emphasized: "(" prompt ")"
           | "(" prompt ":" prompt ")"
           | "[" prompt "]"
scheduled: "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
alternate: "[" prompt ("|" [prompt])+ "]"
WHITESPACE: /\s+/
plain: /([^\\\[\]():|]|\\.)+/
%import common.SIGNED_NUMBER -> NUMBER
"""

T = TypeVar("T")
Schedule = list[tuple[int, str]]  # (last step the text is used at, text), ascending


@functools.cache
def _parser() -> lark.Lark:
    return lark.Lark(_GRAMMAR)


def prompt_schedule(prompt: str, steps: int) -> Schedule:
    """The texts ``prompt`` takes over ``steps`` steps, each with the last step it applies to.

    ``prompt_schedule("a [b:3]", 10) == [(3, "a "), (10, "a b")]``; a prompt without editing
    or alternation is ``[(steps, prompt)]``.
    """
    tree = _parse(prompt)
    if tree is None:
        return [(steps, prompt)]
    ends = {steps}
    for node in tree.iter_subtrees():
        if node.data == "scheduled":
            when = _switch_step(node.children[-2], steps)
            if when >= 1:
                ends.add(when)
        elif node.data == "alternate":
            ends.update(range(1, steps + 1))
    return [(end, _text_at(tree, end, steps)) for end in sorted(ends)]


def at_step(schedule: list[tuple[int, T]], step: int) -> T:
    """The entry for 0-based denoising step ``step``: the first whose end step is >= ``step``
    (a schedule of texts, or of their embeddings)."""
    for end, value in schedule:
        if step <= end:
            return value
    return schedule[0][1]  # past the last end (not reached within the steps): A1111 takes the first


@functools.lru_cache(maxsize=64)
def _parse(prompt: str) -> lark.Tree | None:
    """The parse tree, or None when there is nothing to schedule or the grammar does not parse it.

    Cached: a run checks, then encodes, the same prompts, and lark's Earley parse of a long prompt
    takes seconds. The tree is only read, never changed.
    """
    if "[" not in prompt:  # no editing or alternation possible: skip the parser
        return None
    try:
        return _parser().parse(prompt)
    except lark.exceptions.LarkError:
        return None


def _switch_step(number: lark.Token, steps: int) -> int:
    """``when`` of ``[a:b:when]`` as a step: with a decimal point a fraction of ``steps``."""
    value = float(number)
    if "." in number:
        value *= steps
    return min(steps, int(value))


def _text_at(node, step: int, steps: int) -> str:
    """The prompt text of a parse (sub)tree at schedule step ``step``."""
    if node is None:
        return ""
    if isinstance(node, lark.Token):
        return node.value
    if node.data == "scheduled":
        before, after, number = node.children[0], node.children[1], node.children[-2]
        return _text_at(before if step <= _switch_step(number, steps) else after, step, steps)
    if node.data == "alternate":
        return _text_at(node.children[(step - 1) % len(node.children)], step, steps)
    return "".join(_text_at(child, step, steps) for child in node.children)
