"""Why a node is down: reasons that add up, and the outages that schedule them.

A node can be held down for several reasons at once (a scheduled outage, a hook, a
fault); it is up when no reason holds it, so the end of one (an outage's) does not undo
another (a hook's). Each reason carries how the node answers meanwhile, in the terms of
its kind: an SMTP server's reply to a connect, a name server's or resolver's "refuse or
stay silent". Every kind of server shares this one rule (``Downtime``) and the one
process that runs its scheduled outages (``run_outages``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence, ValuesView
from typing import Any, Generic, TypeVar

import simpy

__all__ = ["Downtime", "run_outages"]

T = TypeVar("T")


class Downtime(Generic[T]):
    """The reasons holding a node down, each with how it answers meanwhile."""

    __slots__ = ("reasons",)

    def __init__(self) -> None:
        self.reasons: dict[str, T] = {}

    def change(self, up: bool, reason: str | None, how: T) -> bool:
        """Hold the node down for ``reason`` (``"manual"`` when None), answering ``how``,
        or release it: of that reason, or of every reason when ``reason`` is None.
        Whether the node is up now."""
        reasons = self.reasons
        if not up:
            reasons[reason or "manual"] = how
        elif reason is None:
            reasons.clear()
        else:
            reasons.pop(reason, None)
        return not reasons

    def winning(self, wins: Callable[[T], bool]) -> T:
        """How the node answers while down (some reason holds it): the first way that
        ``wins`` (for an SMTP host a silent one: a machine that is off refuses
        nothing), else the first."""
        hows = self.reasons.values()
        return next((how for how in hows if wins(how)), next(iter(hows)))

    @property
    def hows(self) -> ValuesView[T]:
        """How the node answers for each reason holding it down."""
        return self.reasons.values()


def run_outages(
    env: simpy.Environment, spans: Sequence[tuple[float, float, T]], set_up: Callable[[bool, str, T], None]
) -> Generator[simpy.Event, Any, None]:
    """A node's scheduled outages, in time order: down for the reason ``"outage"`` at
    each span's start, answering as the span says, up again at its end. One process for
    them all (start it only when there are some)."""
    for start, end, how in sorted(spans, key=lambda span: (span[0], span[1])):
        yield env.timeout(start - env.now)
        set_up(False, "outage", how)
        yield env.timeout(end - env.now)
        set_up(True, "outage", how)
