"""The report's pictures: rate-distortion plots (matplotlib) and the side-by-side crops montage (Pillow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from sdcodec.benchmarks.metrics import HIGHER_IS_BETTER, METRIC_LABELS
from sdcodec.benchmarks.report_summaries import averaged_curve

CROP_SIZE = 128  # pixels of the source image per crop
CROP_ZOOM = 2  # nearest-neighbour zoom of every crop
CROP_BPP = 0.2  # the subject's file nearest this rate sets each crop row's rate (low-rate region)


def plot_rd(results, metric: str, path: Path) -> None:
    """bpp (log axis) vs one metric, one line per codec through its per-knob averages."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.6), dpi=100)
    for info in results.codecs:
        curve = averaged_curve(results.records, info.name, metric)
        if not curve:
            continue
        is_subject = info.name == results.subject
        axes.plot(
            [p["bpp"] for p in curve],
            [p["value"] for p in curve],
            marker="o" if is_subject else ".",
            linewidth=2.2 if is_subject else 1.2,
            label=info.label,
        )
    axes.set_xscale("log")
    axes.set_xlabel("bits per pixel")
    axes.set_ylabel(METRIC_LABELS[metric] + ("" if HIGHER_IS_BETTER[metric] else " (lower is better)"))
    axes.set_title(f"{METRIC_LABELS[metric]} vs rate, mean over {len(results.images)} images")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def detailed_window(pixels: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the size x size window with the most gradient energy (where artifacts show)."""
    luma = pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    energy = np.hypot(ndimage.sobel(luma, 0), ndimage.sobel(luma, 1))
    box = ndimage.uniform_filter(energy, size, mode="constant")
    half = size // 2
    valid = box[half : pixels.shape[0] - size + half + 1, half : pixels.shape[1] - size + half + 1]
    top, left = np.unravel_index(np.argmax(valid), valid.shape)
    return int(top), int(left)


def make_crops(images, subject, baselines, results, bench, out_dir: Path) -> Path | None:
    """A grid of crops, one row per image: the original, then each codec at about one rate, 2x zoomed.

    Per image, the subject's file nearest CROP_BPP sets the rate; each baseline is size-matched to
    it (its highest quality whose file is not larger). Every tile is the same CROP_SIZE window (the
    image's most detailed one) scaled 2x by nearest neighbour, so pixels and artifacts stay visible.
    When no subject codec ran, the first baseline sets the rate instead.
    """
    reference = subject or baselines[0]
    others = [c for c in baselines if c is not reference]
    font = ImageFont.load_default(size=13)
    caption_height, gap = 36, 4
    size = min([CROP_SIZE] + [side for image in images for side in image.image.size])  # one size for all
    tile = size * CROP_ZOOM
    rows = []
    for image in images:
        measured = [r for r in results.records if r["image"] == image.name and r["codec"] == reference.name]
        if not measured:
            continue  # every point of the reference was unreachable on this image
        knob = min(measured, key=lambda record: abs(record["bpp"] - CROP_BPP))["knob"]
        target = bench.record(reference, image, knob)["bytes"]
        top, left = detailed_window(image.pixels, size)
        box = (left, top, left + size, top + size)
        row = [(image.image.crop(box), f"original {image.name}", f"crop at ({left},{top}), 2x")]
        for codec, codec_knob in [(reference, knob)] + [(c, bench.size_match(c, image, target)) for c in others]:
            if codec_knob is None:
                row.append((None, codec.name, "no file this small"))
                continue
            data = codec.encode(image.image, codec_knob)
            record = bench.record(codec, image, codec_knob)
            caption = f"{8 * len(data) / image.pixel_count:.3f} bpp {record['psnr']:.1f} dB"
            if record.get("ssimulacra2") is not None:
                caption += f" S2 {record['ssimulacra2']:.0f}"
            row.append((codec.decode(data).crop(box), f"{codec.name} q{codec_knob}", caption))
        rows.append(row)

    if not rows:
        return None
    columns = max(len(row) for row in rows)
    montage = Image.new("RGB", (columns * (tile + gap) - gap, len(rows) * (tile + caption_height)), "white")
    draw = ImageDraw.Draw(montage)
    for row_index, row in enumerate(rows):
        y = row_index * (tile + caption_height)
        for index, (crop, line1, line2) in enumerate(row):
            x = index * (tile + gap)
            if crop is not None:
                montage.paste(crop.resize((tile, tile), Image.Resampling.NEAREST), (x, y))
            draw.text((x + 2, y + tile + 2), line1, fill="black", font=font)
            draw.text((x + 2, y + tile + 18), line2, fill="black", font=font)
    path = Path(out_dir) / "crops.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    montage.save(path, optimize=True)
    return path
