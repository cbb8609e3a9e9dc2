"""Collections of images and .sdz files: listing, Ray Data jobs, their manifests, latent datasets.

    inputs.py          files, directories, globs and Parquet/CSV manifests -> (input, output) URIs
    manifest.py        the job's Parquet manifest: one row per input, and what a re-run may skip
    row_work.py        one row's work (encode or decode through sdcodec's public API)
    ray_jobs.py        the Ray Data pipeline: rows -> actors that hold the model -> manifest
    jobs.py            the archive commands: a collection and its options -> one job
    latent_dataset.py  .sdz files as dequantized latents: a Ray Dataset and a PyTorch IterableDataset

Only ``row_work`` and ``latent_dataset``'s PyTorch class import torch; Ray is imported only by the
functions that run a job or build a Ray Dataset (``pip install 'sdcodec[ray]'``).
"""
