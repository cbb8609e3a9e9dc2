"""gen / img2img from prompt to files: output names, one model load, each image written safely.

``generate_to_files`` is what the CLI's ``gen`` and ``img2img`` run once their options are parsed
(``generate_jobs_to_files`` for a prompt file, ``requests_from_prompt_file`` making its requests);
images become PNG/JPEG/WebP with their parameters embedded, or .sdz files coded from the latent
with the parameters as their caption.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sdcodec.codec.errors import LatentSpaceMismatch, SdcodecError
from sdcodec.codec.images.output_files import check_output, write_output

OUTPUT_FORMATS = (".png", ".jpg", ".jpeg", ".webp", ".sdz")


@dataclass
class GenerationRequest:
    """What to generate and where: the options of ``sdcodec gen`` / ``img2img`` as values."""

    prompt: str
    pattern: str  # output path, with {n} / {seed} placeholders filled per image
    init: Path | None = None  # img2img input: an image or a .sdz file
    negative: str = ""
    seed: int | None = None
    steps: int = 25
    guidance: float = 7.5
    width: int | None = None
    height: int | None = None
    scheduler: str = "ddim"
    num_images: int = 1
    strength: float | None = None
    model: str | None = None
    device: str = "auto"
    quality: int | None = None  # for .sdz output, as in encode
    bpp: float | None = None
    size: int | None = None
    caption: str | None = None  # for .sdz output (default: the generation parameters, see parameters_caption)
    watermark: bool = True  # the invisible mark on image outputs (codec.diffusion.watermark); .sdz has none

    @property
    def suffix(self) -> str:
        return Path(self.pattern).suffix.lower()


def generate_to_files(
    request: GenerationRequest,
    *,
    force: bool = False,
    notice: Callable[[str], None] = lambda message: None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Generate ``request.num_images`` images into files; every output is checked before the model loads."""
    return generate_jobs_to_files([request], force=force, notice=notice, progress=progress)


