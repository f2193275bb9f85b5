"""What a receiving server says, rule by rule: its policies.

Each policy answers at one phase of the dialogue (connect, MAIL, RCPT, DATA) with a
:class:`~sim.mail.smtp.Reply`, or passes (``None``) and lets the next policy decide.
It is told the server, the client, the message and the time (``check(server, client,
msg, now)``). A
server asks its chain in order and the first answer wins; when every policy passes, the
server goes on (and at DATA takes the message). Greylisting, rate limits and content
checks join here as policies of their own.

================  =======  =================================================
policy            phase    reply
================  =======  =================================================
``Down``          connect  none at all (the client waits out its connect timeout), or
                           a TCP reset (the host's or the outage's ``answer``)
``ConnectionLimit`` connect  421 4.3.2 when ``max_connections`` sessions are open
``SizeLimit``     MAIL     552 5.3.4 when the message exceeds ``message_size_limit``
                           (SIZE, RFC 1870)
``UnknownUsers``  RCPT     550 5.1.1 for a share of recipients (the recipient domain's
                           ``unknown_recipient_rate``)
================  =======  =================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from .smtp import BUSY, TOO_BIG, UNKNOWN_USER, Phase, Reply

if TYPE_CHECKING:
    from ..core.records import Message
    from ..core.rng import Sampler

__all__ = ["Chain", "ConnectionLimit", "Down", "Policy", "ServerState", "SizeLimit", "UnknownUsers"]


class ServerState(Protocol):
    """What policies may read of the server they guard."""

    up: bool
    connections: int
    down_reply: Reply  # what the host answers a connect while down


class Policy(Protocol):
    """One rule: refuses at ``phase`` (a 4xx or 5xx reply) or passes (None; a 2xx
    answer counts as a pass: only the server itself accepts a message).

    A policy sees the server it guards, the client's node id (where a real server sees
    the client's IP address), the message (None at connect) and the time: enough for
    per-client limits and greylisting's (client, sender, recipient) triplets.
    """

    phase: Phase

    def check(
        self, server: ServerState, client: str, msg: Message | None, now: float
    ) -> Reply | None: ...


class Down:
    """A host that is down does not answer at all, or refuses the connection."""

    phase = Phase.CONNECT

    def check(
        self, server: ServerState, client: str, msg: Message | None, now: float
    ) -> Reply | None:
        """No answer (or a refused connection) while the server is down."""
        return None if server.up else server.down_reply


class ConnectionLimit:
    """At most ``limit`` sessions at once, from all clients together; 421 beyond."""

    phase = Phase.CONNECT

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def check(
        self, server: ServerState, client: str, msg: Message | None, now: float
    ) -> Reply | None:
        """421 4.3.2 while every session slot is taken."""
        return BUSY if server.connections >= self.limit else None


class SizeLimit:
    """Messages over ``limit`` bytes are refused at MAIL FROM (SIZE, RFC 1870)."""

    phase = Phase.MAIL

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def check(
        self, server: ServerState, client: str, msg: Message | None, now: float
    ) -> Reply | None:
        """552 5.3.4 for a message over the limit."""
        return TOO_BIG if msg is not None and msg.size > self.limit else None


class UnknownUsers:
    """A share of recipients does not exist: each domain's ``unknown_recipient_rate``."""

    phase = Phase.RCPT

    def __init__(self, draw: Sampler) -> None:
        self._draw = draw

    def check(
        self, server: ServerState, client: str, msg: Message | None, now: float
    ) -> Reply | None:
        """550 5.1.1 with the recipient domain's rate (draws only where it can refuse)."""
        assert msg is not None
        rate: float = msg.domain.unknown_rate
        return UNKNOWN_USER if rate > 0.0 and self._draw() < rate else None


_PHASES = tuple(Phase)  # iterating an enum class is slow: once per server adds up at scale

Check = Callable[["ServerState", str, "Message | None", float], "Reply | None"]


class Chain:
    """A server's policies, grouped by phase in the order given."""

    __slots__ = ("policies", "by_phase")

    def __init__(self, policies: Sequence[Policy]) -> None:
        self.policies = tuple(policies)
        self.by_phase: tuple[tuple[Check, ...], ...] = tuple(
            tuple(p.check for p in self.policies if p.phase == phase) for phase in _PHASES
        )

    def answer(
        self, phase: Phase, server: ServerState, client: str, msg: Message | None, now: float
    ) -> Reply | None:
        """The first refusal (4xx or 5xx) at ``phase``, or None if all pass."""
        for check in self.by_phase[phase]:
            reply = check(server, client, msg, now)
            if reply is not None and not 200 <= reply.code < 400:  # a positive answer is a pass
                return reply
        return None
