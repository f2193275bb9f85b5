"""Authoritative name servers: where a resolver's cache miss walks to (RFC 1034 4.3.2).

A domain names its servers in ``ns:`` (its NS records, RFC 1035 3.3.11); an MX host
names the servers of the zone its own name is in. A resolver that misses its cache
sends the query over the graph to one of them (``sim.mail.dns``); the server answers it
from the zone after its ``processing`` time, or, while down, answers nothing (the
resolver waits out its timeout and tries the next) or refuses at once. Root and TLD
servers are not nodes: the resolver is taken to hold the TLD's delegation (NS TTLs of
one or two days) in its cache.

The server holds no state per query and no process per query: the resolver spends the
time, the server only says whether it answers (``ask``) and counts.
"""

from __future__ import annotations

from ..config import AuthoritativeNode
from ..core.faults import Failure
from ..core.component import Context, registers
from ..core.downtime import Downtime, run_outages

__all__ = ["ANSWERS", "AuthoritativeServer", "REFUSES", "SILENT"]

# How a server takes a query (``AuthoritativeServer.ask``).
ANSWERS, SILENT, REFUSES = 0, 1, 2


@registers(AuthoritativeNode)
class AuthoritativeServer:
    """An authoritative name server: up (answers), or down (silent, or refusing)."""

    def __init__(self, ctx: Context, spec: AuthoritativeNode) -> None:
        self.env = ctx.env
        self.id = spec.id
        self.spec = spec
        self.refuses = spec.answer == "refuse"  # how it is down unless told otherwise
        self._down: Downtime[bool] = Downtime()  # why it is down -> whether it refuses meanwhile
        self.state = ANSWERS
        self.answer_time = ctx.streams.sampler(spec.processing, "authoritative", spec.id, "processing")
        self.answered = 0
        self.unanswered = 0  # queries that arrived while it was down and silent
        self.refused = 0  # queries refused while down (ICMP port unreachable, REFUSED)

    def start(self) -> None:
        """Start the scheduled outages: one process for them all, none without."""
        if self.spec.outages:
            spans = [(o.start, o.end, self.refuses if o.answer is None else o.answer == "refuse")
                     for o in self.spec.outages]
            self.env.process(run_outages(self.env, spans, self.set_up))

    def set_up(self, up: bool, reason: str | None = None, refuse: bool | None = None) -> None:
        """Take the server down for ``reason`` (answering nothing, or refusing), or
        bring it up: as an MX host's ``set_up``, reasons add up and a silent one wins."""
        if self._down.change(up, reason, self.refuses if refuse is None else refuse):
            self.state = ANSWERS
        else:
            self.state = REFUSES if all(self._down.hows) else SILENT

    def fail(self, failure: Failure) -> None:
        """A fault takes the server down (``sim.core.faults``), answering as it says."""
        self.set_up(False, failure.reason, None if failure.answer is None else failure.answer == "refuse")

    def repair(self, failure: Failure) -> None:
        """The fault is over (up again unless another reason holds it)."""
        self.set_up(True, failure.reason)

    @property
    def up(self) -> bool:
        """Whether it answers queries now."""
        return self.state == ANSWERS

    def ask(self) -> int:
        """A query arrives: ``ANSWERS`` (the resolver reads the zone after the server's
        ``answer_time``), ``SILENT`` or ``REFUSES``; counted."""
        state = self.state
        if state == ANSWERS:
            self.answered += 1
        elif state == SILENT:
            self.unanswered += 1
        else:
            self.refused += 1
        return state

    def holding(self) -> int:
        """A name server holds no messages."""
        return 0

    def stats(self) -> dict[str, float]:
        """Queries answered, unanswered while down, refused while down."""
        return {"answered": self.answered, "unanswered": self.unanswered, "refused": self.refused}