def generate_jobs_to_files(
    requests: list[GenerationRequest],
    *,
    force: bool = False,
    notice: Callable[[str], None] = lambda message: None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Run several requests (the lines of a prompt file) with one model load, in order.

    All share ``requests[0].pattern``: ``{n}`` counts images over all of them. Every request is
    checked and every output path is checked before the model loads.
    """
    from sdcodec.codec.diffusion.generate import random_seed
    from sdcodec.codec.diffusion.init_source import read_init
    from sdcodec.codec.diffusion.sd_pipeline import load_sd_components

    first = requests[0]
    try:
        check_pattern(first.pattern)
        for request in requests:
            check_request(request)
    except ValueError as exc:
        raise SdcodecError(str(exc)) from None
    seeds = []
    for request in requests:
        seed = random_seed() if request.seed is None else request.seed
        seeds.append([seed + n for n in range(request.num_images)])
    try:
        paths = output_paths(first.pattern, [seed for job in seeds for seed in job])
    except ValueError as exc:
        raise SdcodecError(str(exc)) from None
    for path in paths:
        check_output(path, force, *([first.init] if first.init else []))
    source = read_init(first.init) if first.init else None
    components = load_sd_components(first.model, device=first.device)
    if source and source.latent_space and source.latent_space != components.latent_space:
        raise LatentSpaceMismatch(
            f"{first.init} is in the {source.latent_space} latent space but "
            f"{components.spec} works in {components.latent_space}"
        )
    remaining = iter(paths)
    for request, job_seeds in zip(requests, seeds):
        job_paths = [next(remaining) for _ in job_seeds]
        _generate_job(request, job_seeds[0], job_paths, components, source, force, notice, progress)
    return paths


def check_pattern(pattern: str | Path) -> None:
    """Raise ``ValueError`` (one line) for an output name whose extension gen cannot write."""
    if Path(pattern).suffix.lower() not in OUTPUT_FORMATS:
        raise ValueError(f"cannot write {Path(pattern).name!r}: use an extension among {', '.join(OUTPUT_FORMATS)}")


def check_request(request: GenerationRequest) -> None:
    """Raise ``ValueError`` (one line) for settings no pipeline run could use, before any model loads."""
    from sdcodec.codec.diffusion.generate import check_options

    check_options(
        steps=request.steps,
        guidance=request.guidance,
        width=512 if request.width is None else request.width,
        height=512 if request.height is None else request.height,
        scheduler=request.scheduler,
        num_images=request.num_images,
        seed=request.seed,
        strength=request.strength,
        prompt=request.prompt,
        negative=request.negative,
    )


def _generate_job(request, seed, paths, components, source, force, notice, progress) -> None:
    """One request's images into ``paths`` (already checked)."""
    from sdcodec.bitstream.container import MAX_CAPTION_BYTES
    from sdcodec.codec.diffusion.generate import iter_generate
    from sdcodec.codec.diffusion.parameters import image_bytes, parameters_caption
    from sdcodec.codec.diffusion.watermark import marked_output
    from sdcodec.codec.image_codec import encode_latent_image, level1_quantizer

    suffix = request.suffix
    quantizer = {}
    if suffix == ".sdz":  # the per-channel steps, RDOQ and shaping an encoded image gets, from the pipeline's VAE
        from sdcodec.codec.autoencoders import load_autoencoder

        quantizer = level1_quantizer(load_autoencoder(components.spec, device=str(components.device)), notice)
    notice(
        f"generating {request.num_images} image(s) with {components.spec}, {request.scheduler}, "
        f"{request.steps} steps, seed {seed}"
    )
    results = iter_generate(
        components,
        request.prompt,
        negative=request.negative,
        seed=seed,
        steps=request.steps,
        guidance=request.guidance,
        width=request.width,
        height=request.height,
        scheduler=request.scheduler,
        num_images=request.num_images,
        strength=request.strength,
        init_image=source.image if source else None,
        init_latent=source.latent if source else None,
        crop_size=source.size if source else None,
        output_type="latent" if suffix == ".sdz" else "pil",
        progress=progress,
    )
    for path, result in zip(paths, results):
        if suffix == ".sdz":
            caption = request.caption
            if caption is None:  # the parameters, whose first line is the prompt (restoration reads only it)
                caption, reduced = parameters_caption(result.parameters, request.prompt, MAX_CAPTION_BYTES)
                if reduced:
                    notice(reduced)
            data = encode_latent_image(
                result.latent,
                latent_space=components.latent_space,
                width=result.width,
                height=result.height,
                quality=request.quality,
                bpp=request.bpp,
                size=request.size,
                caption=caption,
                **quantizer,
            )
        else:
            if request.watermark:
                result.image = marked_output(result.image, notice)
            data = image_bytes(result, suffix)
        write_output(path, lambda out, data=data: out.write(data), force)
        notice(f"wrote {path}: {result.width}x{result.height}, seed {result.seed}, {len(data)} bytes")


def requests_from_prompt_file(path: str | Path, base: GenerationRequest) -> list[GenerationRequest]:
    """One request per job line of a prompt file (codec.diffusion.prompt_file), each starting from ``base``."""
    from sdcodec.codec.diffusion.prompt_file import read_prompt_file

    return [replace(base, **values) for values in read_prompt_file(path)]


def sdz_caption(prompt: str) -> tuple[str, bool]:
    """A prompt cut to the container's caption limit at a character boundary; the flag says
    whether it was cut. (The caption conditions decode-time restoration.)"""
    from sdcodec.bitstream.container import MAX_CAPTION_BYTES

    encoded = prompt.encode("utf-8")
    if len(encoded) <= MAX_CAPTION_BYTES:
        return prompt, False
    return encoded[:MAX_CAPTION_BYTES].decode("utf-8", errors="ignore"), True


def output_paths(pattern: str | Path, seeds: list[int]) -> list[Path]:
    """One output path per image from ``-o``: ``{n}`` (1-based) and ``{seed}`` are filled in.

    Without a placeholder a single image takes the path as given and several images get
    ``-1``, ``-2``, ... before the extension (``out.png`` -> ``out-1.png``, ``out-2.png``).
    """
    pattern = str(pattern)
    placeholders = "{n}" in pattern or "{seed}" in pattern
    paths = []
    for n, seed in enumerate(seeds, start=1):
        if placeholders:
            name = pattern.replace("{n}", str(n)).replace("{seed}", str(seed))
        elif len(seeds) == 1:
            name = pattern
        else:
            path = Path(pattern)
            name = str(path.with_name(f"{path.stem}-{n}{path.suffix}"))
        paths.append(Path(name))
    if len(set(paths)) != len(paths):
        raise ValueError(f"output pattern {pattern} gives the same file name to several images; use {{n}}")
    return paths
