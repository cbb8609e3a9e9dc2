"""Prompts from a file, one job a line, as A1111's "Prompts from file or textbox" script reads them.

A line is a prompt, or, when it contains ``--``, options in that script's syntax::

    a castle on a hill
    --prompt "a castle, (night:1.2)" --negative_prompt "blurry" --seed 7 --steps 30 --cfg_scale 6

``--prompt`` and ``--negative_prompt`` take every word up to the next option. Known options:
prompt, negative_prompt, seed, steps, cfg_scale, sampler_name, width, height, n_iter (images
for the line). Blank lines are skipped. Unlike A1111, which prints an error and then uses such a
line as a plain prompt, a line that does not parse is refused (``PromptFileError``, with its number).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from sdcodec.codec.errors import SdcodecError

# A1111's option -> (GenerationRequest field, value type)
LINE_OPTIONS: dict[str, tuple[str, type]] = {
    "prompt": ("prompt", str),
    "negative_prompt": ("negative", str),
    "seed": ("seed", int),
    "steps": ("steps", int),
    "cfg_scale": ("guidance", float),
    "sampler_name": ("scheduler", str),
    "width": ("width", int),
    "height": ("height", int),
    "n_iter": ("num_images", int),
}
TEXT_OPTIONS = ("prompt", "negative_prompt")


class PromptFileError(SdcodecError, ValueError):
    """A prompt file that cannot be read or has a line that does not parse."""


def read_prompt_file(path: str | Path) -> list[dict]:
    """One dict of GenerationRequest field values per job line (at least one line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptFileError(f"cannot read the prompt file {path}: {exc}") from None
    jobs = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            jobs.append(parse_prompt_line(line))
        except ValueError as exc:
            raise PromptFileError(f"{path}, line {number}: {exc}") from None
    if not jobs:
        raise PromptFileError(f"the prompt file {path} has no prompt")
    return jobs


def parse_prompt_line(line: str) -> dict:
    """``{"prompt": line}``, or the options of a line that contains ``--``; ``ValueError`` if they do not parse."""
    if "--" not in line:
        return {"prompt": line}
    words = shlex.split(line)
    values: dict = {}
    position = 0
    while position < len(words):
        option = words[position]
        if not option.startswith("--"):
            raise ValueError(f"expected an option starting with --, found {option!r}")
        name = option[2:]
        if name not in LINE_OPTIONS:
            raise ValueError(f"unknown option {option} (known: {', '.join('--' + known for known in LINE_OPTIONS)})")
        field, kind = LINE_OPTIONS[name]
        position += 1
        if name in TEXT_OPTIONS:
            end = position
            while end < len(words) and not words[end].startswith("--"):
                end += 1
            values[field] = " ".join(words[position:end])
            position = end
            continue
        if position == len(words):
            raise ValueError(f"{option} needs a value")
        try:
            values[field] = kind(words[position])
        except ValueError:
            raise ValueError(f"{option} needs a {kind.__name__}, not {words[position]!r}") from None
        position += 1
    if "prompt" not in values:
        values["prompt"] = ""
    return values
