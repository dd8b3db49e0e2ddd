"""Dynamic batching between LoadGen's issue thread and the recommendation loop.

Queries (a user index and LoadGen's response id) queue up; a worker thread takes up to `max_batch_size` of them,
or whatever arrived within `max_wait_s` of the oldest one, whichever comes first, runs `process(users)`, then
completes the batch through `complete(response_ids, served)`. Both callables are injected, so the batcher is
testable without LoadGen (sut.loadgen_complete is the real completion).

Overload cannot hang a run: beyond `max_outstanding` queued queries, new ones are completed at once with
`served=False` (counted as dropped); after `expire()` (the run's wall-time bound) everything queued or still
arriving is dropped the same way.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

ProcessFn = Callable[[list[int]], None]  # users of one batch
_worker = threading.local()


def current_response_ids() -> list[int]:
    """LoadGen response ids of the batch being processed on this (the batcher's worker) thread, so a stage
    inside `process` can report per-query events such as a first token."""
    return getattr(_worker, "response_ids", [])


CompleteFn = Callable[[Sequence[int], bool], None]  # (response ids, served); served=False marks a dropped query


@dataclass(frozen=True)
class Query:
    user: int
    response_id: int
    arrived: float  # batcher clock, seconds
    dropped: bool = False  # expired before it was served


@dataclass
class BatcherStats:
    submitted: int = 0
    served: int = 0
    dropped: int = 0  # over max_outstanding, after expire(), or in a batch whose process() raised
    batch_sizes: list[int] = field(default_factory=list)
    # Arrival to completion of each served query, seconds, in completion order: dropped queries complete at once
    # with an error, so LoadGen's own percentiles (which count them) would read fast; these never include them.
    served_latencies_s: list[float] = field(default_factory=list)


class Batcher:
    def __init__(
        self,
        process: ProcessFn,
        complete: CompleteFn,
        *,
        max_batch_size: int,
        max_wait_s: float,
        max_outstanding: int | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"Batcher: max_batch_size must be >= 1, got {max_batch_size}")
        if max_wait_s < 0:
            raise ValueError(f"Batcher: max_wait_s must be >= 0, got {max_wait_s}")
        self.process = process
        self.complete = complete
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_outstanding = max_outstanding
        self.clock = clock
        self.stats = BatcherStats()
        self.error: BaseException | None = None  # the first exception process() raised
        self._queue: deque[Query] = deque()
        self._cond = threading.Condition()
        self._flush = False  # dispatch what is queued without waiting for max_wait
        self._expired = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ producer side (LoadGen's threads)

    def submit(self, queries: Iterable[tuple[int, int]]) -> None:
        """Queue (user, response_id) pairs; those over max_outstanding (or after expire) are dropped at once."""
        now = self.clock()
        dropped: list[int] = []
        with self._cond:
            for user, response_id in queries:
                self.stats.submitted += 1
                if self._expired or (self.max_outstanding is not None and len(self._queue) >= self.max_outstanding):
                    dropped.append(response_id)
                else:
                    self._queue.append(Query(user, response_id, now))
            self.stats.dropped += len(dropped)
            self._cond.notify()
        if dropped:
            self.complete(dropped, False)

    def flush(self) -> None:
        """Serve what is queued without waiting for max_wait (LoadGen's flush callback)."""
        with self._cond:
            self._flush = True
            self._cond.notify()

    def expire(self) -> None:
        """The run's time is up: drop everything queued now and everything submitted from now on.

        The worker thread completes the dropped queries, not the caller (a timer thread): completing thousands
        of LoadGen queries from a second thread while LoadGen winds down crashed LoadGen 6.0.17 here."""
        with self._cond:
            self._expired = True
            self._cond.notify()

    @property
    def expired(self) -> bool:
        return self._expired

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    # ------------------------------------------------------------------ consumer side (the worker thread)

    def start(self) -> Batcher:
        self._thread = threading.Thread(target=self._run, name="recbench-batcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Serve what is still queued, then end the worker thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Batcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_batch(self) -> list[Query] | None:
        """Block until a batch is due; None once stopping with nothing queued."""
        with self._cond:
            while True:
                if self._queue and self._expired:
                    return self._drain_expired()
                if self._queue:
                    full = len(self._queue) >= self.max_batch_size
                    wait_left = self._queue[0].arrived + self.max_wait_s - self.clock()
                    if full or wait_left <= 0 or self._flush or self._stopping:
                        n = min(self.max_batch_size, len(self._queue))
                        batch = [self._queue.popleft() for _ in range(n)]
                        if not self._queue:
                            self._flush = False
                        return batch
                    self._cond.wait(wait_left)
                elif self._stopping:
                    return None
                else:
                    self._flush = False
                    self._cond.wait()

    def _drain_expired(self) -> list[Query]:
        dropped = list(self._queue)
        self._queue.clear()
        self.stats.dropped += len(dropped)
        return [replace(q, dropped=True) for q in dropped]

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            ids = [q.response_id for q in batch]
            if batch[0].dropped:
                self.complete(ids, False)
                continue
            _worker.response_ids = ids
            try:
                self.process([q.user for q in batch])
            except BaseException as exc:  # complete the batch anyway, or LoadGen would wait for it forever
                with self._cond:
                    if self.error is None:
                        self.error = exc
                    self.stats.dropped += len(ids)
                self.complete(ids, False)
                continue
            done = self.clock()
            with self._cond:
                self.stats.served += len(ids)
                self.stats.batch_sizes.append(len(ids))
                self.stats.served_latencies_s.extend(done - q.arrived for q in batch)
            self.complete(ids, True)
