"""Tiny random Stable Diffusion components for offline tests, saved and loaded like real ones.

Built the way diffusers' own tests build theirs: real classes, tiny widths, fixed seeds.
"""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_vae_config() -> dict:
    """An AutoencoderKL config with SD's layout (4 down blocks -> 8x downsampling, 4 latent
    channels, SD 1.x scaling factor) but widths small enough to run in milliseconds."""
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": [8, 8, 16, 16],
        "layers_per_block": 1,
        "latent_channels": 4,
        "norm_num_groups": 4,
        "sample_size": 64,
        "scaling_factor": 0.18215,
    }


def tiny_text_encoder(tokenizer):
    """A 2-layer CLIP text encoder (hidden size 32, 77 positions) over ``tokenizer``, from torch's current seed."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


def make_tiny_vae(path: str | Path, seed: int = 0, **overrides) -> Path:
    """Save a tiny random ``AutoencoderKL`` to ``path`` (diffusers layout) and return the path.

    ``overrides`` replace config entries, e.g. ``scaling_factor=0.13025`` for an SDXL-space VAE.
    """
    from diffusers import AutoencoderKL

    path = Path(path)
    torch.manual_seed(seed)
    vae = AutoencoderKL(**{**tiny_vae_config(), **overrides})
    vae.save_pretrained(path)
    return path


def make_tiny_taesd(directory: str | Path, seed: int = 0) -> str:
    """Save random TAESD weights (the real architecture, float16 like the published files) to
    ``directory`` and return their ``taesd:DIR`` spec: an sd1 autoencoder that loads without
    diffusers, so a test's ``sdcodec`` subprocess or Ray actor starts seconds sooner."""
    from sdcodec.codec.autoencoders.tae import tae_decoder, tae_encoder

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    torch.save(tae_encoder(4, pooled=False).half().state_dict(), directory / "taesd_encoder.pth")
    torch.save(tae_decoder(4, pooled=False).half().state_dict(), directory / "taesd_decoder.pth")
    return f"taesd:{directory}"


def make_tiny_pipeline(path: str | Path) -> Path:
    """A tiny random full StableDiffusionPipeline saved in diffusers layout at ``path``.

    diffusers' own test recipe: a two-block U-Net (cross-attention dim 32), a 2-layer CLIP text
    encoder (hidden size 32, 77 positions), a byte-level CLIP tokenizer built in memory, the tiny
    VAE of ``tiny_vae_config()`` and SD's DDIM schedule. Seeded, so every call saves the same
    weights. 64x64 images take a fraction of a second per step.
    """
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    from sdcodec.benchmarks.sd15_random import byte_level_clip_tokenizer

    torch.manual_seed(0)
    tokenizer = byte_level_clip_tokenizer(model_max_length=77)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    text_encoder = tiny_text_encoder(tokenizer)
    vae = AutoencoderKL(**tiny_vae_config())
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    path = Path(path)
    pipeline.save_pretrained(path)
    return path
