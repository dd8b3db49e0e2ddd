"""LoadGen's system under test and query sample library around a Batcher."""

from __future__ import annotations

import array
from collections.abc import Sequence

import mlperf_loadgen as lg

from bench.load.batcher import Batcher

SERVED, DROPPED = 1, 0  # the one-byte response payload: dropped queries carry the error marker
# Completing a few thousand samples in one QuerySamplesComplete call crashed LoadGen 6.0.17 here (segfault when
# an expired offline run dropped ~2000 at once); calls are split into chunks of this many.
COMPLETE_CHUNK = 256


def loadgen_complete(response_ids: Sequence[int], served: bool, *, n_tokens: int | None = None) -> None:
    """Complete queries with LoadGen. LoadGen reads the payload through a raw pointer during the call, so the
    buffer is held by this frame until QuerySamplesComplete has returned. With token latencies, each served
    response also says how many tokens it produced (LoadGen derives time per output token from it)."""
    payload = array.array("B", [SERVED if served else DROPPED])
    address, _ = payload.buffer_info()
    tokens = (n_tokens if served else 1) if n_tokens is not None else None
    for start in range(0, len(response_ids), COMPLETE_CHUNK):
        chunk = response_ids[start : start + COMPLETE_CHUNK]
        if tokens is None:
            lg.QuerySamplesComplete([lg.QuerySampleResponse(rid, address, 1) for rid in chunk])
        else:
            lg.QuerySamplesComplete([lg.QuerySampleResponse(rid, address, 1, tokens) for rid in chunk])
    del payload  # only now may the buffer go


def loadgen_first_token(response_ids: Sequence[int]) -> None:
    """Report the first token of each query (time to first token in LoadGen's token-latency mode)."""
    payload = array.array("B", [SERVED])
    address, _ = payload.buffer_info()
    lg.FirstTokenComplete([lg.QuerySampleResponse(rid, address, 1) for rid in response_ids])
    del payload


class LoadGenSUT:
    """ConstructSUT/ConstructQSL handles over a batcher; QSL index i is user i (user state is resident, so
    loading and unloading samples is a no-op). Use as a context manager so the handles are destroyed."""

    def __init__(self, batcher: Batcher, *, total_samples: int, performance_samples: int) -> None:
        self.batcher = batcher
        self.sut = lg.ConstructSUT(self._issue, self._flush)
        self.qsl = lg.ConstructQSL(total_samples, performance_samples, self._load, self._unload)

    def _issue(self, samples: list) -> None:
        self.batcher.submit((s.index, s.id) for s in samples)

    def _flush(self) -> None:
        self.batcher.flush()

    @staticmethod
    def _load(indices: list[int]) -> None:
        pass

    @staticmethod
    def _unload(indices: list[int]) -> None:
        pass

    def close(self) -> None:
        lg.DestroyQSL(self.qsl)
        lg.DestroySUT(self.sut)

    def __enter__(self) -> LoadGenSUT:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
