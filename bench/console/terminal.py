"""The console every command prints to."""

from __future__ import annotations

import os
import sys

from rich.console import Console

# Off a terminal (CI logs, pipes) rich assumes 80 columns and truncates tables; wider output stays readable.
# COLUMNS, where set, is the width asked for.
PIPE_WIDTH = 160


def console_for_stdout() -> Console:
    return Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH)
