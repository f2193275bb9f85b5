"""How many delivery attempts a destination (a recipient domain) gets at once.

A **concurrency policy** is data an MTA is given: it decides whether one more attempt
to a destination may start, and hears how each attempt ended (feedback for adaptive
rules such as Postfix's slow start). A :class:`Destination` is the MTA's state for one
recipient domain: attempts in progress and messages parked until a slot frees.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from ..core.records import Envelope
from .smtp import Outcome

__all__ = ["ConcurrencyPolicy", "Destination", "FixedConcurrency"]


class Destination:
    """A sending MTA's state for one recipient domain: attempts running, envelopes waiting."""

    __slots__ = ("busy", "parked")

    def __init__(self) -> None:
        self.busy = 0  # attempts in progress
        self.parked: deque[Envelope] = deque()  # waiting for a free slot, oldest first


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
