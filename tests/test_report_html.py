"""report.html: self-contained, the report's own tables, one slider per crop; renders in headless Chromium."""

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdcodec.benchmarks.codecs import jpeg_codec, webp_codec
from sdcodec.benchmarks.report_html import build_html, write_html
from sdcodec.benchmarks.run import run_bench

CHROMIUM_NAMES = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")


class PageParts(HTMLParser):
    """Collects the tags and attributes the checks need."""

    def __init__(self):
        super().__init__()
        self.sources, self.links, self.sliders, self.tables, self.scripts = [], [], [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "src" in attrs:
            self.sources.append(attrs["src"])
        if tag == "link" or "href" in attrs:
            self.links.append(attrs.get("href"))
        if tag == "input" and attrs.get("type") == "range":
            self.sliders.append(attrs)
        if tag == "table":
            self.tables += 1
        if tag == "script":
            self.scripts.append(attrs)


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    """A real (tiny) bench run: two 64x48 images, JPEG as the subject against WebP, two qualities each."""
    root = tmp_path_factory.mktemp("bench")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:48, 0:64]
    for index in range(2):
        base = 120 + 70 * np.sin((x + 7 * index) / 5.0)[..., None] * np.array([1.0, 0.4, -0.6])
        base[(y // 10 + x // 14) % 2 == index] += 40
        pixels = np.clip(base + rng.normal(0, 12, (48, 64, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(images / f"img{index}.png")
    jpeg, webp = jpeg_codec(), webp_codec()
    jpeg.knobs, webp.knobs = (20, 70), (20, 70)
    out = root / "out"
    run_bench(images, [jpeg, webp], out, subject="jpeg", use_lpips=False, quiet=True)
    return out


def test_the_run_writes_a_self_contained_page_with_the_reports_tables(bench_dir):
    page = (bench_dir / "report.html").read_text()
    parts = PageParts()
    parts.feed(page)
    parts.close()
    assert parts.sources and all(src.startswith("data:image/") for src in parts.sources)
    assert parts.links == [] and all("src" not in s for s in parts.scripts)
    assert "http://" not in page and "https://" not in page and "url(data:image/png;base64," in page
    report = (bench_dir / "report.md").read_text()
    assert parts.tables == sum(line.startswith("| --- |") for line in report.splitlines())  # every table
    headings = [line[3:] for line in report.splitlines() if line.startswith("## ")]
    assert "Size-matched comparison" in headings and all(f"<h2>{h}</h2>" in page for h in headings)
    assert page == build_html(bench_dir)  # rebuilt from the finished run's files alone, the same page


def test_one_keyboard_reachable_slider_per_codec_crop(bench_dir):
    parts = PageParts()
    parts.feed((bench_dir / "report.html").read_text())
    # 2 images (crop rows) x 2 codecs (jpeg, the subject, and webp); the original column has none.
    assert len(parts.sliders) == 2 * 2
    for slider in parts.sliders:
        assert slider["min"] == "0" and slider["max"] == "100" and "original" in slider["aria-label"]
    labels = [s["aria-label"] for s in parts.sliders]
    assert any("jpeg, crop row 1" in label for label in labels) and any("webp, crop row 2" in label for label in labels)


def test_crop_tiles_go_in_at_one_x_and_are_zoomed_by_css(bench_dir):
    page = (bench_dir / "report.html").read_text()
    assert "image-rendering: pixelated" in page
    assert 'style="width:96px;height:96px"' in page  # 48-pixel windows shown at 2x


def test_a_montage_of_the_wrong_shape_is_one_clear_error(bench_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(bench_dir, broken)
    Image.new("RGB", (101, 77), "white").save(broken / "crops.png")
    with pytest.raises(ValueError, match="crops.png is 101x77, not a montage of 3 columns"):
        write_html(broken)


def chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


@pytest.mark.skipif(chromium() is None, reason=f"no headless Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)})")
def test_the_page_renders_in_headless_chromium_and_its_script_runs(bench_dir, tmp_path):
    url = (bench_dir / "report.html").resolve().as_uri()
    flags = [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars"]
    shot = tmp_path / "page.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,2000", url],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[:2] == (2000, 1200)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50 and pixels.std() > 20  # drawn, not blank
    dom = subprocess.run([*flags, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120)
    assert 'data-sliders-ready="4"' in dom.stdout  # the slider script ran and found every slider
    assert "clip-path: inset(0px 50% 0px 0px)" in dom.stdout or "clip-path: inset(0 50% 0 0)" in dom.stdout


def test_the_committed_example_page_is_current_and_has_the_reproduce_line():
    example = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "kodak-taef2"
    page = build_html(example)
    assert page == (example / "report.html").read_text()  # regenerate: python -m sdcodec.benchmarks.report_html
    assert "<h2>Reproduce</h2>" in page and "sdcodec bench" in page
    assert page.count('type="range"') == 4 * 5  # 4 crop rows x 5 codecs (sdz, jpeg, webp, avif, jxl)
