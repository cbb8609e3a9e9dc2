"""The benchmark harness on two small images: sweep, size matching, report files, resume, errors."""

import csv
import io
import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sdcodec import bitstream
from sdcodec.benchmarks.codecs import (
    SDZ_DEFAULT_KNOBS,
    Codec,
    SdzCodec,
    avif_codec,
    jpeg_codec,
    jxl_codec,
    make_codecs,
    webp_codec,
)
from sdcodec.benchmarks.run import largest_knob_within, reproduce_command, run_bench
from sdcodec.cli import app
from sdcodec.codec.errors import SdcodecError

SHARED = Path(__file__).resolve().parents[2] / "shared"


class HalfResolutionJpeg(Codec):
    """A cheap stand-in for sdz: half-resolution JPEG with the size in a 4-byte header; counts its calls."""

    label = "half-resolution JPEG (stand-in for sdz)"
    knob_range = (1, 100)

    def __init__(self, name="sdz", knobs=(30, 80), interrupt_at_call=None):
        self.name, self.knobs = name, tuple(knobs)
        self.interrupt_at_call = interrupt_at_call
        self.encode_calls = 0

    def encode(self, image, knob):
        self.encode_calls += 1
        if self.encode_calls == self.interrupt_at_call:
            raise KeyboardInterrupt
        buffer = io.BytesIO()
        buffer.write(image.width.to_bytes(2, "big") + image.height.to_bytes(2, "big"))
        image.resize((image.width // 2, image.height // 2), Image.BICUBIC).save(buffer, "JPEG", quality=knob)
        return buffer.getvalue()

    def decode(self, data):
        width, height = int.from_bytes(data[:2], "big"), int.from_bytes(data[2:4], "big")
        with Image.open(io.BytesIO(data[4:])) as small:
            return small.convert("RGB").resize((width, height), Image.BICUBIC)


class CountingCodec(Codec):
    """Wraps a codec and counts encodes (to prove cached work is not redone)."""

    def __init__(self, inner):
        self.inner, self.encode_calls = inner, 0
        self.name, self.label, self.knobs, self.knob_range = inner.name, inner.label, inner.knobs, inner.knob_range

    def settings(self):
        return self.inner.settings()

    def encode(self, image, knob):
        self.encode_calls += 1
        return self.inner.encode(image, knob)

    def decode(self, data):
        return self.inner.decode(data)


class Missing(Codec):
    name, label, knobs = "missing", "a codec whose library is absent", (1, 2)

    def unavailable_reason(self):
        return "libmissing is not installed"

    def encode(self, image, knob):
        raise AssertionError("an unavailable codec must not run")


def two_quality_points(codec, knobs):
    codec.knobs = knobs
    return codec


@pytest.fixture
def image_dir(tmp_path):
    """Two 64x48 test images with texture, edges and noise (plus a non-image file that is ignored)."""
    directory = tmp_path / "images"
    directory.mkdir()
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64]
    for index in range(2):
        base = 120 + 70 * np.sin((x + 9 * index) / 6.0)[..., None] * np.array([1.0, 0.5, -0.7])
        base[(y // 12 + x // 16) % 2 == index] += 40
        pixels = np.clip(base + rng.normal(0, 10, (48, 64, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(directory / f"img{index}.png")
    (directory / "notes.txt").write_text("not an image")
    return directory


def test_two_images_two_points_per_codec(image_dir, tmp_path):
    out = tmp_path / "out"
    baselines = [
        two_quality_points(jpeg_codec(), (20, 70)),
        two_quality_points(webp_codec(), (20, 70)),
        two_quality_points(avif_codec(), (20, 70)),
        two_quality_points(jxl_codec(), (20, 70)),
    ]
    results = run_bench(image_dir, [HalfResolutionJpeg(), *baselines, Missing()], out, quiet=True)

    sweep = [r for r in results.records if r["sweep"]]
    assert len(sweep) == 2 * 5 * 2
    for record in results.records:
        assert record["bpp"] == pytest.approx(8 * record["bytes"] / (64 * 48))
        assert 15 < record["psnr"] < 60 and 0 < record["ssim"] <= 1 and 0 < record["ms_ssim"] <= 1
        assert record["ms_ssim_scales"] == 3 and record["lpips"] is None
        assert record["ms_ssim_db"] > 0 and record["ssimulacra2"] < 100
    for name in ("sdz", "jpeg", "webp", "avif", "jxl"):
        for image in ("img0", "img1"):
            points = [r for r in sweep if r["codec"] == name and r["image"] == image]
            low, high = sorted(points, key=lambda r: r["knob"])
            assert high["bytes"] > low["bytes"] and high["psnr"] > low["psnr"]

    missing = results.codec("missing")
    assert missing.unavailable == "libmissing is not installed"
    assert not [r for r in results.records if r["codec"] == "missing"]
    assert "lpips" in results.metrics_unavailable

    # Size-matched protocol: each baseline file is the largest quality not above the sdz file.
    assert len(results.matches) == 2 * 2 * 4
    by_name = {c.name: c for c in baselines}
    for match in results.matches:
        baseline = by_name[match["codec"]]
        image = load(image_dir, match["image"])
        if match["knob"] is None:
            assert len(baseline.encode(image, baseline.knob_range[0])) > match["subject_bytes"]
            continue
        assert len(baseline.encode(image, match["knob"])) <= match["subject_bytes"]
        if match["knob"] < baseline.knob_range[1]:
            assert len(baseline.encode(image, match["knob"] + 1)) > match["subject_bytes"]

    report = (out / "report.md").read_text()
    assert "BD-rate of half-resolution JPEG" in report
    assert "LPIPS (AlexNet): unavailable" in report and "not installed" in report
    assert "libmissing is not installed" in report
    assert "![crops](crops.png)" in report and "![PSNR (dB, RGB)](rd_psnr.png)" in report
    for name in ("rd_psnr.png", "rd_ssim.png", "rd_ms_ssim.png", "crops.png"):
        with Image.open(out / name) as figure:
            assert figure.format == "PNG" and figure.width > 100
    assert not (out / "rd_lpips.png").exists()

    raw = json.loads((out / "results.json").read_text())
    assert len(raw["records"]) == len(results.records)
    assert set(raw["bd_rate"]["psnr"]) == {"jpeg", "webp", "avif", "jxl"}
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(results.records)
    assert {row["codec"] for row in rows} == {"sdz", "jpeg", "webp", "avif", "jxl"}


def load(image_dir, name):
    with Image.open(image_dir / f"{name}.png") as image:
        return image.convert("RGB")


class RefusesOneImage(HalfResolutionJpeg):
    """The stand-in for sdz, refusing its first knob on img1 as sdz refuses a bpp ceiling below its smallest file."""

    def encode(self, image, knob):
        if knob == self.knobs[0] and image.width == 64 and np.asarray(image)[0, 0, 0] == self.refused_pixel:
            raise SdcodecError("cannot fit in 40 bytes: the smallest file for this latent is 300 bytes")
        return super().encode(image, knob)


def test_a_refused_point_is_reported_and_the_run_goes_on(image_dir, tmp_path):
    subject = RefusesOneImage()
    subject.refused_pixel = np.asarray(Image.open(image_dir / "img1.png"))[0, 0, 0]
    jpeg = two_quality_points(jpeg_codec(), (20, 60))
    results = run_bench(image_dir, [subject, jpeg], tmp_path / "out", use_lpips=False, quiet=True)
    assert results.unreachable == [
        {
            "image": "img1",
            "codec": "sdz",
            "knob": 30,
            "reason": "cannot fit in 40 bytes: the smallest file for this latent is 300 bytes",
        }
    ]
    sdz = {(r["image"], r["knob"]) for r in results.records if r["codec"] == "sdz"}
    assert sdz == {("img0", 30), ("img0", 80), ("img1", 80)}
    assert {m["image"] for m in results.matches if m["subject_knob"] == 30} == {"img0"}  # nothing to match on img1
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Points not reached" in report and "| img1 | sdz | 30 | cannot fit in 40 bytes" in report


def test_size_match_picks_the_largest_quality_not_above_the_target():
    probes = []

    def size_of(knob):
        probes.append(knob)
        return 100 + 10 * knob

    assert largest_knob_within(size_of, 555, (1, 100)) == 45
    assert largest_knob_within(size_of, 550, (1, 100)) == 45  # equal size is allowed
    assert len(probes) <= 2 * 9
    assert largest_knob_within(size_of, 109, (1, 100)) is None  # even the lowest quality is too big
    assert largest_knob_within(size_of, 10_000, (1, 100)) == 100
    assert largest_knob_within(size_of, 110, (1, 100)) == 1


def test_interrupted_run_resumes_without_recomputing(image_dir, tmp_path):
    cache = tmp_path / "cache"
    interrupted = HalfResolutionJpeg(name="fake", knobs=(20, 50, 80), interrupt_at_call=4)
    with pytest.raises(KeyboardInterrupt):
        run_bench(image_dir, [interrupted], tmp_path / "out", cache_dir=cache, write=False, quiet=True)
    assert interrupted.encode_calls == 4  # three measurements finished and were cached

    resumed = HalfResolutionJpeg(name="fake", knobs=(20, 50, 80))
    results = run_bench(image_dir, [resumed], tmp_path / "out", cache_dir=cache, write=False, quiet=True)
    assert resumed.encode_calls == 2 * 3 - 3
    assert len(results.records) == 6

    fresh = HalfResolutionJpeg(name="fake", knobs=(20, 50, 80))
    reference = run_bench(image_dir, [fresh], tmp_path / "fresh", cache_dir=tmp_path / "other", write=False, quiet=True)

    def essentials(records):
        return [{k: r[k] for k in ("image", "knob", "bytes", "psnr", "ms_ssim")} for r in records]

    assert essentials(results.records) == essentials(reference.records)


def test_cached_size_matching_is_not_redone(image_dir, tmp_path):
    def codecs():
        return [CountingCodec(HalfResolutionJpeg()), CountingCodec(two_quality_points(jpeg_codec(), (30, 60)))]

    first = codecs()
    run_bench(image_dir, first, tmp_path / "out", write=False, quiet=True)
    assert first[1].encode_calls > 2 * 2  # the sweep plus binary-search probes
    again = codecs()
    results = run_bench(image_dir, again, tmp_path / "out", write=False, quiet=True)
    assert [c.encode_calls for c in again] == [0, 0]
    assert len(results.matches) == 2 * 2


def test_bad_input_is_one_line_sdcodec_error(image_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SdcodecError, match="no images"):
        run_bench(empty, ["jpeg"], tmp_path / "out", quiet=True)
    with pytest.raises(SdcodecError, match="not found"):
        run_bench(tmp_path / "nowhere", ["jpeg"], tmp_path / "out", quiet=True)
    with pytest.raises(SdcodecError, match="unknown codec 'png'"):
        run_bench(image_dir, ["jpeg", "png"], tmp_path / "out", quiet=True)


def test_the_sdz_cache_key_follows_the_code_not_its_comments_or_docstrings():
    from sdcodec.benchmarks.codecs import code_of

    source = 'def f(x):\n    """Why."""\n    return x + 1  # add one\n'
    edited = 'def f(x):\n    """Why, said better."""\n\n    return (x + 1)\n'
    changed = 'def f(x):\n    """Why."""\n    return x + 2\n'
    assert code_of(source) == code_of(edited)
    assert code_of(source) != code_of(changed)
    assert code_of('"""A module."""\n') == code_of("")


def test_make_codecs_builds_by_name():
    built = make_codecs(["sdz", "jpeg", "webp", "avif", "jxl"], model="taef2:/weights", restore_steps=2)
    assert [c.name for c in built] == ["sdz", "jpeg", "webp", "avif", "jxl"]
    assert built[0].model_spec == "taef2:/weights" and built[0].restore_steps == 2
    assert built[0].label == "sdz (taef2, effort 1, restore 2)"
    assert all(c.unavailable_reason() is None for c in built[1:])


def test_sdz_effort_sweep_builds_one_codec_per_level():
    built = make_codecs(["sdz", "jpeg"], model="taef2:/weights", sdz_efforts=(1, 3))
    assert [c.name for c in built] == ["sdz", "sdz-e3", "jpeg"]
    assert [c.effort for c in built[:2]] == [1, 3]
    assert "effort 3" in built[1].label
    assert built[0].cache_id != built[1].cache_id  # results of one level never stand in for another


def test_sdz_adapter_round_trips_through_the_real_codec(tiny_vae_dir):
    adapter = SdzCodec(str(tiny_vae_dir), restore_steps=0, knobs=(40,))
    assert adapter.unavailable_reason() is None
    image = Image.new("RGB", (24, 16), (10, 120, 200))
    data = adapter.encode(image, 40)
    assert bitstream.read_sdz(data).width == 24
    decoded = adapter.decode(data)
    assert decoded.mode == "RGB" and decoded.size == (24, 16)
    assert adapter.encode(image, 10) != data  # the knob reaches the encoder


def test_negative_sdz_knob_is_a_bpp_ceiling_and_warm_up_survives_it(tiny_vae_dir):
    adapter = SdzCodec(str(tiny_vae_dir), restore_steps=0, knobs=(-80, 1))
    adapter.warmup()  # at quality 50: 0.08 bpp of a 64x64 image would be 40 bytes, below any file
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8))
    coarsest, finest = len(adapter.encode(image, 1)), len(adapter.encode(image, 100))
    ceiling_knob = -int(1000 * 8 * (coarsest + finest) / 2 / (64 * 96))  # a rate between the two
    data = adapter.encode(image, ceiling_knob)
    assert len(data) <= -ceiling_knob / 1000 * 64 * 96 / 8
    assert len(data) < finest


@pytest.mark.slow
def test_sdz_with_real_taef2_weights(image_dir, tmp_path):
    weights = SHARED / "weights" / "taef2"
    if not weights.is_dir():
        pytest.skip("../shared/weights/taef2 is absent")
    sdz = SdzCodec(f"taef2:{weights}", knobs=(20, 90))
    results = run_bench(image_dir, [sdz], tmp_path, max_images=1, write=False, quiet=True)
    low, high = results.records
    assert high["bytes"] > low["bytes"]
    assert high["psnr"] > 20


def test_reproduce_line_names_every_option(monkeypatch):
    monkeypatch.delenv("SDCODEC_SSIMULACRA2", raising=False)
    monkeypatch.setenv("SDCODEC_BUTTERAUGLI", "/opt/jxl/butteraugli_main")
    line = reproduce_command(
        "data/my images",
        ["sdz", "jpeg"],
        "out",
        model="taef2:w",
        sdz_knobs=[-80, 1, 10],
        sdz_efforts=[1, 2],
        max_images=3,
        cache_dir="c",
        crop_images=["a", "b"],
    )
    assert line == (
        "SDCODEC_BUTTERAUGLI=/opt/jxl/butteraugli_main sdcodec bench 'data/my images' --codecs sdz,jpeg "
        "--model taef2:w --restore-steps 0 --sdz-qualities=-80,1,10 --effort 1,2 --max-images 3 --cache c "
        "--crop-image a,b --out out"
    )
    default_knobs = ",".join(map(str, SDZ_DEFAULT_KNOBS))
    assert f"--sdz-qualities={default_knobs} --effort 1 " in reproduce_command("d", ["sdz"], "o")
    assert "--model" not in reproduce_command("d", ["jpeg"], "o")  # sdz options only when sdz ran


def test_the_reports_reproduce_line_reruns_the_same_benchmark(image_dir, tmp_path):
    """Run, take the report's Reproduce line, delete everything, run the line: same measurements."""
    out = tmp_path / "out"
    first = run_bench(image_dir, ["jpeg", "webp"], out, max_images=1, crop_image="img0", use_lpips=False, quiet=True)
    report = (out / "report.md").read_text()
    line = report.split("## Reproduce", 1)[1].split("```")[1].strip()
    assert line == first.command and "--max-images 1" in line and "--crop-image img0" in line
    shutil.rmtree(out)
    arguments = shlex.split(line)
    assert arguments[:2] == ["sdcodec", "bench"]
    done = CliRunner().invoke(app, [*arguments[1:], "--quiet"])  # the CLI's own parsing, in-process
    assert done.exit_code == 0, done.stderr
    again = json.loads((out / "results.json").read_text())["records"]

    def key(record):
        return (record["image"], record["codec"], record["knob"])

    assert sorted(map(key, again)) == sorted(map(key, first.records))
    by_key = {key(r): r for r in first.records}
    for record in again:
        assert record["bytes"] == by_key[key(record)]["bytes"]
        assert record["psnr"] == pytest.approx(by_key[key(record)]["psnr"], rel=1e-5)


def test_crops_cover_each_image_at_the_same_zoomed_size(image_dir, tmp_path):
    out = tmp_path / "out"
    run_bench(image_dir, [two_quality_points(jpeg_codec(), (20, 70)), two_quality_points(webp_codec(), (20, 70))],
              out, subject="jpeg", use_lpips=False, quiet=True)  # fmt: skip
    with Image.open(out / "crops.png") as crops:
        # 2 images (rows) x 3 columns (original, jpeg, webp): 48-pixel windows zoomed 2x, 36-pixel captions.
        assert crops.size == (3 * 96 + 2 * 4, 2 * (96 + 36))
        pixels = np.asarray(crops.convert("RGB"))
    tile = pixels[:96, :96]
    assert np.array_equal(tile[0::2, 0::2], tile[1::2, 1::2])  # nearest neighbour: 2x2 blocks of one colour
    report = (out / "report.md").read_text()
    assert "zoomed 2x by nearest neighbour" in report


def test_unknown_crop_image_is_one_line_error(image_dir, tmp_path):
    with pytest.raises(SdcodecError, match="--crop-image names no benchmarked image: nope"):
        run_bench(image_dir, ["jpeg"], tmp_path / "out", crop_image="img0,nope", quiet=True)
