"""``--psnr``: the smallest file found whose decoded image reaches a PSNR, as cwebp's ``-psnr``.

Size targets (``--size``, ``--bpp``) are searched from the coder's byte counts alone; a quality
target needs the decoder, so every probe here is an encode and a decode. The search is a bisection
over the integer qualities 1-100 (about eight probes), whose PSNR rises with the quality; each
probe is measured once. Neighbouring qualities are about 4% apart in bytes (0.1-0.3 dB), so the
file is then sought between the lowest quality that reaches the target and the one below, by byte
size (at most three more probes, each aimed by interpolating the PSNR linearly in the bytes,
``smallest_size_between``). A target above what quality 100 reaches gets
the lowest quality within 0.05 dB of it, and the caller says how far it fell short.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

LOWEST, HIGHEST = 1, 100
CEILING_MARGIN = 0.05  # dB below quality 100's PSNR that an unreachable target settles for
SIZE_PROBES = 3  # sizes tried at most between two neighbouring qualities
SIZE_GAP = 1 / 400  # a gap narrower than this fraction of the file is not worth a probe
AIM_ABOVE = 0.01  # dB above the target that an interpolated probe aims at, so that it tends to reach it


@dataclass(frozen=True)
class PsnrResult:
    """What the search chose, and what it cost."""

    quality: int
    data: bytes  # the file at that quality
    psnr: float  # its decoded image's PSNR, dB
    reached: bool  # False: even quality 100 stays below the target
    probes: int  # encodes and decodes the search ran
    below: tuple[int, float] | None = None  # bytes and PSNR of quality - 1's file, which misses the target


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
    below = measured.get(quality - 1)
    below = (len(below[0]), below[1]) if below and reached else None
    return PsnrResult(quality, data, psnr, reached, len(measured), below)


def smallest_size_between(
    sized_at: Callable[[int], bytes],
    psnr_of: Callable[[bytes], float],
    target: float,
    found: PsnrResult,
    probes: int = SIZE_PROBES,
) -> tuple[PsnrResult, int]:
    """A smaller file than ``found``'s that still reaches ``target``, sought by byte size below it.

    ``sized_at(n)`` is the best file of at most n bytes. Between ``found.below`` (quality - 1, which
    misses the target) and ``found``'s file, each probe asks for the size where the PSNR, linear in
    the bytes between the nearest miss and the nearest hit so far, would be just above the target (at
    most ``probes`` times). Returns the smallest file that reached the target (``found`` itself if
    none did) and the probes spent.
    """
    if found.below is None:
        return found, 0
    (low, low_psnr), (high, high_psnr) = found.below, (len(found.data), found.psnr)
    best_data, spent = found.data, 0
    while spent < probes and high - low > max(1, high * SIZE_GAP):
        share = (target + AIM_ABOVE - low_psnr) / max(high_psnr - low_psnr, 1e-9)
        size = min(max(low + round(share * (high - low)), low + 1), high - 1)
        data = sized_at(size)
        psnr = psnr_of(data)
        spent += 1
        if psnr >= target:  # the nearest hit is the best file so far
            best_data, high, high_psnr = data, len(data), psnr  # it may come out smaller than asked for
        else:
            low, low_psnr = size, psnr
    return dataclasses.replace(found, data=best_data, psnr=high_psnr, probes=found.probes + spent), spent
