"""Tiny random checkpoints for the generative tools: an inpainting pipeline (9-channel U-Net) and
the two latent-diffusion upscalers, saved in diffusers layout like tiny_sd's pipeline.

Widths follow diffusers' own tests for these pipelines; everything is seeded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch


def tiny_unet(in_channels: int, **extra):
    """tiny_sd's two-block U-Net with ``in_channels`` inputs (9 for inpainting, 7 or 8 for upscalers)."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
        **extra,
    )


def make_tiny_inpaint_pipeline(pipeline_dir: str | Path, path: str | Path) -> Path:
    """A copy of tiny_sd's pipeline at ``pipeline_dir`` whose U-Net takes 9 channels (an inpainting checkpoint)."""
    path = Path(path)
    shutil.copytree(pipeline_dir, path)
    shutil.rmtree(path / "unet")
    tiny_unet(9).save_pretrained(path / "unet")
    return path


def _text_parts():
    from tiny_sd import tiny_text_encoder

    from sdcodec.benchmarks.sd15_random import byte_level_clip_tokenizer

    torch.manual_seed(0)
    tokenizer = byte_level_clip_tokenizer(model_max_length=77)
    return tokenizer, tiny_text_encoder(tokenizer)


def make_tiny_x4_upscaler(path: str | Path) -> Path:
    """A tiny random ``StableDiffusionUpscalePipeline``: a 7-channel U-Net (latent + low-res RGB) with a
    noise-level class embedding, and a 4x VAE (three blocks) with the x4 model's scaling factor."""
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, StableDiffusionUpscalePipeline

    tokenizer, text_encoder = _text_parts()
    unet = tiny_unet(7, num_class_embeds=351)
    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 3,
        up_block_types=["UpDecoderBlock2D"] * 3,
        block_out_channels=[8, 16, 16],
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        scaling_factor=0.08333,
    )
    pipe = StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        low_res_scheduler=DDPMScheduler(beta_schedule="scaled_linear"),
        scheduler=DDIMScheduler(beta_schedule="scaled_linear", prediction_type="v_prediction"),
        max_noise_level=350,
    )
    pipe.save_pretrained(path)
    return Path(path)


def make_tiny_x2_latent_upscaler(path: str | Path) -> Path:
    """A tiny random ``StableDiffusionLatentUpscalePipeline`` on tiny_sd's VAE: an 8-channel U-Net (latent +
    upsampled low-res latent) with a 5th (variance) output channel and the timestep condition
    (128 noise-level features + the pooled text embedding)."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionLatentUpscalePipeline
    from tiny_sd import tiny_vae_config

    tokenizer, text_encoder = _text_parts()
    unet = tiny_unet(8, time_cond_proj_dim=128 + 32)
    unet = type(unet).from_config({**unet.config, "out_channels": 5})
    torch.manual_seed(0)
    pipe = StableDiffusionLatentUpscalePipeline(
        vae=AutoencoderKL(**tiny_vae_config()),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(prediction_type="sample"),
    )
    pipe.save_pretrained(path)
    return Path(path)
