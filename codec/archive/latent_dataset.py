"""Read .sdz collections as dequantized latents, without the VAE: for training on pre-encoded images.

``read_sdz`` gives a Ray Dataset; ``SdzLatentDataset`` the same rows as a PyTorch
``IterableDataset`` for users without Ray. Each row: ``path``, ``latent`` (float32, C x h x w,
exactly ``sdcodec.read_latent``'s), ``caption``, ``latent_space``, ``latent_shape``, ``width``, ``height``.
"""

from __future__ import annotations

import torch
from torch.utils.data import IterableDataset, get_worker_info

from sdcodec.codec.archive.inputs import SDZ_SUFFIXES, filesystem_of, list_files
from sdcodec.codec.errors import SdcodecError


def latent_row(path: str, data: bytes) -> dict:
    """One file's row: the entropy-decoded, dequantized latent and its header's facts."""
    from sdcodec import read_latent

    latent, header = read_latent(data)
    return {
        "path": path,
        "latent": latent,
        "caption": header.caption,
        "latent_space": header.latent_space,
        "latent_shape": list(latent.shape),
        "width": header.width,
        "height": header.height,
    }


def _decoded(row: dict, prefix: str) -> dict:
    return latent_row(prefix + row["path"], row["bytes"])


def read_sdz(paths, *, recursive: bool = True, **read_options):
    """A Ray Dataset of the latents of .sdz files (files, directories, globs, manifests; local or URIs).

    Files are read by Ray's ``read_binary_files`` and entropy-decoded in parallel tasks; no model
    is loaded. ``read_options`` go to ``ray.data.read_binary_files`` (e.g. ``override_num_blocks``).
    """
    from sdcodec.codec.archive.ray_jobs import import_ray_data

    ray = import_ray_data()
    files = _sdz_files(paths, recursive)
    schemes = {f.split("://")[0] if "://" in f else "" for f in files}
    if len(schemes) > 1:
        raise SdcodecError("read_sdz reads one filesystem at a time, got " + ", ".join(sorted(schemes)))
    filesystem, _ = filesystem_of(files[0])
    local = [filesystem_of(f)[1] for f in files]
    dataset = ray.data.read_binary_files(local, filesystem=filesystem, include_paths=True, **read_options)
    prefix = files[0].split("://")[0] + "://" if "://" in files[0] else ""  # paths come back without it
    return dataset.map(_decoded, fn_kwargs={"prefix": prefix})


def _sdz_files(paths, recursive: bool) -> list[str]:
    return list_files(
        [str(paths)] if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__") else [str(p) for p in paths],
        suffixes=SDZ_SUFFIXES,
        recursive=recursive,
    )


class SdzLatentDataset(IterableDataset):
    """The rows of ``read_sdz`` as a PyTorch ``IterableDataset`` (``latent`` a tensor), for users without Ray.

    With a ``DataLoader`` of several workers each worker reads every n-th file, so each file is
    read once per epoch. Latents of different sizes do not stack: batch same-size images, or use
    ``batch_size=None``.
    """

    def __init__(self, paths, *, recursive: bool = True):
        self.files = _sdz_files(paths, recursive)

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self):
        from sdcodec.codec.archive.row_work import read_bytes

        worker = get_worker_info()
        files = self.files if worker is None else self.files[worker.id :: worker.num_workers]
        for path in files:
            row = latent_row(path, read_bytes(path))
            row["latent"] = torch.from_numpy(row["latent"])
            yield row
