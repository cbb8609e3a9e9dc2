"""Encode or decode a collection on Ray Data: rows of URIs -> actors that hold the model -> a manifest.

Only URIs travel through Ray's object store: each actor reads its inputs from storage and writes
its outputs there, so the object store holds rows of a few hundred bytes, never pixels, and a
small ``object_store_memory`` suffices for any collection. Each actor loads the model once
(``map_batches`` with a callable class) and gets a share of a GPU when the cluster has GPUs, CPUs otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sdcodec.codec.archive import manifest
from sdcodec.codec.archive.inputs import Row
from sdcodec.codec.errors import SdcodecError

DEFAULT_OBJECT_STORE_MB = 256  # a local start's object store: rows are small (see the module docstring)
DEFAULT_BATCH_SIZE = 4  # rows per actor call: small, so work spreads evenly and progress is frequent
ROWS_PER_BLOCK = 1000  # rows per Ray block: blocks stream to the actors as they free up


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a job runs.

    ``address``: a cluster (or ``auto``; default ``$RAY_ADDRESS``), else a local Ray is started with
    ``num_cpus`` CPUs and an object store of ``object_store_mb``. ``actors``: model replicas (default
    one per CPU, or ``actors_per_gpu`` per GPU: several per GPU let one entropy-code on the CPU while
    another runs the VAE). ``batch_size``: rows per actor call.
    """

    address: str | None = None
    actors: int | None = None
    actors_per_gpu: int = 1
    batch_size: int = DEFAULT_BATCH_SIZE
    object_store_mb: int = DEFAULT_OBJECT_STORE_MB
    num_cpus: int | None = None


@dataclass
class JobSummary:
    """What a job did: rows done now, rows skipped as already done and intact, rows that failed (and the first
    error), rows whose output format lost something (and the first such note)."""

    done: int
    skipped: int
    failed: int
    manifest: str
    first_error: str | None = None
    noted: int = 0
    first_note: str | None = None


class RowWorker:
    """A Ray Data actor: loads the model in ``__init__`` (once per actor), then works batches of rows."""

    def __init__(self, kind: str, options: dict, preload: str | None, threads: int):
        import torch

        from sdcodec.codec.archive.row_work import ROW_FUNCTIONS

        torch.set_num_threads(max(1, threads))
        self.work = ROW_FUNCTIONS[kind]
        self.options = options
        if preload is not None:  # the model cache then serves every row of this actor
            from sdcodec.codec.autoencoders import load_autoencoder

            try:
                load_autoencoder(preload, device=options.get("device", "auto"))
            except Exception:  # noqa: BLE001 - a model that cannot load is each row's error, in the manifest
                pass

    def __call__(self, batch):
        import pyarrow as pa

        columns = (batch[name].to_pylist() for name in ("input", "output", "replace"))
        rows = [self.work(i, o, self.options, r) for i, o, r in zip(*columns)]
        return pa.Table.from_pylist(rows, schema=manifest.SCHEMA)


