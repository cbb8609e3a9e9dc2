"""report.html: the benchmark's report.md as one self-contained page, with a before/after slider per crop.

For people who would rather look than read. Built only from a finished run's files (report.md,
results.json, the rd_*.png plots and crops.png), so it needs no re-encoding and can be rebuilt with
`python -m sdcodec.benchmarks.report_html DIR`. Every image is inline (base64 data URIs) and the
page loads nothing else: no external scripts, styles or fonts.

The markdown becomes HTML with markdown-it-py (rich's own markdown parser), so the tables are the
report's own. The crops montage is cut back into its tiles (its layout is fixed by
report_figures.make_crops); each codec's tile gets a slider over the row's original tile.
"""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
from markdown_it import MarkdownIt
from PIL import Image

from sdcodec.benchmarks.report_figures import CROP_ZOOM

CAPTION_HEIGHT, GAP = 36, 4  # the crops montage's caption strip and tile gap (report_figures.make_crops)
LARGE_IMAGE_BYTES = 400_000  # inline images above this go in as JPEG q90 (keeps the page small)

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
th { background: #f3f3f3; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; white-space: pre-wrap; }
img.plot { max-width: 49%; }
.crop-row { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 1.5em; }
.compare { margin: 0; }
.stage { position: relative; }
.stage img, .stage .before { position: absolute; inset: 0; width: 100%; height: 100%; }
.stage img, .stage .before, .caption-strip { image-rendering: pixelated; }
.stage .before { background-size: 100% 100%; clip-path: inset(0 50% 0 0); }
.compare input[type=range] { width: 100%; margin: 4px 0 0; }
.compare figcaption { font-size: 12px; }
"""

SCRIPT = """
(function () {
  var sliders = document.querySelectorAll('.compare input[type=range]');
  sliders.forEach(function (slider) {
    var before = slider.closest('.compare').querySelector('.before');
    function show() { before.style.clipPath = 'inset(0 ' + (100 - slider.value) + '% 0 0)'; }
    slider.addEventListener('input', show);
    show();
  });
  document.documentElement.setAttribute('data-sliders-ready', String(sliders.length));
})();
"""


def data_uri(image: Image.Image | Path, *, lossless: bool = True) -> str:
    """An image as a data URI: PNG, or JPEG q90 when `lossless` is False (large plots)."""
    if isinstance(image, Path):
        raw = image.read_bytes()
        if lossless or len(raw) <= LARGE_IMAGE_BYTES:
            return "data:image/png;base64," + base64.b64encode(raw).decode()
        image = Image.open(image)
    buffer = io.BytesIO()
    if lossless:
        image.save(buffer, "PNG", optimize=True)
        mime = "image/png"
    else:
        image.convert("RGB").save(buffer, "JPEG", quality=90)
        mime = "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


def crop_tiles(crops: Image.Image, columns: int) -> list[list[tuple[Image.Image | None, Image.Image]]]:
    """Cut the crops montage into rows of (tile at 1x or None when blank, caption strip)."""
    width, height = crops.size
    tile = (width + GAP) // columns - GAP
    if tile <= 0 or (tile + GAP) * columns - GAP != width or height % (tile + CAPTION_HEIGHT):
        raise ValueError(f"crops.png is {width}x{height}, not a montage of {columns} columns")
    pixels = np.asarray(crops.convert("RGB"))
    rows = []
    for y in range(0, height, tile + CAPTION_HEIGHT):
        row = []
        for column in range(columns):
            x = column * (tile + GAP)
            block = pixels[y : y + tile, x : x + tile]
            caption = Image.fromarray(pixels[y + tile : y + tile + CAPTION_HEIGHT, x : x + tile])
            if (block == 255).all():
                row.append((None, caption))
                continue
            small = block[::CROP_ZOOM, ::CROP_ZOOM]
            exact = np.array_equal(np.repeat(np.repeat(small, CROP_ZOOM, 0), CROP_ZOOM, 1), block)
            row.append((Image.fromarray(small if exact else block), caption))
        rows.append(row)
    return rows


def crops_section(crops_path: Path, codec_names: list[str]) -> str:
    """One slider per codec tile: the codec's crop under the row's original, revealed by a range input."""
    rows = crop_tiles(Image.open(crops_path), len(codec_names) + 1)
    tile = (Image.open(crops_path).size[0] + GAP) // (len(codec_names) + 1) - GAP
    styles, parts = [], []
    for row_index, row in enumerate(rows):
        (original, original_caption), tiles = row[0], row[1:]
        styles.append(f".orig-{row_index} {{ background-image: url({data_uri(original)}); }}")
        parts.append('<div class="crop-row">')
        parts.append(
            f'<figure class="compare"><div class="stage" style="width:{tile}px;height:{tile}px">'
            f'<img src="{data_uri(original)}" alt="original, crop row {row_index + 1}"></div>'
            f'<figcaption><img class="caption-strip" src="{data_uri(original_caption)}" '
            f'alt="original, crop row {row_index + 1}"></figcaption></figure>'
        )
        for name, (crop, caption) in zip(codec_names, tiles):
            label = f"{name}, crop row {row_index + 1}"
            strip = f'<img class="caption-strip" src="{data_uri(caption)}" alt="{label}">'
            if crop is None:
                parts.append(f'<figure class="compare no-file"><figcaption>{strip}</figcaption></figure>')
                continue
            parts.append(
                f'<figure class="compare"><div class="stage" style="width:{tile}px;height:{tile}px">'
                f'<img src="{data_uri(crop)}" alt="{label}">'
                f'<div class="before orig-{row_index}" role="img" aria-label="original"></div></div>'
                f'<input type="range" min="0" max="100" value="50" '
                f'aria-label="share of the original shown over {label} (left part: original)">'
                f"<figcaption>{strip}</figcaption></figure>"
            )
        parts.append("</div>")
    intro = (
        "<p>Each slider shows the original (left of the split) over the codec's crop (right); drag it "
        "or focus it and use the arrow keys.</p>"
    )
    return f"<style>{''.join(styles)}</style>" + intro + "\n".join(parts)


def build_html(out_dir: str | Path) -> str:
    """The page's HTML from a finished run's report.md, results.json, plots and crops."""
    out_dir = Path(out_dir)
    markdown = (out_dir / "report.md").read_text()
    results = json.loads((out_dir / "results.json").read_text())
    subject = results["meta"].get("subject")
    ran = [c["name"] for c in results["codecs"] if c.get("unavailable") is None]
    # make_crops' column order: the subject (else the first baseline), then the other baselines.
    codec_names = ([subject] if subject in ran else []) + [name for name in ran if name != subject]
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)

    def inline(match: re.Match) -> str:
        source, alt = match.group(1), match.group(2)
        path = out_dir / source
        if "/" in source or not path.is_file():
            return f"<p><em>[{alt}: {source} missing]</em></p>"
        if source == "crops.png":
            return crops_section(path, codec_names)
        return f'<img class="plot" src="{data_uri(path, lossless=False)}" alt="{alt}">'

    body = re.sub(r'<img src="([^"]+)" alt="([^"]*)" */?>', inline, body)
    body = re.sub(r"<p>(<style>.*?)</p>", r"\1", body, flags=re.S)  # the crops section is block content
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>sdcodec rate-distortion benchmark</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


def write_html(out_dir: str | Path) -> Path:
    """Write report.html beside report.md; return its path."""
    path = Path(out_dir) / "report.html"
    path.write_text(build_html(out_dir))
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m sdcodec.benchmarks.report_html RESULTS_DIR")
    try:
        print(write_html(sys.argv[1]))
    except (OSError, ValueError, KeyError) as error:
        sys.exit(f"error: {error}")
