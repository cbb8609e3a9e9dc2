"""Batch encode/decode (-o DIR, -r, --jobs): which files, which names, failures that do not stop the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sdcodec.cli import app
from sdcodec.codec.images.batch import BatchInputError, InputFile, expand_inputs, output_path

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def save_noise(path: Path, size=(20, 16), mode="RGB", seed=0) -> Path:
    rng = np.random.default_rng(seed)
    channels = len(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8), mode).save(path)
    return path


@pytest.fixture
def album(tmp_path) -> Path:
    """album/a.png, album/b.jpg, album/notes.txt, album/.hidden.png, album/trip/c.png"""
    root = tmp_path / "album"
    save_noise(root / "a.png")
    save_noise(root / "b.jpg", seed=1)
    save_noise(root / ".hidden.png", seed=2)
    save_noise(root / "trip" / "c.png", seed=3)
    (root / "notes.txt").write_text("not an image")
    return root


# --- expand_inputs and output names (no model) ---------------------------------------------------


def test_a_directory_gives_its_images_and_r_goes_below(album):
    flat = expand_inputs([album])
    assert [item.relative for item in flat] == [Path("a.png"), Path("b.jpg")]
    deep = expand_inputs([album], recursive=True)
    assert [item.relative for item in deep] == [Path("a.png"), Path("b.jpg"), Path("trip/c.png")]
    assert all(item.path.is_file() for item in deep)


def test_files_named_directly_are_taken_whatever_their_extension_and_once(album):
    items = expand_inputs([album / "notes.txt", album / "a.png", album, album / "a.png"])
    assert [item.relative for item in items] == [Path("notes.txt"), Path("a.png"), Path("b.jpg")]


def test_glob_patterns_and_missing_inputs(album):
    assert [i.relative for i in expand_inputs([str(album / "*.png")])] == [Path("a.png")]
    assert [i.relative for i in expand_inputs([str(album / "**" / "*.png")])] == [Path("a.png"), Path("c.png")]
    with pytest.raises(BatchInputError, match="no such file"):
        expand_inputs([album / "missing.png"])
    with pytest.raises(BatchInputError, match="no file matches"):
        expand_inputs([str(album / "*.gif")])


def test_sdz_suffixes_and_output_names(tmp_path):
    (tmp_path / "x.sdz").write_bytes(b"SDZ")
    save_noise(tmp_path / "y.png")
    assert [i.relative for i in expand_inputs([tmp_path], suffixes={".sdz"})] == [Path("x.sdz")]
    item = InputFile(tmp_path / "trip" / "photo.png", Path("trip/photo.png"))
    assert output_path(item, tmp_path / "out", ".sdz") == tmp_path / "out" / "trip" / "photo.sdz"


def test_batch_module_does_not_import_torch():
    code = "import sys, sdcodec.codec.images.batch as b; b.expand_inputs(['.']); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


# --- the commands ----------------------------------------------------------------------------------


def test_encode_a_tree_then_decode_it_keeping_names(tmp_path, album, tiny_vae_dir):
    out = tmp_path / "sdz"
    result = run("encode", album, "-r", "-o", out, "-m", tiny_vae_dir)
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.sdz")) == ["a.sdz", "b.sdz", "trip/c.sdz"]
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("encoded 3 file(s):") and "in," in summary and "bpp" in summary
    back = tmp_path / "back"
    result = run("decode", out, "-r", "-o", back, "-m", tiny_vae_dir, "--format", "webp", "-q")
    assert result.exit_code == 0 and result.stderr == ""
    assert sorted(p.relative_to(back).as_posix() for p in back.rglob("*")) == [
        "a.webp",
        "b.webp",
        "trip",
        "trip/c.webp",
    ]
    assert Image.open(back / "trip" / "c.webp").size == (20, 16)


def test_a_bad_file_fails_alone_and_the_batch_exits_1(tmp_path, album, tiny_vae_dir):
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.sdz").write_bytes(b"keep me")  # exists: not replaced without --force
    result = run("encode", album / "a.png", album / "notes.txt", album / "b.jpg", "-o", out, "-m", tiny_vae_dir)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "notes.txt" in errors[0] + errors[1] and "--force" in errors[0] + errors[1]
    assert (out / "a.sdz").read_bytes()[:3] == b"SDZ" and (out / "b.sdz").read_bytes() == b"keep me"
    assert not (out / "notes.sdz").exists() and not list(out.glob(".*"))
    assert result.stderr.strip().splitlines()[-1].startswith("encoded 1 file(s), 2 failed")


def test_two_inputs_with_one_output_name_are_refused_before_work(tmp_path, tiny_vae_dir):
    first, second = save_noise(tmp_path / "x" / "photo.png"), save_noise(tmp_path / "y" / "photo.png", seed=1)
    result = run("encode", first, second, "-o", tmp_path / "out", "-m", tiny_vae_dir, "-q")
    assert result.exit_code == 1 and "already writes" in result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["photo.sdz"]


def test_parallel_jobs_give_the_same_files(tmp_path, album, tiny_taesd_spec):
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    assert run("encode", album, "-o", serial, "-m", tiny_taesd_spec, "-q").exit_code == 0
    result = run("encode", album, "-o", parallel, "-m", tiny_taesd_spec, "--jobs", 2)  # real worker processes
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # progress and summary on stderr
    assert "encoded 2 file(s)" in result.stderr
    for name in ("a.sdz", "b.sdz"):
        assert (parallel / name).read_bytes() == (serial / name).read_bytes()


def test_a_model_that_does_not_load_stops_the_batch_with_one_line(tmp_path, album):
    result = run("encode", album, "-o", tmp_path / "out", "-m", tmp_path / "no-such-model")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1 and "no-such-model" in errors[0]


@pytest.mark.parametrize(
    "args",
    [
        ("encode", "a.png", "b.png", "c.png"),  # several inputs need -o
        ("encode", "-", "-o", "out"),  # - is for one file
        ("decode", "a.sdz", "b.png", "--format", "webp"),  # --format is for - and -o
        ("decode", "a.sdz", "-o", "out", "--format", "nosuchformat"),
    ],
)
def test_batch_usage_errors(args):
    result = run(*args)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 2


def test_a_directory_without_o_is_a_usage_error_that_says_how(album):
    result = run("encode", album, "x.sdz")
    assert result.exit_code == 2 and "-o DIR" in result.stderr


def test_no_files_found_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("encode", tmp_path / "empty", "-o", tmp_path / "out")
    assert result.exit_code == 1 and result.stderr.strip().splitlines() == [
        "error: no input files found (a directory is searched for its own files; -r searches below)"
    ]


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path, album, tiny_vae_dir):
    result = run("encode", album, "-r", "-o", tmp_path / "out", "-m", tiny_vae_dir)
    progress = [line for line in result.stderr.splitlines() if line.startswith("encoding ")]
    assert progress and progress[-1].startswith("encoding 3/3 (100%)")
    assert len(progress) <= 3  # periodic lines, not one per file and step


def test_what_a_file_loses_is_reported_per_file_in_a_batch(tmp_path, tiny_vae_dir):
    """A batch must not drop transparency (or metadata) silently: one line names the file and the loss."""
    save_noise(tmp_path / "in" / "logo.png", mode="RGBA")
    save_noise(tmp_path / "in" / "plain.png", seed=4)
    assert run("encode", tmp_path / "in", "-o", tmp_path / "sdz", "-m", tiny_vae_dir).exit_code == 0
    result = run("decode", tmp_path / "sdz", "-o", tmp_path / "jpg", "--format", "jpg", "-m", tiny_vae_dir)
    assert result.exit_code == 0, result.output
    losses = [line for line in result.stderr.splitlines() if "transparency" in line]
    assert len(losses) == 1 and "logo.sdz" in losses[0]
    assert "decoding 20x16 with" not in result.stderr  # what each file is doing is the progress bar's job
    quiet = run("decode", tmp_path / "sdz", "-o", tmp_path / "q", "--format", "jpg", "-m", tiny_vae_dir, "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_what_the_output_format_does_to_every_file_is_said_once(tmp_path, tiny_vae_dir):
    """GIF's palette applies to every colour image: one line for the run, not one a file."""
    for seed in (1, 2, 3):
        save_noise(tmp_path / "in" / f"p{seed}.png", seed=seed)
    assert run("encode", tmp_path / "in", "-o", tmp_path / "sdz", "-m", tiny_vae_dir).exit_code == 0
    result = run("decode", tmp_path / "sdz", "-o", tmp_path / "gif", "--format", "gif", "-m", tiny_vae_dir)
    assert result.exit_code == 0, result.output
    palette = [line for line in result.stderr.splitlines() if "256 colours" in line]
    assert palette == ["GIF holds at most 256 colours: colour images are saved with a palette"]
    assert sorted(path.name for path in (tmp_path / "gif").iterdir()) == ["p1.gif", "p2.gif", "p3.gif"]


