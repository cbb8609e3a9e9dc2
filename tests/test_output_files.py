"""Outputs appear complete or not at all, never replace what they must not, and survive kills (real processes)."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdcodec.codec.images.output_files import FORCE_FALLBACK_ENV, OutputError, check_output, write_output

REPO = Path(__file__).resolve().parents[1]

# A writer that takes about a second (20 chunks, 50 ms apart), so a signal lands mid-write.
SLOW_WRITER = """
import sys, time
sys.path.insert(0, {repo!r})
from sdcodec.codec.images.output_files import write_output
def write(out):
    for _ in range(20):
        out.write(b"{fill}" * 4096)
        out.flush()
        time.sleep(0.05)
print("start", flush=True)
sys.stdin.readline()  # "go": lets a test start several writers at the same moment
write_output(__import__("pathlib").Path({path!r}), write, force={force})
print("done", flush=True)
"""


def listing(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def slow_writer(path: Path, *, force=False, fill="a", fallback=False) -> subprocess.Popen:
    env = dict(os.environ, **({FORCE_FALLBACK_ENV: "1"} if fallback else {}))
    env.pop("SDCODEC_DEBUG", None)
    code = SLOW_WRITER.format(repo=str(REPO), path=str(path), force=force, fill=fill)
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert process.stdout.readline().strip() == "start"  # imports done
    return process


def go(*processes: subprocess.Popen) -> None:
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.8])
@pytest.mark.parametrize("existing", [False, True])
def test_sigkill_mid_write_leaves_the_directory_as_it_was(tmp_path, delay, existing):
    target = tmp_path / "out.sdz"
    if existing:
        target.write_bytes(b"old contents")
    before = listing(tmp_path)
    process = slow_writer(target, force=existing)
    go(process)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert listing(tmp_path) == before


@pytest.mark.parametrize("fallback", [False, True], ids=["O_TMPFILE", "part-file"])
def test_sigterm_mid_write_leaves_the_directory_as_it_was(tmp_path, fallback):
    """The CLI turns SIGTERM into SystemExit (cli.terminate); the fallback's .part file is removed on the way out."""
    target = tmp_path / "out.png"
    code = SLOW_WRITER.format(repo=str(REPO), path=str(target), force=False, fill="b")
    code = "import signal\nsignal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(SystemExit(143)))\n" + code
    env = dict(os.environ, **({FORCE_FALLBACK_ENV: "1"} if fallback else {}))
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert process.stdout.readline().strip() == "start"
    go(process)
    time.sleep(0.4)
    if fallback:
        assert any(p.name.endswith(".part") for p in tmp_path.iterdir())  # the fallback really writes a named file
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 143
    assert listing(tmp_path) == {}


@pytest.mark.parametrize("fallback", [False, True], ids=["O_TMPFILE", "part-file"])
def test_of_two_concurrent_writers_without_force_exactly_one_wins(tmp_path, fallback):
    target = tmp_path / "out.sdz"
    first = slow_writer(target, fill="x", fallback=fallback)
    second = slow_writer(target, fill="y", fallback=fallback)
    go(first, second)  # both pass the up-front check (no file yet), then race at the link
    results = [p.communicate(timeout=20) + (p.returncode,) for p in (first, second)]
    codes = sorted(code for _, _, code in results)
    assert codes[0] == 0 and codes[1] != 0
    loser_stderr = next(err for _, err, code in results if code != 0)
    assert "written meanwhile by another process" in loser_stderr and "OutputError" in loser_stderr
    contents = target.read_bytes()
    assert contents in (b"x" * 4096 * 20, b"y" * 4096 * 20)  # complete, from one writer only
    assert listing(tmp_path).keys() == {"out.sdz"}


def test_force_replaces_a_regular_file_with_the_usual_mode(tmp_path):
    target = tmp_path / "out.sdz"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match="exists; pass --force"):
        write_output(target, lambda out: out.write(b"new"), force=False)
    write_output(target, lambda out: out.write(b"new"), force=True)
    assert target.read_bytes() == b"new"
    umask = os.umask(0)
    os.umask(umask)
    fresh = tmp_path / "fresh.sdz"
    write_output(fresh, lambda out: out.write(b"1"), force=False)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
    assert sorted(listing(tmp_path)) == ["fresh.sdz", "out.sdz"]


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink"])
def test_only_regular_files_are_replaced_even_with_force(tmp_path, kind):
    target = tmp_path / "out.sdz"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    else:
        (tmp_path / "elsewhere").write_bytes(b"keep")
        target.symlink_to(tmp_path / "elsewhere")
    for force in (False, True):
        with pytest.raises(OutputError, match="refusing to replace"):
            check_output(target, force)
        with pytest.raises(OutputError, match="refusing to replace"):
            write_output(target, lambda out: out.write(b"x"), force=force)
    assert (tmp_path / "elsewhere").read_bytes() == b"keep" if kind == "symlink" else True


def test_a_failing_writer_leaves_nothing(tmp_path):
    def broken(out):
        out.write(b"partial")
        raise RuntimeError("encoder failed")

    for fallback in ("", "1"):
        os.environ[FORCE_FALLBACK_ENV] = fallback
        try:
            with pytest.raises(RuntimeError):
                write_output(tmp_path / "out.sdz", broken, force=False)
        finally:
            os.environ.pop(FORCE_FALLBACK_ENV)
        assert listing(tmp_path) == {}


def test_output_location_is_checked_before_the_work(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "missing" / "out.sdz", False)
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="not a directory"):
        check_output(tmp_path / "file" / "out.sdz", False)
    source = tmp_path / "in.png"
    source.write_bytes(b"")
    with pytest.raises(OutputError, match="also the input"):
        check_output(source, True, source)


