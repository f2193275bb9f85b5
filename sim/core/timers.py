"""Many sleepers, one place in SimPy's schedule: arrival processes whose waits cost the
rest of the run little.

Every event a run processes is popped from SimPy's schedule, a binary heap, at a cost
that grows with the heap's size (about 250 ns a pop and push at 50 entries, 600 ns at
4,000, 720 ns at 10,000 on the development machine). In a world of many domains most of
that heap is traffic sources waiting for their next arrival (4,598 of 4,621 entries two
hours into the day over 10,000 domains), so every other event of the run paid for them
(docs/performance.md, "Waiting sources off SimPy's schedule").

:class:`Timers` keeps such waits in a heap of its own and puts only the next one due
in SimPy's schedule. A sleeper is a generator that yields delays (plain floats) where
a SimPy process would yield ``env.timeout(delay)``. The order of events is exactly
SimPy's: a wait takes its event number (``_eid``, SimPy's tie-breaker) from the
environment when it starts, as a timeout does, and enters SimPy's schedule under the
key the timeout would have had, ``(now + delay, NORMAL, number)``; a sleeper starts
with an urgent event as a process does, and ends with the (unwatched) event a process
ends with. Every other event keeps its number, so a run gives the same results, draw
for draw, as with processes.

What a sleeper is not, compared with a process: nothing can wait for it or interrupt
it (``start`` returns nothing), so use it only for a loop that nothing outside wakes or
stops, such as a traffic source's arrivals. While it runs, ``env.active_process`` is
None: code that files what it opens under the active process (``sim.core.sessions``,
whose sessions a fault cuts) must not be called from a sleeper. Errors are a process's:
a delay ``env.timeout`` would refuse (negative, not a number) is raised in the sleeper,
which may catch it, and an error the sleeper lets out fails its end event, which makes
``env.run`` raise a copy when it comes up.

This uses private attributes of SimPy 4: the Environment's ``_queue`` (the heap of
``(time, priority, number, event)``), ``_eid`` (the numbers' counter) and ``_now``, and
an Event's ``_ok`` and ``_value``, as SimPy's own event classes do. ``Timers`` refuses
an environment without ``_queue`` and ``_eid``; ``tests/test_timers.py`` checks that a
wait enters the heap as a timeout would, and the order of events, ``env.peek()``, the
event count and errors against SimPy's own processes.
"""

from __future__ import annotations

import heapq
from collections.abc import Generator
from typing import Any

import simpy
from simpy.events import NORMAL, URGENT

__all__ = ["Timers"]

Sleeper = Generator[float, None, None]

# A pending wait is a list [when, number, sleeper, event, armed]: lists compare as their
# items do and numbers are unique, so a heap of them orders by (when, number) and never
# compares the rest. ``event`` is the sleeper's own event, made at its first wait and
# reused for each (a sleeper has one wait at a time); ``armed``: it is in SimPy's
# schedule.
_AT, _EID, _SLEEPER, _EVENT, _ARMED = 0, 1, 2, 3, 4


def _triggered(env: simpy.Environment, ok: bool, value: BaseException | None) -> simpy.Event:
    """An event already triggered with ``ok`` and ``value``, not yet scheduled (as SimPy's
    own Initialize and Timeout set theirs)."""
    event = simpy.Event(env)
    event._ok = ok
    event._value = value
    return event


class Timers:
    """Sleepers of one environment: only the wait due first is in SimPy's schedule."""

    __slots__ = ("env", "_heap")

    def __init__(self, env: simpy.Environment) -> None:
        if not isinstance(getattr(env, "_queue", None), list) or not hasattr(env, "_eid"):
            raise TypeError("sim.core.timers needs SimPy 4's Environment (its _queue heap and _eid counter)")
        self.env = env
        self._heap: list[list[Any]] = []

    def __len__(self) -> int:
        """Waits pending."""
        return len(self._heap)

    def start(self, sleeper: Sleeper) -> None:
        """Run ``sleeper`` from now, as ``env.process`` would run a generator that
        yields ``env.timeout(d)`` where this one yields ``d`` (nothing is returned:
        a sleeper cannot be waited for or interrupted)."""
        begin = _triggered(self.env, True, None)
        begin.callbacks.append(lambda _: self._advance(sleeper, None))
        self.env.schedule(begin, URGENT)  # a process's Initialize

    def _advance(self, sleeper: Sleeper, event: simpy.Event | None) -> None:
        """Run ``sleeper`` to its next wait (``event``: its own, None before the first)."""
        env = self.env
        try:
            delay = next(sleeper)
            while True:
                # What env.timeout refuses is raised in the sleeper, which may catch it.
                try:
                    if not delay < 0:
                        break
                    error: Exception = ValueError(f"Negative delay {delay}")
                except TypeError:
                    error = TypeError(f"a sleeper yields delays in seconds, not {delay!r}")
                delay = sleeper.throw(error)
        except StopIteration:
            self._end(True, None)
            return
        except BaseException as exc:  # as a SimPy process fails
            self._end(False, exc)
            return
        if event is None:
            event = _triggered(env, True, None)
        wait = [env._now + delay, next(env._eid), sleeper, event, False]
        heap = self._heap
        heapq.heappush(heap, wait)
        if heap[0] is wait:
            self._arm(wait)

    def _end(self, ok: bool, value: BaseException | None) -> None:
        """The event a process ends with, that nobody waits for: a failure makes
        ``env.run`` raise a copy of the error when it comes up, as SimPy does."""
        self.env.schedule(_triggered(self.env, ok, value))

    def _arm(self, wait: list[Any]) -> None:
        wait[_ARMED] = True
        event = wait[_EVENT]
        event.callbacks = [self._due]
        heapq.heappush(self.env._queue, (wait[_AT], NORMAL, wait[_EID], event))

    def _due(self, event: simpy.Event) -> None:
        # SimPy pops in key order and the first wait here is always armed, so the wait
        # that is due is the first one (its event is ``event``).
        heap = self._heap
        wait = heapq.heappop(heap)
        # The next wait goes in first: SimPy's schedule then holds, while this sleeper
        # runs, what it would hold with processes (env.peek()).
        if heap and not heap[0][_ARMED]:
            self._arm(heap[0])
        self._advance(wait[_SLEEPER], event)
