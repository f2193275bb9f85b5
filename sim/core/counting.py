"""An Environment that counts the events it schedules: how benchmarks and tests measure
the model's cost in events (``docs/performance.md``)."""

from __future__ import annotations

from typing import Any

import simpy
from simpy.events import NORMAL, Event, EventPriority

__all__ = ["CountingEnvironment"]


class CountingEnvironment(simpy.Environment):
    """A ``simpy.Environment`` whose ``scheduled`` counts every event it schedules."""

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        self.scheduled = 0

    def schedule(self, event: Event, priority: EventPriority = NORMAL, delay: Any = 0) -> None:
        """Schedule ``event`` as SimPy does, and count it."""
        self.scheduled += 1
        super().schedule(event, priority, delay)
