"""A bounded run of the decoder fuzzer (benchmarks/fuzz_decoder.py); the README gives a long run's figures."""

from __future__ import annotations

import time

import pytest

from sdcodec.benchmarks import fuzz_decoder

SMOKE_SECONDS = 20


@pytest.mark.slow
def test_mutants_raise_only_typed_errors_and_stay_fast(tmp_path):
    stats = fuzz_decoder.run_fuzz(1_000_000, seed=12345, out=tmp_path, deadline=time.perf_counter() + SMOKE_SECONDS)
    assert stats.mutants > 2_000
    assert stats.crc_recomputed > stats.mutants // 2
    assert stats.unexpected == []
    assert stats.slow == []
    reached_payload = stats.outcomes["PayloadError"] + stats.outcomes["ok"]
    assert reached_payload > stats.mutants // 4  # the CRC is recomputed, so many mutants get past the container


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
