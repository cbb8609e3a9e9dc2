"""The install adds one name to site-packages, and the coder works without torch."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_installs_only_sdcodec(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("sdcodec-*.whl")
    target = tmp_path / "site-packages"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    top_level = {path.name for path in target.iterdir() if not path.name.endswith(".dist-info")}
    assert top_level - {"bin"} == {"sdcodec"}
    assert (target / "sdcodec" / "bitstream" / "FORMAT.md").is_file()
    installed = {path.relative_to(target / "sdcodec").as_posix() for path in (target / "sdcodec").rglob("*.py")}
    assert {
        "__init__.py",
        "cli.py",
        "codec/commands/encode_decode.py",
        "bitstream/container.py",
        "codec/coding/latent_coder.py",
        "benchmarks/run.py",
        "ray/__init__.py",
    } <= installed
    assert not any(name.startswith("tests/") for name in installed)
    with zipfile.ZipFile(wheel) as archive:
        entry_points = next(n for n in archive.namelist() if n.endswith("entry_points.txt"))
        assert "sdcodec = sdcodec.cli:main" in archive.read(entry_points).decode()


def test_the_coder_and_the_container_import_without_torch():
    code = (
        "import sys, numpy as np\n"
        "import sdcodec, sdcodec.bitstream, sdcodec.codec.coding.latent_coder as coder\n"
        "data = coder.encode_latent(np.zeros((4, 8, 8)), step=0.5)\n"
        "assert coder.decode_latent(data).shape == (4, 8, 8)\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"
