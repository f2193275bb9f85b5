"""When a sending MTA tries again.

Send-side policies are data an MTA is given, not code inside it:

- a **retry schedule** decides when a deferred message is due again, from its history
  (when it was queued, how many attempts it had) and the time of the failure, or that
  it has been queued too long and bounces;
- the **deferred queue** holds deferred messages as data (a heap by due time) and one
  queue runner per MTA moves due messages back to the active queue on its scan grid,
  as Postfix's queue manager does. A million deferred messages are a million tuples,
  not a million sleeping processes.

Today's behaviour is Postfix's (docs/model.md, docs/sources.md): the backoff is the
message's age clamped to [``minimal_backoff_time``, ``maximal_backoff_time``], a
message older than ``maximal_queue_lifetime`` bounces, and the deferred queue is
scanned every ``queue_run_delay``. How many attempts a destination gets at once is
``sim.mail.concurrency``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol

import simpy

from ..core.records import Envelope

if TYPE_CHECKING:
    from .concurrency import Destination

__all__ = ["DeferredQueue", "PostfixBackoff", "RetrySchedule"]


class RetrySchedule(Protocol):
    """Decides when a deferred message is due again.

    It sees the message's history (when it was queued, how many attempts it had) and
    the destination's state, so rules kept per destination or per host (Exim's retry
    database) fit the same seam.
    """

    def next_due(
        self, queued_at: float, attempts: int, now: float, dest: Destination
    ) -> float | None:
        """When the message that failed at ``now`` may be tried again; None: give up."""


class PostfixBackoff:
    """Postfix's rule: wait the message's age, clamped, until its queue lifetime ends."""

    __slots__ = ("minimal", "maximal", "lifetime")

    def __init__(self, minimal: float, maximal: float, lifetime: float) -> None:
        self.minimal = minimal  # minimal_backoff_time
        self.maximal = maximal  # maximal_backoff_time
        self.lifetime = lifetime  # maximal_queue_lifetime

    def next_due(
        self, queued_at: float, attempts: int, now: float, dest: Destination | None = None
    ) -> float | None:
        """now + clamp(age, minimal, maximal); None once the age reaches the lifetime."""
        age = now - queued_at
        if age >= self.lifetime:
            return None
        return now + min(max(age, self.minimal), self.maximal)


class DeferredQueue:
    """Deferred envelopes by due time, moved back by a runner every ``every`` seconds.

    The runner scans at t = k * every (k >= 1). While the queue is empty it sleeps
    instead of waking for nothing; it then resumes at the next tick of the same grid, so
    the schedule is exactly that of a runner that never slept.
    """

    def __init__(
        self, env: simpy.Environment, every: float, release: Callable[[Envelope], None]
    ) -> None:
        self.env = env
        self.every = every
        self.release = release
        # (due, id of the envelope's first row, envelope): the id breaks ties in a fixed order
        self.heap: list[tuple[float, int, Envelope]] = []
        self._idle: simpy.Event | None = None  # the sleeping runner's wake-up

    def __len__(self) -> int:
        return len(self.heap)

    def rows(self) -> int:
        """Rows (recipients) held: the envelopes' sizes added up (for the books)."""
        return sum(len(item[2]) for item in self.heap)

    def put(self, envelope: Envelope, due: float) -> None:
        """Hold ``envelope`` until the first scan at or after ``due``."""
        heapq.heappush(self.heap, (due, envelope[0].id, envelope))
        if self._idle is not None:
            self._idle.succeed()
            self._idle = None

    def start(self) -> None:
        """Start the queue runner."""
        self.env.process(self._run())

    def _run(self) -> Generator[simpy.Event, Any, None]:
        env, heap, every = self.env, self.heap, self.every
        while True:
            if not heap:
                self._idle = env.event()
                yield self._idle
            k = math.floor(env.now / every) + 1
            if k * every <= env.now:  # now / every rounded down past a tick
                k += 1
            yield env.timeout(k * every - env.now)
            now = env.now
            while heap and heap[0][0] <= now:
                self.release(heapq.heappop(heap)[2])
