"""The console every command prints to."""

from __future__ import annotations

import sys

from rich.console import Console

# Off a terminal (CI logs, pipes) rich assumes 80 columns and truncates tables; wider output stays readable.
PIPE_WIDTH = 160


def console_for_stdout() -> Console:
    return Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)
