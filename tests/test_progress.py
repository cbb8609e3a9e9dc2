"""Progress that suits where stderr goes (codec/progress.py): a bar on a terminal, a line now and then
in a log, nothing with -q; and the commands that use it (gen, bench, batch)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from sdcodec.codec.progress import Progress


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=terminal, width=100, color_system=None), buffer


def test_a_log_gets_the_first_line_the_last_and_one_per_interval():
    target, buffer = console(terminal=False)
    with Progress("encoding", total=50, console=target, interval=3600) as bar:
        for index in range(50):
            bar.advance(f"file{index}.png")
    assert buffer.getvalue().splitlines() == [
        "encoding 1/50 (2%), 0s: file0.png",
        "encoding 50/50 (100%), 0s: file49.png",
    ]


def test_with_no_interval_every_update_is_a_line_and_unknown_totals_print_counts():
    target, buffer = console(terminal=False)
    with Progress("step", console=target, interval=0) as bar:
        bar.update(1)
        bar.update(2)
    assert buffer.getvalue().splitlines() == ["step 1, 0s", "step 2, 0s"]


def test_a_terminal_gets_a_bar_and_quiet_gets_nothing_but_printed_errors():
    target, buffer = console(terminal=True)
    with Progress("decoding", total=4, console=target) as bar:
        bar.print("error: x.sdz: truncated")
        bar.update(4, detail="x.sdz")
    text = buffer.getvalue()
    assert "error: x.sdz: truncated" in text and "4/4" in text and "━" in text  # rich's bar
    target, buffer = console(terminal=False)
    with Progress("decoding", total=4, console=target, quiet=True) as bar:
        bar.update(2)
        bar.print("error: one line")
    assert buffer.getvalue() == "error: one line\n"


def test_gen_in_a_log_prints_a_few_lines_not_one_per_step(tmp_path, tiny_pipeline_dir):
    from sdcodec.cli import app

    args = ["gen", "a cat", "-o", str(tmp_path / "cat.png"), "--steps", "25", "-W", "32", "-H", "32"]
    result = CliRunner().invoke(app, [*args, "--seed", "1", "--model", str(tiny_pipeline_dir), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    steps = [line for line in result.stderr.splitlines() if line.startswith("denoising step")]
    assert 1 <= len(steps) <= 4 and steps[-1].startswith("denoising step 25/25 (100%)")


def test_bench_in_a_log_shows_progress(tmp_path, capsys):
    from sdcodec.benchmarks.codecs import jpeg_codec
    from sdcodec.benchmarks.run import run_bench

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(images / f"img{index}.png")
    codec = jpeg_codec()
    codec.knobs = (30, 70)
    run_bench(images, [codec], tmp_path / "out", subject="jpeg", use_lpips=False, write=False)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("benchmark ")]
    assert lines and lines[0].startswith("benchmark 0/4") and lines[-1].startswith("benchmark 4/4 (100%)")
