"""Which users make up each batch: in arrival order, or bucketed by prompt length.

A padded batch runs to its longest prompt, so the LLM also computes over padding (`packed` batches, in arrival
order, have none in their prompts: bench.loop.scoring). With `bucketed`, the
batcher looks ahead over a window of `window` batches of arriving users (as a serving batcher holding
requests for a short while would), sorts them by the length of their prompt, and cuts the sorted list into
batches: each batch then holds users of similar length and wastes less work on padding. The same users are
scored either way, so ranking quality is unchanged; what changes is the padding, and the wait a window adds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class BatchPlanner:
    def __init__(
        self,
        *,
        n_users: int,
        batch_size: int,
        padding: str,
        window: int,
        prompt_length: Callable[[int], int],
    ) -> None:
        """`prompt_length(user)`: the length of that user's prompt, or of the part of it that varies."""
        self.n_users, self.batch_size = n_users, batch_size
        self.padding, self.window = padding, window
        self.prompt_length = prompt_length
        self._next_user = 0
        self._planned: deque[list[int]] = deque()

    def next_batch(self) -> list[int]:
        if not self._planned:
            self._plan(self.window if self.padding == "bucketed" else 1)
        return self._planned.popleft()

    def _plan(self, batches: int) -> None:
        """The next `batches` batches of arriving users (cycling through all users in order)."""
        count = batches * self.batch_size
        arriving = [(self._next_user + i) % self.n_users for i in range(count)]
        self._next_user = (self._next_user + count) % self.n_users
        if batches > 1:
            arriving.sort(key=self.prompt_length)  # stable: equal lengths keep their arrival order
        for start in range(0, count, self.batch_size):
            self._planned.append(arriving[start : start + self.batch_size])
