"""User-facing errors: each carries one line that the CLI prints as-is (exit code 1)."""


class SdcodecError(Exception):
    """Base class for failures a user can act on (bad input, missing weights, wrong model)."""


class ImageReadError(SdcodecError):
    """The input is not a readable image."""


class ModelLoadError(SdcodecError):
    """A model SPEC could not be loaded (no network, no cache, bad directory or weights)."""


class LatentSpaceMismatch(SdcodecError):
    """The file's latent space differs from the decoder's."""
