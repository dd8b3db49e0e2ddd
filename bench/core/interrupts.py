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
# Set by a stop signal. The KeyboardInterrupt a signal raises can land in a __del__ (a garbage-collected object of
# some library), where Python ignores it; long loops also check this flag, so a stop is never lost.
_STOP = threading.Event()


def request_stop(signum: int = signal.SIGINT, frame: object = None) -> None:
    """Signal handler: remember the stop, and raise KeyboardInterrupt where the program is."""
    _STOP.set()
    raise KeyboardInterrupt


def raise_if_stopped() -> None:
    """Raise KeyboardInterrupt if a stop was requested and got lost on the way."""
    if _STOP.is_set():
        raise KeyboardInterrupt


def clear_stop() -> None:
    _STOP.clear()


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM both stop the program by request_stop (in the main thread; elsewhere, nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    clear_stop()
    previous = {sig: signal.signal(sig, request_stop) for sig in SIGNALS}
    previous_hook = sys.unraisablehook

    def quiet_stop(unraisable: sys.UnraisableHookArgs) -> None:
        # The stop landed in a __del__ and was ignored there: the flag carries it on; no traceback for it.
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            previous_hook(unraisable)

    sys.unraisablehook = quiet_stop
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        for sig, old in previous.items():
            signal.signal(sig, old)


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
        _STOP.set()
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
