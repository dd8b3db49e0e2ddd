"""The console every command prints to."""

from __future__ import annotations

import os
import sys

from rich.console import Console

# Off a terminal (CI logs, pipes) rich assumes 80 columns and truncates tables; wider output stays readable.
# COLUMNS, where set, is the width asked for.
PIPE_WIDTH = 160


class _StdoutConsole(Console):
    def on_broken_pipe(self) -> None:
        """The reader went away (`recbench show ... | head`): quiet from here on, and the command ends as any output
        it cannot write ends it (bench.core.shutdown.status_of), not with rich's own exit status 1."""
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # what is still buffered goes nowhere instead of failing again
        os.close(devnull)
        raise BrokenPipeError(32, "Broken pipe")


def console_for_stdout() -> Console:
    return _StdoutConsole(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH)
