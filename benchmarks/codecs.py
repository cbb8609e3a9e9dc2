"""The codecs a benchmark compares, behind one small interface.

A `Codec` has a `name`, a sweep of integer quality `knobs` (higher = better and larger), a
`knob_range` searched by the size-matched protocol, `encode(image, knob) -> bytes` and
`decode(data) -> RGB PIL.Image`. Baselines: JPEG and WebP through Pillow, AVIF through Pillow's
AVIF plugin (imagecodecs when Pillow lacks it), JPEG XL through imagecodecs; `SdzCodec` adapts
sdcodec's own `sdcodec.encode_image` / `sdcodec.decode_image`. A codec whose library is missing says
why in `unavailable_reason()` instead of failing.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, features

from sdcodec.codec.errors import SdcodecError

CODEC_NAMES = ("sdz", "jpeg", "webp", "avif", "jxl")
# sdz knobs: 1..100 is sdcodec's quality; a negative knob -N is a rate ceiling of N/1000 bpp
# (`encode_image(bpp=...)`), which reaches below quality 1 (its coarsest step, about 0.15-0.2 bpp on
# Kodak with TAEF2). The default reaches 0.08 bpp, where the images are barely recognisable (README).
SDZ_DEFAULT_KNOBS = (-80, -120, 1, 4, 10, 20, 40)


class Codec:
    """Base class: subclasses set the attributes and implement `encode` / `decode`."""

    name: str = ""
    label: str = ""
    knobs: tuple[int, ...] = ()
    knob_range: tuple[int, int] = (0, 100)

    def unavailable_reason(self) -> str | None:
        """None when the codec can run here, otherwise one line saying what is missing."""
        return None

    def settings(self) -> dict:
        """Everything that changes the output (library versions included): keys the result cache."""
        return {"name": self.name}

    def describe(self) -> str:
        """The settings a reader needs to judge the comparison: library versions, chroma subsampling."""
        return ""

    @property
    def cache_id(self) -> str:
        digest = hashlib.sha1(json.dumps(self.settings(), sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.name}-{digest}"

    def warmup(self) -> None:
        """Load whatever a first call would load, so that timings measure coding only."""

    def encode(self, image: Image.Image, knob: int) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> Image.Image:
        raise NotImplementedError


class PillowCodec(Codec):
    """A format Pillow writes and reads (JPEG, WebP, AVIF) with fixed save options."""

    def __init__(self, name: str, label: str, pillow_format: str, knobs, knob_range, note: str = "", **save_options):
        self.name, self.label, self.pillow_format = name, label, pillow_format
        self.knobs, self.knob_range = tuple(knobs), knob_range
        self.save_options, self.note = save_options, note

    def describe(self) -> str:
        import PIL

        library = {"JPEG": "libjpeg_turbo", "WEBP": "webp", "AVIF": "avif"}[self.pillow_format]
        version = features.version(library) if features.check(library) else None
        library_name = {"libjpeg_turbo": "libjpeg-turbo", "webp": "libwebp", "avif": "libavif"}[library]
        options = ", ".join(f"{k}={v}" for k, v in self.save_options.items())
        return f"Pillow {PIL.__version__}, {library_name} {version or '(version unknown)'}; {options}; {self.note}"

    def unavailable_reason(self) -> str | None:
        feature = {"WEBP": "webp", "AVIF": "avif"}.get(self.pillow_format)
        if feature and not features.check(feature):
            return f"this Pillow build has no {self.pillow_format} support"
        return None

    def settings(self) -> dict:
        import PIL

        return {"name": self.name, "format": self.pillow_format, "pillow": PIL.__version__, **self.save_options}

    def encode(self, image: Image.Image, knob: int) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, self.pillow_format, quality=int(knob), **self.save_options)
        return buffer.getvalue()

    def decode(self, data: bytes) -> Image.Image:
        with Image.open(io.BytesIO(data)) as decoded:
            return decoded.convert("RGB")


class ImagecodecsCodec(Codec):
    """A format imagecodecs encodes from / decodes to uint8 arrays (JPEG XL, AVIF fallback)."""

    def __init__(self, name: str, label: str, codec_name: str, knobs, knob_range, note: str = "", **encode_options):
        self.name, self.label, self.codec_name = name, label, codec_name
        self.knobs, self.knob_range = tuple(knobs), knob_range
        self.encode_options, self.note = encode_options, note

    def describe(self) -> str:
        import imagecodecs

        library = getattr(imagecodecs, f"{self.codec_name}_version")()
        options = ", ".join(f"{k}={v}" for k, v in self.encode_options.items())
        return f"imagecodecs {imagecodecs.__version__}, {library}; {options}; {self.note}"

    def unavailable_reason(self) -> str | None:
        try:
            import imagecodecs
        except ImportError as exc:
            return f"imagecodecs is not installed ({exc}); pip install imagecodecs"
        if not getattr(imagecodecs, self.codec_name.upper()).available:
            return f"this imagecodecs build has no {self.codec_name} codec"
        return None

    def settings(self) -> dict:
        import imagecodecs

        versions = {"imagecodecs": imagecodecs.__version__}
        return {"name": self.name, "codec": self.codec_name, **versions, **self.encode_options}

    def encode(self, image: Image.Image, knob: int) -> bytes:
        import imagecodecs

        encode = getattr(imagecodecs, f"{self.codec_name}_encode")
        return bytes(encode(np.asarray(image.convert("RGB")), level=int(knob), **self.encode_options))

    def decode(self, data: bytes) -> Image.Image:
        import imagecodecs

        array = getattr(imagecodecs, f"{self.codec_name}_decode")(data)
        return Image.fromarray(np.ascontiguousarray(array[..., :3])).convert("RGB")


def jpeg_codec() -> Codec:
    knobs = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90)
    note = "4:2:0 chroma subsampling (Pillow's default), baseline, optimized Huffman tables"
    return PillowCodec("jpeg", "JPEG (libjpeg, optimize)", "JPEG", knobs, (1, 100), note=note, optimize=True)


def webp_codec() -> Codec:
    knobs = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90)
    note = "4:2:0 chroma subsampling (lossy WebP always is)"
    return PillowCodec("webp", "WebP (libwebp, method 6)", "WEBP", knobs, (0, 100), note=note, method=6)


def avif_codec() -> Codec:
    """Pillow's AVIF plugin (speed 6, 4:2:0) when built in, else imagecodecs' libavif with the same settings."""
    knobs = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90)
    if features.check("avif"):
        note = "4:2:0 chroma subsampling (Pillow's default), libavif's default AV1 encoder"
        return PillowCodec("avif", "AVIF (libavif, speed 6)", "AVIF", knobs, (0, 100), note=note, speed=6)
    note = "imagecodecs' default pixel format, libavif's default AV1 encoder"
    return ImagecodecsCodec(
        "avif", "AVIF (libavif via imagecodecs, speed 6)", "avif", knobs, (0, 100), note=note, speed=6
    )


def jxl_codec() -> Codec:
    """libjxl through imagecodecs; the knob is libjxl's quality (mapped to a Butteraugli distance), effort 7."""
    knobs = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90)
    note = "lossy VarDCT in XYB colour space (no chroma subsampling)"
    return ImagecodecsCodec("jxl", "JPEG XL (libjxl, effort 7)", "jpegxl", knobs, (0, 100), note=note, effort=7)


