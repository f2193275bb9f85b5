"""What a fault tells a component, and how a component takes it.

The fault schedule (``sim.world.faults``) tells a node it has failed with a
:class:`Failure` and later that it is repaired. Every kind of node that can fail (MTA,
relay, ESP, MX, resolver, authoritative name server, mailbox store) has the two methods
of :class:`Fails`; what "down" means is each kind's own (an SMTP server answers no
connects, a resolver no queries, a store takes no writes). Reasons add up
(``sim.core.downtime.Downtime``): each fault holds the node down under its own reason,
so one repair does not end another fault.

A crash cuts the sessions in progress: the schedule interrupts every process that holds
a session at the node (``sim.core.sessions``) with a :class:`Cut` as the cause; the
process's own ``except simpy.Interrupt`` decides what the cut costs (a deferral, a
requeue, a duplicate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = ["Cut", "DISK_LOST", "Failure", "Fails", "Halts", "disk_lost"]

DISK_LOST = "disk lost at "  # the reason a message on a lost disk ends lost, then the node


def disk_lost(node: str) -> str:
    """The ``reason`` of a row lost with ``node``'s disk."""
    return DISK_LOST + node


@dataclass(frozen=True, slots=True)
class Failure:
    """One fault at one node: why (its reason key), how it answers, what it breaks."""

    reason: str  # the key it holds the node down under ("fault 3"), unique per fault
    answer: Literal["none", "refuse"] | None  # how the node answers meanwhile; None: its own
    crash: bool  # the sessions in progress were cut (the schedule cuts them)
    disk: bool  # the node's queue or store is lost when the fault starts


@runtime_checkable
class Fails(Protocol):
    """A component that can fail (every server kind)."""

    def fail(self, failure: Failure) -> None:
        """Go down for ``failure`` (and lose the disk if it says so)."""

    def repair(self, failure: Failure) -> None:
        """The fault ``failure`` is over (the node is up when no other reason holds it)."""


@dataclass(frozen=True, slots=True)
class Cut:
    """The cause of an interrupt that cuts a session: what broke, and where."""

    what: str  # "crash" (a node), "link" (no path left)
    node: str  # the node that crashed, or one end of the broken path


class Halts:
    """The faults holding a node's work down (its queue, its scanners, its writes), and
    what became of its disk: shared by every kind of server that holds mail.

    ``losses`` counts the disk's losses (work begun before a loss and ended after it
    lost what it held); ``wiped`` is the reason text of rows lost with it, and
    ``lost_at`` when it was last lost, both until nothing holds the node any more.
    """

    __slots__ = ("reasons", "losses", "wiped", "lost_at")

    def __init__(self) -> None:
        self.reasons: set[str] = set()
        self.losses = 0
        self.wiped: str | None = None
        self.lost_at = -1.0

    def __bool__(self) -> bool:
        return bool(self.reasons)

    def hold(self, failure: Failure, node: str, now: float) -> str | None:
        """``failure`` holds ``node`` down from ``now``: the reason of the rows lost with
        its disk if the fault loses it, else None."""
        self.reasons.add(failure.reason)
        if not failure.disk:
            return None
        self.wiped = disk_lost(node)
        self.lost_at = now
        self.losses += 1
        return self.wiped

    def release(self, failure: Failure) -> bool:
        """``failure`` is over: whether nothing holds the node any more (its work goes
        on; the loss of its disk is behind it)."""
        self.reasons.discard(failure.reason)
        if self.reasons:
            return False
        self.wiped = None
        return True

    def lost_with(self, now: float) -> str | None:
        """The reason a copy taken at ``now`` is lost if it was on the disk the last
        loss took (a "." answered as the disk went, before the repair), else None."""
        return self.wiped if self.wiped is not None and now <= self.lost_at else None
