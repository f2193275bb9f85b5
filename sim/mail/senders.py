"""Senders: one arrival process per traffic source, never one per person.

Many people's independent Poisson streams add up to one Poisson stream, so a domain's
people are one source with the summed rate; who receives each message is drawn when it
is made. A source is one of:

- ``rate``: Poisson arrivals (people in mail clients, transactional APIs), flat or on a
  daily ``profile`` in the sender domain's local time (``sim.mail.traffic.DailyClock``);
- ``interarrival``: a renewal process with any inter-arrival distribution;
- ``batches``: ``count`` messages injected at once at time ``at``, again every
  ``every`` if given (marketing campaigns).

Every source sends only between its ``start`` and ``stop`` (default: the duration).

A message has one or more recipients (``recipients_per_message``), each its own row
sharing the first row's ``message_id``; a recipient is someone at the sender's own
domain (``local_share``), one of the sender's regular correspondents (``contacts``) or
anyone, by users (the run's one shared table, ``Directory.anyone``). Each message is
submitted over SMTP from the source's client node to its MTA, all its recipients in one
transaction (to an ESP: by its HTTP API; a batch in one call, ``sim.mail.esp``).

When submission fails (the MTA is down or out of reach, it answers 4xx, or the session
is cut before the client heard 250), the person's mail client keeps the message in its
outbox and tries again ``outbox_retry`` later (Outlook's send/receive interval). The
outbox is data: a heap by due time with one runner per source (``Timeline``), no
process per message; rows waiting there are held by the client node. An application
talking to an ESP retries its request with backoff instead (``sim.mail.esp``).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Generator
from typing import Any

import simpy

from ..config import Exponential, Source
from ..config.workload import MAX_RECIPIENTS, profile_weights
from ..core.component import Context
from ..core.records import KINDS, Message
from ..core.rng import Draw, Sampler
from .domains import Domain
from .esp import Timeline
from .mta import MTA, SUBMISSION
from .smtp import Outcome, Reply
from .traffic import Contacts, DailyClock, Receivers, size_sampler

__all__ = ["MAX_SIZE", "MailClient", "TrafficSource"]

_REFUSED, _TIMEOUT = Outcome.REFUSED, Outcome.TIMEOUT

MAX_SIZE = 1e15  # bytes: a far tail draw is clamped rather than overflowing
_RETRIES = 8  # draws to find a recipient not already on the message before giving up on one


class MailClient:
    """People's mail clients at one client node: the outbox (``sim.mail.mta.Outbox``).

    What the MTA does not take goes back into the outbox and is sent again
    ``outbox_retry`` later, on one :class:`Timeline` (made at the first failure).
    """

    def __init__(self, ctx: Context, client: str, timeout: float, outbox_retry: float) -> None:
        self.ctx = ctx
        self.env = ctx.env
        self.recorder = ctx.recorder
        self.mta: MTA | None = None
        self.client = client
        self.timeout = timeout  # a mail client's wait for a silent MTA
        self.outbox_retry = outbox_retry
        self._client_code = ctx.recorder.nodes.code(client)
        self._outbox: Timeline | None = None
        self.outbox_rows = 0
        self.kept = 0  # failed submissions: messages taken back into the outbox

    def unanswered(self, msg: Message, cc: tuple[Message, ...], server: MTA, reply: Reply) -> None:
        """The client connects to ``server`` and hears nothing (``reply`` silent: it
        waits out its connect timeout) or a reset (one round trip); then the message
        goes back into the outbox."""
        now = self.env.now
        if reply.silent:
            wait = self.timeout
            outcome = _TIMEOUT
        else:
            wait = self.ctx.network.link(self.client, server.id).time(1, 0, None)
            outcome = _REFUSED
        self._hold(msg, cc)
        self._timeline().at(now + wait, self._failed, (msg, cc, server, now, reply, outcome))

    def _failed(self, arg: tuple[Message, tuple[Message, ...], MTA, float, Reply, Outcome]) -> None:
        msg, cc, server, start, reply, outcome = arg
        self.outbox_rows -= 1 + len(cc)  # counted again by keep
        self.keep(msg, cc, server, start, reply, outcome)

    def keep(
        self, msg: Message, cc: tuple[Message, ...], server: MTA, start: float, reply: Reply, outcome: Outcome,
        end: float | None = None,
    ) -> None:
        """A submission attempt begun at ``start`` failed with ``reply`` at ``end``
        (default: now): each row gets its hop-0 attempt row, and the message waits in
        the outbox for the next send/receive, ``outbox_retry`` after ``end``."""
        rec = self.recorder
        now = self.env.now if end is None else end
        msg.attempts += 1  # submission attempts so far (counted on the first row)
        for m in (msg, *cc):
            rec.attempt(m.id, SUBMISSION, msg.attempts, 1, self._client_code, server.code, start, now,
                        reply, outcome)
        self.kept += 1
        self._hold(msg, cc)
        self._timeline().at(now + self.outbox_retry, self._resubmit, (msg, cc))

    def _hold(self, msg: Message, cc: tuple[Message, ...]) -> None:
        rec, code = self.recorder, self._client_code
        rec.held(msg.id, code)
        for m in cc:
            rec.held(m.id, code)
        self.outbox_rows += 1 + len(cc)

    def _resubmit(self, arg: tuple[Message, tuple[Message, ...]]) -> None:
        msg, cc = arg
        self.outbox_rows -= 1 + len(cc)
        assert self.mta is not None
        self.mta.submit(msg, self.client, cc, self)

    def _timeline(self) -> Timeline:
        if self._outbox is None:
            self._outbox = Timeline(self.env)
        return self._outbox

    def holding(self) -> int:
        """Rows waiting in the clients' outbox (or on a connection that will fail)."""
        return self.outbox_rows