def import_ray_data():
    """The ``ray`` module with Ray Data loaded, or one clear error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - loads the submodule
    except ImportError:
        raise SdcodecError("Ray is not installed: pip install 'sdcodec[ray]'") from None
    return ray


def start_ray(address: str | None, object_store_mb: int, num_cpus: int | None = None) -> None:
    """Connect to ``address`` (a cluster, or ``auto``), or start a local Ray with a bounded object store."""
    import os

    ray = import_ray_data()

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(
            num_cpus=num_cpus,
            object_store_memory=object_store_mb * 1024 * 1024,
            include_dashboard=False,
            log_to_driver=False,
        )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False


def _actor_resources(actors: int | None, actors_per_gpu: int) -> tuple[int, float, float]:
    """(actors, CPUs per actor, GPUs per actor): a share of a GPU each where the cluster has GPUs, else its CPUs."""
    import ray

    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    if gpus:
        return actors or gpus * actors_per_gpu, 1.0, 1.0 / actors_per_gpu
    count = actors or max(1, cpus)
    return count, max(1.0, cpus // count), 0.0


def _reusable(previous: list[dict], rows: list[Row]) -> dict[str, dict]:
    """Earlier rows whose outputs are intact, checked in parallel threads (reads release the GIL)."""
    wanted = {row.input: row.output for row in rows}
    candidates = [r for r in previous if wanted.get(r["input"]) == r["output"]]
    with ThreadPoolExecutor(max_workers=16) as pool:
        intact = list(pool.map(manifest.is_intact, candidates))
    return {row["input"]: row for row, ok in zip(candidates, intact) if ok}


def run_job(
    kind: str,
    rows: list[Row],
    options: dict,
    manifest_uri: str,
    *,
    preload: str | None = None,
    ray_options: RayOptions = RayOptions(),
    force: bool = False,
    notice: Callable[[str], None] = lambda message: None,
) -> JobSummary:
    """Work every row not already done (``kind`` is ``encode`` or ``decode``) and write the manifest.

    A row is already done when the manifest at ``manifest_uri`` has it without error and its output
    still has the recorded SHA-256. An existing output is replaced only when the manifest records it
    as this job's, or with ``force`` (which also ignores the manifest: every row is done again). ``options`` are the keyword
    arguments of ``sdcodec.encode_image`` / ``decode_image``; ``preload`` is the model SPEC each
    actor loads before its first row.
    """
    previous = manifest.read_manifest(manifest_uri)
    kept = {} if force else _reusable(previous, rows)
    ours = {row["output"] for row in previous}
    todo = [
        {"input": r.input, "output": r.output, "replace": force or r.output in ours}
        for r in rows
        if r.input not in kept
    ]
    notice(f"{len(rows)} inputs: {len(kept)} already done, {len(todo)} to {kind}")
    failed = done = noted = 0
    first_error = first_note = None
    with manifest.ManifestWriter(manifest_uri) as writer:
        writer.write(list(kept.values()))
        if todo:
            for batch in _ray_batches(kind, todo, options, preload, ray_options):
                written = batch.to_pylist()
                writer.write(written)
                done += len(written)
                errors = [row["error"] for row in written if row["error"]]
                failed += len(errors)
                first_error = first_error or (errors[0] if errors else None)
                notes = [row["notes"] for row in written if row.get("notes")]
                noted += len(notes)
                first_note = first_note or (notes[0] if notes else None)
                notice(f"{done}/{len(todo)} {kind}d, {failed} failed")
    return JobSummary(done - failed, len(kept), failed, manifest_uri, first_error, noted, first_note)


def _row_blocks(todo: list[dict], actors: int) -> list:
    """The rows as Arrow tables (compact on the driver): 4 per actor at least, at most ROWS_PER_BLOCK rows each."""
    import pyarrow as pa

    table = pa.Table.from_pylist(todo)
    blocks = max(min(len(todo), 4 * actors), math.ceil(len(todo) / ROWS_PER_BLOCK))
    size = math.ceil(len(todo) / blocks)
    return [table.slice(start, size) for start in range(0, len(todo), size)]


def _ray_batches(kind: str, todo: list[dict], options: dict, preload: str | None, ray_options: RayOptions):
    """The result rows as pyarrow tables, streamed as the actors finish them."""
    ray = import_ray_data()
    start_ray(ray_options.address, ray_options.object_store_mb, ray_options.num_cpus)
    count, cpus_per_actor, gpus_per_actor = _actor_resources(ray_options.actors, ray_options.actors_per_gpu)
    dataset = ray.data.from_arrow(_row_blocks(todo, count))
    results = dataset.map_batches(
        RowWorker,
        fn_constructor_kwargs={"kind": kind, "options": options, "preload": preload, "threads": int(cpus_per_actor)},
        batch_size=ray_options.batch_size,
        batch_format="pyarrow",
        concurrency=min(count, len(todo)),
        num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor,
    )
    yield from results.iter_batches(batch_format="pyarrow", batch_size=None)
