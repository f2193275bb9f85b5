"""Shared bandwidth: the transfers crossing an edge marked ``shared: true`` split it.

An unmarked edge gives every transfer its whole bandwidth, however many cross it at
once (the model before this, and still the default: big worlds keep their speed). On a
shared edge the bodies in transit share the bandwidth fluidly, as TCP flows share a
bottleneck at the flow level (processor sharing): while n transfers cross it, each gets
bandwidth / n. A transfer over several shared edges gets the least of their shares,
and never more than the bottleneck of the path's other edges.

No event per packet: the rates change only when a transfer starts or ends on an edge,
so only then is each affected transfer brought up to date (bytes left, rate, when it
will end at that rate). Each shared edge keeps one timer, for the first of its
transfers to end; a change re-arms it with a new generation number, and a timer whose
generation is stale does nothing when it fires. A transfer that is interrupted (a
crash, a cut session) leaves its share at once.

A session spends its dialogue's round trips first and then the body at its share
(``transfer``); on a path with no shared edge it is the one timeout it always was.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

import simpy

if TYPE_CHECKING:
    from .links import Link

__all__ = ["SharedEdge", "Transfer", "transfer"]


class SharedEdge:
    """One edge marked shared: its bandwidth and the transfers crossing it now."""

    __slots__ = ("ends", "bandwidth", "transfers", "generation", "started", "most")

    def __init__(self, a: str, b: str, bandwidth: float) -> None:
        self.ends = (a, b)
        self.bandwidth = bandwidth
        self.transfers: dict[Transfer, None] = {}  # in the order they started
        self.generation = 0  # bumped at each change: older timers are stale
        self.started = 0  # transfers that crossed it so far
        self.most = 0  # the most that crossed it at once

    def __repr__(self) -> str:
        return f"SharedEdge({self.ends[0]}~{self.ends[1]}, {len(self.transfers)} transfers)"


class Transfer:
    """A body in transit over a path with shared edges."""

    __slots__ = ("left", "rate", "since", "finish", "edges", "cap", "done")

    def __init__(self, nbytes: float, edges: tuple[SharedEdge, ...], cap: float, done: simpy.Event) -> None:
        self.left = float(nbytes)  # bytes still to cross, as of ``since``
        self.rate = 0.0  # bytes/s since ``since``
        self.since = 0.0
        self.finish = 0.0  # when it ends at this rate
        self.edges = edges
        self.cap = cap  # the bottleneck of the path's unshared edges
        self.done = done  # succeeds when the last byte has crossed


def transfer(
    env: simpy.Environment, link: Link, wait: float, nbytes: float
) -> Generator[simpy.Event, Any, None]:
    """Spend a phase whose time over an unshared path would be ``wait`` (round trips,
    the ``nbytes`` body at the path's bottleneck, the server's own delays) on a path
    with shared edges: everything but the body first, then the body at its share.

    Call it only when ``link.shared`` is not empty; otherwise the phase is the plain
    ``env.timeout(wait)`` it always was. An interrupt leaves the share at once and goes
    on to the caller."""
    body = nbytes / link.bandwidth
    if wait > body:
        yield env.timeout(wait - body)
    if nbytes <= 0:
        return
    moving = Transfer(nbytes, link.shared, link.unshared, env.event())
    _change(env, moving.edges, (), moving)
    try:
        yield moving.done
    except simpy.Interrupt:
        if not moving.done.triggered:
            _change(env, moving.edges, (moving,), None)
        raise


def _change(
    env: simpy.Environment, edges: Iterable[SharedEdge], leaving: Iterable[Transfer], joining: Transfer | None
) -> None:
    """Transfers leave and join ``edges`` now: every transfer on them is brought up to
    date at its old rate, then every rate and end is worked out again, and the timers
    of every edge those transfers cross are re-armed."""
    now = env.now
    affected: dict[Transfer, None] = {}
    for edge in edges:
        affected.update(edge.transfers)
    for moving in affected:
        moving.left = max(0.0, moving.left - moving.rate * (now - moving.since))
        moving.since = now
    for gone in leaving:
        for edge in gone.edges:
            del edge.transfers[gone]
        affected.pop(gone, None)
    if joining is not None:
        joining.since = now
        for edge in joining.edges:
            edge.transfers[joining] = None
            edge.started += 1
            edge.most = max(edge.most, len(edge.transfers))
        affected[joining] = None
    touched: dict[SharedEdge, None] = dict.fromkeys(edges)
    for moving in affected:
        rate = moving.cap
        for edge in moving.edges:
            rate = min(rate, edge.bandwidth / len(edge.transfers))
            touched[edge] = None
        moving.rate = rate
        moving.finish = now + moving.left / rate
    for edge in touched:
        _arm(env, edge)


def _arm(env: simpy.Environment, edge: SharedEdge) -> None:
    """One timer for the first of ``edge``'s transfers to end (none when it is idle)."""
    edge.generation += 1
    if not edge.transfers:
        return
    finish = min(moving.finish for moving in edge.transfers)
    generation = edge.generation
    timer = env.timeout(max(0.0, finish - env.now))
    timer.callbacks.append(lambda _: _due(env, edge, generation, finish))


def _due(env: simpy.Environment, edge: SharedEdge, generation: int, finish: float) -> None:
    """``edge``'s timer fired: unless a change came since, the transfers due by
    ``finish`` end (equal shares of equal bodies end together) and the rest speed up."""
    if edge.generation != generation:
        return  # stale: a start or an end re-armed the edge
    # ``finish`` itself, not the clock: the timer fires at now + (finish - now), which
    # rounding may put an ulp away from it.
    ended = [moving for moving in edge.transfers if moving.finish <= finish]
    if not ended:
        _arm(env, edge)
        return
    edges: dict[SharedEdge, None] = {}
    for moving in ended:
        edges.update(dict.fromkeys(moving.edges))
    _change(env, edges, ended, None)
    for moving in ended:
        moving.left = 0.0
        moving.done.succeed()