class TrafficSource(MailClient):
    """One source's arrival process; it creates and submits messages."""

    def __init__(self, ctx: Context, spec: Source) -> None:
        super().__init__(ctx, spec.client, spec.mail_client_timeout, spec.outbox_retry)
        self.spec = spec
        self.id = spec.name
        self.sender = ctx.domains[spec.domain]
        self.kind = KINDS.index(spec.kind)
        self.stop = spec.stop_time(ctx.scenario.duration)
        streams = ctx.streams
        name = spec.name
        if spec.recipients is None:
            receivers = ctx.domains.anyone
        else:
            receivers = Receivers(
                [ctx.domains[d] for d in spec.recipients], list(spec.recipients.values())
            )
        self._receivers = receivers
        # Same stream and same arithmetic as numpy's choice: the same domains as before
        # the table was shared, draw for draw.
        # Streams are made at their first draw: a source that sends little costs little.
        self._pick_domain = receivers.sampler(streams.stream("source", name, "recipients"))
        self._person = streams.uniform("source", name, "person")
        self._size = size_sampler(spec.size, streams.stream("source", name, "size"))
        self._gaps: Draw | None = None
        self._clock: DailyClock | None = None
        if spec.batches is None:
            gaps = spec.interarrival
            if gaps is None:
                assert spec.rate is not None  # one arrival process, checked on load
                gaps = Exponential(dist="exponential", mean=1.0 / spec.rate)
                if spec.profile != "flat":
                    offset = spec.utc_offset if spec.utc_offset is not None else self.sender.spec.utc_offset
                    self._clock = DailyClock(profile_weights(spec.profile), offset)
            self._gaps = streams.sampler(gaps, "source", name, "arrivals")
        # How many recipients: 1 + a geometric number of further ones, mean as asked.
        self._count: Draw | None = None
        if spec.recipients_per_message > 1:
            p = 1.0 / spec.recipients_per_message
            count = streams.stream("source", name, "recipients-per-message")
            self._count = Sampler(lambda n: count.gen.geometric(p, n))
        self._local: Draw | None = None
        if spec.local_share > 0:
            self._local = streams.uniform("source", name, "local")
        self._sender_person: Draw | None = None
        self._contacts: Contacts | None = None
        if spec.contacts is not None:
            # Keyed by the sender domain, not the source: a person's contacts are theirs.
            self._contacts = Contacts(
                streams.stream("contacts", spec.domain), spec.contacts, spec.contacts_exponent,
                receivers, streams.stream("source", name, "contact-rank"),
            )
            self._sender_person = streams.uniform("source", name, "sender")
        mta = spec.mta or self.sender.spec.outbound
        assert mta is not None  # checked when the scenario was loaded
        self.mta_id = mta
        self.created = 0  # rows (recipients) made
        self.messages = 0  # messages made
        # An API client's retries (sim.mail.esp): its settings and its jitter's stream.
        self.api_timeout = spec.api_client_timeout
        self.max_attempts = spec.max_attempts
        self.max_backoff = spec.max_backoff
        self.jitter = streams.uniform("source", name, "backoff")

    def start(self) -> None:
        """Find the MTA and start the arrival process."""
        self.mta = self.ctx.node(self.mta_id, MTA)
        if self._gaps is None:
            self.env.process(self._batches())
        elif self._clock is not None:
            # A source waiting for its next arrival is off SimPy's schedule (sim.core.timers).
            self.ctx.timers.start(self._daily(self._gaps, self._clock))
        else:
            self.ctx.timers.start(self._arrivals(self._gaps))

    def _recipient(self, sender: int) -> tuple[Domain, int]:
        """One recipient: a colleague, a regular correspondent or anyone."""
        local = self._local
        if local is not None and local() < self.spec.local_share:
            domain = self.sender
        elif self._contacts is not None:
            return self._contacts.draw(sender)
        else:
            only = self._receivers.only
            domain = self._receivers.domains[only if only is not None else int(self._pick_domain())]
        return domain, int(self._person() * domain.users)

    def _emit(self) -> None:
        first, cc = self._make()
        assert self.mta is not None
        self.mta.submit(first, self.client, cc, self)

    def _make(self) -> tuple[Message, tuple[Message, ...]]:
        """A new message: its first recipient's row and its further recipients' rows."""
        size = float(min(max(1, round(self._size())), MAX_SIZE))  # whole bytes, never empty
        sender = 0
        if self._sender_person is not None:
            # Who writes: one of the domain's people (an application counts as one).
            sender = int(self._sender_person() * max(1, self.sender.users))
        domain, user = self._recipient(sender)
        now, rec, kind, src = self.env.now, self.recorder, self.kind, self.sender
        mid = rec.created(now, src.index, domain.index, user, kind, size)
        if self._sender_person is not None:  # a drawn writer: bounces and replies go back to them
            rec.wrote(mid, sender)
        first = Message(mid, domain, user, size, src)
        self.created += 1
        self.messages += 1
        cc: tuple[Message, ...] = ()
        if self._count is not None:
            n = min(int(self._count()), MAX_RECIPIENTS)
            if n > 1:
                cc = self._more(mid, n - 1, {(domain.index, user)}, sender, size)
        return first, cc

    def _more(
        self, mid: int, extra: int, taken: set[tuple[int, int]], sender: int, size: float
    ) -> tuple[Message, ...]:
        """The further recipients of message ``mid``: distinct people, one row each."""
        now, rec, kind, src = self.env.now, self.recorder, self.kind, self.sender
        out = []
        for _ in range(extra):
            for _ in range(_RETRIES):
                domain, user = self._recipient(sender)
                if (domain.index, user) not in taken:
                    break
            else:
                continue  # everyone this sender would write to is on the message already
            taken.add((domain.index, user))
            row = rec.created(now, src.index, domain.index, user, kind, size, mid)
            if self._sender_person is not None:
                rec.wrote(row, sender)
            out.append(Message(row, domain, user, size, src))
        self.created += len(out)
        return tuple(out)

    def _arrivals(self, gap: Draw) -> Generator[float, None, None]:
        # Yields the waits (a sleeper of sim.core.timers), as env.timeout's delays.
        env, stop = self.env, self.stop
        if self.spec.start > 0:
            yield self.spec.start
        while True:
            dt = gap()
            if env.now + dt >= stop:
                return
            yield dt
            self._emit()

    def _daily(self, gap: Draw, clock: DailyClock) -> Generator[float, None, None]:
        # Poisson arrivals in operational time, mapped back through the daily profile.
        env, stop = self.env, self.stop
        if self.spec.start > 0:
            yield self.spec.start
        tau = clock.tau(env.now)
        while True:
            tau += gap()
            t = clock.time(tau)
            if t >= stop:
                return
            if t > env.now:
                yield t - env.now
            self._emit()

    def _batches(self) -> Generator[simpy.Event, Any, None]:
        env, spec = self.env, self.spec
        batches = spec.batches or []
        # Every injection in [start, stop) in time order, lazily (a recurring batch
        # repeats); equal times keep the scenario's order.
        times = heapq.merge(
            *(zip(b.times(spec.start, self.stop), itertools.repeat(i)) for i, b in enumerate(batches))
        )
        for at, i in times:
            if at > env.now:
                yield env.timeout(at - env.now)
            # One hand-over: an MTA takes each message as its own submission, an ESP
            # the whole batch in one API call (MTA.campaign).
            assert self.mta is not None
            self.mta.campaign([self._make() for _ in range(batches[i].count)], self.client, self)
