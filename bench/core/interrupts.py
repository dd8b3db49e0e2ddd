"""Ctrl-C and SIGTERM while native code that must not be interrupted runs.

Python raises KeyboardInterrupt in the main thread at the next bytecode; when that bytecode is a callback that
native code (LoadGen) called, the exception unwinds through C++ that was not written for it, and the process
dies (SIGSEGV or abort). Inside `deferred_interrupts`, the first signal only asks the work to stop (the caller's
`on_stop`) and is raised as KeyboardInterrupt once the native call has returned; a second signal quits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

EXIT_INTERRUPTED = 130
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class StopRequest:
    requested: bool = False


@contextmanager
def deferred_interrupts(on_stop: Callable[[], None], *, stopping: str) -> Iterator[StopRequest]:
    """Within the block, SIGINT/SIGTERM call `on_stop` (once) and print `stopping`; a second signal prints a
    line and exits the process with status 130 (results already written are complete files). After the block,
    a deferred interrupt is raised as KeyboardInterrupt. Outside the main thread, signals are left alone."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: object) -> None:
        if request.requested:
            os.write(2, b"interrupted again: quitting now; results written so far are kept\n")
            os._exit(EXIT_INTERRUPTED)
        request.requested = True
        print(f"interrupted: {stopping} (Ctrl-C again to quit at once)", file=sys.stderr, flush=True)
        on_stop()

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    if request.requested:
        raise KeyboardInterrupt
