"""The numbers a benchmark report states: per-knob averaged curves, BD-rates, speed, size matches.

Curves are averaged per knob (the CompressAI convention): each point is the mean bpp and the mean
metric over all images coded at one quality setting. BD-rates compare those averaged curves.
"""

from __future__ import annotations

import statistics

from sdcodec.benchmarks.bdrate import bd_rate, bd_rate_detail


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