def test_information_is_printed_once_as_it_is_and_losses_with_the_file(tmp_path, album):
    """The metric being measured into its cache is news about the run, not something a.png lost."""
    import io

    from rich.console import Console

    from sdcodec.codec.batch_run import FileResult, _collect_notices, run_batch

    def work(source, target):
        warnings, infos = [], []
        notice = _collect_notices(warnings, infos)
        if source.name == "a.png":
            notice("measuring tiny's channel metric, once for these weights (kept in /cache)")
        notice("encoding 20x16 with tiny")
        notice("ICC profile dropped: test")
        return FileResult(source, target, 1, 1, 1, warnings=tuple(warnings), infos=tuple(infos))

    stream = io.StringIO()
    ok = run_batch(
        work,
        [album],
        tmp_path / "out",
        output_suffix=".sdz",
        label="encoding",
        verb="encoded",
        console=Console(file=stream, width=400),
    )
    lines = stream.getvalue().splitlines()
    assert ok
    assert "measuring tiny's channel metric, once for these weights (kept in /cache)" in lines
    assert sorted(line for line in lines if "ICC" in line) == [
        f"{album / 'a.png'}: ICC profile dropped: test",
        f"{album / 'b.jpg'}: ICC profile dropped: test",
    ]
    assert not any("encoding 20x16" in line for line in lines)


