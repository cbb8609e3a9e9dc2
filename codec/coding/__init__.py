"""Latent <-> symbols <-> payload: the quantizer and the entropy models. numpy, numba and
constriction only (no torch), so tools that handle .sdz payloads stay light.

``encode_latent`` / ``decode_latent`` (in ``latent_coder``) are the entry points.
"""
