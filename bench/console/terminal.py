"""The console every command prints to."""

from __future__ import annotations

import errno
import os
import sys

from rich.console import Console

# Off a terminal (CI logs, pipes) rich assumes 80 columns and truncates tables; wider output stays readable.
# COLUMNS, where set, is the width asked for.
PIPE_WIDTH = 160


class _StdoutConsole(Console):
    def on_broken_pipe(self) -> None:
        """The reader went away (`recbench show ... | head`): rich's own handling, except that the command then ends
        as any output it cannot write ends it (bench.core.shutdown.status_of), not with rich's exit status 1."""
        try:
            super().on_broken_pipe()  # quiet from here on, stdout onto /dev/null, then SystemExit(1)
        except SystemExit:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE)) from None


def console_for_stdout() -> Console:
    return _StdoutConsole(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH)