class SdzCodec(Codec):
    """sdcodec itself through `sdcodec.encode_image` / `sdcodec.decode_image` (quality knob 1..100).

    Encoding and decoding run a real autoencoder (seconds per image), so the default sweep is short.
    The cache key includes a digest of the codec's sources, so results are recomputed after the
    codec changes.
    """

    name = "sdz"
    knob_range = (1, 100)

    def __init__(
        self,
        model_spec: str | None = None,
        restore_steps: int = 0,
        decoder_spec: str | None = None,
        knobs=SDZ_DEFAULT_KNOBS,
        device: str = "auto",
        effort: int = 1,
    ):
        self.model_spec, self.restore_steps, self.decoder_spec = model_spec, restore_steps, decoder_spec
        self.knobs, self.device, self.effort = tuple(knobs), device, effort
        self.name = "sdz" if effort == 1 else f"sdz-e{effort}"  # one name per effort level of a sweep
        model = model_spec.split(":", 1)[0] if model_spec and ":" in model_spec else model_spec  # taef2:PATH -> taef2
        details = [model or "default model", f"effort {effort}", f"restore {restore_steps}"]
        if decoder_spec:
            details.append(f"decoder {decoder_spec}")
        self.label = f"sdz ({', '.join(details)})"

    def settings(self) -> dict:
        return {
            "name": self.name,
            "model": self.model_spec,
            "restore_steps": self.restore_steps,
            "decoder": self.decoder_spec,
            "effort": self.effort,
            "sources": _package_digest("sdcodec.codec", "sdcodec.bitstream"),
        }

    def warmup(self) -> None:
        # quality 50, not a sweep knob: a bpp ceiling can be too small for a 64x64 file
        self.decode(self.encode(Image.new("RGB", (64, 64), (128, 128, 128)), 50))

    def encode(self, image: Image.Image, knob: int) -> bytes:
        import sdcodec

        rate = {"bpp": -knob / 1000} if knob < 0 else {"quality": int(knob)}
        return sdcodec.encode_image(image, model=self.model_spec, device=self.device, effort=self.effort, **rate)

    def decode(self, data: bytes) -> Image.Image:
        import sdcodec

        options = {"model": self.model_spec, "restore_steps": self.restore_steps, "device": self.device}
        if self.decoder_spec:
            options["decoder"] = self.decoder_spec
        return sdcodec.decode_image(data, **options).convert("RGB")


