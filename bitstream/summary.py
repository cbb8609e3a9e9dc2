"""What ``sdcodec info`` shows: a file's facts from its header alone (no model, no payload decode)."""

from __future__ import annotations

from .container import RECON_OFFSET_SCALE, VERSION, read_sdz


def describe(data: bytes) -> dict:
    """The header's facts as plain values (JSON-ready); raises ``BitstreamError`` for a bad file."""
    header = read_sdz(data)
    metadata = header.image_metadata
    return {
        "format_version": VERSION,
        "width": header.width,
        "height": header.height,
        "total_bytes": len(data),
        "header_bytes": len(data) - len(header.payload),
        "payload_bytes": len(header.payload),
        "bpp": 8 * len(data) / (header.width * header.height),
        "latent_space": header.latent_space,
        "latent_shape": list(header.latent_shape),
        "quant_step": header.quant_step,
        "recon_offset": header.recon_offset / RECON_OFFSET_SCALE,
        "entropy_model": header.entropy_model,
        "caption": header.caption,
        "restore_steps": header.restore_steps,
        "restore_guidance": header.restore_guidance,
        "gray": header.gray,
        "alpha_bytes": len(header.alpha) if header.alpha is not None else 0,
        "metadata_bytes": len(header.metadata) if header.metadata is not None else 0,
        "icc_profile_bytes": len(metadata.icc_profile or b""),
        "exif_bytes": len(metadata.exif or b""),
    }
