"""Progress on stderr that suits where stderr goes: a rich bar on a terminal, a line now and then otherwise.

A log file or a CI console gets one line every ``interval`` seconds (and the last state at the
end) instead of a redrawn bar or one line per step; ``quiet`` prints nothing. Messages printed
through ``Progress.print`` appear above a live bar instead of breaking it. Used by ``gen``/
``img2img`` (denoising steps), batch ``encode``/``decode`` (files) and ``bench`` (measurements).
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

DEFAULT_INTERVAL = 10.0  # seconds between two lines when stderr is not a terminal


class Progress:
    """``with Progress("encoding", total=n) as bar: bar.advance("photo.png")``; see the module docstring."""

    def __init__(
        self,
        description: str,
        total: int | None = None,
        *,
        quiet: bool = False,
        console: Console | None = None,
        interval: float = DEFAULT_INTERVAL,
        transient: bool = False,
    ):
        self.description, self.total, self.quiet, self.interval = description, total, quiet, interval
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.completed = 0
        self.detail = ""
        self._bar: RichProgress | None = None
        self._task = None
        self._transient = transient
        self._started = self._last_line = 0.0
        self._printed = -1  # the completed count of the last periodic line

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        if not self.quiet and self.console.is_terminal:
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[detail]}", style="dim"),
            )
            self._bar = RichProgress(*columns, console=self.console, transient=self._transient)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total, detail="")
        return self

    def __exit__(self, *exc_info) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc_info)
        elif not self.quiet and self.completed != self._printed and exc_info[0] is None:
            self._line()

    def update(self, completed: int | None = None, total: int | None = None, detail: str | None = None) -> None:
        """Set the state (absolute); any argument left out keeps its value."""
        if completed is not None:
            self.completed = completed
        if total is not None:
            self.total = total
        if detail is not None:
            self.detail = detail
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=self.completed, total=self.total, detail=self.detail)
            return
        now = time.monotonic()
        if self._printed < 0 or now - self._last_line >= self.interval:
            self._line()

    def advance(self, detail: str | None = None, count: int = 1) -> None:
        self.update(self.completed + count, detail=detail)

    def print(self, message: str, style: str | None = None) -> None:
        """A line on stderr, above the bar when there is one (shown even when quiet: used for errors)."""
        self.console.print(message, style=style, markup=False, highlight=False)

    def _line(self) -> None:
        self._last_line = time.monotonic()
        self._printed = self.completed
        counted = f"{self.completed}/{self.total}" if self.total else f"{self.completed}"
        percent = f" ({100 * self.completed // self.total}%)" if self.total else ""
        elapsed = f", {self._last_line - self._started:.0f}s"
        detail = f": {self.detail}" if self.detail else ""
        self.console.print(f"{self.description} {counted}{percent}{elapsed}{detail}", style="dim", markup=False)
