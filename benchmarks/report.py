"""Write a benchmark's results: raw JSON and CSV, averaged curves, BD-rates, RD plots, crops, report.md.

Curves are averaged per knob (the CompressAI convention): each point is the mean bpp and the mean
metric over all images coded at one quality setting. BD-rates compare those averaged curves.
The size-matched protocol's table is the per-image comparison at (at most) equal file size.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import statistics
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from sdcodec.benchmarks.bdrate import SMALL_OVERLAP, bd_rate, bd_rate_detail
from sdcodec.benchmarks.metrics import HIGHER_IS_BETTER, METRIC_LABELS

METRICS = tuple(HIGHER_IS_BETTER)
RECORD_COLUMNS = (
    "image", "codec", "knob", "sweep", "width", "height", "bytes", "bpp", *METRICS, "ms_ssim_scales",
    "encode_s", "decode_s", "peak_rss_mb", "rss_increase_mb", "load_average",
)  # fmt: skip
CROP_SIZE = 128  # pixels of the source image per crop
CROP_ZOOM = 2  # nearest-neighbour zoom of every crop
CROP_BPP = 0.2  # the subject's file nearest this rate sets each crop row's rate (low-rate region)


def averaged_curve(records: list[dict], codec: str, metric: str) -> list[dict]:
    """Per-knob averages over images of one codec's sweep: [{knob, bpp, value, images}] by mean bpp."""
    by_knob: dict[int, list[dict]] = {}
    for record in records:
        if record["codec"] == codec and record.get("sweep", True) and record.get(metric) is not None:
            by_knob.setdefault(record["knob"], []).append(record)
    curve = [
        {
            "knob": knob,
            "bpp": statistics.fmean(r["bpp"] for r in rows),
            "value": statistics.fmean(r[metric] for r in rows),
            "images": len(rows),
        }
        for knob, rows in by_knob.items()
    ]
    return sorted(curve, key=lambda point: point["bpp"])


def bd_rates(records: list[dict], test: str, anchors: list[str], metric: str) -> dict[str, float | None]:
    """BD-rate (%) of `test` against each anchor on the per-knob averaged curves (None: no overlap)."""
    test_curve = averaged_curve(records, test, metric)
    rates = {}
    for anchor in anchors:
        anchor_curve = averaged_curve(records, anchor, metric)
        rates[anchor] = bd_rate(
            [p["bpp"] for p in anchor_curve],
            [p["value"] for p in anchor_curve],
            [p["bpp"] for p in test_curve],
            [p["value"] for p in test_curve],
        )
    return rates


def bd_rate_summary(records: list[dict], test: str, anchor: str, metric: str) -> dict | None:
    """BD-rate of `test` against `anchor` on the averaged curves, with its quality interval, and the
    per-image BD-rates (each image's own sweep curves) as mean, standard deviation and count.

    None when the averaged curves do not overlap. Per-image figures leave out images whose curves
    do not overlap; `per_image_sd` is None below two images.
    """
    test_curve, anchor_curve = averaged_curve(records, test, metric), averaged_curve(records, anchor, metric)
    detail = bd_rate_detail(
        [p["bpp"] for p in anchor_curve],
        [p["value"] for p in anchor_curve],
        [p["bpp"] for p in test_curve],
        [p["value"] for p in test_curve],
    )
    if detail is None:
        return None
    per_image = []
    for image in dict.fromkeys(r["image"] for r in records):
        curves = {}
        for codec in (test, anchor):
            rows = [r for r in records if r["image"] == image and r["codec"] == codec and r.get("sweep", True)]
            curves[codec] = [(r["bpp"], r[metric]) for r in rows if r.get(metric) is not None]
        value = bd_rate(*zip(*curves[anchor]), *zip(*curves[test])) if curves[anchor] and curves[test] else None
        if value is not None:
            per_image.append(value)
    return {
        "percent": detail.percent,
        "low": detail.low,
        "high": detail.high,
        "overlap": detail.overlap,
        "small_overlap": detail.small_overlap,
        "per_image_mean": statistics.fmean(per_image) if per_image else None,
        "per_image_sd": statistics.stdev(per_image) if len(per_image) > 1 else None,
        "per_image_count": len(per_image),
    }


