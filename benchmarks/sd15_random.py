"""Full-size Stable Diffusion 1.5 architectures with random weights, built in memory.

Random weights cost exactly what the real ones cost to run, so speed and memory benchmarks
need no download. The configurations are SD 1.5's own (``stable-diffusion-v1-5`` model cards):
U-Net 860M parameters, CLIP ViT-L/14 text encoder 123M, VAE 84M. The tokenizer is a byte-level
CLIP tokenizer built from a small vocabulary: the cost of the text encoder depends on the
77-token window, not on the vocabulary it was trained with.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

from sdcodec.codec.diffusion.sd_pipeline import SDComponents, latent_space_of

# A few merges, so the tokenizer is a real BPE tokenizer rather than a character splitter.
_MERGES = ("t h", "th e</w>", "a n", "an d</w>", "i n", "o n</w>", "e r</w>", "a t</w>")


def byte_level_clip_tokenizer(model_max_length: int = 77):
    """A CLIP tokenizer whose vocabulary is the 256 byte symbols (plain and word-final) + a few merges.

    Built from a vocab.json and merges.txt written to a temporary directory, the format every
    transformers version loads; special tokens come last, as in CLIP.
    """
    from transformers import CLIPTokenizer

    symbols = _byte_symbols()
    vocab = symbols + [s + "</w>" for s in symbols]
    vocab += ["".join(merge.split()) for merge in _MERGES]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
        Path(directory, "merges.txt").write_text("#version: 0.2\n" + "\n".join(_MERGES) + "\n")
        return CLIPTokenizer.from_pretrained(directory, model_max_length=model_max_length)


def _byte_symbols() -> list[str]:
    """GPT-2 / CLIP's printable stand-ins for the 256 byte values, in CLIP's vocabulary order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def sd15_unet_config() -> dict:
    return dict(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=768,
        attention_head_dim=8,
        norm_num_groups=32,
        act_fn="silu",
        flip_sin_to_cos=True,
        freq_shift=0,
        downsample_padding=1,
        mid_block_scale_factor=1,
        norm_eps=1e-5,
    )


def sd15_text_config(tokenizer) -> dict:
    return dict(
        vocab_size=49408,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        projection_dim=768,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def sd15_vae_config() -> dict:
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=512,
        scaling_factor=0.18215,
    )


def sd15_scheduler_config() -> dict:
    return dict(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        set_alpha_to_one=False,
        skip_prk_steps=True,
        steps_offset=1,
        clip_sample=False,
    )


def random_sd15_components(seed: int = 0, device: str = "cpu") -> SDComponents:
    """SD 1.5's U-Net, text encoder, VAE and PNDM scheduler, randomly initialised (about 4.3 GB fp32)."""
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = byte_level_clip_tokenizer()
    unet = UNet2DConditionModel(**sd15_unet_config())
    text_encoder = CLIPTextModel(CLIPTextConfig(**sd15_text_config(tokenizer)))
    vae = AutoencoderKL(**sd15_vae_config())
    for module in (unet, text_encoder, vae):
        module.to(device).eval().requires_grad_(False)
    return SDComponents(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=PNDMScheduler.from_config(sd15_scheduler_config()),
        latent_space=latent_space_of(vae),
        spec="random:sd15",
        device=torch.device(device),
        dtype=torch.float32,
    )
