"""A bounded run of the decoder fuzzer (benchmarks/fuzz_decoder.py); the README gives a long run's figures."""

from __future__ import annotations

import pytest

from sdcodec.benchmarks import fuzz_decoder

# A fixed count, not a time budget: every run tries the same mutants whatever the machine's load
# (about 4 s on one core; a 20-second budget reached 10,000 to 50,000 depending on the load).
SMOKE_MUTANTS = 10_000


@pytest.mark.slow
def test_mutants_raise_only_typed_errors_and_stay_fast(tmp_path):
    stats = fuzz_decoder.run_fuzz(SMOKE_MUTANTS, seed=12345, out=tmp_path)
    assert stats.mutants == SMOKE_MUTANTS
    assert stats.crc_recomputed > stats.mutants // 2
    assert stats.unexpected == []
    assert stats.slow == []
    reached_payload = stats.outcomes["PayloadError"] + stats.outcomes["ok"]
    assert reached_payload > stats.mutants // 4  # the CRC is recomputed, so many mutants get past the container
    container_errors = {"BadMagicError", "ChecksumError", "FieldRangeError", "TruncatedError", "TrailingBytesError"}
    assert container_errors <= set(stats.outcomes)  # every layer of the container is reached


def test_mutations_are_deterministic_and_recompute_the_crc():
    import random
    import zlib

    seeds = fuzz_decoder.seed_corpus()
    data = seeds["raw"]
    first = fuzz_decoder.make_mutant(data, random.Random(7), list(seeds.values()), crc_fraction=1.0)
    again = fuzz_decoder.make_mutant(data, random.Random(7), list(seeds.values()), crc_fraction=1.0)
    assert first == again and first[0] != data
    mutant = first[0]
    assert zlib.crc32(mutant[:-4]).to_bytes(4, "big") == mutant[-4:]
