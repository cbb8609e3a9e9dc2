"""Generation parameters in A1111's text form: written into PNG/JPEG/WebP files, read back, parsed.

Front ends (A1111, ComfyUI, image viewers) look for this text, so a generated image says how it
was made wherever it goes.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def image_bytes(result, suffix: str) -> bytes:
    """The image encoded for ``suffix``, with its parameters where prompt readers look for them.

    PNG: a ``parameters`` text chunk (iTXt when the text is not Latin-1). JPEG and WebP: the EXIF
    UserComment (UNICODE), which is where A1111 puts them for those formats.
    """
    fmt = IMAGE_FORMATS.get(suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot write {suffix or 'files without extension'}: use .png, .jpg, .webp or .sdz")
    buffer = io.BytesIO()
    if fmt == "PNG":
        info = PngInfo()
        info.add_text("parameters", result.parameters)
        result.image.save(buffer, "PNG", pnginfo=info)
    else:
        exif = Image.Exif()
        exif.get_ifd(EXIF_IFD)[USER_COMMENT] = b"UNICODE\0" + result.parameters.encode("utf-16-be")
        result.image.save(buffer, fmt, quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def read_parameters(path: str | Path) -> str | None:
    """The ``parameters`` text of an image written by ``image_bytes`` (or A1111), or None."""
    with Image.open(path) as image:
        if "parameters" in image.info:
            return image.info["parameters"]
        comment = image.getexif().get_ifd(EXIF_IFD).get(USER_COMMENT)
    if isinstance(comment, bytes) and comment.startswith(b"UNICODE\0"):
        return comment[8:].decode("utf-16-be")
    return None


EXIF_IFD = 0x8769
USER_COMMENT = 0x9286


# ------------------------------------------------------------------------------------------
# The A1111 'parameters' text: "prompt\nNegative prompt: ...\nSteps: 25, Sampler: DDIM, ..."


def format_parameters(
    *,
    prompt: str,
    negative: str,
    steps: int,
    sampler: str,
    guidance: float,
    seed: int,
    width: int,
    height: int,
    model: str,
    strength: float | None = None,
    schedule_type: str | None = None,
    model_hash: str | None = None,
) -> str:
    """The generation parameters as A1111 writes them into a PNG's ``parameters`` text chunk
    (``sampler`` in A1111's naming, e.g. "DDIM", "Euler a"; ``schedule_type`` e.g. "Karras"),
    fields in A1111's order."""
    settings = {
        "Steps": steps,
        "Sampler": sampler,
        **({"Schedule type": schedule_type} if schedule_type else {}),
        "CFG scale": f"{guidance:g}",
        "Seed": seed,
        "Size": f"{width}x{height}",
        **({"Model hash": model_hash} if model_hash else {}),
        "Model": model,
    }
    if strength is not None:
        settings["Denoising strength"] = f"{strength:g}"
    settings["Version"] = f"sdcodec {_version()}"
    lines = [prompt]
    if negative:
        lines.append(f"Negative prompt: {negative}")
    lines.append(", ".join(f"{key}: {_quote(str(value))}" for key, value in settings.items()))
    return "\n".join(lines)


_SETTING = re.compile(r'\s*([\w][\w \-/+]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def parse_parameters(text: str) -> dict[str, str]:
    """Read a ``parameters`` text back: {"Prompt", "Negative prompt", "Steps", "Sampler", ...}.

    Values are strings as written (quoted ones unquoted). The last line counts as the settings
    line only when it holds at least three ``key: value`` pairs, as in A1111's own reader.
    """
    lines = text.strip("\n").split("\n")
    settings: dict[str, str] = {}
    found = _SETTING.findall(lines[-1])
    if len(found) >= 3:
        lines = lines[:-1]
        for key, value in found:
            settings[key.strip()] = json.loads(value) if value.startswith('"') else value.strip()
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].lstrip(" ")
        (negative if in_negative else prompt).append(line)
    return {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative), **settings}


def is_parameters_text(text: str) -> bool:
    """Whether ``text`` is a parameters text (a prompt line or more, then a settings line with
    ``Steps``), not an ordinary caption: what a .sdz written by ``gen`` stores as its caption."""
    lines = text.strip("\n").split("\n")
    if len(lines) < 2:
        return False
    found = dict((key.strip(), value) for key, value in _SETTING.findall(lines[-1]))
    return len(found) >= 3 and "Steps" in found


def caption_parameters(caption: str) -> dict[str, str] | None:
    """The generation parameters a .sdz caption holds (see ``parse_parameters``), or None."""
    return parse_parameters(caption) if is_parameters_text(caption) else None


def caption_prompt(caption: str) -> str:
    """The text that conditions restoration: the caption, or, for a parameters caption, its prompt
    as it stood at the last denoising step (prompt editing resolved; settings never condition)."""
    parameters = caption_parameters(caption)
    if parameters is None:
        return caption
    from sdcodec.codec.diffusion.prompt_schedule import prompt_schedule

    steps = int(parameters["Steps"]) if parameters["Steps"].isdigit() else 1
    return prompt_schedule(parameters["Prompt"], max(steps, 1))[-1][1]


def parameters_caption(parameters: str, prompt: str, limit: int) -> tuple[str, str | None]:
    """The caption a generated .sdz stores, and a notice when it is not the whole parameters text.

    The whole text when it fits in ``limit`` UTF-8 bytes; else the prompt and the settings line
    (no negative prompt); else the prompt alone, cut at a character boundary.
    """
    if len(parameters.encode("utf-8")) <= limit:
        return parameters, None
    without_negative = f"{prompt}\n{parameters.rsplit(chr(10), 1)[-1]}"
    if len(without_negative.encode("utf-8")) <= limit:
        return (
            without_negative,
            f"the .sdz caption (at most {limit} bytes) keeps the settings but not the negative prompt",
        )
    cut = prompt.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
    shortened = ", cut" if cut != prompt else ""
    return (
        cut,
        f"the generation parameters do not fit in a .sdz caption (at most {limit} bytes): it holds the prompt{shortened}",
    )


def _quote(value: str) -> str:
    """Values with commas, colons, quotes or newlines are written as JSON strings (as A1111 does)."""
    if any(c in value for c in ',:\n"'):
        return json.dumps(value, ensure_ascii=False)
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sdcodec")
    except PackageNotFoundError:
        return "dev"
