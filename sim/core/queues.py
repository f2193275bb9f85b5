"""Hand-offs between processes, cheaper than SimPy's Store and Resource.

Measured on these machines, a ``simpy.Store`` hand-off costs two events (the put and
the get) and a ``simpy.Resource`` use three (request, release and the wake-up); with
four hand-offs and a mailbox write per message they were a fifth of a run's time.
``WorkQueue`` passes an item to a waiting worker with one event, and to a worker that
asks while items wait with none; ``Slots`` admits a holder with no event while a slot
is free. Both serve first come, first served, as Store and Resource do.

A pool's workers are hired on demand (``WorkQueue.staff``): a worker process is started
only when work arrives and no hired worker is idle, up to the pool's size, and then
stays. A pool of 200 that never sees work costs no process and no event, and the
hand-off to a new hire is the same one event at the same instant that waking an idle
worker is, so results do not depend on when workers were started.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar, cast

import simpy

__all__ = ["Slots", "WorkQueue"]

T = TypeVar("T")


class WorkQueue(Generic[T]):
    """An unbounded FIFO of work for a pool of worker processes.

    A worker takes the next item with::

        if queue.items:
            item = queue.items.popleft()
        else:
            event = queue.wait()
            try:
                item = yield event
            except simpy.Interrupt:  # interrupted while idle
                queue.cancel(event)

    and gives back an item it could not finish with ``queue.requeue(item)``. A worker
    hired by the queue (``staff``) starts by yielding the event it was hired with, as if
    it had been waiting on it.

    **Resting.** A worker that still has a few seconds of its own to spend that nothing
    can change (the QUIT at the end of a dialogue) need not spend them in a timeout of
    their own: with nothing queued it waits at once with ``queue.wait(ready)``, ``ready``
    being when it is free. The queue serves it as if it had joined the line at
    ``ready``: idle workers by the time they became free, then a new hire, then the
    first resting worker to become free, which is woken then with ``None`` ("look at
    the queue", as it would have done) while the item waits in the queue for whichever
    worker is free first. A worker that finds work queued when it finishes still
    spends its rest in a timeout, so that a worker free sooner takes the work first.
    """

    __slots__ = ("env", "items", "_line", "_seq", "hired", "_size", "_hire", "paused")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.items: deque[T] = deque()
        # Waiting workers as (free from, arrival number, event): the longest-free first.
        self._line: list[tuple[float, int, simpy.Event]] = []
        self._seq = 0
        self.hired = 0  # workers this queue has started (staff)
        self._size = 0
        self._hire: Callable[[simpy.Event], object] | None = None
        # A paused queue (its server is down) hands nothing out: work waits in ``items``
        # and workers look at ``paused`` before taking from there (``pause``, ``resume``).
        self.paused = False

    def __len__(self) -> int:
        return len(self.items)

    def staff(self, size: int, hire: Callable[[simpy.Event], object]) -> None:
        """Serve the queue with up to ``size`` workers, started on demand.

        ``hire(first)`` starts one worker process that begins by yielding ``first`` (an
        event already triggered with its first item). Started workers stay: idle, a
        worker is a parked process and no event.
        """
        self._size = size
        self._hire = hire

    def _hand(self, item: T) -> bool:
        """Give ``item`` to an idle worker or a new hire; False if it must queue (then
        the first resting worker, if any, is woken when it is free to take it)."""
        line = self._line
        now = self.env.now
        if line and line[0][0] <= now:
            heapq.heappop(line)[2].succeed(item)
            return True
        if self.hired < self._size:
            assert self._hire is not None
            self.hired += 1
            # Succeeded before the hire starts: the same event, at the same place in the
            # schedule, that would have woken an idle worker (the hire's own start is an
            # urgent event that only parks it on this one).
            first = self.env.event()
            first.succeed(item)
            self._hire(first)
            return True
        if line:
            free, _, event = heapq.heappop(line)
            # What simpy's Timeout does, on the event the worker already waits on: one
            # event, at the time the worker would have looked at the queue.
            event._ok = True
            event._value = None
            self.env.schedule(event, delay=free - now)
        return False

    def put(self, item: T) -> None:
        """Add work: the longest-waiting idle worker gets it (or a new hire), else it
        joins the queue (always, while paused)."""
        line = self._line
        if self.paused:
            self.items.append(item)
        elif line and line[0][0] <= self.env.now:
            heapq.heappop(line)[2].succeed(item)
        elif not self._hand(item):
            self.items.append(item)

    def wait(self, ready: float | None = None) -> simpy.Event:
        """An event a worker yields when the queue is empty; its value is the item, or
        None when a resting worker (``ready`` later than now) is woken to look again."""
        event = self.env.event()
        now = self.env.now
        self._seq += 1
        heapq.heappush(self._line, (now if ready is None or ready < now else ready, self._seq, event))
        return event

    def cancel(self, event: simpy.Event) -> None:
        """A worker waiting on ``event`` was interrupted: withdraw it from the line, and
        give back an item it had already been handed, first in line."""
        if event.triggered:
            if event.value is not None:
                self.requeue(cast(T, event.value))
        else:
            line = self._line
            line[:] = [entry for entry in line if entry[2] is not event]
            heapq.heapify(line)

    def requeue(self, item: T) -> None:
        """Put back an item a worker could not finish: it goes first."""
        if self.paused or not self._hand(item):
            self.items.appendleft(item)

    def pause(self) -> None:
        """Hand nothing out until ``resume`` (the server that works the queue is down);
        workers that finish meanwhile wait in line. Costs nothing until then but the
        test of ``paused`` in ``put``."""
        self.paused = True

    def resume(self) -> None:
        """Hand out what waited, in order, as ``put`` would have: to idle workers and new
        hires, then each further item wakes a resting worker when it is free."""
        self.paused = False
        waiting = list(self.items)
        self.items.clear()
        for item in waiting:
            if not self._hand(item):
                self.items.append(item)


class Slots:
    """``capacity`` slots held one at a time, e.g. a store's concurrent writes."""

    __slots__ = ("env", "capacity", "busy", "_waiting")

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        self.env = env
        self.capacity = capacity
        self.busy = 0
        self._waiting: deque[simpy.Event] = deque()

    def acquire(self) -> Generator[simpy.Event, Any, None]:
        """Take a slot, waiting in line if all are busy (``yield from slots.acquire()``)."""
        if self.busy < self.capacity:
            self.busy += 1
            return
        event = self.env.event()
        self._waiting.append(event)
        try:
            yield event  # the releasing holder hands its slot over
        except simpy.Interrupt:
            if event.triggered:
                self.release()  # it was handed over already: pass it on
            else:
                self._waiting.remove(event)
            raise

    def release(self) -> None:
        """Give the slot back, or hand it straight to the longest waiter."""
        if self._waiting:
            self._waiting.popleft().succeed()
        else:
            self.busy -= 1
