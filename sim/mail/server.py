"""What every receiving SMTP server does: hold sessions and answer through its policies.

:class:`PolicyServer` keeps a server's state (up or down, sessions open) and answers a
client's connect, MAIL, RCPT and DATA by asking its :class:`~sim.mail.policies.Chain`.
When DATA passes every policy the server takes the message (:meth:`PolicyServer.take`,
which each kind of server defines) and answers 250. Answers are plain calls: they cost
no SimPy event; the client spends the dialogue's time.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import simpy

from ..core.component import Context
from ..core.monitors import Level
from ..core.records import Message
from .policies import Chain, Policy
from .smtp import ACCEPTED, Phase, Reply

__all__ = ["PolicyServer"]

_CONNECT, _MAIL, _RCPT, _DATA = Phase.CONNECT, Phase.MAIL, Phase.RCPT, Phase.DATA


class PolicyServer:
    """The answering side of SMTP, shared by every kind of receiving server."""

    def __init__(self, ctx: Context, node_id: str, chain: Chain) -> None:
        self.id = node_id
        self.code = ctx.recorder.nodes.code(node_id)
        self.up = True
        self._down: set[str] = set()  # why the host is down (a scheduled outage, a hook, ...)
        self.connections = 0  # sessions open now
        self.sessions = 0  # sessions ever opened
        self.refused = 0  # connections refused with a reply (e.g. 421 when full)
        self.unanswered = 0  # connections that got no answer (the host was down)
        self._env = ctx.env  # the clock, for the connections level
        self._connections_level: Level | None = None  # set when the run samples levels
        self._use(chain)

    def add_policy(self, policy: Policy) -> None:
        """Add a rule to the end of the server's chain: it decides what the built-in
        rules (down, connection limit, size, unknown users) let through."""
        self._use(Chain([*self.chain.policies, policy]))

    def _use(self, chain: Chain) -> None:
        self.chain = chain

    def set_up(self, up: bool, reason: str | None = None) -> None:
        """Take the host down, or bring it up (a down host does not answer at all).

        Reasons add up: the host is up when no reason holds it down, so the end of a
        scheduled outage (reason ``"outage"``) does not undo a hook's or a fault's.
        ``set_up(False)`` takes it down for the reason ``"manual"``; ``set_up(True)``
        without a reason brings it up whatever held it down; with a reason, ends only
        that one.
        """
        if not up:
            self._down.add(reason or "manual")
        elif reason is None:
            self._down.clear()
        else:
            self._down.discard(reason)
        self.up = not self._down

    def schedule_outages(self, spans: Sequence[tuple[float, float]]) -> None:
        """Take the host down (reason ``"outage"``) for each ``(start, end)``, in time
        order (one process for them all; none without outages)."""
        if spans:
            self._env.process(self._outages(sorted(spans)))

    def _outages(self, spans: list[tuple[float, float]]) -> Generator[simpy.Event, Any, None]:
        env = self._env
        for start, end in spans:
            yield env.timeout(start - env.now)
            self.set_up(False, "outage")
            yield env.timeout(end - env.now)
            self.set_up(True, "outage")

    def connect(self, client: str, now: float) -> Reply | None:
        """A client connects: None opens a session (close it later), else the refusal."""
        reply = self.chain.answer(_CONNECT, self, client, None, now)
        if reply is not None:
            if reply.silent:
                self.unanswered += 1
            else:
                self.refused += 1
            return reply
        self.connections += 1
        self.sessions += 1
        if self._connections_level is not None:
            self._connections_level.set(now, self.connections)
        return None

    def mail(self, client: str, msg: Message, now: float) -> Reply | None:
        """MAIL FROM: None accepts, else the refusal."""
        return self.chain.answer(_MAIL, self, client, msg, now)

    def rcpt(self, client: str, msg: Message, now: float) -> Reply | None:
        """RCPT TO: None accepts, else the refusal."""
        return self.chain.answer(_RCPT, self, client, msg, now)

    def data(self, client: str, msg: Message, now: float) -> Reply:
        """The final "." has arrived at ``now``: 250 (and the message is ours) or a refusal."""
        reply = self.chain.answer(_DATA, self, client, msg, now)
        if reply is not None:
            return reply
        # The message reached this server by one more hop: what this server does with it
        # next (relay it on, hand it to the store) counts on from here.
        msg.hop += 1
        self.take(msg, now)
        return ACCEPTED

    def close(self, client: str) -> None:
        """The client ends the session (QUIT, or the connection broke)."""
        self.connections -= 1
        if self._connections_level is not None:
            self._connections_level.set(self._env.now, self.connections)

    def take(self, msg: Message, now: float) -> None:
        """Take responsibility for an accepted message (each kind of server defines it)."""
        raise NotImplementedError
