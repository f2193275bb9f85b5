"""When a sending MTA tries again, and how many sessions a destination gets.

Send-side policies are data an MTA is given, not code inside it:

- a **retry schedule** decides when a deferred message is due again, from its history
  (when it was queued, how many attempts it had) and the time of the failure, or that
  it has been queued too long and bounces;
- a **concurrency policy** decides how many delivery attempts a destination (a
  recipient domain) may have in progress, and hears how each ended;
- the **deferred queue** holds deferred messages as data (a heap by due time) and one
  queue runner per MTA moves due messages back to the active queue on its scan grid,
  as Postfix's queue manager does. A million deferred messages are a million tuples,
  not a million sleeping processes.

Today's behaviour is Postfix's (docs/model.md, docs/sources.md): the backoff is the
message's age clamped to [``minimal_backoff_time``, ``maximal_backoff_time``], a
message older than ``maximal_queue_lifetime`` bounces, the deferred queue is scanned
every ``queue_run_delay``, and each destination gets at most
``default_destination_concurrency_limit`` attempts at once.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Generator
from typing import Any, Protocol

import simpy

from ..core.records import Message
from .smtp import Outcome

__all__ = [
    "ConcurrencyPolicy",
    "DeferredQueue",
    "Destination",
    "FixedConcurrency",
    "PostfixBackoff",
    "RetrySchedule",
]


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


class Destination:
    """A sending MTA's state for one recipient domain: attempts running, messages waiting."""

    __slots__ = ("busy", "parked")

    def __init__(self) -> None:
        self.busy = 0  # attempts in progress
        self.parked: deque[Message] = deque()  # waiting for a free slot, oldest first


class ConcurrencyPolicy(Protocol):
    """Decides how many attempts a destination may have at once, from what it hears."""

    def allows(self, dest: Destination) -> bool:
        """Whether one more attempt may start now."""

    def finished(self, dest: Destination, outcome: Outcome) -> None:
        """An attempt to ``dest`` ended with ``outcome`` (feedback for adaptive rules)."""


class FixedConcurrency:
    """At most ``limit`` attempts per destination, whatever happens (no feedback)."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def allows(self, dest: Destination) -> bool:
        """Below the fixed limit."""
        return dest.busy < self.limit

    def finished(self, dest: Destination, outcome: Outcome) -> None:
        """A fixed limit learns nothing."""


class DeferredQueue:
    """Deferred messages by due time, moved back by a runner every ``every`` seconds.

    The runner scans at t = k * every (k >= 1). While the queue is empty it sleeps
    instead of waking for nothing; it then resumes at the next tick of the same grid, so
    the schedule is exactly that of a runner that never slept.
    """

    def __init__(
        self, env: simpy.Environment, every: float, release: Callable[[Message], None]
    ) -> None:
        self.env = env
        self.every = every
        self.release = release
        self.heap: list[tuple[float, int, Message]] = []  # (due, id, message)
        self._idle: simpy.Event | None = None  # the sleeping runner's wake-up

    def __len__(self) -> int:
        return len(self.heap)

    def put(self, msg: Message, due: float) -> None:
        """Hold ``msg`` until the first scan at or after ``due``."""
        heapq.heappush(self.heap, (due, msg.id, msg))
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
