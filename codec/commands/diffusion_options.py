"""Options of the commands that run Stable Diffusion (gen, img2img, inpaint, outpaint, upscale), declared once."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

GEN_MODEL_HELP = (
    "A full Stable Diffusion pipeline: hub id or local diffusers dir (default: $SDCODEC_MODEL "
    "when it is one, else stable-diffusion-v1-5/stable-diffusion-v1-5)."
)
PROMPT_HELP = (
    "What to draw; (word:1.3), (word), [word] set emphasis, BREAK starts a new chunk, "
    "[a:b:0.5] switches text mid-way, [a|b] alternates (A1111's syntax)."
)
Negative = Annotated[str, typer.Option("--negative", "-n", help="What to steer away from (same emphasis syntax).")]
Seed = Annotated[
    Optional[int], typer.Option("--seed", help="Seed of the first image (+1 for each next one); random when absent.")
]
Guidance = Annotated[float, typer.Option("--guidance", "-g", help="Classifier-free guidance scale (<= 1: off).")]
Scheduler = Annotated[
    str,
    typer.Option(
        "--scheduler",
        "--sampler",
        help='ddim, pndm, euler, euler-a, dpm++, or an A1111 sampler name, e.g. "DPM++ 2M Karras", "Euler a".',
    ),
]
GenModel = Annotated[Optional[str], typer.Option("--model", "-m", help=GEN_MODEL_HELP)]
NoWatermark = Annotated[
    bool, typer.Option("--no-watermark", help="Leave image outputs without the invisible watermark (see `watermark`).")
]
