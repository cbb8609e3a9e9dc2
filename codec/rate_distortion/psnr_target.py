"""``--psnr``: the lowest quality whose decoded image reaches a PSNR, as cwebp's ``-psnr``.

Size targets (``--size``, ``--bpp``) are searched from the coder's byte counts alone; a quality
target needs the decoder, so every probe here is an encode and a decode. The search is a bisection
over the integer qualities 1-100 (about eight probes), whose PSNR rises with the quality; each
probe is measured once. A target above what quality 100 reaches gets the lowest quality within
0.05 dB of it, and the caller says how far it fell short.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

LOWEST, HIGHEST = 1, 100
CEILING_MARGIN = 0.05  # dB below quality 100's PSNR that an unreachable target settles for


@dataclass(frozen=True)
class PsnrResult:
    """What the search chose, and what it cost."""

    quality: int
    data: bytes  # the file at that quality
    psnr: float  # its decoded image's PSNR, dB
    reached: bool  # False: even quality 100 stays below the target
    probes: int  # encodes and decodes the search ran


def quality_for_psnr(
    encode_at: Callable[[int], bytes], psnr_of: Callable[[bytes], float], target: float, highest: int = HIGHEST
) -> PsnrResult:
    """The lowest quality q in 1..highest whose file ``encode_at(q)`` decodes to at least ``target`` dB.

    ``psnr_of(data)`` decodes a file and measures it against the source. Out of reach, the lowest
    quality within ``CEILING_MARGIN`` dB of ``highest``'s PSNR: near its ceiling an autoencoder gains
    hundredths of a dB for several times the bytes.
    """
    measured: dict[int, tuple[bytes, float]] = {}

    def probe(quality: int) -> float:
        if quality not in measured:
            data = encode_at(quality)
            measured[quality] = (data, psnr_of(data))
        return measured[quality][1]

    def lowest_reaching(goal: float) -> int:
        low, high = LOWEST - 1, highest  # high reaches the goal, low does not (or is below the range)
        while high - low > 1:
            middle = (low + high) // 2
            if probe(middle) >= goal:
                high = middle
            else:
                low = middle
        return high

    ceiling = probe(highest)
    reached = ceiling >= target
    quality = lowest_reaching(target if reached else ceiling - CEILING_MARGIN)
    data, psnr = measured[quality]
    return PsnrResult(quality, data, psnr, reached, len(measured))
