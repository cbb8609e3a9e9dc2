"""What A1111 parity costs: prompt-editing parses and the Model hash, on this machine.

    python -m sdcodec.benchmarks.bench_a1111_prompts [--hash-mb 256]

Prints the time to schedule prompts of growing length that use prompt editing (lark's Earley
parser, as in A1111; a prompt without ``[`` skips it) and to tokenize them with emphasis and
comma backtracking, then SHA-256's speed over a scratch file and what it means for hashing
SD 1.5's fp32 weights once per process (``Model hash``). Prints the 1-minute load average.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time

from sdcodec.benchmarks.sd15_random import byte_level_clip_tokenizer
from sdcodec.codec.diffusion.prompt_schedule import prompt_schedule
from sdcodec.codec.diffusion.prompt_weighting import tokenize_weighted

PHRASE = "a (very:1.2) detailed [oil painting:photograph:0.4] of a [cat|dog], "
SD15_FP32_BYTES = 4 * (859_520_964 + 123_060_480 + 83_653_863)  # U-Net + CLIP text encoder + VAE parameters


def best_of(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hash-mb", type=int, default=256, help="size of the scratch file SHA-256 reads")
    args = parser.parse_args(argv)
    tokenizer = byte_level_clip_tokenizer(model_max_length=77)
    print(f"load average (1 min): {os.getloadavg()[0]:.2f}")
    for repeats in (1, 4, 16):
        prompt = PHRASE * repeats
        parse = best_of(lambda prompt=prompt: prompt_schedule(prompt, 25))
        texts = [text for _, text in prompt_schedule(prompt, 25)]
        tokenize = best_of(lambda texts=texts: [tokenize_weighted(tokenizer, text) for text in texts])
        print(
            f"{len(prompt):5d} characters: schedule {parse * 1000:8.1f} ms, "
            f"{len(texts)} distinct step texts tokenized in {tokenize * 1000:6.1f} ms"
        )
    plain = PHRASE.replace("[", "(").replace("]", ")").replace("|", " ") * 16
    print(
        f"{len(plain):5d} characters without '[': schedule {best_of(lambda: prompt_schedule(plain, 25)) * 1e6:.1f} us"
    )

    with tempfile.NamedTemporaryFile() as scratch:
        block = os.urandom(1 << 20)
        for _ in range(args.hash_mb):
            scratch.write(block)
        scratch.flush()

        def digest():
            sha = hashlib.sha256()
            with open(scratch.name, "rb") as stream:
                while chunk := stream.read(1 << 20):
                    sha.update(chunk)

        seconds = best_of(digest, repeats=2)
    rate = args.hash_mb / seconds
    print(
        f"SHA-256: {rate:.0f} MB/s (file in the page cache); SD 1.5 fp32 weights "
        f"({SD15_FP32_BYTES / 1e9:.2f} GB): about {SD15_FP32_BYTES / 1e6 / rate:.1f} s, once per process"
    )


if __name__ == "__main__":
    main()
