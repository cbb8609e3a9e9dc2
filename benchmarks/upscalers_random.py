"""Full-size architectures of the two diffusers upscalers, with random weights, built in memory.

Random weights cost what the real ones cost to run, so the upscaling cost needs no download.
The configurations are the published ones, translated to diffusers' classes:

- x4 (stabilityai/stable-diffusion-x4-upscaler): Stability-AI/stablediffusion
  ``configs/stable-diffusion/x4-upscaling.yaml``: U-Net with model_channels 256, channel_mult
  (1, 2, 2, 4), attention at downsampling 2, 4, 8 with self-attention disabled on the first three
  levels, 8 heads, linear projections, context 1024, 1000 class embeddings (the noise level), 7 input
  channels (latent + low-resolution RGB); VAE ch 128, ch_mult (1, 2, 4) (a 4x VAE), z 4, scale
  factor 0.08333; text encoder OpenCLIP ViT-H/14 read at its penultimate layer (23 of 24 layers, 1024-d).
- x2 (stabilityai/sd-x2-latent-upscaler): diffusers' ``scripts/convert_k_upscaler_to_diffusers.py``
  applied to the k-diffusion config of ``laion_text_cond_latent_upscaler_2`` (channels
  (384, 384, 768, 768), depths 4, mapping_cond_dim 896, cross_cond_dim 768, 4 + 4 input channels,
  a variance output); SD 1.x's CLIP ViT-L/14 text encoder and SD's VAE (benchmarks/sd15_random.py).
"""

from __future__ import annotations

import torch

from sdcodec.benchmarks.sd15_random import byte_level_clip_tokenizer, sd15_text_config, sd15_vae_config


def x4_unet_config() -> dict:
    return dict(
        sample_size=128,
        in_channels=7,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(256, 512, 512, 1024),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        only_cross_attention=(True, True, True, False),
        cross_attention_dim=1024,
        attention_head_dim=8,
        use_linear_projection=True,
        num_class_embeds=1000,
        norm_num_groups=32,
        act_fn="silu",
        flip_sin_to_cos=True,
        freq_shift=0,
        downsample_padding=1,
        mid_block_scale_factor=1,
        norm_eps=1e-5,
    )


def x4_vae_config() -> dict:
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(128, 256, 512),
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=256,
        scaling_factor=0.08333,
    )


def x4_text_config(tokenizer) -> dict:
    """OpenCLIP ViT-H/14's text tower as SD 2 ships it (the last of its 24 layers dropped)."""
    return dict(
        vocab_size=49408,
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=23,
        num_attention_heads=16,
        max_position_embeddings=77,
        hidden_act="gelu",
        projection_dim=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def x2_unet_config() -> dict:
    return dict(
        in_channels=8,
        out_channels=5,
        down_block_types=("KDownBlock2D", "KCrossAttnDownBlock2D", "KCrossAttnDownBlock2D", "KCrossAttnDownBlock2D"),
        mid_block_type=None,
        up_block_types=("KCrossAttnUpBlock2D", "KCrossAttnUpBlock2D", "KCrossAttnUpBlock2D", "KUpBlock2D"),
        block_out_channels=(384, 384, 768, 768),
        layers_per_block=4,
        act_fn="gelu",
        norm_num_groups=None,
        cross_attention_dim=768,
        attention_head_dim=64,
        time_cond_proj_dim=896,
        resnet_time_scale_shift="scale_shift",
        time_embedding_type="fourier",
        timestep_post_act="gelu",
        conv_in_kernel=1,
        conv_out_kernel=1,
    )


def random_upscaler_parts(scale: int, seed: int = 0) -> dict:
    """The x4 or x2 upscaler's U-Net, text encoder, tokenizer and VAE, randomly initialised, in eval mode."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if scale not in (2, 4):
        raise ValueError(f"the upscalers are x2 and x4, not x{scale}")
    torch.manual_seed(seed)
    tokenizer = byte_level_clip_tokenizer()
    text = x4_text_config(tokenizer) if scale == 4 else sd15_text_config(tokenizer)
    parts = dict(
        unet=UNet2DConditionModel(**(x4_unet_config() if scale == 4 else x2_unet_config())),
        text_encoder=CLIPTextModel(CLIPTextConfig(**text)),
        vae=AutoencoderKL(**(x4_vae_config() if scale == 4 else sd15_vae_config())),
    )
    for module in parts.values():
        module.eval().requires_grad_(False)
    return dict(parts, tokenizer=tokenizer)