@functools.cache
def _package_digest(*packages: str) -> str:
    """Short digest of the code of installed packages (identifies a codec version).

    Each module counts by its path and its syntax tree without docstrings, so editing a comment, a
    docstring or the formatting keeps the cached measurements. Taken once per process: the code
    this run imported, even if the files change while it runs.
    """
    digest = hashlib.sha1()
    for package in packages:
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue
        root = Path(module.__file__).parent
        for path in sorted(root.rglob("*.py")):
            digest.update(f"{package}/{path.relative_to(root).as_posix()}\n".encode())
            digest.update(code_of(path.read_text(encoding="utf-8")).encode())
    return digest.hexdigest()[:12]


def code_of(source: str) -> str:
    """A module's syntax tree without docstrings, as text: what changes only when the code does."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = node.body[1:]  # (a tree to hash, not to compile: an empty body is fine)
    return ast.dump(tree)


def make_codecs(
    names,
    *,
    model: str | None = None,
    restore_steps: int = 0,
    decoder: str | None = None,
    sdz_knobs=None,
    sdz_efforts=(1,),
) -> list[Codec]:
    """Build codecs by name ("sdz", "jpeg", "webp", "avif", "jxl"); unknown names are a user error.

    "sdz" becomes one codec per effort level in ``sdz_efforts`` (named sdz, sdz-e2, ...).
    """
    builders = {"jpeg": jpeg_codec, "webp": webp_codec, "avif": avif_codec, "jxl": jxl_codec}
    codecs = []
    for name in names:
        name = name.strip().lower()
        if name == "sdz":
            knobs = tuple(sdz_knobs) if sdz_knobs else SDZ_DEFAULT_KNOBS
            for effort in sdz_efforts:
                codecs.append(
                    SdzCodec(model, restore_steps=restore_steps, decoder_spec=decoder, knobs=knobs, effort=effort)
                )
        elif name in builders:
            codecs.append(builders[name]())
        else:
            raise SdcodecError(f"unknown codec {name!r} (choose from {', '.join(CODEC_NAMES)})")
    return codecs
