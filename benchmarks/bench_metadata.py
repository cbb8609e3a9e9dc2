"""What keeping the ICC profile and EXIF costs in a .sdz: the metadata section's bytes.

    python -m benchmarks.bench_metadata [--image PATH --model SPEC]

Prints the section size (raw and compressed) for Pillow's sRGB profile, a camera-like EXIF
(make, model, dates, exposure, lens) and both; with ``--image`` and ``--model``, also the whole
file encoded with and without the metadata (``strip_metadata``) at the default quality.
"""

from __future__ import annotations

import argparse
import io
import os

from PIL import Image, ImageCms
from PIL.TiffImagePlugin import IFDRational

from sdcodec import bitstream


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def camera_exif() -> bytes:
    """A typical camera EXIF without thumbnail or maker notes, as TIFF bytes."""
    exif = Image.Exif()
    exif.update({0x010F: "Canon", 0x0110: "Canon EOS R6", 0x0112: 1, 0x0131: "Firmware 1.8.1"})
    exif[0x0132] = "2026:12:04 12:00:00"  # DateTime
    sub = exif.get_ifd(0x8769)
    sub.update({0x829A: IFDRational(1, 250), 0x829D: IFDRational(28, 10), 0x8827: 400, 0x920A: IFDRational(50, 1)})
    sub.update({0x9003: "2026:12:04 12:00:00", 0x9004: "2026:12:04 12:00:00", 0xA434: "RF24-105mm F4 L IS USM"})
    return exif.tobytes()[6:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="an image to encode with and without its metadata")
    parser.add_argument("--model", help="the autoencoder SPEC for --image, e.g. taef2:DIR")
    args = parser.parse_args()
    icc, exif = srgb_profile(), camera_exif()
    cases = {
        "sRGB profile (Pillow)": bitstream.ImageMetadata(icc_profile=icc),
        "camera EXIF": bitstream.ImageMetadata(exif=exif),
        "both": bitstream.ImageMetadata(icc_profile=icc, exif=exif),
    }
    print(f"{'metadata':<24} {'raw bytes':>9} {'section bytes':>13}")
    for name, metadata in cases.items():
        raw = len(metadata.icc_profile or b"") + len(metadata.exif or b"")
        print(f"{name:<24} {raw:>9} {len(bitstream.pack_metadata(metadata)):>13}")
    if args.image and args.model:
        import sdcodec

        source = io.BytesIO()
        Image.open(args.image).convert("RGB").save(source, format="PNG", icc_profile=icc, exif=b"Exif\0\0" + exif)
        kept = sdcodec.encode_image(source.getvalue(), model=args.model)
        stripped = sdcodec.encode_image(source.getvalue(), model=args.model, strip_metadata=True)
        print(f"{args.image}: {len(kept)} bytes with metadata, {len(stripped)} stripped (+{len(kept) - len(stripped)})")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
