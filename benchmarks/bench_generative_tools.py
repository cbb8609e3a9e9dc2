"""Cost of inpainting (hence outpainting) and of the invisible watermark on this machine.

Inpainting runs with the full-size SD 1.5 architectures (random weights cost what real ones do,
benchmarks/sd15_random.py) through ``codec.diffusion.inpaint``: VAE encode, the denoising steps
(U-Net batch 2 for classifier-free guidance, latent blending after each) and VAE decode. It is
timed on the whole image and with ``only_masked`` on a small mask, whose box is all that runs.
Outpainting is inpainting of the grown canvas, so it costs what inpainting that size costs.

``--upscale 4`` / ``--upscale 2`` times the upscalers instead, with their full-size architectures
(random weights, benchmarks/upscalers_random.py): the text encoder, one U-Net step (batch 2 for the
x4 model's default classifier-free guidance, 1 for the x2 model, which runs without) and one VAE
decode, and from them the cost of a run with ``sdcodec upscale``'s default step count. x4: a 128x128
image to 512x512 (the latent is the image's size); x2: a 512x512 image's SD latent (64x64) to 1024x1024.

    python -m benchmarks.bench_generative_tools             # 512x512, 1 step (a few minutes on a CPU)
    python -m benchmarks.bench_generative_tools --steps 2
    python -m benchmarks.bench_generative_tools --upscale 4
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from PIL import Image

from sdcodec.benchmarks.sd15_random import random_sd15_components
from sdcodec.benchmarks.upscalers_random import random_upscaler_parts
from sdcodec.codec.diffusion.inpaint import Canvas, inpaint, mask_box
from sdcodec.codec.diffusion.upscale import DEFAULT_STEPS, default_guidance
from sdcodec.codec.diffusion.watermark import add_watermark, detect

KODAK = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "kodak" / "kodim23.png"


def picture(size: int) -> Image.Image:
    if KODAK.exists():
        with Image.open(KODAK) as image:
            return image.convert("RGB").resize((size, size), Image.LANCZOS)
    return Image.effect_noise((size, size), 40).convert("RGB")


def seconds(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def time_upscaler(scale: int, low_side: int) -> None:
    """Seconds for the upscaler's text encoder, one U-Net step and one VAE decode, and a default run.

    The U-Net gets what the diffusers pipeline gives it: x4, the noisy latent and the noised
    low-resolution image (7 channels) at the image's size with the noise level as class label;
    x2, the latent and the low-resolution latent upsampled (8 channels) at twice the latent's size
    with the noise-level features and pooled text as timestep condition (128 + 768).
    """
    build = time.perf_counter()
    parts = random_upscaler_parts(scale, seed=0)
    unet, vae = parts["unet"], parts["vae"]
    millions = sum(p.numel() for p in unet.parameters()) / 1e6
    print(
        f"build x{scale} upscaler architectures (random weights, U-Net {millions:.0f}M parameters): "
        f"{time.perf_counter() - build:.1f} s",
        flush=True,
    )
    batch = 2 if default_guidance(scale) > 1 else 1
    side = low_side if scale == 4 else 2 * low_side // 8  # latent side the U-Net runs on
    tokens = parts["tokenizer"](["a photo"] * batch, padding="max_length", max_length=77, return_tensors="pt")
    torch.manual_seed(0)
    with torch.inference_mode():
        text_s = seconds(lambda: parts["text_encoder"](tokens.input_ids))
        context = parts["text_encoder"](tokens.input_ids).last_hidden_state
        if scale == 4:
            sample = torch.randn(batch, 7, side, side)
            step = lambda: unet(sample, 999, context, class_labels=torch.full((batch,), 20)).sample  # noqa: E731
        else:
            sample = torch.randn(batch, 8, side, side)
            condition = torch.randn(batch, 128 + 768)
            step = lambda: unet(sample, torch.tensor([0.5]), context, timestep_cond=condition).sample  # noqa: E731
        step_s = seconds(step)
        latent = torch.randn(1, 4, side, side)
        decoded = []
        vae_s = seconds(lambda: decoded.append(vae.decode(latent).sample))
    out_side = decoded[0].shape[-1]
    total = text_s + DEFAULT_STEPS * step_s + vae_s
    print(
        f"upscale x{scale}: {low_side}x{low_side} -> {out_side}x{out_side} (U-Net on {side}x{side} latent, batch {batch}): "
        f"text encoder {text_s:.1f} s, U-Net {step_s:.1f} s per step, VAE decode {vae_s:.1f} s; "
        f"default {DEFAULT_STEPS} steps: {total:.0f} s per call",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="square image side (multiple of 8)")
    parser.add_argument("--steps", type=int, default=1, help="denoising steps per inpaint call")
    parser.add_argument("--mask", type=int, default=96, help="side of the small square mask for --only-masked")
    parser.add_argument(
        "--upscale", type=int, choices=(2, 4), help="time this upscaler instead (x4: 128x128 in, x2: 512x512)"
    )
    args = parser.parse_args(argv)
    if args.upscale:
        time_upscaler(args.upscale, 128 if args.upscale == 4 else 512)
        return

    image = picture(args.size)
    marked = add_watermark(image)
    print(
        f"watermark {args.size}x{args.size}: mark {seconds(lambda: add_watermark(image)):.2f} s, "
        f"detect {seconds(lambda: detect(marked)):.2f} s (found: {detect(marked).present})",
        flush=True,
    )

    build = time.perf_counter()
    components = random_sd15_components(seed=0)
    print(f"build SD 1.5 architectures (random weights): {time.perf_counter() - build:.1f} s", flush=True)
    side, corner = args.mask, (args.size - args.mask) // 2
    mask = Image.new("L", image.size, 0)
    mask.paste(255, (corner, corner, corner + side, corner + side))
    for only_masked in (False, True):
        box = mask_box(mask, 32) if only_masked else (0, 0, *image.size)
        with torch.inference_mode():
            spent = seconds(
                lambda only_masked=only_masked: inpaint(
                    components,
                    "a red ball",
                    Canvas(image=image),
                    mask,
                    seed=0,
                    steps=args.steps,
                    strength=1.0,
                    only_masked=only_masked,
                )
            )
        print(
            f"inpaint {args.size}x{args.size}, {args.steps} step(s), {'only masked' if only_masked else 'whole image'} "
            f"(diffusion on {box[2] - box[0]}x{box[3] - box[1]}): {spent:.1f} s per call",
            flush=True,
        )


if __name__ == "__main__":
    main()
