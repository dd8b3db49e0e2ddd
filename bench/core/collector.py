"""Python's cyclic garbage collector around start-up: paused while the large libraries are imported, then told
to leave what was imported alone.

Importing torch and transformers creates about a million long-lived objects, and each full collection the
collector starts by itself on the way walks all of them again. Nothing imported is garbage, so nothing is lost by
waiting. On the 2-core AMD EPYC (AVX2), 2026-11-29, in a slow hour, four runs each: `import bench.runner` then
the collection before gc.freeze took 8.1-8.6 s (median 8.2 s) paused and 7.7-9.5 s (median 8.6 s) not, the
imports 0.7 s quicker and that one collection 0.2 s slower.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection inside the block (imports); the collector is put back as it was after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@functools.cache
def freeze_imported_objects() -> None:
    """Once per process, before its first point: take every object alive (imported libraries, chiefly torch's)
    out of the garbage collector's view with gc.freeze. They live as long as the process anyway; without this,
    each full collection walks them all: the one after every point (0.4 s each in the test process, measured
    2026-11-29) and any the collector starts by itself during a timed batch. Long-running servers freeze after
    start-up for the same reason; results record the frozen count.

    No collection first: after `recbench run`'s imports it found 7.5k garbage objects among 295k, freed no
    resident memory, and took 0.15-0.23 s of the quickstart's start-up (2-core AVX2 EPYC, 2026-11-29). That
    garbage is kept for the life of the process instead."""
    gc.freeze()
