"""Many sleepers, one place in SimPy's schedule: arrival processes that cost the rest
of the run nothing while they wait.

Every event a run processes is popped from SimPy's schedule, a binary heap, at a cost
that grows with the heap's size (about 250 ns a pop and push at 50 entries, 600 ns at
4,000, 720 ns at 10,000 on the development machine). In a world of many domains most of
the heap is traffic sources waiting for their next arrival (4,000 of about 4,100
entries in the day over 10,000 domains), so every other event of the run paid for them.

:class:`Timers` keeps such waits in a heap of its own and puts only the next one due
in SimPy's schedule. A sleeper is a generator that yields delays (plain floats), as a
SimPy process would yield ``env.timeout(delay)``; nothing else can wake it, and it
cannot be interrupted. The order of events is exactly SimPy's: a wait takes its
sequence number (``_eid``) from the environment when it starts, as a timeout does, and
enters SimPy's schedule under the key the timeout would have had, ``(now + delay,
NORMAL, eid)``; a sleeper starts with an urgent event as a process does, and its end
takes a sequence number as a process's end event does. So every other event keeps its
number, and a run gives the same results, draw for draw, with or without it.

This uses two private attributes of ``simpy.Environment`` (``_queue``, the heap of
``(time, priority, eid, event)``, and ``_eid``, its counter): ``tests/test_timers.py``
checks against SimPy's own timeouts that the order is unchanged.
"""

from __future__ import annotations

import heapq
from collections.abc import Generator
from typing import Any

import simpy
from simpy.events import NORMAL, URGENT

__all__ = ["Timers"]

Sleeper = Generator[float, None, None]

# A pending wait is a list [when, eid, sleeper, event]: lists compare as their items do,
# and eids are unique, so a heap of them orders by (when, eid) and never compares the
# rest. ``event`` is the sleeper's own event while the wait is in SimPy's schedule
# (armed), else None; one event per sleeper serves all its waits, one at a time.
_AT, _EID, _SLEEPER, _ARMED = 0, 1, 2, 3


class Timers:
    """Sleepers of one environment: only the wait due first is in SimPy's schedule."""

    __slots__ = ("env", "_heap", "_events")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self._heap: list[list[Any]] = []
        self._events: dict[Sleeper, simpy.Event] = {}

    def __len__(self) -> int:
        return len(self._heap)

    def process(self, sleeper: Sleeper) -> None:
        """Run ``sleeper`` from now, as ``env.process`` would run a generator that
        yields ``env.timeout(d)`` where this one yields ``d``."""
        start = simpy.Event(self.env)
        start._ok = True
        start._value = None
        start.callbacks.append(lambda _: self._advance(sleeper))
        self.env.schedule(start, URGENT)  # a process's Initialize

    def _advance(self, sleeper: Sleeper) -> None:
        env = self.env
        try:
            delay = next(sleeper)
        except StopIteration:
            next(env._eid)  # the end event a process would schedule
            self._events.pop(sleeper, None)
            return
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        wait = [env._now + delay, next(env._eid), sleeper, None]
        heap = self._heap
        heapq.heappush(heap, wait)
        if heap[0] is wait:
            self._arm(wait)

    def _arm(self, wait: list[Any]) -> None:
        sleeper = wait[_SLEEPER]
        event = self._events.get(sleeper)
        if event is None:
            event = self._events[sleeper] = simpy.Event(self.env)
            event._ok = True
        event.callbacks = [self._due]
        event._value = wait
        wait[_ARMED] = event
        heapq.heappush(self.env._queue, (wait[_AT], NORMAL, wait[_EID], event))

    def _due(self, event: simpy.Event) -> None:
        # SimPy pops in key order and the first wait here is always armed, so the wait
        # that is due is the first one.
        heap = self._heap
        wait = heapq.heappop(heap)
        assert wait is event._value
        self._advance(wait[_SLEEPER])
        if heap and heap[0][_ARMED] is None:
            self._arm(heap[0])