def test_o_with_a_file_name_and_one_input_writes_that_file(tmp_path, album, tiny_vae_dir):
    """cwebp's habit, and gen's own -o: `encode a.png -o a.sdz` writes the file a.sdz, not a directory."""
    sdz = tmp_path / "a.sdz"
    result = run("encode", album / "a.png", "-o", sdz, "-m", tiny_vae_dir, "-q")
    assert result.exit_code == 0, result.output
    assert sdz.is_file()
    assert run("encode", album / "a.png", tmp_path / "ref.sdz", "-m", tiny_vae_dir, "-q").exit_code == 0
    assert sdz.read_bytes() == (tmp_path / "ref.sdz").read_bytes()  # the same file as INPUT OUTPUT writes
    png = tmp_path / "back.png"
    result = run("decode", sdz, "-o", png, "-m", tiny_vae_dir, "-q")
    assert result.exit_code == 0, result.output
    assert png.is_file() and Image.open(png).size == (20, 16)
    again = run("encode", album / "a.png", "-o", sdz, "-m", tiny_vae_dir, "-q")  # an existing file needs --force
    assert again.exit_code == 1 and "--force" in again.stderr


def test_o_keeps_meaning_a_directory_when_it_is_one_or_has_no_output_extension(tmp_path, album, tiny_vae_dir):
    existing = tmp_path / "made.sdz"
    existing.mkdir()
    assert run("encode", album / "a.png", "-o", existing, "-m", tiny_vae_dir, "-q").exit_code == 0
    assert (existing / "a.sdz").is_file()
    assert run("encode", album / "a.png", "-o", tmp_path / "out", "-m", tiny_vae_dir, "-q").exit_code == 0
    assert (tmp_path / "out" / "a.sdz").is_file()
    result = run("decode", existing / "a.sdz", "-o", tmp_path / "jpg", "-m", tiny_vae_dir, "-q")  # a format's name
    assert result.exit_code == 0 and (tmp_path / "jpg" / "a.png").is_file()


@pytest.mark.parametrize(
    "args",
    [
        ("encode", "a.png", "b.png", "-o", "out.sdz"),
        ("encode", "album", "-o", "out.sdz"),
        ("encode", "*.png", "-o", "out.sdz"),
        ("decode", "a.sdz", "b.sdz", "-o", "out.png"),
    ],
)
def test_o_with_a_file_name_and_several_inputs_is_a_usage_error(tmp_path, album, args, monkeypatch):
    monkeypatch.chdir(album.parent)
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "names a file" in result.stderr and not (album.parent / args[-1]).exists()
