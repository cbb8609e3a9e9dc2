"""Archive jobs and latent datasets against a real local Ray instance (one per session; no mocks).

Skips where Ray is not installed (``pip install -e '.[ray]'``) or cannot start on this machine.
The model is a random TAESD of ``tiny_sd`` (built in-process; an sd1 autoencoder whose actors load
no diffusers): the job's behaviour, not image quality, is under test.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray")
pytest.importorskip("pyarrow")

import sdcodec  # noqa: E402
from sdcodec.codec.archive import jobs, manifest  # noqa: E402
from sdcodec.codec.archive.ray_jobs import RayOptions  # noqa: E402

pytestmark = pytest.mark.slow  # a local Ray and an actor per job: about a minute for the file

ONE_ACTOR = RayOptions(actors=1)  # a few rows: one actor starts faster than two on a small machine


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray with 2 CPUs and a 200 MB object store, shared by every test of the session."""
    try:
        ray.init(num_cpus=2, object_store_memory=200 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - any reason Ray cannot start here is a skip
        pytest.skip(f"Ray cannot start here: {exc}")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """Three small images (two in a sub-directory) and one corrupt file named like an image."""
    root = tmp_path_factory.mktemp("archive-in")
    rng = np.random.default_rng(0)
    for name in ("a.png", "sub/b.png", "sub/c.jpg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(root / name, quality=95)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return root


@pytest.fixture(scope="session")
def encoded(ray_cluster, images, tiny_taesd_spec, tmp_path_factory):
    """The collection encoded once on Ray: (output dir, summary of the first run)."""
    out = tmp_path_factory.mktemp("archive-out")
    summary = jobs.encode_collection(
        [str(images)],
        str(out),
        encode_options={"model": tiny_taesd_spec, "quality": 60, "device": "cpu"},
        recursive=True,
        ray_options=ONE_ACTOR,
    )
    return out, summary


def rows_by_name(manifest_path) -> dict[str, dict]:
    return {os.path.basename(row["input"]): row for row in manifest.read_manifest(str(manifest_path))}


def test_encoding_writes_sdz_files_and_a_manifest_row_per_input(encoded, images):
    out, summary = encoded
    assert (summary.done, summary.skipped, summary.failed) == (3, 0, 1)
    assert summary.first_error.startswith("ImageReadError: ")
    rows = rows_by_name(out / "manifest.parquet")
    assert set(rows) == {"a.png", "b.png", "c.jpg", "broken.png"}
    for name, output in (("a.png", "a.sdz"), ("b.png", "sub/b.sdz"), ("c.jpg", "sub/c.sdz")):
        row, data = rows[name], (out / output).read_bytes()
        assert row["output"] == str(out / output) and row["error"] is None
        assert row["bytes"] == len(data) and row["sha256"] == hashlib.sha256(data).hexdigest()
        latent, header = sdcodec.read_latent(data)
        assert (row["width"], row["height"]) == (header.width, header.height) == (40, 24)
        assert row["latent_space"] == header.latent_space == "sd1"
        assert row["latent_shape"] == list(latent.shape) == [4, 3, 5]
        assert row["bpp"] == pytest.approx(8 * len(data) / (40 * 24))


def test_a_corrupt_input_is_a_row_with_its_error_not_a_failed_job(encoded):
    out, _ = encoded
    row = rows_by_name(out / "manifest.parquet")["broken.png"]
    assert row["error"].startswith("ImageReadError: ") and "broken.png" in row["error"]
    assert row["sha256"] is None and row["bytes"] is None
    assert not (out / "broken.sdz").exists()


def test_a_rerun_skips_intact_outputs_and_redoes_failed_and_altered_ones(encoded, images, tiny_taesd_spec):
    out, _ = encoded
    first = rows_by_name(out / "manifest.parquet")
    untouched = {name: (out / name).stat().st_mtime_ns for name in ("a.sdz", "sub/c.sdz")}
    altered = out / "sub/b.sdz"
    altered.write_bytes(altered.read_bytes()[:-1] + b"\0")  # same size, wrong bytes
    options = {"model": tiny_taesd_spec, "quality": 60, "device": "cpu"}
    summary = jobs.encode_collection(
        [str(images)], str(out), encode_options=options, recursive=True, ray_options=ONE_ACTOR
    )
    assert (summary.done, summary.skipped, summary.failed) == (1, 2, 1)
    assert {name: (out / name).stat().st_mtime_ns for name in untouched} == untouched
    again = rows_by_name(out / "manifest.parquet")
    assert again["b.png"]["sha256"] == first["b.png"]["sha256"] == hashlib.sha256(altered.read_bytes()).hexdigest()
    assert again == first  # one row per input, the same facts
    summary = jobs.encode_collection(
        [str(images)], str(out), encode_options=options, recursive=True, force=True, ray_options=ONE_ACTOR
    )
    assert (summary.done, summary.skipped, summary.failed) == (3, 0, 1)


def test_decoding_the_collection_writes_images_of_the_original_size(encoded, tiny_taesd_spec, tmp_path):
    out, _ = encoded
    options = {"decoder": tiny_taesd_spec, "restore_steps": 0, "device": "cpu"}
    summary = jobs.decode_collection(
        [str(out / "**" / "*.sdz")], str(tmp_path), decode_options=options, ray_options=ONE_ACTOR
    )
    assert (summary.done, summary.failed) == (3, 0)
    rows = rows_by_name(tmp_path / "manifest.parquet")
    assert set(rows) == {"a.sdz", "b.sdz", "c.sdz"}
    for name in ("a.png", "b.png", "c.png"):  # a glob's matches keep their names
        with Image.open(tmp_path / name) as image:
            assert image.size == (40, 24)
        row = rows[os.path.basename(name).replace(".png", ".sdz")]
        assert row["sha256"] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()


def test_read_sdz_gives_the_latents_read_latent_gives(encoded, ray_cluster):
    import sdcodec.ray

    out, _ = encoded
    captioned = out / "captioned.sdz"
    captioned.write_bytes(sdcodec.encode_latent(np.zeros((4, 2, 3), np.float32), step=0.5, caption="a cat"))
    rows = sdcodec.ray.read_sdz(str(out)).take_all()
    assert sorted(os.path.relpath(r["path"], out) for r in rows) == ["a.sdz", "captioned.sdz", "sub/b.sdz", "sub/c.sdz"]
    for row in rows:
        latent, header = sdcodec.read_latent(open(row["path"], "rb").read())
        assert np.array_equal(row["latent"], latent) and row["latent"].dtype == np.float32
        assert (row["caption"], row["latent_space"], list(row["latent_shape"])) == (
            header.caption,
            header.latent_space,
            list(latent.shape),
        )
    assert {os.path.basename(r["path"]): r["caption"] for r in rows}["captioned.sdz"] == "a cat"
    captioned.unlink()


def test_the_iterable_dataset_shards_files_across_dataloader_workers(encoded):
    import torch

    out, _ = encoded
    dataset = sdcodec.SdzLatentDataset(str(out))
    assert len(dataset) == 3
    assert sorted(sdcodec.SdzLatentDataset(str(out / "manifest.parquet")).files) == sorted(dataset.files)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)
    rows = list(loader)
    assert sorted(os.path.relpath(r["path"], out) for r in rows) == ["a.sdz", "sub/b.sdz", "sub/c.sdz"]
    for row in rows:
        latent, _ = sdcodec.read_latent(open(row["path"], "rb").read())
        assert isinstance(row["latent"], torch.Tensor) and torch.equal(row["latent"], torch.from_numpy(latent))


def test_the_cli_joins_a_running_cluster_keeps_foreign_files_and_exits_1_naming_the_manifest(
    ray_cluster, images, tiny_taesd_spec, tmp_path
):
    foreign = tmp_path / "c.sdz"  # a file the job did not write: kept, its row an error
    foreign.write_bytes(b"someone else's")
    command = [sys.executable, "-m", "sdcodec.cli", "archive", "encode", str(images / "**" / "*.*")]
    command += ["--out", str(tmp_path), "--model", tiny_taesd_spec, "--device", "cpu", "--ray", ray_cluster]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "error: 2 input(s) failed (first: " in result.stderr
    assert f"); all errors are in {tmp_path / 'manifest.parquet'}" in result.stderr
    assert foreign.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.rglob("*.sdz")) == ["a.sdz", "b.sdz", "c.sdz"]
    error = rows_by_name(tmp_path / "manifest.parquet")["c.jpg"]["error"]
    assert error == f"FileExistsError: {foreign} exists and is not this job's output (--force replaces it)"


def test_decoding_transparency_to_jpeg_is_a_noted_row_not_a_failure(ray_cluster, tiny_taesd_spec, tmp_path):
    pixels = np.zeros((24, 40, 4), dtype=np.uint8) + np.array([200, 120, 40, 255], dtype=np.uint8)
    pixels[:, :20, 3] = 0
    (tmp_path / "in").mkdir()
    data = sdcodec.encode_image(Image.fromarray(pixels), model=tiny_taesd_spec, device="cpu")
    (tmp_path / "in" / "t.sdz").write_bytes(data)
    options = {"decoder": tiny_taesd_spec, "restore_steps": 0, "device": "cpu"}
    summary = jobs.decode_collection(
        [str(tmp_path / "in")], str(tmp_path / "out"), decode_options=options, image_format="jpg", ray_options=ONE_ACTOR
    )
    assert (summary.done, summary.failed, summary.noted) == (1, 0, 1)
    assert "JPEG has no alpha channel" in summary.first_note
    row = rows_by_name(tmp_path / "out" / "manifest.parquet")["t.sdz"]
    assert row["notes"] == summary.first_note and row["error"] is None
    with Image.open(tmp_path / "out" / "t.jpg") as image:
        assert (image.mode, image.size) == ("RGB", (40, 24))
