"""The end of a `recbench` process: exit handlers, flushed output, then no interpreter teardown.

Python's normal exit dismantles every module and object one by one. With torch imported that took 0.7 s, and
0.2 s after gc.freeze, on the 2-core AVX2 EPYC (2026-11-29: `import torch` then exit, against the same with
os._exit, three runs each), for a process that is ending anyway. By the time a command returns its results are
written atomically and closed, so nothing is lost by skipping it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from typing import NoReturn


def exit_without_teardown(code: int) -> NoReturn:
    """End the process with `code`: run the exit handlers (Ray's shutdown registers one), flush logging and the
    standard streams, then os._exit. For the command-line entry point only; library callers return normally."""
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # A reader that went away (`recbench show ... | head`) or a closed stream has nothing left to take.
        with contextlib.suppress(BrokenPipeError, ValueError):
            stream.flush()
    os._exit(code)
