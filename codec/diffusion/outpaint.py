"""Outpainting: grow the canvas by some pixels on each side and draw the new area to match.

The new area starts from the image's edges stretched outwards and blurred (so colours and light
carry across the seam), and is then inpainted (codec.diffusion.inpaint) with its mask white over
the new area; the mask blur softens the seam on both sides. The default strength, 0.8, keeps
the stretched colours as a start instead of drawing from pure noise.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from sdcodec.codec.diffusion.generate import GeneratedImage
from sdcodec.codec.diffusion.inpaint import Canvas, SDComponents, inpaint, with_fields

DEFAULT_STRENGTH = 0.8
DEFAULT_MASK_BLUR = 8


def parse_extend(text: str) -> tuple[int, int, int, int]:
    """``"left,right,top,bottom"`` in pixels, each a multiple of 8 and at least one above 0."""
    parts = text.split(",")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or any(value < 0 or value % 8 for value in values) or not any(values):
        raise ValueError(f"--extend takes left,right,top,bottom in pixels (multiples of 8, not all 0), not {text!r}")
    return values


def extended_canvas(image: Image.Image, extend: tuple[int, int, int, int]) -> tuple[Image.Image, Image.Image]:
    """The grown picture (edges stretched and blurred into the new area) and its mask (white: new)."""
    left, right, top, bottom = extend
    array = np.asarray(image.convert("RGB"))
    stretched = Image.fromarray(np.pad(array, ((top, bottom), (left, right), (0, 0)), mode="edge"), "RGB")
    fill = stretched.filter(ImageFilter.GaussianBlur(max(4, max(extend) // 4)))
    fill.paste(image.convert("RGB"), (left, top))
    mask = Image.new("L", fill.size, 255)
    mask.paste(0, (left, top, left + image.width, top + image.height))
    return fill, mask


def outpaint(
    components: SDComponents,
    prompt: str,
    canvas: Canvas,
    extend: tuple[int, int, int, int],
    *,
    strength: float = DEFAULT_STRENGTH,
    mask_blur: int = DEFAULT_MASK_BLUR,
    **options,
) -> GeneratedImage:
    """The canvas grown by ``extend`` (left, right, top, bottom pixels), new area drawn; ``options`` as ``inpaint``'s."""
    grown, mask = extended_canvas(canvas.image, extend)
    result = inpaint(components, prompt, Canvas(image=grown), mask, strength=strength, mask_blur=mask_blur, **options)
    result.parameters = with_fields(result.parameters, "Outpaint extend: " + ",".join(map(str, extend)))
    return result