def speed_and_memory(records: list[dict], codec: str) -> dict:
    """Mean encode/decode seconds and the largest memory figures over a codec's measurements."""
    rows = [r for r in records if r["codec"] == codec]
    peaks = [r["peak_rss_mb"] for r in rows if r.get("peak_rss_mb") is not None]
    increases = [r["rss_increase_mb"] for r in rows if r.get("rss_increase_mb") is not None]
    loads = [r["load_average"] for r in rows if r.get("load_average") is not None]
    return {
        "measurements": len(rows),
        "encode_s": statistics.fmean(r["encode_s"] for r in rows) if rows else None,
        "decode_s": statistics.fmean(r["decode_s"] for r in rows) if rows else None,
        "peak_rss_mb": max(peaks) if peaks else None,
        "rss_increase_mb": max(increases) if increases else None,
        "load_average": statistics.fmean(loads) if loads else None,
    }


def size_matched_summary(results, metric_names) -> list[dict]:
    """Per subject knob and codec: images matched and mean bytes/bpp/metrics over the matched images."""
    records = {(r["image"], r["codec"], r["knob"]): r for r in results.records}
    summary = []
    subject_knobs = sorted({m["subject_knob"] for m in results.matches})
    baselines = list(dict.fromkeys(m["codec"] for m in results.matches))
    for subject_knob in subject_knobs:
        matches = [m for m in results.matches if m["subject_knob"] == subject_knob]
        images = sorted({m["image"] for m in matches})
        for codec in [results.subject, *baselines]:
            if codec == results.subject:
                rows = [records[(image, codec, subject_knob)] for image in images]
                knobs = [subject_knob]
            else:
                hits = [m for m in matches if m["codec"] == codec and m["knob"] is not None]
                rows = [records[(m["image"], codec, m["knob"])] for m in hits]
                knobs = [m["knob"] for m in hits]
            entry = {"subject_knob": subject_knob, "codec": codec, "images": len(rows), "of": len(images)}
            entry["knob_range"] = [min(knobs), max(knobs)] if knobs else None
            for key in ("bytes", "bpp", *metric_names):
                values = [r[key] for r in rows if r.get(key) is not None]
                entry[key] = statistics.fmean(values) if values else None
            summary.append(entry)
    return summary


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


def make_crops(images, subject, baselines, results, bench, out_dir: Path) -> Path:
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
        knob = min(reference.knobs, key=lambda k: abs(bench.record(reference, image, k)["bpp"] - CROP_BPP))
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


