"""HEIC/HEIF inputs (the photos phones take) for Pillow, through pi-heif: libheif's decoder only.

pi-heif is the decoding-only build of pillow-heif (libheif and libde265, LGPL; no x265 encoder), so
the codec reads .heic/.heif files like any other Pillow format: the header's size first (the
ceiling check), then pixels, ICC profile and EXIF. Registering is idempotent and cheap (~30 ms import).
"""

from __future__ import annotations

import functools


@functools.cache
def register_heif_reader() -> bool:
    """Let Pillow open HEIF files; False when pi-heif is not installed (they stay unrecognised)."""
    try:
        import pi_heif
    except ImportError:
        return False
    pi_heif.register_heif_opener()
    return True
