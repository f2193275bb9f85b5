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
``QueueSpace``    MAIL     452 4.3.1 while the queue file system is short of space
                           (Postfix's ``queue_minfree``, 1.5 x ``message_size_limit``)
``UnknownUsers``  RCPT     550 5.1.1 for a share of recipients (the recipient domain's
                           ``unknown_recipient_rate``)
``Greylist``      RCPT     450 4.7.1 for a (client, sender, recipient) triplet not seen
                           at least ``delay`` ago (postgrey's rules; the MX's
                           ``greylisting`` block)
``DomainGreylist`` RCPT    the same, by the recipient domain's own table (the domain's
                           ``greylisting`` block), shared by all its MX hosts
``RoomCheck``     RCPT     452 4.3.1 for a full store, 452 4.2.2 / 552 5.2.2 for a full
                           mailbox (store capacity: ``sim.mail.quota``, added last to
                           every MX when a quota or a store size is set)
================  =======  =================================================

Rate limits per sending IP and per sender domain (Postfix anvil's, the MX's
``rate_limits`` block and receiver presets) are policies of their own room,
``sim.mail.throttle``: they share one per-client state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from .smtp import BUSY, GREYLISTED, NO_SPACE, TOO_BIG, UNKNOWN_USER, Phase, Reply

if TYPE_CHECKING:
    from ..config.nodes import Greylisting
    from ..core.records import Message
    from ..core.rng import Sampler

__all__ = ["Chain", "ConnectionLimit", "DomainGreylist", "Down", "Greylist", "Policy", "QueueSpace", "ServerState", "SizeLimit", "UnknownUsers"]


class ServerState(Protocol):
    """What policies may read of the server they guard."""

    up: bool
    connections: int
    down_reply: Reply  # what the host answers a connect while down
    transaction: int  # at MAIL: the transaction's number within its session (1 on a new one)


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


class QueueSpace:
    """A server's queue file system: ``size`` bytes, ``used`` by the mail it holds.

    Postfix's smtpd refuses MAIL FROM with 452 4.3.1 while the free space is at most
    ``queue_minfree`` or at most 1.5 x ``message_size_limit`` (smtpd_check_queue), so
    that a message it takes can always be written. The server adds what it queues to
    ``used`` and takes away what leaves its hands.
    """

    phase = Phase.MAIL
    __slots__ = ("size", "floor", "used", "refused")

    def __init__(self, size: float, minfree: float, message_size_limit: float) -> None:
        self.size = size
        self.floor = max(minfree, 1.5 * message_size_limit)  # free space needed to take mail
        self.used = 0.0
        self.refused = 0  # MAIL FROM answered 452

    def check(
        self, server: ServerState, client: str, msg: Message | None, now: float
    ) -> Reply | None:
        """452 4.3.1 while the free space is at most the floor."""
        if self.size - self.used <= self.floor:
            self.refused += 1
            return NO_SPACE
        return None


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


# postgrey counts a client towards its auto-whitelist at most once an hour.
AWL_INTERVAL = 3600.0


class Greylist:
    """postgrey's greylisting of (client IP, sender, recipient) triplets at RCPT.

    A triplet first seen at ``first`` passes when ``now - first >= delay``; before,
    450 4.7.1. A triplet that never passed and is retried ``retry_window`` or more after
    ``first`` starts again as new (first = now); one not seen for ``max_age`` is
    forgotten (postgrey drops it at its daily clean-up; here when next asked). A client
    whose triplets passed on ``auto_whitelist_clients`` occasions at least an hour apart
    passes every triplet from then on (0: no auto-whitelisting).

    The client is the sending IP the server sees; the sender is the message's sender
    domain (the model has no sender person); the recipient is (domain, person). The
    time is the session's start, when the server is asked (``PolicyServer.rcpt``).
    """

    phase = Phase.RCPT
    __slots__ = ("delay", "retry_window", "max_age", "awl", "triplets", "clients",
                 "greylisted", "passed")

    def __init__(self, delay: float, retry_window: float, max_age: float, auto_whitelist_clients: int) -> None:
        self.delay = delay
        self.retry_window = retry_window
        self.max_age = max_age
        self.awl = auto_whitelist_clients
        # (client, sender domain, recipient domain, person) -> (first seen, last seen):
        # references to objects the run holds anyway and two floats per triplet.
        self.triplets: dict[tuple[str, object, object, int], tuple[float, float]] = {}
        self.clients: dict[str, tuple[int, float]] = {}  # client -> (passes counted, last counted)
        self.greylisted = 0  # RCPTs answered 450
        self.passed = 0  # RCPTs let through (whitelisted clients included)

    @classmethod
    def of(cls, spec: Greylisting) -> Greylist:
        """A table with a ``greylisting`` block's settings (an MX host's or a domain's)."""
        return cls(spec.delay, spec.retry_window, spec.max_age, spec.auto_whitelist_clients)

    def stats(self) -> dict[str, float]:
        """RCPTs greylisted and passed, and the triplets in the table now."""
        return {"greylisted": self.greylisted, "greylist_passed": self.passed,
                "greylist_triplets": len(self.triplets)}

    def check(
        self, server: ServerState, client: str, msg: Message | None, now: float
    ) -> Reply | None:
        """450 4.7.1 unless the triplet was first seen ``delay`` ago (or the client is
        auto-whitelisted); records what it saw."""
        assert msg is not None
        awl = self.awl
        counted = self.clients.get(client) if awl else None
        if counted is not None and counted[0] >= awl:
            self.passed += 1
            return None
        key = (client, msg.sender, msg.domain, msg.user)
        seen = self.triplets.get(key)
        first = now
        if seen is not None:
            first, last = seen
            if now - last >= self.max_age:
                first = now
            elif last - first < self.delay and now - first >= self.retry_window:
                first = now  # the first retry came too late: greylisted as new
        self.triplets[key] = (first, now)
        if now - first < self.delay:
            self.greylisted += 1
            return GREYLISTED
        self.passed += 1
        if awl and (counted is None or now >= counted[1] + AWL_INTERVAL):
            self.clients[client] = (1 if counted is None else counted[0] + 1, now)
        return None


class DomainGreylist:
    """Greylisting by the recipient domain's own table (its ``greylisting`` block): one
    table for all of the domain's MX hosts, as a receiver greylisting on several hosts
    shares one (rspamd in Redis, milter-greylist's peers). A host
    asks it for every recipient when any domain of the world greylists; a domain
    without a table passes."""

    phase = Phase.RCPT
    __slots__ = ()

    def check(
        self, server: ServerState, client: str, msg: Message | None, now: float
    ) -> Reply | None:
        """The recipient domain's table decides (None when it has none)."""
        assert msg is not None
        grey: Greylist | None = msg.domain.greylist
        return None if grey is None else grey.check(server, client, msg, now)


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
