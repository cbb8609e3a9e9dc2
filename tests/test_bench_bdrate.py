"""Bjøntegaard delta rate against cases computed by hand."""

import math

import pytest

from sdcodec.benchmarks.bdrate import bd_rate, bd_rate_detail
from sdcodec.benchmarks.report import bd_rate_summary

ANCHOR_RATE = [0.1, 0.25, 0.5, 1.0, 2.0]
ANCHOR_PSNR = [26.0, 29.5, 32.0, 35.5, 38.0]


def test_same_quality_at_080x_rate_is_minus_20_percent():
    test_rate = [0.8 * r for r in ANCHOR_RATE]
    assert bd_rate(ANCHOR_RATE, ANCHOR_PSNR, test_rate, ANCHOR_PSNR) == pytest.approx(-20.0, abs=1e-9)


def test_swapping_anchor_and_test_inverts_the_ratio():
    test_rate = [0.8 * r for r in ANCHOR_RATE]
    assert bd_rate(test_rate, ANCHOR_PSNR, ANCHOR_RATE, ANCHOR_PSNR) == pytest.approx(25.0, abs=1e-9)


def test_lower_is_better_metric_gives_the_same_answer():
    lpips = [0.5, 0.4, 0.3, 0.2, 0.1]  # falls as rate grows
    test_rate = [0.8 * r for r in ANCHOR_RATE]
    assert bd_rate(ANCHOR_RATE, lpips, test_rate, lpips) == pytest.approx(-20.0, abs=1e-9)


def test_only_the_overlapping_quality_interval_counts():
    # anchor: log R = q on q in [0, 2]; test: log R = q - 0.1 on q in [1, 3]; overlap [1, 2].
    anchor_q, test_q = [0.0, 1.0, 2.0], [1.0, 2.0, 3.0]
    anchor_rate = [math.exp(q) for q in anchor_q]
    test_rate = [math.exp(q - 0.1) for q in test_q]
    expected = (math.exp(-0.1) - 1) * 100
    assert bd_rate(anchor_rate, anchor_q, test_rate, test_q) == pytest.approx(expected, abs=1e-9)


def test_log_rate_difference_is_averaged_over_quality():
    # anchor log R = q, test log R = 0.5 q + 1 (both linear, which PCHIP reproduces exactly):
    # mean of (1 - 0.5 q) over [0, 2] is 0.5, so BD-rate = e^0.5 - 1.
    q = [0.0, 1.0, 2.0]
    anchor_rate = [math.exp(x) for x in q]
    test_rate = [math.exp(0.5 * x + 1) for x in q]
    assert bd_rate(anchor_rate, q, test_rate, q) == pytest.approx((math.exp(0.5) - 1) * 100, abs=1e-9)


def test_point_order_does_not_matter():
    test_rate = [0.8 * r for r in ANCHOR_RATE]
    shuffled = [3, 0, 4, 1, 2]
    value = bd_rate(
        [ANCHOR_RATE[i] for i in shuffled], [ANCHOR_PSNR[i] for i in shuffled], test_rate[::-1], ANCHOR_PSNR[::-1]
    )
    assert value == pytest.approx(-20.0, abs=1e-9)


def test_disjoint_curves_give_none():
    assert bd_rate([0.1, 0.2], [20.0, 22.0], [0.5, 1.0], [30.0, 34.0]) is None


def test_a_curve_with_one_quality_gives_none():
    assert bd_rate([0.1], [20.0], [0.5, 1.0], [19.0, 34.0]) is None
    assert bd_rate([0.1, 0.2], [20.0, 20.0], [0.5, 1.0], [19.0, 34.0]) is None


def test_detail_gives_the_interval_and_its_share_of_the_shorter_curve():
    # anchor covers quality [0, 2], test [1, 4]: they share [1, 2], half of the shorter (anchor) range.
    anchor_q, test_q = [0.0, 1.0, 2.0], [1.0, 2.5, 4.0]
    detail = bd_rate_detail([math.exp(q) for q in anchor_q], anchor_q, [math.exp(q) for q in test_q], test_q)
    assert (detail.low, detail.high) == (1.0, 2.0)
    assert detail.overlap == pytest.approx(0.5)
    assert detail.percent == pytest.approx(0.0, abs=1e-9)
    assert not detail.small_overlap


def test_a_narrow_overlap_is_flagged_small():
    anchor_q, test_q = [0.0, 1.0, 2.0], [1.8, 3.0, 4.0]
    detail = bd_rate_detail([1.0, 2.0, 4.0], anchor_q, [3.0, 6.0, 9.0], test_q)
    assert detail.overlap == pytest.approx(0.2 / 2.0)
    assert detail.small_overlap


def record(image, codec, knob, bpp, psnr, sweep=True):
    return {"image": image, "codec": codec, "knob": knob, "bpp": bpp, "psnr": psnr, "sweep": sweep}


def test_per_image_bd_rates_give_mean_and_spread():
    # image a: test needs 0.8x the anchor's rate; image b: 0.6x. Same qualities on both.
    records = []
    for image, factor in (("a", 0.8), ("b", 0.6)):
        for knob, (bpp, psnr) in enumerate(zip(ANCHOR_RATE, ANCHOR_PSNR)):
            records.append(record(image, "jpeg", knob, bpp, psnr))
            records.append(record(image, "sdz", knob, factor * bpp, psnr))
    records.append(record("a", "jpeg", 99, 9.0, 20.0, sweep=False))  # a size-matched point is off the curves
    summary = bd_rate_summary(records, "sdz", "jpeg", "psnr")
    assert summary["per_image_count"] == 2
    assert summary["per_image_mean"] == pytest.approx(-30.0)
    assert summary["per_image_sd"] == pytest.approx(math.sqrt(2) * 10.0)
    assert (summary["low"], summary["high"]) == (26.0, 38.0)
    assert summary["overlap"] == pytest.approx(1.0) and not summary["small_overlap"]
    assert -40.0 < summary["percent"] < -20.0  # the averaged curves lie between the two images


def test_summary_is_none_when_the_averaged_curves_do_not_overlap():
    records = [record("a", "jpeg", 1, 0.1, 20.0), record("a", "jpeg", 2, 0.2, 22.0)]
    records += [record("a", "sdz", 1, 0.1, 30.0), record("a", "sdz", 2, 0.2, 32.0)]
    assert bd_rate_summary(records, "sdz", "jpeg", "psnr") is None
