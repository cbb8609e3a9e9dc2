"""The ``sdcodec`` command line: the typer app, its global options, and the commands it registers.

The commands live in ``codec/commands/`` (one module per group); each parses its options, calls
``sdcodec``'s library or benchmarks, and prints. Nothing else.

Exit codes: 0 success, 1 runtime failure (one line on stderr), 2 usage error.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings

import typer
from typer.core import TyperGroup

from sdcodec.codec.commands import archive, bench, encode_decode, generation, tools
from sdcodec.codec.commands.reporting import OUT_OF_MEMORY


class ShortUsageErrors(TyperGroup):
    """Usage errors in two lines on stderr (what is wrong, where help is), exit 2; the rest as typer does."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # click's UsageError and ClickException (typer does not export them)
            usage_error = getattr(exc, "exit_code", 1) == 2 and hasattr(exc, "format_message")
            if not hasattr(exc, "show"):
                raise
            if not usage_error or type(exc).__name__ == "NoArgsIsHelpError":  # bare `sdcodec`: the help
                exc.show()
                sys.exit(getattr(exc, "exit_code", 1))
            command = exc.ctx.command_path if getattr(exc, "ctx", None) else (prog_name or "sdcodec")
            typer.echo(f"error: {exc.format_message()}", err=True)
            typer.echo(f"see '{command} --help'", err=True)
            sys.exit(2)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="sdcodec",
    cls=ShortUsageErrors,
    help="A perceptual image codec on Stable Diffusion's latent space, and its generative core.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click messages: usage errors stay short
)


def show_version(value: bool) -> None:
    if value:
        from sdcodec import __version__

        print(f"sdcodec {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", "-V", is_eager=True, callback=show_version, help="Print the version and exit."
    ),
) -> None:
    """A perceptual image codec on Stable Diffusion's latent space, and its generative core."""


# The order here is the order of `sdcodec --help`.
for command in (
    encode_decode.encode,  # images <-> .sdz files (codec/commands/encode_decode.py)
    encode_decode.decode,
    encode_decode.info,
    generation.gen,  # Stable Diffusion (codec/commands/generation.py, tools.py)
    generation.img2img,
    tools.watermark,
    tools.inpaint,
    tools.outpaint,
    tools.upscale,
    bench.bench,  # benchmarks/run.py
):
    app.command()(command)
app.add_typer(archive.archive_app, name="archive")  # collections on Ray Data


def quiet_libraries() -> None:
    """Library warnings and log chatter stay off stderr unless SDCODEC_DEBUG is set."""
    if os.environ.get("SDCODEC_DEBUG"):
        return
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    for variable in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY", "HF_HUB_VERBOSITY"):
        os.environ.setdefault(variable, "error")


def terminate(signum, frame) -> None:
    """SIGTERM unwinds like an exception, so partial outputs are removed on the way out."""
    raise SystemExit(128 + signum)


def main() -> None:
    quiet_libraries()
    signal.signal(signal.SIGTERM, terminate)
    try:
        app()
    except MemoryError:
        os.write(2, OUT_OF_MEMORY.encode())
        sys.exit(1)


if __name__ == "__main__":
    main()
