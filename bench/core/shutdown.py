"""The end of a `recbench` process: exit handlers, flushed output, then no interpreter teardown.

Python's normal exit dismantles every module and object one by one. With torch imported that took 0.7 s, and
0.2 s after gc.freeze, on the 2-core AVX2 EPYC (2026-11-29: `import torch` then exit, against the same with
os._exit, three runs each), for a process that is ending anyway. By the time a command returns its results are
written atomically and closed, so nothing is lost by skipping it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

# The status Python itself exits with when it cannot flush standard output at the end (a full disk, a reader
# that went away); recbench uses it for any output it could not write.
EXIT_FLUSH_FAILED = 120


def status_of(command: Callable[[], int]) -> int:
    """The command's exit status. Output it cannot write ends it without a traceback: a reader that went away
    (`recbench run ... | head`) silently, a full disk or another write error in one line on stderr; both with
    EXIT_FLUSH_FAILED, or 1 where the failed write was to a named file. (rich, which draws the tables, would end
    a command whose reader went away itself, with status 1: bench.console.terminal hands it back here.)"""
    try:
        return command()
    except BrokenPipeError:
        return EXIT_FLUSH_FAILED
    except OSError as exc:
        if exc.filename is None and exc.strerror is None:
            raise
        _say_not_written(exc.filename or "standard output", exc)
        return 1 if exc.filename else EXIT_FLUSH_FAILED


def exit_without_teardown(code: int) -> NoReturn:
    """End the process with `code`: run the exit handlers (Ray's shutdown registers one), flush logging, the
    standard streams and C's stdio buffers (oneDNN or MKL verbose output, LoadGen), then os._exit. For the
    command-line entry point only; library callers return normally. Where a thread that is not a daemon still
    runs, the process exits the usual way, which waits for it."""
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    logging.shutdown()
    flushed = all([_flush(sys.stdout), _flush(sys.stderr)])
    with contextlib.suppress(Exception):  # no C library to ask (an unusual platform): nothing buffered there
        ctypes.CDLL(None).fflush(None)
    os._exit(code if flushed or code != 0 else EXIT_FLUSH_FAILED)


def _flush(stream: object) -> bool:
    """False where output was lost: a full disk, or a reader that went away (`recbench show ... | head`). A
    stream that is closed or absent (stdout closed by the caller) had nothing to take."""
    if stream is None or getattr(stream, "closed", False):
        return True
    try:
        stream.flush()  # type: ignore[attr-defined]
    except BrokenPipeError:
        return False
    except OSError as exc:
        _say_not_written("standard output", exc)
        return False
    except ValueError:  # closed underneath
        return True
    return True


def _say_not_written(where: str, exc: OSError) -> None:
    """One line on stderr; said as best it can be, since stderr may be on the same full disk."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(f"error: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