def write_report(results, out_dir: str | Path, *, crops_path: Path | None = None) -> Path:
    """Write results.json, results.csv, size_matched.csv, rd_<metric>.png and report.md; return report.md."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metric_names = [m for m in METRICS if m not in results.metrics_unavailable]
    ran = [info for info in results.codecs if info.unavailable is None]
    subject_ran = any(info.name == results.subject for info in ran)
    baselines = [info.name for info in ran if info.name != results.subject]

    curves = {info.name: {m: averaged_curve(results.records, info.name, m) for m in metric_names} for info in ran}
    bd = {}
    if subject_ran:
        bd = {m: {b: bd_rate_summary(results.records, results.subject, b, m) for b in baselines} for m in metric_names}
    bd_vs_jpeg = {}
    if "jpeg" in baselines:
        others = [info.name for info in ran if info.name != "jpeg"]
        bd_vs_jpeg = {m: {c: bd_rates(results.records, c, ["jpeg"], m)["jpeg"] for c in others} for m in metric_names}
    speed = {info.name: speed_and_memory(results.records, info.name) for info in ran}
    matched = size_matched_summary(results, metric_names) if results.matches else []

    meta = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "image_dir": results.image_dir,
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "process_max_rss_mb": _process_max_rss_mb(),
        "libraries": _library_versions(),
        "subject": results.subject,
        "averaging": "per-knob averages (mean bpp and mean metric over all images at each quality setting)",
        "metrics_unavailable": results.metrics_unavailable,
        "metric_implementations": results.metric_implementations,
        "command": results.command,
    }
    raw = {
        "meta": meta,
        "images": results.images,
        "codecs": [vars(info) for info in results.codecs],
        "records": results.records,
        "matches": results.matches,
        "curves": curves,
        "bd_rate": bd,
        "bd_rate_vs_jpeg": bd_vs_jpeg,
        "size_matched": matched,
        "speed": speed,
    }
    (out_dir / "results.json").write_text(json.dumps(_rounded(raw), separators=(",", ":"), default=str))
    _write_csv(out_dir / "results.csv", RECORD_COLUMNS, results.records)
    if results.matches:
        records = {(r["image"], r["codec"], r["knob"]): r for r in results.records}
        rows = []
        for match in results.matches:
            row = dict(match)
            record = records.get((match["image"], match["codec"], match["knob"]))
            for key in ("bytes", "bpp", *METRICS):
                row[key] = record.get(key) if record else None
            rows.append(row)
        columns = ("image", "subject_knob", "subject_bytes", "codec", "knob", "bytes", "bpp", *METRICS, "note")
        _write_csv(out_dir / "size_matched.csv", columns, rows)

    plots = {}
    for metric in metric_names:
        if any(curves[info.name][metric] for info in ran):
            plots[metric] = out_dir / f"rd_{metric}.png"
            plot_rd(results, metric, plots[metric])

    report = _markdown(results, meta, ran, curves, bd, bd_vs_jpeg, speed, matched, metric_names, plots, crops_path)
    path = out_dir / "report.md"
    path.write_text(report)
    return path


def _write_csv(path: Path, columns, rows) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else _rounded(row.get(k))) for k in columns})


def _rounded(value):
    """Floats to 6 significant digits (far beyond what the measurements resolve), recursively."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def _process_max_rss_mb() -> float | None:
    """Peak resident memory of this whole process so far (models, metrics and all)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("pillow", "imagecodecs", "scikit-image", "scipy", "numpy", "torch", "ssimulacra2", "lpips",
                    "dists-pytorch"):  # fmt: skip
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            pass
    return versions


def _number(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def _seconds(value) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _percent(value) -> str:
    return "n/a (curves do not overlap)" if value is None else f"{value:+.1f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _metric_digits(metric: str) -> int:
    return 2 if metric in ("psnr", "ms_ssim_db", "ssimulacra2", "butteraugli", "butteraugli_3norm") else 4


def _bd_rate_section(bd: dict, labels: dict, subject_label: str) -> list[str]:
    """One row per metric and anchor: averaged-curve BD-rate, its quality interval, per-image spread."""
    lines = [f"## BD-rate of {subject_label} against each baseline", ""]
    lines.append(
        "Negative: sdz needs that many fewer bits for the same quality (piecewise-cubic Bjøntegaard). "
        "`averaged curves`: on the per-knob averaged curves, over the quality interval both cover "
        "(`interval`; `overlap`: its share of the shorter curve's quality range, flagged below "
        f"{SMALL_OVERLAP:.0%}). `per image`: mean ± standard deviation of each image's own BD-rate "
        "(images whose curves overlap)."
    )
    lines.append("")
    rows, warnings = [], []
    for metric, by_anchor in bd.items():
        digits = _metric_digits(metric)
        for anchor, entry in by_anchor.items():
            if entry is None:
                rows.append([METRIC_LABELS[metric], labels[anchor], "n/a (curves do not overlap)", "", "", ""])
                continue
            interval = f"{entry['low']:.{digits}f} to {entry['high']:.{digits}f}"
            overlap = f"{entry['overlap']:.0%}" + (" **small**" if entry["small_overlap"] else "")
            spread = "n/a" if entry["per_image_sd"] is None else f"{entry['per_image_sd']:.1f}"
            per_image = "n/a" if entry["per_image_mean"] is None else f"{entry['per_image_mean']:+.1f}% ± {spread}"
            rows.append([METRIC_LABELS[metric], labels[anchor], _percent(entry["percent"]), interval, overlap,
                         f"{per_image} ({entry['per_image_count']} images)"])  # fmt: skip
            if entry["small_overlap"]:
                warnings.append(f"{METRIC_LABELS[metric]} vs {labels[anchor]} ({entry['overlap']:.0%})")
    lines += _table(["metric", "anchor", "averaged curves", "interval", "overlap", "per image"], rows)
    if warnings:
        lines += ["**Warning: small overlap**, these figures cover a narrow quality interval: "
                  + "; ".join(warnings) + ".", ""]  # fmt: skip
    return lines


def _markdown(results, meta, ran, curves, bd, bd_vs_jpeg, speed, matched, metric_names, plots, crops_path) -> str:
    labels = {info.name: info.label for info in results.codecs}
    sizes = sorted({(im["width"], im["height"]) for im in results.images})
    lines = [
        "# sdcodec rate-distortion benchmark",
        "",
        f"{len(results.images)} images from `{Path(results.image_dir).name}` "
        f"({', '.join(f'{w}x{h}' for w, h in sizes)}); created {meta['created']} on "
        f"{meta['machine']['platform']}, {meta['machine']['cpus']} CPUs.",
        "Rate is the whole file (container and headers included) in bits per pixel.",
        f"Curves and BD-rates use {meta['averaging']}.",
        "",
        "## Codecs",
        "",
    ]
    rows = [
        [f"`{info.name}`", info.label, ", ".join(map(str, info.knobs)), info.settings, info.unavailable or "ran"]
        for info in results.codecs
    ]
    lines += _table(["codec", "implementation", "quality knobs", "settings", "status"], rows)
    if any(info.name.startswith("sdz") for info in results.codecs):
        lines += ["sdz knobs: 1-100 is sdcodec's quality; -N is a rate ceiling of N/1000 bpp (below quality 1).", ""]
    lines += [
        "Not compared: mozjpeg (PyPI has no mozjpeg encoder binding, only the lossless optimizer "
        "mozjpeg-lossless-optimization) and jpegli (PyPI's pyjpegli 0.3.2 is a young single-maintainer "
        "binding with a quality-only API; not added).",
        "",
    ]

    lines += ["## Metrics", ""]
    lines.append(
        "PSNR over RGB (8-bit); SSIM and MS-SSIM (Gaussian 11x11, sigma 1.5, mean over RGB channels, "
        "scikit-image / scipy); MS-SSIM (dB) is -10 log10(1 - MS-SSIM), as CompressAI plots it. "
        "SSIMULACRA 2 (higher is better: 90 visually lossless, 70 high, 50 medium, 30 low quality) and "
        "Butteraugli (a distance, lower is better: about 1 is just noticeable; max and 3-norm) are the "
        "JPEG XL / AVIF teams' perceptual metrics."
    )
    for metric, implementation in meta["metric_implementations"].items():
        lines.append(f"{METRIC_LABELS[metric]}: {implementation}.")
    scales = {r.get("ms_ssim_scales") for r in results.records if r.get("ms_ssim_scales")}
    if scales and min(scales) < 5:
        lines.append(f"MS-SSIM used {min(scales)} scale(s) on the smallest images (5 need a side above 160 pixels).")
    for metric, reason in results.metrics_unavailable.items():
        lines.append(f"**{METRIC_LABELS.get(metric, metric)}: unavailable**: {reason}.")
    lines.append("")

    if bd:
        lines += _bd_rate_section(bd, labels, labels[results.subject])
    if bd_vs_jpeg:
        lines += ["## BD-rate of every codec against JPEG", ""]
        codecs = next(iter(bd_vs_jpeg.values()))
        rows = [[labels[c]] + [_percent(bd_vs_jpeg[m][c]) for m in metric_names] for c in codecs]
        lines += _table(["codec"] + [METRIC_LABELS[m] for m in metric_names], rows)

    if plots:
        lines += ["## Rate-distortion curves", ""]
        lines += [f"![{METRIC_LABELS[m]}]({p.name})" for m, p in plots.items()]
        lines.append("")

    if matched:
        lines += [
            "## Size-matched comparison",
            "",
            f"For each {results.subject} file, each baseline at the highest quality whose file is not larger "
            "(binary search over its quality, which assumes file size grows with quality). Means over the "
            "images where such a file exists; `quality` is the range of the baseline's chosen qualities.",
            "",
        ]
        header = [f"{results.subject} q", "codec", "images", "quality", "mean bytes", "mean bpp"]
        header += [METRIC_LABELS[m] for m in metric_names]
        rows = []
        for entry in matched:
            knob_range = entry["knob_range"]
            quality = (
                ""
                if knob_range is None
                else (str(knob_range[0]) if knob_range[0] == knob_range[1] else f"{knob_range[0]}-{knob_range[1]}")
            )
            rows.append(
                [entry["subject_knob"], entry["codec"], f"{entry['images']}/{entry['of']}", quality,
                 _number(entry["bytes"], 0), _number(entry["bpp"])]
                + [_number(entry[m], _metric_digits(m)) for m in metric_names]
            )  # fmt: skip
        lines += _table(header, rows)

    if crops_path is not None:
        lines += [
            "## Side-by-side crops at about equal size",
            "",
            f"Per image (row), {results.subject}'s file nearest {CROP_BPP} bpp, and each baseline at its highest "
            f"quality whose file is not larger; the same {CROP_SIZE}x{CROP_SIZE} (at most) window (the most detailed one) of "
            f"each, zoomed {CROP_ZOOM}x by nearest neighbour. S2: SSIMULACRA 2 of the whole image.",
            "",
            f"![crops]({Path(crops_path).name})",
            "",
        ]

    lines += ["## Averaged curves", ""]
    for info in ran:
        points = curves[info.name][metric_names[0]] if metric_names else []
        if not points:
            continue
        by_metric = {m: {p["knob"]: p["value"] for p in curves[info.name][m]} for m in metric_names}
        rows = [
            [p["knob"], p["images"], _number(p["bpp"])]
            + [_number(by_metric[m].get(p["knob"]), _metric_digits(m)) for m in metric_names]
            for p in points
        ]
        lines += [f"**{info.label}**", ""]
        lines += _table(["quality", "images", "bpp"] + [METRIC_LABELS[m] for m in metric_names], rows)

    lines += ["## Speed and memory", ""]
    lines.append(
        "Seconds per image (wall clock, this machine, taken when each measurement was first made), "
        "mean over all measurements; memory is this process's resident set, sampled every 5 ms during "
        "encode + decode. First call: warm-up (model loading) before the first timed measurement of "
        "this run, for codecs that load a model."
    )
    lines.append(
        f"Load: mean 1-minute load average while the measurements were made, on {os.cpu_count()} CPUs; "
        "above the CPU count, other jobs competed for the CPUs and the times are upper bounds."
    )
    lines.append("")
    rows = []
    for info in ran:
        s = speed[info.name]
        rows.append([
            info.label, s["measurements"], _seconds(s["encode_s"]), _seconds(s["decode_s"]),
            _number(s["peak_rss_mb"], 0), _number(s["rss_increase_mb"], 0), _seconds(info.first_call_s),
            _number(s["load_average"], 1),
        ])  # fmt: skip
    header = ["codec", "measurements", "encode s", "decode s", "peak RSS MB", "max RSS increase MB", "first call s",
              "load"]  # fmt: skip
    lines += _table(header, rows)
    if meta["process_max_rss_mb"] is not None:
        lines += [f"Peak resident memory of the whole benchmark process: {meta['process_max_rss_mb']:.0f} MB.", ""]

    if results.command:
        lines += ["## Reproduce", "", "```", results.command, "```", ""]
    lines += ["## Files", "", "- `results.json`: everything above plus every per-image measurement",
              "- `results.csv`: one row per image x codec x quality",
              "- `size_matched.csv`: one row per size match" if matched else "", ""]  # fmt: skip
    lines.append("Libraries: " + ", ".join(f"{k} {v}" for k, v in meta["libraries"].items()) + ".")
    return "\n".join(line for line in lines) + "\n"
