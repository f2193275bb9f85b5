"""A relay: an SMTP server that queues what it accepts and delivers it on (a backup MX,
a smart host).

A relay answers senders through its own chain of policies, as an MX does (no answer
while down, 421 at its connection limit, 552 over its size limit); it cannot know the
domain's users, so it accepts any recipient (RFC 5321 5.1 and common practice: a
backup MX that verified recipients would need the primary's user list). A message it
accepts joins its own active queue and is delivered on by the MTA's machinery
(``sim.mail.mta.MTA``, which this class extends): its own resolver, workers, retry
schedule and concurrency policy, sending IPs and relayhost. It never writes into a
mailbox store.

As a backup MX (listed in the recipient domain's MX records) it tries only the hosts
whose preference is lower (better) than its own (RFC 5321 5.1: "all records at that
preference level and higher-numbered ones MUST be discarded"); when none is left the
message bounces (``LOOPS_BACK``). A relay reached by relayhost, or that is not in the
domain's MX list, tries them all. Relays chain: a relay's next hop may be another
relay, and each hop is a row of the attempts table (``msg.hop`` counts on).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import RelayNode
from ..core.component import Context, registers
from ..core.faults import Failure
from ..core.monitors import Monitors
from ..core.records import Message
from .mta import MTA
from .policies import Chain, ConnectionLimit, Down, ServerState, SizeLimit
from .server import PolicyServer
from .smtp import Phase, Reply

__all__ = ["HopLimit", "Relay", "TOO_MANY_HOPS"]

# Postfix refuses at the end of DATA a message whose Received: headers (one per hop)
# exceed hopcount_limit: a mail loop (cleanup's CLEANUP_STAT_HOPS; smtpd's reply).
TOO_MANY_HOPS = Reply(554, "5.4.0", "Error: too many hops", Phase.DATA, reason="too many hops")


class HopLimit:
    """A message that would arrive by more than ``limit`` hops is refused at DATA."""

    phase = Phase.DATA

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def check(self, server: ServerState, client: str, msg: Message | None, now: float) -> Reply | None:
        """554 5.4.0 once the hop that would bring the message here is over the limit."""
        return TOO_MANY_HOPS if msg is not None and msg.hop >= self.limit else None


@registers(RelayNode)
class Relay(MTA, PolicyServer):
    """A store-and-forward SMTP server: answers like an MX, delivers like an MTA."""

    def __init__(self, ctx: Context, spec: RelayNode) -> None:
        MTA.__init__(self, ctx, spec)
        PolicyServer.__init__(
            self,
            ctx,
            spec.id,
            Chain([
                Down(),
                ConnectionLimit(spec.max_connections),
                SizeLimit(spec.message_size_limit),
                *self.queue_policies(),
                HopLimit(spec.hopcount_limit),
            ]),
            spec.answer,
        )
        self.spec: RelayNode = spec
        self.relayed = 0  # messages accepted to deliver on
        # The MX answers this relay's own domain records filtered once per answer
        # (resolver answers are shared tuples; a relay sees few distinct domains).
        self._better: dict[tuple[tuple[int, str], ...], tuple[tuple[int, str], ...]] = {}

    def monitor(self, monitors: Monitors) -> None:
        """The MTA's levels, and open connections as the MX follows them."""
        MTA.monitor(self, monitors)
        self._connections_level = monitors.level(self.id, "connections")

    def start(self) -> None:
        """Start the delivery machinery and the scheduled outages."""
        MTA.start(self)
        self.schedule_outages(self.spec.outages)

    def fail(self, failure: Failure) -> None:
        """A fault takes both sides down: the SMTP server answers as the fault says (as
        an MX's host), and the delivery side stops (``MTA._halt``)."""
        PolicyServer.fail(self, failure)
        self._halt(failure)

    def repair(self, failure: Failure) -> None:
        """Both sides up again (unless another reason holds either)."""
        PolicyServer.repair(self, failure)
        self._unhalt(failure)

    def take(self, msg: Message, now: float) -> None:
        """One accepted recipient: queued here afresh, an envelope of its own."""
        self.take_rows((msg,), now)

    def take_rows(self, rows: Sequence[Message], now: float) -> None:
        """The recipients of a transaction just answered 250: queued here afresh (their
        queue lifetime and attempts count from now, for this relay's schedule), together
        in envelopes as this relay's recipient limit allows."""
        wiped = self.halts.lost_with(now)
        if wiped is not None:  # on the disk that went
            self._lose(rows, wiped, queued=False)
            return
        self.relayed += len(rows)
        for msg in rows:
            msg.queued = now
            msg.attempts = 0
        if self.space is not None:
            self.space.used += sum(m.size for m in rows)
        for envelope in self._split(tuple(rows)):
            self._admit(envelope)
        if self._active_level is not None:
            self._active_level.set(now, len(self.active.items))

    def holding(self) -> int:
        """As an MTA's, and the rows accepted as of a "." still on its way."""
        return MTA.holding(self) + self.arriving

    def _hosts(self, answer: tuple[tuple[int, str], ...]) -> tuple[str, ...]:
        """The MX hosts better than this relay, in order (RFC 5321 5.1)."""
        better = self._better.get(answer)
        if better is None:
            own = next((pref for pref, host in answer if host == self.id), None)
            better = answer if own is None else tuple(r for r in answer if r[0] < own)
            self._better[answer] = better
        if not better:
            return ()
        return MTA._hosts(self, better)

    def stats(self) -> dict[str, Any]:
        """The MTA's counters and the server's."""
        return {
            **MTA.stats(self),
            "relayed": self.relayed,
            **self.session_stats(),
        }
