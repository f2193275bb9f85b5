"""What every receiving SMTP server does: hold sessions and answer through its policies.

:class:`PolicyServer` keeps a server's state (up or down, sessions open) and answers a
client's connect, MAIL, RCPT and DATA by asking its :class:`~sim.mail.policies.Chain`.
When DATA passes every policy the server takes the message (:meth:`PolicyServer.take`,
which each kind of server defines) and answers 250. Answers are plain calls: they cost
no SimPy event; the client spends the dialogue's time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ..config import Outage
from ..core.component import Context
from ..core.faults import Failure
from ..core.downtime import Downtime, run_outages
from ..core.monitors import Level
from ..core.records import Message
from .policies import Chain, Policy
from .smtp import ACCEPTED, CONNECTION_REFUSED, NO_ANSWER, Phase, Reply, is_silent

if TYPE_CHECKING:
    from .content import ContentChecks

__all__ = ["ClientCounts", "DOWN_ANSWERS", "PolicyServer"]

# How a down host answers a connect (the scenario's `answer`, per host and per outage).
DOWN_ANSWERS: dict[str, Reply] = {"none": NO_ANSWER, "refuse": CONNECTION_REFUSED}

_CONNECT, _MAIL, _RCPT, _DATA = Phase.CONNECT, Phase.MAIL, Phase.RCPT, Phase.DATA


class ClientCounts(Protocol):
    """What a server tells a per-client count (``sim.mail.throttle.Anvil``)."""

    def opened(self, client: str, now: float) -> None:
        """A session from ``client`` opened."""

    def closed(self, client: str) -> None:
        """A session from ``client`` closed."""

    def accepted(self, client: str, now: float) -> None:
        """A message from ``client`` was accepted (250 to ".")."""


class PolicyServer:
    """The answering side of SMTP, shared by every kind of receiving server."""

    def __init__(self, ctx: Context, node_id: str, chain: Chain, answer: str = "none") -> None:
        self.id = node_id
        self.code = ctx.recorder.nodes.code(node_id)
        self.up = True
        # Why the host is down (a scheduled outage, a hook, ...) and how it answers then.
        self._down: Downtime[Reply] = Downtime()
        self.answer = DOWN_ANSWERS[answer]  # what a down host answers unless told otherwise
        self.down_reply = NO_ANSWER  # what it answers now while down
        self.connections = 0  # sessions open now
        self.transaction = 1  # the number within its session of the MAIL being answered
        self.sessions = 0  # sessions ever opened
        self.refused = 0  # connections refused with a reply (e.g. 421 when full)
        self.unanswered = 0  # connections that got no answer (the host was down)
        self.arriving = 0  # rows accepted as of a "." still on its way (see data)
        self.crashes = 0  # faults so far that crashed it (a "." on its way is then lost)
        self._recorder = ctx.recorder
        self._env = ctx.env  # the clock, for the connections level
        # Content checks and tar-pit delays (sim.mail.content): None,
        # unless the kind of server sets them, costs a client nothing.
        self.checks: ContentChecks | None = None
        # Who counts this server's sessions per client, and the messages it accepted per
        # client (a receiver's rate limits and reputation: sim.mail.throttle); None: no one.
        self.session_counts: ClientCounts | None = None
        self.accept_counts: ClientCounts | None = None
        self._connections_level: Level | None = None  # set when the run samples levels
        self._use(chain)

    def add_policy(self, policy: Policy) -> None:
        """Add a rule to the end of the server's chain: it decides what the built-in
        rules (down, connection limit, size, unknown users) let through."""
        self._use(Chain([*self.chain.policies, policy]))

    def _use(self, chain: Chain) -> None:
        self.chain = chain

    def set_up(self, up: bool, reason: str | None = None, answer: Reply | None = None) -> None:
        """Take the host down, or bring it up.

        A down host answers a connect with ``answer`` (default: the host's own
        ``answer``): ``NO_ANSWER`` (the machine is unreachable: the client waits out its
        connect timeout) or ``CONNECTION_REFUSED`` (the port is closed: a reset after
        one round trip). While several reasons hold it down, a silent one wins: a
        machine that is off refuses nothing.

        Reasons add up: the host is up when no reason holds it down, so the end of a
        scheduled outage (reason ``"outage"``) does not undo a hook's or a fault's.
        ``set_up(False)`` takes it down for the reason ``"manual"``; ``set_up(True)``
        without a reason brings it up whatever held it down; with a reason, ends only
        that one.
        """
        self.up = self._down.change(up, reason, answer or self.answer)
        if not self.up:
            self.down_reply = self._down.winning(is_silent)

    def schedule_outages(self, outages: Sequence[Outage]) -> None:
        """Take the host down (reason ``"outage"``) for each scheduled outage, answering
        connects as the outage says (its ``answer``, else the host's) meanwhile: one
        process for them all, none without outages."""
        if outages:
            spans = [(o.start, o.end, DOWN_ANSWERS[o.answer] if o.answer else self.answer) for o in outages]
            self._env.process(run_outages(self._env, spans, self.set_up))

    def fail(self, failure: Failure) -> None:
        """A fault takes the host down (``sim.core.faults``): it answers connects as the
        fault says (default: the host's ``answer``). The schedule cuts the sessions in
        progress when the fault is a crash."""
        self.set_up(False, failure.reason, None if failure.answer is None else DOWN_ANSWERS[failure.answer])
        if failure.crash:
            self.crashes += 1

    def repair(self, failure: Failure) -> None:
        """The fault is over (up again unless another reason holds it)."""
        self.set_up(True, failure.reason)

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
        if self.session_counts is not None:
            self.session_counts.opened(client, now)
        return None

    def mail(self, client: str, msg: Message, now: float, transaction: int = 1) -> Reply | None:
        """MAIL FROM, the ``transaction``-th of its session: None accepts, else the refusal."""
        self.transaction = transaction  # what a per-connection limit reads
        return self.chain.answer(_MAIL, self, client, msg, now)

    def rcpt(self, client: str, msg: Message, now: float) -> Reply | None:
        """RCPT TO: None accepts, else the refusal."""
        return self.chain.answer(_RCPT, self, client, msg, now)

    def data(self, client: str, rows: Sequence[Message], now: float, ahead: bool = False) -> Reply:
        """The final "." has arrived at ``now`` for the recipients ``rows`` (those whose
        RCPT passed; one message): 250 (and each row is ours) or a refusal for all.
        ``ahead``: ``now`` is still to come (a "." on its way; see below)."""
        reply = self.chain.answer(_DATA, self, client, rows[0], now)
        if reply is None and self.checks is not None:
            reply = self.checks.verdict(rows)  # DMARC, a before-queue scan
        if reply is not None:
            return reply
        # The message reached this server by one more hop: what this server does with it
        # next (relay it on, hand it to the store) counts on from here.
        for msg in rows:
            msg.hop += 1
        if ahead:
            # Decided for a "." still on its way (``now`` is ahead: its client crashed
            # after sending it): the rows are the server's when it arrives, counted
            # here until then.
            self.arriving += len(rows)
            crashes = self.crashes
            self._env.timeout(now - self._env.now).callbacks.append(lambda _: self._arrived(rows, now, crashes))
        else:
            self.take_rows(rows, now)
        if self.accept_counts is not None:
            self.accept_counts.accepted(client, now)
        return ACCEPTED

    def _arrived(self, rows: Sequence[Message], now: float, crashes: int) -> None:
        """The "." has arrived: the rows are the server's, unless it crashed meanwhile
        (nothing arrived: the copies vanish, the sender's own go on)."""
        self.arriving -= len(rows)
        if crashes != self.crashes:
            for msg in rows:
                self._recorder.vanished(msg.id)
            return
        self.take_rows(rows, now)

    def close(self, client: str) -> None:
        """The client ends the session (QUIT, or the connection broke)."""
        self.connections -= 1
        if self._connections_level is not None:
            self._connections_level.set(self._env.now, self.connections)
        if self.session_counts is not None:
            self.session_counts.closed(client)

    def session_stats(self) -> dict[str, float]:
        """Sessions opened, connections refused with a reply, and left unanswered."""
        return {"sessions": self.sessions, "refused": self.refused, "unanswered": self.unanswered}

    def take(self, msg: Message, now: float) -> None:
        """Take responsibility for an accepted message (each kind of server defines it)."""
        raise NotImplementedError

    def take_rows(self, rows: Sequence[Message], now: float) -> None:
        """Take the recipients of one accepted transaction (one message, one domain):
        each on its own unless the kind of server keeps them together (a relay)."""
        for msg in rows:
            self.take(msg, now)
