"""An Environment that counts the events it schedules: how benchmarks and tests measure
the model's cost in events (``docs/performance.md``)."""

from __future__ import annotations

import simpy

__all__ = ["CountingEnvironment"]


class _Numbers:
    """SimPy's event numbers (``Environment._eid``, an ``itertools.count``), counted."""

    __slots__ = ("taken",)

    def __init__(self) -> None:
        self.taken = 0

    def __iter__(self) -> _Numbers:
        return self

    def __next__(self) -> int:
        n = self.taken
        self.taken = n + 1
        return n


class CountingEnvironment(simpy.Environment):
    """A ``simpy.Environment`` whose ``scheduled`` counts every event it schedules.

    Every scheduled event takes the next event number, the tie-breaker of SimPy's
    schedule, and so does every wait of ``sim.core.timers`` (which enters the schedule
    under the key a timeout would have had, without ``schedule``): counting the numbers
    counts both."""

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        self._eid = _Numbers()  # type: ignore[assignment]

    @property
    def scheduled(self) -> int:
        """Events scheduled so far."""
        return self._eid.taken  # type: ignore[attr-defined]