def test_sigkill_of_the_real_cli_at_any_moment_leaves_the_directory_as_it_was(tmp_path, taef2_spec, kodak_dir):
    from PIL import Image

    Image.open(kodak_dir / "kodim23.png").crop((0, 0, 128, 128)).save(tmp_path / "in.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.sdz").write_bytes(b"existing")
    before = listing(out)
    command = [
        sys.executable,
        "-c",
        "import cli; cli.main()",
        "encode",
        str(tmp_path / "in.png"),
        str(out / "keep.sdz"),
        "--model",
        taef2_spec,
        "--force",
        "-q",
    ]
    for delay in (0.5, 2.0, 4.0):
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        after = listing(out)
        assert after.keys() == before.keys()  # nothing new, whatever the moment
        assert after["keep.sdz"] in (b"existing", (out / "keep.sdz").read_bytes())  # old, or a complete new file
        if after["keep.sdz"] != b"existing":
            from sdcodec.codec.coding import latent_coder

            latent_coder.decode_latent(after["keep.sdz"])  # complete and valid


def test_a_device_node_is_never_replaced(tmp_path):
    """As root, `--force /dev/null` once would have replaced /dev/null with a regular file."""
    device = Path("/dev/null")
    for force in (False, True):
        with pytest.raises(OutputError, match="not a regular file"):
            check_output(device, force)
        with pytest.raises(OutputError, match="not a regular file"):
            write_output(device, lambda out: out.write(b"x"), force=force)
    assert stat.S_ISCHR(os.stat(device).st_mode)


@pytest.mark.parametrize(
    "name, message",
    [
        ("x.heic", "HEIF is read but not written here"),  # pi-heif decodes only
        ("x.xyz", "cannot tell an image format to write from 'x.xyz'"),
        ("x.sdz", "decode writes an image"),
        ("x.xbm", "XBM cannot be written here .cannot write mode RGB"),  # 1-bit only
        ("x.h5", "HDF5 cannot be written here .HDF5 save handler not installed"),  # Pillow's stub
        ("x.ico", "ICO is an icon format: it would resize the picture"),  # ICO shrinks to 256x256 at most
        ("icns", "ICNS is an icon format"),
        ("x.pbm", "PBM holds 1-bit images"),  # Pillow's PPM writer would put P6 colour in it
    ],
)
def test_output_names_that_cannot_be_written_say_why(name, message):
    from sdcodec.codec.images.image_io import load_image  # noqa: F401 - registers the HEIF reader
    from sdcodec.codec.images.image_output import OutputError as FormatError
    from sdcodec.codec.images.image_output import output_format

    with pytest.raises(FormatError, match=message):
        output_format(name)
    assert output_format("x.PNG") == "PNG"


def test_gif_output_says_it_is_a_palette_and_keeps_transparency():
    """GIF reduces colour to 256 entries: said, reported as P; alpha (RGBA or LA) stays a transparent entry."""
    from sdcodec.codec.images.image_output import OutputError as FormatError
    from sdcodec.codec.images.image_output import check_quality, image_file_bytes

    with pytest.raises(FormatError, match=r"not GIF \(a palette of 256 colours\)"):
        check_quality("GIF", 80)

    rng = np.random.default_rng(3)
    rgba = np.concatenate([rng.integers(0, 256, (32, 48, 3)), np.full((32, 48, 1), 255)], axis=2).astype(np.uint8)
    rgba[:8, :8, 3] = 0
    for image in (Image.fromarray(rgba), Image.fromarray(rgba[..., [0, 3]], "LA")):
        notices = []
        data, mode = image_file_bytes(image, "GIF", notice=notices.append)
        back = Image.open(io.BytesIO(data))
        assert (mode, back.mode) == ("P", "P") and notices == [
            "GIF holds at most 256 colours: colour images are saved with a palette"
        ]
        alpha = np.asarray(back.convert("RGBA"))[..., 3]
        assert alpha[:8, :8].max() == 0 and alpha[8:, 8:].min() == 255
    notices = []
    gray = Image.fromarray(rgba[..., 0])
    data, mode = image_file_bytes(gray, "GIF", notice=notices.append)
    assert (
        mode == "P"
        and not notices
        and np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("L")), rgba[..., 0])
    )


@pytest.mark.filterwarnings("ignore:IM image format is deprecated:DeprecationWarning")
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
def test_every_format_decode_accepts_writes_every_decoded_mode_and_reports_it(mode):
    """Each output format takes RGB, RGBA, L and LA (converted where it lacks one), and the mode said is the file's."""
    from sdcodec.codec.images.image_output import OutputError as FormatError
    from sdcodec.codec.images.image_output import image_file_bytes, output_format

    Image.init()
    colour = {"RGB": (10, 200, 30), "RGBA": (10, 200, 30, 128), "L": 100, "LA": (100, 128)}[mode]
    image = Image.new(mode, (24, 16), colour)
    extensions = sorted({ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE})
    written = []
    for extension in extensions:
        try:
            image_format = output_format(extension)
        except FormatError:
            continue
        data, saved = image_file_bytes(image, image_format, notice=lambda message: None)
        if image_format not in ("EPS", "PDF"):  # Pillow reads these back only through Ghostscript / not at all
            with Image.open(io.BytesIO(data)) as back:
                assert back.mode == saved, (extension, mode, saved, back.mode)
        written.append(image_format)
    assert {"PNG", "JPEG", "WEBP", "TIFF", "GIF", "BMP", "DIB", "MPO", "QOI", "SGI", "TGA"} <= set(written)
