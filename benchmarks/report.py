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
from datetime import datetime, timezone
from pathlib import Path

from sdcodec.benchmarks.metrics import HIGHER_IS_BETTER
from sdcodec.benchmarks.report_figures import plot_rd
from sdcodec.benchmarks.report_markdown import markdown
from sdcodec.benchmarks.report_summaries import (
    averaged_curve,
    bd_rate_summary,
    bd_rates,
    size_matched_summary,
    speed_and_memory,
)

METRICS = tuple(HIGHER_IS_BETTER)
RECORD_COLUMNS = (
    "image", "codec", "knob", "sweep", "width", "height", "bytes", "bpp", *METRICS, "ms_ssim_scales",
    "encode_s", "decode_s", "peak_rss_mb", "rss_increase_mb", "load_average",
)  # fmt: skip


def write_report(results, out_dir: str | Path, *, crops_path: Path | None = None) -> Path:
    """Write results.json, results.csv, size_matched.csv, rd_<metric>.png and report.md; return report.md."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metric_names = [m for m in METRICS if m not in results.metrics_unavailable]
    ran = [info for info in results.codecs if info.unavailable is None]
    curves, bd, bd_vs_jpeg = _curves_and_bd_rates(results, ran, metric_names)
    speed = {info.name: speed_and_memory(results.records, info.name) for info in ran}
    matched = size_matched_summary(results, metric_names) if results.matches else []
    meta = _meta(results)
    raw = {
        "meta": meta,
        "images": results.images,
        "codecs": [vars(info) for info in results.codecs],
        "records": results.records,
        "matches": results.matches,
        "unreachable": results.unreachable,
        "curves": curves,
        "bd_rate": bd,
        "bd_rate_vs_jpeg": bd_vs_jpeg,
        "size_matched": matched,
        "speed": speed,
    }
    (out_dir / "results.json").write_text(json.dumps(_rounded(raw), separators=(",", ":"), default=str))
    _write_csv(out_dir / "results.csv", RECORD_COLUMNS, results.records)
    if results.matches:
        _write_size_matched_csv(results, out_dir / "size_matched.csv")
    plots = {}
    for metric in metric_names:
        if any(curves[info.name][metric] for info in ran):
            plots[metric] = out_dir / f"rd_{metric}.png"
            plot_rd(results, metric, plots[metric])
    report = markdown(results, meta, ran, curves, bd, bd_vs_jpeg, speed, matched, metric_names, plots, crops_path)
    path = out_dir / "report.md"
    path.write_text(report)
    return path


def _curves_and_bd_rates(results, ran, metric_names: list[str]) -> tuple[dict, dict, dict]:
    """Each codec's averaged curves; the subject's BD-rates against each baseline; every codec's against JPEG."""
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
    return curves, bd, bd_vs_jpeg


def _meta(results) -> dict:
    """When, where and with what the report was made."""
    return {
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


def _write_size_matched_csv(results, path: Path) -> None:
    """One row per size match, with the matched file's size and metrics."""
    records = {(r["image"], r["codec"], r["knob"]): r for r in results.records}
    rows = []
    for match in results.matches:
        row = dict(match)
        record = records.get((match["image"], match["codec"], match["knob"]))
        for key in ("bytes", "bpp", *METRICS):
            row[key] = record.get(key) if record else None
        rows.append(row)
    columns = ("image", "subject_knob", "subject_bytes", "codec", "knob", "bytes", "bpp", *METRICS, "note")
    _write_csv(path, columns, rows)


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
