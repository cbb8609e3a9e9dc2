"""report.md: the benchmark's results as Markdown, one function per section, in the order they appear."""

from __future__ import annotations

import math
import os
from pathlib import Path

from sdcodec.benchmarks.bdrate import SMALL_OVERLAP
from sdcodec.benchmarks.metrics import METRIC_LABELS
from sdcodec.benchmarks.report_figures import CROP_BPP, CROP_SIZE, CROP_ZOOM


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


def markdown(results, meta, ran, curves, bd, bd_vs_jpeg, speed, matched, metric_names, plots, crops_path) -> str:
    """The whole report.md; a section whose figures are missing is left out."""
    labels = {info.name: info.label for info in results.codecs}
    lines = _overview(results, meta) + _metrics_section(results, meta)
    if bd:
        lines += _bd_rate_section(bd, labels, labels[results.subject])
    if bd_vs_jpeg:
        lines += _bd_rate_vs_jpeg_section(bd_vs_jpeg, labels, metric_names)
    if plots:
        lines += ["## Rate-distortion curves", ""]
        lines += [f"![{METRIC_LABELS[m]}]({p.name})" for m, p in plots.items()]
        lines.append("")
    if results.unreachable:
        lines += _unreachable_section(results.unreachable)
    if matched:
        lines += _size_matched_section(results.subject, matched, metric_names)
    if crops_path is not None:
        lines += _crops_section(results.subject, crops_path)
    lines += _averaged_curves_section(ran, curves, metric_names)
    lines += _speed_section(ran, speed, meta)
    if results.command:
        lines += ["## Reproduce", "", "```", results.command, "```", ""]
    lines += ["## Files", "", "- `results.json`: everything above plus every per-image measurement",
              "- `results.csv`: one row per image x codec x quality",
              "- `size_matched.csv`: one row per size match" if matched else "", ""]  # fmt: skip
    lines.append("Libraries: " + ", ".join(f"{k} {v}" for k, v in meta["libraries"].items()) + ".")
    return "\n".join(lines) + "\n"


def _unreachable_section(unreachable: list[dict]) -> list[str]:
    """Sweep points a codec refused (each with its one-line reason); the averaged curves lack them."""
    lines = ["## Points not reached", "",
             "These sweep points have no file (the codec refused them); each knob's averaged point is over the images that have one.",
             "", "| image | codec | knob | reason |", "| --- | --- | ---: | --- |"]  # fmt: skip
    lines += [f"| {u['image']} | {u['codec']} | {u['knob']} | {u['reason']} |" for u in unreachable]
    return lines + [""]


def _overview(results, meta) -> list[str]:
    """The title, what was measured where, and the codecs table."""
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
    return lines


def _metrics_section(results, meta) -> list[str]:
    """What each metric is, which implementation scored it, and which were unavailable."""
    lines = ["## Metrics", ""]
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
    return lines


def _bd_rate_vs_jpeg_section(bd_vs_jpeg: dict, labels: dict, metric_names: list[str]) -> list[str]:
    lines = ["## BD-rate of every codec against JPEG", ""]
    codecs = next(iter(bd_vs_jpeg.values()))
    rows = [[labels[c]] + [_percent(bd_vs_jpeg[m][c]) for m in metric_names] for c in codecs]
    return lines + _table(["codec"] + [METRIC_LABELS[m] for m in metric_names], rows)


def _size_matched_section(subject: str, matched: list[dict], metric_names: list[str]) -> list[str]:
    """Per subject quality and baseline: the images matched, the baseline's qualities, mean size and metrics."""
    lines = [
        "## Size-matched comparison",
        "",
        f"For each {subject} file, each baseline at the highest quality whose file is not larger "
        "(binary search over its quality, which assumes file size grows with quality). Means over the "
        "images where such a file exists; `quality` is the range of the baseline's chosen qualities.",
        "",
    ]
    header = [f"{subject} q", "codec", "images", "quality", "mean bytes", "mean bpp"]
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
    return lines + _table(header, rows)


def _crops_section(subject: str, crops_path) -> list[str]:
    return [
        "## Side-by-side crops at about equal size",
        "",
        f"Per image (row), {subject}'s file nearest {CROP_BPP} bpp, and each baseline at its highest "
        f"quality whose file is not larger; the same {CROP_SIZE}x{CROP_SIZE} (at most) window (the most detailed one) of "
        f"each, zoomed {CROP_ZOOM}x by nearest neighbour. S2: SSIMULACRA 2 of the whole image.",
        "",
        f"![crops]({Path(crops_path).name})",
        "",
    ]


def _averaged_curves_section(ran, curves: dict, metric_names: list[str]) -> list[str]:
    """One table per codec that ran: each quality's images, mean bpp and mean metrics."""
    lines = ["## Averaged curves", ""]
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
    return lines


def _speed_section(ran, speed: dict, meta: dict) -> list[str]:
    """Seconds and memory per codec, with the load they were measured under."""
    lines = ["## Speed and memory", ""]
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
    return lines
