"""The sending MTA: submission, the active queue, delivery attempts to MX hosts.

Shaped after Postfix 3.x (docs/model.md, docs/sources.md):

- ``smtpd_workers`` submission sessions take messages from clients (port 587 with
  STARTTLS and AUTH); the MTA answers MAIL FROM through its own policies (a message
  over ``message_size_limit`` is refused, SIZE, RFC 1870) and the sender is told at once;
- an accepted message's rows (one per recipient) are split into envelopes, one per
  recipient domain and at most ``default_destination_recipient_limit`` rows each, and
  join the active queue; ``workers`` delivery agents take them one at a time, as many
  per recipient domain as the concurrency policy allows (``sim.mail.concurrency``), look
  the domain's MX records up through the MTA's resolver and try the hosts in preference
  order (equal preferences in random order, RFC 5321 5.1);
- each session is one transaction (MAIL, a RCPT per recipient, DATA): the server's
  replies (``sim.mail.smtp.SMTPServer``) decide each recipient, and the session spends
  the link time up to them: 250 hands a recipient over, 5xx bounces it, anything else
  sends it to the next host; with the connection cache on, the session carries the
  next envelope waiting for the destination instead of QUIT;
- the recipients every host failed are deferred together: the retry schedule says when
  they are due again (they wait in the deferred queue, ``sim.mail.retry``) or that they
  have been queued too long and bounce.

One process per worker that has had work (workers start on demand), none per message. The MTA knows servers only by id and by the
``SMTPServer`` protocol: it imports nothing of the MX.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import simpy

from ..config import MTANode
from ..config.nodes import sending_ips
from ..core.component import Context, registers
from ..core.downtime import Downtime
from ..core.faults import Cut, Failure, Halts, disk_lost
from ..core.monitors import Level, Monitors
from ..core.queues import WorkQueue
from ..core.records import BOUNCED, DELAYED, EXPIRED, FAILED, LOST, Envelope, Message
from ..world.sharing import transfer
from .dns import Resolver, Stub
from .domains import Domain
from .policies import Chain, QueueSpace, SizeLimit
from .concurrency import DEAD, SUSPENDED, ConcurrencyPolicy, Destination, Feedback, PostfixConcurrency
from .dsn import notice
from .retry import DeferredQueue, PostfixBackoff, RetrySchedule, first_gap, schedule_for
from .smtp import (
    ACCEPTED, CONNECTION_REFUSED, GREETING_TIMEOUT, HELO_TIMEOUT, INTERRUPTED, NO_ANSWER, SERVFAIL, Outcome,
    Phase, Reply,
    ServerTime, SMTPServer, is_silent,
)

if TYPE_CHECKING:
    from ..world.links import Link

__all__ = ["LOOPS_BACK", "MTA", "Outbox"]

SUBMISSION = 0  # the attempts table's hop of a submission; a server's own sessions are msg.hop + 1
# RFC 5321 5.1: a relay that finds no MX host better than itself must return the message
# as undeliverable; Postfix words it so (dsn 5.4.6).
LOOPS_BACK = Reply(554, "5.4.6", "mail loops back to myself", Phase.CONNECT,
                   reason="mail loops back to myself")
# Outcomes as plain module constants: compared on every attempt.
_DELIVERED, _BOUNCED, _TRY_NEXT, _DEFERRED, _REFUSED, _TIMEOUT, _INTERRUPTED = tuple(Outcome)
# A session's state after a transaction: closed (refused or broken); open but not to be
# reused (a 421 said the server is closing); open, a RSET first (the transaction ended
# before DATA); open and clean (after the reply to "."). _NEW: not connected yet.
_CLOSED, _SPENT, _RSET, _CLEAN, _NEW = range(5)
_NEVER = float("inf")  # a session that has not sent its final "."


class Outbox(Protocol):
    """A submitting client's side (``sim.mail.senders``): it keeps what its server did
    not take and tries again later."""

    client: str  # the client's node
    timeout: float  # how long it waits for a server that does not answer (or greet)

    def unanswered(self, msg: Message, cc: tuple[Message, ...], server: MTA, reply: Reply) -> None:
        """The server did not answer the connection (``reply`` silent) or refused it."""

    def keep(
        self, msg: Message, cc: tuple[Message, ...], server: MTA, start: float, reply: Reply, outcome: Outcome,
        end: float | None = None,
    ) -> None:
        """An attempt begun at ``start`` failed with ``reply`` at ``end`` (default: now):
        the message is the client's again."""


@registers(MTANode)
class MTA:
    """An outbound mail server: submission, a worker pool, retries as data."""

    def __init__(self, ctx: Context, spec: MTANode) -> None:
        self.ctx = ctx
        self.env = ctx.env
        self.spec = spec
        self.id = spec.id
        self.recorder = ctx.recorder
        self.code = ctx.recorder.nodes.code(spec.id)
        self.network = ctx.network
        self.dialogues = ctx.dialogues
        self._shuffle = ctx.streams.generator("mta", spec.id, "mx-order")
        self._loss = ctx.streams.generator("mta", spec.id, "loss")
        # The transaction's own time (session_time), on its own stream: None when absent,
        # so that a scenario without it draws nothing and runs as before.
        self._session_time = (
            None if spec.session_time is None
            else ctx.streams.sampler(spec.session_time, "mta", spec.id, "session-time")
        )
        # The MTA's own answers to submitting clients, and its send-side policies.
        self.up = True  # takes submissions now
        self.down_reply = NO_ANSWER  # what a submitting client gets while it is down
        self._down: Downtime[Reply] = Downtime()  # the faults holding it down, each's answer
        # Faults holding the delivery side down (sim.core.faults): while any does, the
        # active queue is paused; an attempt that sees the disk's loss count change
        # lost its rows.
        self.halts = Halts()
        self.lost = 0  # rows lost with this node's disk
        self._cuts = ctx.sessions  # open sessions, kept when a fault can cut them
        self.connections = 0  # submission sessions open
        self.transaction = 1  # a submission session carries one transaction
        # Overload (issue 10): the queue file system's space, when it has a size (None:
        # no limit, nothing counted), and the active queue's limit.
        self.space: QueueSpace | None = None
        if spec.queue_file_system_size is not None:
            self.space = QueueSpace(spec.queue_file_system_size, spec.queue_minfree, spec.message_size_limit)
        self.inbound = Chain([SizeLimit(spec.message_size_limit), *self.queue_policies()])
        self.active_limit = spec.qmgr_message_active_limit
        self.in_active = 0  # envelopes in the active queue, parked or in delivery
        self.held_back: deque[Envelope] = deque()  # the incoming queue beyond the limit
        # Whether a path to a client can be gone (a link fault or partition): only then
        # does a submission look its path up before it queues.
        self._reach = ctx.sessions is not None
        self.retry: RetrySchedule = schedule_for(spec)  # the preset's, the node's or Postfix's
        self.concurrency: ConcurrencyPolicy = PostfixConcurrency(
            spec.initial_destination_concurrency,
            spec.destination_concurrency_limit,
            Feedback(spec.destination_concurrency_positive_feedback),
            Feedback(spec.destination_concurrency_negative_feedback),
            spec.destination_concurrency_failed_cohort_limit,
            # Postfix revives a dead destination after minimal_backoff_time, its
            # shortest retry gap; under another schedule, that schedule's first gap.
            first_gap(self.retry, spec.minimal_backoff_time),
            spec.destination_rate_delay,
        )
        # A submission: the message, the client's node, and the message's further
        # recipients (one row each) that share its SMTP transaction.
        # ... and since when it waits for an smtpd.
        self.incoming: WorkQueue[tuple[Message, str, tuple[Message, ...], Outbox | None, float]] = WorkQueue(ctx.env)
        self.active: WorkQueue[Envelope] = WorkQueue(ctx.env)
        self.deferred = DeferredQueue(
            ctx.env, spec.queue_run_delay, self._admit, isinstance(self.retry, PostfixBackoff)
        )
        self.destinations: dict[Domain | tuple[str, ...], Destination] = {}
        self.in_session = 0  # rows (recipients) a worker holds right now
        # Connection reuse (Postfix's connection cache, on demand): on, and its time and
        # count limits. Postfix reuses a TLS session only with smtp_tls_connection_reuse.
        tls = ctx.dialogues.settings.tls
        self._reuse = (
            spec.smtp_connection_cache_on_demand and (spec.smtp_tls_connection_reuse or not tls),
            spec.smtp_connection_reuse_time_limit,
            spec.smtp_connection_reuse_count_limit,
        )
        self.bounced = 0
        # Bounces are mail (sim.mail.dsn): DSNs made here, and whether this MTA processes
        # its bounces itself (an ESP does: the DSN ends here, delivered, at once).
        self.processes_bounces = False
        self.notices = 0
        self.bounces_processed = 0
        # Delay warnings (Postfix delay_warning_time; 0 = off): the rows warned about, a
        # set only while on, so that when off a deferral pays one comparison.
        self.delay_warning_time = spec.delay_warning_time
        self._warned: set[int] | None = set() if spec.delay_warning_time > 0 else None
        # Sending IPs and the smart host.
        # Sessions go out from the sending IPs in turn; with one IP (the default) the
        # client a server sees is the node id and nothing is counted (_client).
        self.ips: tuple[str, ...] | None = sending_ips(spec.id, spec.ips)
        self._ip_turn = 0
        # Postfix relayhost in its [host] form: every message goes there, no MX lookup,
        # and the smart host is the one destination the concurrency policy sees.
        self.relayhost: tuple[str, ...] | None = (spec.relayhost,) if spec.relayhost else None
        self._quits: dict[str, float] = {}  # QUIT time to each server over a loss-free link
        self.network.watch(self._quits.clear)  # a link fault changed the routes
        # Replies a new session waits for before MAIL: EHLO, and with TLS STARTTLS and EHLO
        # again (a tar-pit delays each: sim.mail.content).
        self._hello_replies = 3 if tls else 1
        # Each MX answer's hosts by preference: their order when there are no ties.
        self._groups: dict[tuple[tuple[int, str], ...], tuple[Any, ...]] = {}
        self.resolver: Resolver | None = None  # the first of resolv.conf's servers
        self._resolver_code = 0  # its node code, for the attempt rows of failed lookups
        self.stub: Stub | None = None  # the stub resolver's timeouts and further servers
        self.started = False
        self.workers: list[simpy.Process] = []  # delivery agents started so far
        self.submission_workers: list[simpy.Process] = []
        # Time-series levels (sim.core.monitors), None unless the run samples them.
        self._active_level: Level | None = None
        self._deferred_level: Level | None = None
        self._sessions_level: Level | None = None
        self._parked_level: Level | None = None

    def queue_policies(self) -> list[QueueSpace]:
        """The MAIL FROM rules of the queue's space (a relay's chain takes them too)."""
        return [] if self.space is None else [self.space]

    def monitor(self, monitors: Monitors) -> None:
        """Follow the active queue, the deferred queue, sessions and parked messages
        as levels (before the run starts: ``timeseries.parquet``)."""
        if self.started:
            raise RuntimeError(f"MTA {self.id}: monitor() after the run started")
        self._active_level = monitors.level(self.id, "active_queue")
        self._deferred_level = monitors.level(self.id, "deferred")
        self._sessions_level = monitors.level(self.id, "sessions")
        self._parked_level = monitors.level(self.id, "parked")
        self.deferred.release = self._release

    def _release(self, envelope: Envelope) -> None:
        """The deferred queue's runner moves ``envelope`` back to the active queue (monitored)."""
        self._admit(envelope)
        now = self.env.now
        assert self._active_level is not None and self._deferred_level is not None
        self._active_level.set(now, len(self.active.items))
        self._deferred_level.set(now, len(self.deferred.heap))

    def use(
        self, retry: RetrySchedule | None = None, concurrency: ConcurrencyPolicy | None = None
    ) -> None:
        """Swap the send-side policies (before the run starts: from a build hook)."""
        if self.started:
            raise RuntimeError(f"MTA {self.id}: use() after the run started; call it from a hook")
        if retry is not None:
            self.retry = retry
            # Postfix's whole-second scan goes with Postfix's whole-second time stamps.
            self.deferred.whole_seconds = isinstance(retry, PostfixBackoff)
        if concurrency is not None:
            self.concurrency = concurrency

    def start(self) -> None:
        """Find the resolver; start the submission and delivery workers and the queue runner."""
        spec = self.spec
        servers = [self.ctx.node(name, Resolver) for name in spec.nameservers]
        self.resolver = servers[0]
        self._resolver_code = self.recorder.nodes.code(servers[0].id)  # lookups' attempt rows
        self.stub = Stub(self.env, self.network, self.id, servers, spec.resolver_timeout, spec.resolver_attempts)
        self.started = True
        # Workers are started when work arrives and none is idle (sim.core.queues).
        self.incoming.staff(self.spec.smtpd_workers, self._hire_smtpd)
        self.active.staff(self.spec.workers, self._hire_agent)
        self.deferred.start()

    def _hire_smtpd(self, first: simpy.Event) -> None:
        self.submission_workers.append(self.env.process(self._smtpd(first)))

    def _hire_agent(self, first: simpy.Event) -> None:
        self.workers.append(self.env.process(self._deliver(first)))

    # -- submission ------------------------------------------------------------------

    def submit(
        self, msg: Message, client: str, cc: tuple[Message, ...] = (), outbox: Outbox | None = None
    ) -> None:
        """A client at node ``client`` connects to submit ``msg`` (waits for a free smtpd).

        ``cc`` are the same message's further recipients, one row each: one transaction
        with a RCPT TO per recipient; once accepted, each is queued on its own.
        ``outbox`` is the client's (``sim.mail.senders``): what the MTA does not take
        (it is down or out of reach, it answers 4xx, the session is cut before the 250)
        goes back there and is tried again later. Without one (a direct call), the
        message waits for the MTA as before.
        """
        if outbox is not None and (self._reach or not self.up):  # (the common case pays two reads)
            unanswered = self._unanswered(client)
            if unanswered is not None:
                outbox.unanswered(msg, cc, self, unanswered)
                return
        self.recorder.held(msg.id, self.code)
        for other in cc:
            self.recorder.held(other.id, self.code)
        self.incoming.put((msg, client, cc, outbox, self.env.now))

    def campaign(
        self, rows: list[tuple[Message, tuple[Message, ...]]], client: str, outbox: Outbox | None = None
    ) -> None:
        """A batch of messages from ``client``: each submitted on its own, in order (an
        ESP takes a campaign in one API call instead: ``sim.mail.esp``)."""
        for msg, cc in rows:
            self.submit(msg, client, cc, outbox)

    def _unanswered(self, client: str) -> Reply | None:
        """What a client connecting now gets instead of an smtpd, if anything: nothing
        over a path that is gone (whatever the host would say), else a down host's own
        answer (no answer, or a reset)."""
        if self._reach and not self.network.link(client, self.id).up:
            return NO_ANSWER
        return None if self.up else self.down_reply

    def _admit(self, envelope: Envelope) -> None:
        """Queue ``envelope`` for delivery: into the active queue while it holds fewer
        than ``qmgr_message_active_limit`` envelopes, else into the incoming queue to
        wait for room (Postfix's qmgr stops moving mail in; nothing is refused)."""
        if self.in_active < self.active_limit:
            self.in_active += 1
            self.active.put(envelope)
        else:
            self.held_back.append(envelope)

    def _left(self) -> None:
        """An envelope left the active queue (settled, or deferred): the longest waiting
        in the incoming queue takes its place."""
        if self.held_back:
            self.active.put(self.held_back.popleft())
            if self._active_level is not None:
                self._active_level.set(self.env.now, len(self.active.items))
        else:
            self.in_active -= 1

    def _smtpd(self, first: simpy.Event) -> Generator[simpy.Event, Any, None]:
        """A submission worker, hired with the event that hands it its first session."""
        env, rec, cost, incoming = self.env, self.recorder, self.dialogues.submission, self.incoming
        inbound, mail_phase = self.inbound, Phase.MAIL  # the MTA answers MAIL FROM itself
        sessions, active = self._sessions_level, self._active_level
        cuts = self.ctx.sessions  # None unless a fault can cut a session
        waiting: simpy.Event | None = first
        free = 0.0  # when the last session's QUIT ends (the worker rests until then)
        while True:
            if waiting is None and incoming.items:
                if free > env.now:  # a client waits: spend the QUIT first (WorkQueue)
                    try:
                        yield env.timeout(free - env.now)
                    except simpy.Interrupt:
                        pass  # only the QUIT was cut
                    free = 0.0
                    continue
                msg, client, cc, outbox, since = incoming.items.popleft()
                if outbox is not None and env.now - since > outbox.timeout:
                    # Every smtpd was busy for longer than the client waits for the
                    # greeting: it gave up then and kept the message (settled when a
                    # worker comes to it: the client's times are exact, and a retry
                    # due before this moment goes now).
                    outbox.keep(msg, cc, self, since, GREETING_TIMEOUT, _TIMEOUT, since + outbox.timeout)
                    continue
            else:
                if waiting is None:
                    waiting = incoming.wait(free)
                try:
                    got = yield waiting
                except simpy.Interrupt:  # interrupted while idle: nothing was held
                    incoming.cancel(waiting)
                    waiting, free = None, 0.0
                    continue
                waiting, free = None, 0.0
                if got is None:  # rested: look at the queue
                    continue
                msg, client, cc, outbox, _ = got
            if outbox is not None and (self._reach or not self.up):
                # The MTA went down, or the path went, while the client waited for an
                # smtpd: its connection gets that answer, and the client keeps the message.
                unanswered = self._unanswered(client)
                if unanswered is not None:
                    outbox.unanswered(msg, cc, self, unanswered)
                    continue
            link = self.network.link(client, self.id)
            gen = self._loss if link.loss > 0.0 else None
            start = env.now
            rows = (msg, *cc) if cc else (msg,)
            self.in_session += len(rows)
            if sessions is not None:
                sessions.set(start, self.in_session)
            self.connections += 1
            if cuts is not None:
                cuts.opened(client, self.id)
            held = True  # the message is this session's until queued, bounced or handed back
            try:
                tries = msg.attempts + 1  # submission attempts, this one included
                refusal = inbound.answer(mail_phase, self, client, msg, start)
                if refusal is not None:
                    yield env.timeout(link.time(cost.to(refusal.phase), 0, gen))
                    if refusal.code < 500:
                        # A temporary refusal (452 4.3.1): the client keeps the message
                        # (without an outbox, it tries again after those waiting).
                        held = False
                        self._hand_back(rows)
                        if outbox is not None:
                            outbox.keep(msg, cc, self, start, refusal, _DEFERRED)
                        else:
                            incoming.items.append((msg, client, cc, outbox, env.now))
                    else:
                        src = rec.nodes.code(client)
                        for m in rows:
                            rec.attempt(m.id, SUBMISSION, tries, 1, src, self.code, start, env.now,
                                        refusal, Outcome.BOUNCED)
                            rec.ended(m.id, BOUNCED, env.now, refusal.reason)
                        self.bounced += len(rows)
                else:
                    # Without PIPELINING each further RCPT TO waits for its own reply.
                    trips = cost.to_accept + cost.per_rcpt * len(cc)
                    if link.shared:  # the body takes its share of shared edges (sim.world.sharing)
                        yield from transfer(env, link, link.time(trips, msg.size, gen), msg.size)
                    else:
                        yield env.timeout(link.time(trips, msg.size, gen))
                    space = self.space
                    for m in rows:
                        m.queued = env.now
                        rec.queued(m.id, env.now, self.code)
                        if rec.tracing:
                            src = rec.nodes.code(client)
                            rec.attempt(m.id, SUBMISSION, tries, 1, src, self.code, start, env.now,
                                        ACCEPTED, Outcome.DELIVERED, final=False)
                        if space is not None:
                            space.used += m.size
                    if tries > 1:
                        for m in rows:
                            m.attempts = 0  # delivery attempts count from here
                    if cc:
                        for envelope in self._split(rows):
                            self._admit(envelope)
                    elif self.in_active < self.active_limit:  # self._admit(rows), inlined
                        self.in_active += 1
                        self.active.put(rows)
                    else:
                        self.held_back.append(rows)
                    if active is not None:
                        active.set(env.now, len(self.active.items))
                if held:
                    held = False
                    self.in_session -= len(rows)
                    if sessions is not None:
                        sessions.set(env.now, self.in_session)
                # The QUIT: nothing can change it, so the worker rests instead of
                # spending it in a timeout of its own (WorkQueue.wait(free)).
                free = env.now + link.time(cost.quit, 0, gen)
            except simpy.Interrupt as cut:
                if held:
                    # Not yet told it was accepted: the client still has the message.
                    self._hand_back(rows)
                    if outbox is not None and (not self.up or isinstance(cut.cause, Cut)):
                        # The MTA crashed, or the path broke: into the outbox, for later.
                        outbox.keep(msg, cc, self, start, INTERRUPTED, _INTERRUPTED)
                    else:  # the MTA still answers: submitted again at once, ahead of later ones
                        incoming.items.appendleft((msg, client, cc, outbox, env.now))
            finally:
                self.connections -= 1  # sessions in their dialogue (the QUIT not counted)
                if cuts is not None:
                    cuts.closed()

    def _hand_back(self, rows: tuple[Message, ...]) -> None:
        """The session ends with ``rows`` still the client's: out of this MTA's count."""
        self.in_session -= len(rows)
        if self._sessions_level is not None:
            self._sessions_level.set(self.env.now, self.in_session)

    # -- delivery --------------------------------------------------------------------

    def _order(self, answer: tuple[tuple[int, str], ...]) -> tuple[str, ...]:
        """MX hosts in the order to try: by preference, ties shuffled (RFC 5321 5.1)."""
        groups = self._groups.get(answer)
        if groups is None:
            # An answer's preference groups are worked out once (answers are a domain's
            # records, shared); one without ties is its order, kept as it is.
            grouped = tuple(
                tuple(host for _, host in group)
                for _, group in itertools.groupby(answer, key=lambda record: record[0])
            )
            fixed = all(len(names) == 1 for names in grouped)
            groups = self._groups[answer] = tuple(h for (h,) in grouped) if fixed else grouped
        if type(groups[0]) is str:  # no ties: nothing to draw
            return groups
        hosts: list[str] = []
        for names in groups:
            if len(names) > 1:
                names = list(names)
                self._shuffle.shuffle(names)
            hosts += names
        return tuple(hosts)

    def _split(self, rows: tuple[Message, ...]) -> list[Envelope]:
        """A message's envelopes: its rows per destination domain (in the order the
        domains first appear), at most ``default_destination_recipient_limit`` each."""
        by_domain: dict[Domain, list[Message]] = {}
        for m in rows:
            group = by_domain.get(m.domain)
            if group is None:
                by_domain[m.domain] = [m]
            else:
                group.append(m)
        limit = self.spec.default_destination_recipient_limit
        return [
            tuple(group[i:i + limit]) for group in by_domain.values() for i in range(0, len(group), limit)
        ]

    def _hosts(self, answer: tuple[tuple[int, str], ...]) -> tuple[str, ...]:
        """The hosts to try for a domain whose MX answer is ``answer`` (a relay keeps
        only the hosts better than itself)."""
        return (answer[0][1],) if len(answer) == 1 else self._order(answer)

    def _client(self, ips: tuple[str, ...]) -> str:
        """The sending IP the next session goes out from, of several: the IPs in turn
        (with one IP the client is the node id, as a server has always seen it)."""
        turn = self._ip_turn
        self._ip_turn = turn + 1
        return ips[turn % len(ips)]


    def _deliver(self, first: simpy.Event) -> Generator[simpy.Event, Any, None]:
        """A delivery agent: one envelope at a time, as the destination's policy allows.

        An attempt looks the MX hosts up and tries them in order until every recipient
        of the envelope is settled (delivered or bounced); the rest are deferred
        together. An envelope whose destination is at its limit is parked with it; the
        agent that finishes an attempt there takes the longest-parked envelope next.
        With the connection cache on, an agent whose session is still good and finds
        another envelope waiting for the destination (parked, or at the head of the
        active queue) sends it over the same session (connection reuse): no QUIT, no
        lookup, no connect, greeting, EHLO or TLS. Every counter the attempt holds is
        released on every path, an interrupt included. The agent is hired with the
        event that hands it its first envelope.
        """
        assert self.resolver is not None and self.stub is not None  # started
        env, rec, nodes, resolver, stub = self.env, self.recorder, self.ctx.nodes, self.resolver, self.stub
        active, destinations, policy = self.active, self.destinations, self.concurrency
        queue_level, sessions = self._active_level, self._sessions_level
        reuse, reuse_time, reuse_count = self._reuse
        relayhost = self.relayhost
        cuts, halts = self._cuts, self.halts
        plain = type(self)._hosts is MTA._hosts  # no filter on the MX answer (not a relay)
        envelope: Envelope | None = None
        waiting: simpy.Event | None = first
        # The session kept open for the envelope in hand (connection reuse): its server,
        # the sending IP it went out from, when it was opened, how many transactions it
        # has carried, its state.
        held: SMTPServer | None = None
        held_client = kept_client = self.id
        opened, uses, state = 0.0, 0, _CLEAN
        while True:
            if envelope is None:
                if waiting is None and active.items and not active.paused:
                    envelope = active.items.popleft()
                    if queue_level is not None:
                        queue_level.set(env.now, len(active.items))
                else:
                    if waiting is None:
                        waiting = active.wait()
                    try:
                        envelope = yield waiting
                    except simpy.Interrupt:  # interrupted while idle: nothing was held
                        active.cancel(waiting)
                        waiting = None
                        if queue_level is not None:
                            queue_level.set(env.now, len(active.items))
                        continue
                    waiting = None
                    if active.paused and envelope is not None:  # handed over as the MTA went down
                        active.requeue(envelope)
                        envelope = None
                        continue
            assert envelope is not None
            domain = envelope[0].domain
            # The destination is the next hop: the recipients' domain, or the smart host.
            key = domain if relayhost is None else relayhost
            dest = destinations.get(key)
            if dest is None:
                dest = destinations[key] = policy.destination()
            if dest.reserved:
                dest.reserved -= 1  # a slot was held for this destination's mail (_next)
            elif policy.allows(dest, env.now):
                dest.busy += 1
            else:
                self._hold(envelope, dest)
                envelope = None
                if held is not None:  # kept for it, but the policy said no: QUIT
                    server, held = held, None
                    yield from self._quit(server, held_client)
                continue
            self.in_session += len(envelope)
            if sessions is not None:
                sessions.set(env.now, self.in_session)
            for m in envelope:
                m.attempts += 1
                rec.attempting(m.id, m.attempts)
            pending: Envelope = envelope
            outcome = _INTERRUPTED
            losses = halts.losses  # changed by the time it ends: its rows went with the disk
            kept: SMTPServer | None = None  # the session still open when the attempt ends
            order = 0
            try:
                if held is not None:
                    server, held = held, None
                    if server.up:  # Postfix checks a cached session is alive before use
                        order = 1
                        client = held_client
                        outcome, pending, state = yield from self._session(
                            pending, server, 1, False, state, client, uses + 1
                        )
                        uses += 1
                        if state != _CLOSED:
                            if pending:  # left over: the MX hosts in order, from the start
                                yield from self._quit(server, client)
                            else:
                                kept, kept_client = server, client
                    else:
                        server.close(held_client)
                if pending and (order == 0 or outcome != _INTERRUPTED):  # not cut short
                    if cuts is not None:
                        cuts.closed()  # no session is held through the look-up
                    if relayhost is None:
                        rtt = self.network.link(self.id, resolver.id).rtt
                        sent = env.now
                        answer = yield from resolver.lookup(domain, rtt)
                        if answer is None or answer is SERVFAIL:  # the stub's further tries
                            answer = yield from stub.retry(domain, sent, answer)
                        if type(answer) is tuple:
                            hosts = (answer[0][1],) if len(answer) == 1 and plain else self._hosts(answer)
                            if not hosts:  # a relay with no better host (RFC 5321 5.1)
                                outcome, pending = self._settle(pending, LOOPS_BACK, sent, self.code, order), ()
                        else:  # NXDOMAIN, null MX, NODATA (bounce) or SERVFAIL (defer): sim.mail.dns
                            hosts = ()
                            outcome = self._settle(pending, answer, sent, self._resolver_code, order)  # type: ignore[arg-type]
                            if outcome == _BOUNCED:
                                pending = ()
                    else:
                        hosts = relayhost
                    last = len(hosts)
                    for i, host in enumerate(hosts, 1):
                        if active.paused:  # the MTA went down: it opens no session
                            break
                        server = nodes[host]  # type: ignore[assignment]
                        order += 1
                        opened = env.now
                        client = self.id if self.ips is None else self._client(self.ips)
                        outcome, pending, state = yield from self._session(
                            pending, server, order, i == last, _NEW, client
                        )
                        uses = 1
                        if state != _CLOSED:
                            if pending and i < last:
                                yield from self._quit(server, client)  # then the next host
                            else:
                                kept, kept_client = server, client
                        if not pending or outcome == _INTERRUPTED:
                            break
            except simpy.Interrupt:
                outcome = _INTERRUPTED
            following: Envelope | None = None
            if (
                kept is not None and reuse and state != _SPENT and not active.paused
                and env.now - opened < reuse_time and (not reuse_count or uses <= reuse_count)
                and (dest.parked or (active.items and active.items[0][0].domain is domain))
            ):
                # Connection reuse: the attempt is over (its slot freed) and the envelope
                # waiting for the destination takes the session over.
                dest.busy -= 1
                if policy.finished(dest, outcome, env.now):
                    self._defer_parked(dest, pending)  # it has just died: its waiting mail too
                elif dest.reserved or policy.allows(dest, env.now):
                    following = self._waiting(dest, domain)
                if following is not None:
                    held, held_client, kept = kept, kept_client, None
                    # Its slot, used at the top of the loop: one already held for this
                    # destination's woken mail (whichever envelope of it comes first
                    # takes it), else a new one, as _next takes it. A window that grew
                    # hands its further slots to idle agents, as without reuse.
                    if not dest.reserved:
                        dest.busy += 1
                        dest.reserved += 1
                    if dest.parked:
                        self._wake(dest)
                else:
                    dest.busy += 1  # the slot is held until QUIT ends, as without reuse
                    yield from self._quit(kept, kept_client)
                    dest.busy -= 1
                    kept = None
            else:
                if kept is not None:  # the slot is held until QUIT ends (self._quit, inlined)
                    quit = self._quit_time(kept)
                    try:
                        if quit > 0.0:  # a QUIT over a zero-latency link takes no time: no event
                            yield env.timeout(quit)
                    except simpy.Interrupt:
                        pass  # only the QUIT was cut: what the session settled stays settled
                    finally:
                        kept.close(kept_client)
                    kept = None
                dest.busy -= 1
                # The MTA's own fault is no news about the destination.
                if not active.paused and policy.finished(dest, outcome, env.now):
                    self._defer_parked(dest, pending)
            if cuts is not None and following is None:
                cuts.closed()
            if pending:  # not settled: still ours
                self.in_session -= len(pending)
                if sessions is not None:
                    sessions.set(env.now, self.in_session)
                if halts.losses != losses:  # the disk they were on is gone
                    self._lose(pending, halts.wiped or disk_lost(self.id))
                    self._left()
                elif active.paused:
                    # The MTA is down: they stay in the active queue, first (Postfix's
                    # qmgr moves the active queue back when it starts, and delivers it).
                    active.requeue(pending)
                else:
                    self._defer(pending, dest)
            elif self.held_back:
                self._left()
            else:
                self.in_active -= 1  # settled: out of the active queue (self._left, inlined)
            if following is not None:
                envelope = following
                continue
            if not dest.parked:
                envelope = None
            elif active.paused:  # parked mail waits in the (paused) active queue
                self._wake(dest)
                envelope = None
            else:
                envelope = self._next(dest)

    def _waiting(self, dest: Destination, domain: Domain) -> Envelope | None:
        """The next envelope waiting for ``dest``: the longest parked, else the active
        queue's head if it goes there (the queue is not searched: FIFO order holds)."""
        if dest.parked:
            if self._parked_level is not None:
                self._parked_level.add(self.env.now, -1)
            return dest.parked.popleft()
        items = self.active.items
        if items and items[0][0].domain is domain:
            envelope = items.popleft()
            if self._active_level is not None:
                self._active_level.set(self.env.now, len(items))
            return envelope
        return None

    def _quit_time(self, server: SMTPServer) -> float:
        """How long a QUIT to ``server`` takes (drawn afresh over a lossy link)."""
        quit = self._quits.get(server.id)
        if quit is None:
            link = self.network.link(self.id, server.id)
            if not link.up:  # the path went with the session: nothing to wait for
                return 0.0
            if link.loss > 0.0:
                return link.time(self.dialogues.relay.quit, 0, self._loss)
            quit = self._quits[server.id] = link.time(self.dialogues.relay.quit, 0, None)
        return quit

    def _quit(self, server: SMTPServer, client: str) -> Generator[simpy.Event, Any, None]:
        """QUIT and close the session ``client`` (a sending IP) holds with ``server``
        (the agent is busy until QUIT ends)."""
        quit = self._quit_time(server)
        try:
            if quit > 0.0:  # a QUIT over a zero-latency link takes no time: no event
                yield self.env.timeout(quit)
        except simpy.Interrupt:
            pass  # only the QUIT was cut: what the session settled stays settled
        finally:
            server.close(client)

    def _session(
        self, rows: Envelope, server: SMTPServer, order: int, last: bool, state: int, client: str,
        transaction: int = 1,
    ) -> Generator[simpy.Event, Any, tuple[Outcome, Envelope, int]]:
        """One SMTP transaction for the envelope ``rows`` with ``server``, from the
        sending IP ``client``, the session's ``transaction``-th: (outcome, rows left
        unsettled, the session's state afterwards).

        ``state`` is ``_NEW`` to connect first (connect, greeting, EHLO, TLS), else the
        state of an open session being reused (``_RSET``: a RSET round trip first). The
        server answers MAIL once and RCPT once per recipient at once (plain calls);
        the transaction spends the link time up to the RCPT replies when some were
        refused, and up to the reply to "." when some passed: at most two timeouts.
        Each recipient ends in its own state with its own attempt row. A session that
        is still open comes back open (the caller QUITs or reuses it); ``_CLOSED`` when
        the connection was refused or broke.
        """
        env, rec, cost = self.env, self.recorder, self.dialogues.relay
        first = rows[0]
        # Read before the server may take the rows (a relay counts them on from here);
        # an envelope's rows share their path and their attempts.
        hop, attempt = first.hop + 1, first.attempts
        link = self.network.link(self.id, server.id)
        gen = self._loss if link.loss > 0.0 else None
        start = env.now
        if self._cuts is not None:  # held until the attempt ends or the next session opens
            self._cuts.opened(self.id, server.id)
        if state == _NEW:
            # No path to the server (links down, a partition): no answer, as a silent host.
            refusal = server.connect(client, start) if link.up else NO_ANSWER
            if refusal is not None:
                try:
                    if refusal.silent:
                        yield env.timeout(self.spec.smtp_connect_timeout)
                    else:
                        # No code: the TCP connection itself was refused (a reset to the
                        # SYN, one round trip); else a greeting (421) after the handshake.
                        trips = cost.connect if refusal.code else 1
                        yield env.timeout(link.time(trips, 0, gen))
                except simpy.Interrupt:
                    refusal, outcome = INTERRUPTED, _INTERRUPTED
                else:
                    # Postfix skips a host that greets with 5xx too (smtp_skip_5xx_greeting),
                    # so a refusal at connect never bounces the message by itself.
                    outcome = _TIMEOUT if refusal.silent else _REFUSED
                # At the last host the rows are deferred (the attempts table says so); the
                # agent still hears that the session failed (the concurrency feedback).
                recorded = _DEFERRED if last and outcome != _INTERRUPTED else outcome
                for m in rows:
                    rec.attempt(m.id, hop, attempt, order, self.code, server.code, start,
                                env.now, refusal, recorded)
                return outcome, rows, _CLOSED
            pre = cost.setup
        else:
            pre = 1 if state == _RSET else 0
        # A slow server (a tar-pit, content checks: sim.mail.content) takes time of its own
        # before its replies: ``lag`` so far, ``pause`` before each reply. Added to the
        # timeouts below; nothing to add (no cost) when it has none.
        checks = server.checks
        lag = pause = 0.0
        if checks is not None:
            pause = checks.reply_delay
            if state == _NEW:
                timeout = self.spec.smtp_helo_timeout
                if checks.greet_pause >= timeout or pause >= timeout:
                    return (yield from self._give_up(rows, server, checks, client, link, gen, order, last))
                lag = checks.greet_pause + pause * self._hello_replies
            elif state == _RSET:
                lag = pause
        for m in rows:
            rec.session(m.id, server.code)
        left = rows  # not settled yet
        answering = rows  # waiting for their replies (what an interrupt cuts off)
        dotted = _NEVER  # when the reply to "." is due back
        after = 0.0  # the server's own time from the "." to its answer
        try:
            reply = server.mail(client, first, start, transaction)
            if reply is not None:  # refused at MAIL FROM: for every recipient
                yield env.timeout(link.time(pre + 1, 0, gen) + lag + pause)
                for m in rows:
                    outcome = self._answer(m, reply, server, start, order, last, hop, attempt)  # alike for all
                left = () if outcome <= _BOUNCED else rows
                return outcome, left, _SPENT if reply.code == 421 else _RSET
            # PIPELINING sends every RCPT together; without it each waits for its reply.
            extra = cost.per_rcpt * (len(rows) - 1)
            refused: Sequence[tuple[Message, Reply]]
            if len(rows) == 1:  # the common case: no lists made
                reply = server.rcpt(client, first, start)
                ok: Envelope = rows if reply is None else ()
                refused = () if reply is None else ((first, reply),)
            else:
                refused = []
                passed: list[Message] = []
                for m in rows:
                    reply = server.rcpt(client, m, start)
                    if reply is None:
                        passed.append(m)
                    else:
                        refused.append((m, reply))
                ok = tuple(passed)
            outcome, state, done = _DEFERRED, _CLEAN, 0
            if checks is not None:  # the SPF look-up at MAIL FROM, the replies to MAIL and RCPT
                lag += checks.envelope_delay(first, start) + pause * (1 + len(rows))
            if refused:  # their replies arrive with the RCPT replies
                done = pre + cost.rcpt + extra
                yield env.timeout(link.time(done, 0, gen) + lag)
                again: list[Message] = []
                for m, reply in refused:
                    answered = self._answer(m, reply, server, start, order, last, hop, attempt)
                    if answered < outcome:
                        outcome = answered
                    if answered > _BOUNCED:
                        again.append(m)
                    if reply.code == 421:
                        state = _SPENT
                if state != _SPENT:
                    state = _RSET  # no DATA: the transaction ended early
                left = (*again, *ok) if again else ok
                answering = ok
            if ok:
                size = first.size
                wait = link.time(pre + cost.accept + extra - done, size, gen)
                if checks is not None:  # the replies to DATA and "." and what "." sets off
                    wait += 2 * pause + (0.0 if refused else lag)
                    delay = checks.data_delay(ok, env.now + wait)
                    wait += delay
                    after = pause + delay
                if self._session_time is not None:  # the transaction's own time, after the "."
                    own = self._session_time()
                    wait += own
                    after += own
                heard: Reply | None = None  # the answer of a server that crashed after giving it
                try:
                    if link.shared:  # the body takes its share of shared edges (sim.world.sharing)
                        # The body at its share, then from the "." on (its way there, the
                        # server's time, the 250's way back) in a timeout of its own, so
                        # that a cut in it follows the rules of a "." sent.
                        tail = 2 * link.latency + after
                        yield from transfer(env, link, wait - tail, size)
                        dotted = env.now + tail
                        yield env.timeout(tail)
                    else:
                        dotted = env.now + wait
                        yield env.timeout(wait)
                except simpy.Interrupt as cut:
                    cause = cut.cause
                    if not (isinstance(cause, Cut) and cause.what == "crash" and cause.node == server.id
                            and env.now >= dotted - link.latency):
                        raise
                    # The server went down after answering ".": it had taken the rows (or
                    # refused them), and its reply, on the wire already, arrives.
                    yield env.timeout(dotted - env.now)
                    heard = server.data(client, ok, dotted - link.latency)
                now = env.now
                reply = server.data(client, ok, now) if heard is None else heard
                taken = reply.code < 400
                answered = _DEFERRED
                for m in ok:
                    if taken:
                        rec.accepted(m.id, now if heard is None else dotted - link.latency, server.code)
                    answered = self._answer(m, reply, server, start, order, last, hop, attempt)
                if answered < outcome:
                    outcome = answered
                if reply.code == 421:
                    state = _SPENT
                elif state != _SPENT:
                    state = _CLEAN
                if answered <= _BOUNCED:
                    left = left[: len(left) - len(ok)] if refused else ()  # the ok rows come last
                if heard is not None:  # the connection is gone with the server
                    server.close(client)
                    state = _CLOSED
            return outcome, left, state
        except simpy.Interrupt as cut:
            for m in answering:
                rec.attempt(m.id, hop, attempt, order, self.code, server.code, start,
                            env.now, INTERRUPTED, _INTERRUPTED)
            if env.now >= self._unheard_from(cut.cause, server, dotted, link.latency, after):
                self._duplicate(answering, server, client, dotted - link.latency)
            server.close(client)
            return _INTERRUPTED, left, _CLOSED

    def _unheard_from(
        self, cause: object, server: SMTPServer, dotted: float, latency: float, after: float
    ) -> float:
        """From when a session cut by ``cause`` leaves the server with the message (the
        "." reaches it at ``dotted - latency - after``, it answers ``after`` later) while
        the client never hears its answer (due back at ``dotted``): a broken path, from
        when the "." arrived (the server commits and answers into the void); the client's
        own crash, from when its "." left, one way earlier (the "." still arrives). A
        crash of the server leaves none: what it had answered still arrives (above), and
        before that it had taken nothing."""
        arrived = dotted - latency - after
        if isinstance(cause, Cut) and cause.what == "crash":
            return _NEVER if cause.node == server.id else arrived - latency
        return arrived

    def _duplicate(self, rows: Envelope, server: SMTPServer, client: str, decided: float) -> None:
        """The session was cut after its final "." reached ``server`` and the server
        answered at ``decided``, before the client heard it: what the server answered
        then stands. A 250 means it took the rows (a copy of each, that goes its own
        way); the client, never told, keeps its own and tries again: the classic
        duplicate (RFC 1047; Postfix logs "lost connection ... while sending end of data
        -- message may be sent more than once" and defers)."""
        rec = self.recorder
        for m in rows:
            rec.split(m.id)
        reply = server.data(client, tuple(m.twin() for m in rows), decided, decided > self.env.now)
        for m in rows:
            if reply.code < 400:
                rec.accepted(m.id, decided, server.code)
                rec.held(m.id, self.code)  # the client's copy is here
            else:
                rec.unsplit(m.id)

    def _give_up(
        self, rows: Envelope, server: SMTPServer, checks: ServerTime, client: str, link: Link,
        gen: Any, order: int, last: bool,
    ) -> Generator[simpy.Event, Any, tuple[Outcome, Envelope, int]]:
        """The server's greeting or its reply to EHLO takes ``smtp_helo_timeout`` or
        longer (a tar-pit): the client gives the session up when the timer runs out, as
        a failed connection (status 4.4.2, no reply code), and tries the next host."""
        env, first = self.env, rows[0]
        hop, attempt, start = first.hop + 1, first.attempts, env.now
        timeout = self.spec.smtp_helo_timeout
        if checks.greet_pause >= timeout:  # waiting for the greeting from the handshake on
            wait, reply = link.time(1, 0, gen) + timeout, GREETING_TIMEOUT
        else:  # the greeting came, the reply to EHLO does not
            wait = link.time(self.dialogues.relay.connect, 0, gen) + checks.greet_pause + timeout
            reply = HELO_TIMEOUT
        outcome = _TIMEOUT
        try:
            yield env.timeout(wait)
        except simpy.Interrupt:
            reply, outcome = INTERRUPTED, _INTERRUPTED
        finally:
            server.close(client)
        recorded = _DEFERRED if last and outcome == _TIMEOUT else outcome
        for m in rows:
            self.recorder.attempt(m.id, hop, attempt, order, self.code, server.code, start, env.now,
                                  reply, recorded)
        return outcome, rows, _CLOSED

    def _answer(
        self, msg: Message, reply: Reply, server: SMTPServer, start: float, order: int,
        last: bool, hop: int, attempt: int,
    ) -> Outcome:
        """Act on the reply that decides one recipient's attempt at ``server`` (hop
        ``hop``, its ``attempt``-th there): 2xx delivered, 5xx bounced, 4xx the next
        host (or deferred at the last)."""
        rec, now = self.recorder, self.env.now
        code = reply.code
        if code < 400:
            outcome = _DELIVERED
        elif code >= 500:
            outcome = _BOUNCED
            self._bounce(msg, now, reply.reason)
        else:
            outcome = _DEFERRED if last else _TRY_NEXT
        if rec.tracing:
            rec.attempt(msg.id, hop, attempt, order, self.code, server.code, start, now,
                        reply, outcome)
        else:
            rec.replied(msg.id, reply)
        if outcome <= _BOUNCED:  # the row left this MTA's hands at this reply
            if self.space is not None:
                self.space.used -= msg.size
            self.in_session -= 1
            if self._sessions_level is not None:
                self._sessions_level.set(now, self.in_session)
        return outcome

    def _defer(self, envelope: Envelope, dest: Destination) -> None:
        """Every host failed for these rows: due again together when the schedule says
        (their message's age and attempts), or each bounces as expired."""
        now = self.env.now
        first = envelope[0]
        self._left()
        due = self.retry.next_due(first.queued, first.attempts, now, dest)
        if due is None:
            for m in envelope:
                self._bounce(m, now, EXPIRED)
            if self.space is not None:
                self.space.used -= sum(m.size for m in envelope)
            return
        self.deferred.put(envelope, due)
        for m in envelope:
            self.recorder.deferred(m.id)
        if self._deferred_level is not None:
            self._deferred_level.set(now, len(self.deferred.heap))
        warned = self._warned
        if warned is not None and now - first.queued >= self.delay_warning_time:
            for m in envelope:
                self._warn(m, now, warned)

    def _warn(self, msg: Message, now: float, warned: set[int]) -> None:
        """Postfix's delay notice: one DSN (action delayed) per row, the row stays queued."""
        if msg.id in warned or msg.null_sender:  # never a notice about a DSN (RFC 5321 6.1)
            return
        warned.add(msg.id)
        self._notify(msg, now, DELAYED)

    # -- the destination's concurrency (sim.mail.concurrency) ----------------------------

    def _hold(self, envelope: Envelope, dest: Destination) -> None:
        """The policy does not let ``envelope`` start now: park it with its destination, or
        defer it at once when nothing would ever take it from there (a dead
        destination, as Postfix's "delivery temporarily suspended")."""
        if dest.window == DEAD or not (dest.busy or dest.window == SUSPENDED):
            if dest.window == DEAD and dest.cause >= 0:
                self._suspended(envelope, dest.cause)
            self._defer(envelope, dest)
            return
        dest.parked.append(envelope)  # the next attempt there to finish takes it
        if self._parked_level is not None:
            self._parked_level.add(self.env.now, 1)
        if dest.window == SUSPENDED and not dest.timer:
            self._wake_at(dest)

    def _defer_parked(self, dest: Destination, failed: Envelope) -> None:
        """The destination has just died after the attempt that left ``failed`` unsettled:
        the mail parked there is deferred at once, and so is what comes for it while it
        is dead, each row with the reply that closed it (Postfix: "delivery temporarily
        suspended: " and the cause), never a silent deferral."""
        dest.cause = failed[0].id if failed else -1
        parked = dest.parked
        if self._parked_level is not None:
            self._parked_level.add(self.env.now, -len(parked))
        while parked:
            envelope = parked.popleft()
            if dest.cause >= 0:
                self._suspended(envelope, dest.cause)
            self._defer(envelope, dest)

    def _suspended(self, envelope: Envelope, cause: int) -> None:
        """The rows of ``envelope`` take the reply of the row ``cause`` as theirs."""
        rec = self.recorder
        for msg in envelope:
            rec.same_reply(msg.id, cause)

    def _next(self, dest: Destination) -> Envelope | None:
        """An agent finished an attempt at ``dest`` where mail is parked: it takes the
        longest-parked envelope if the policy allows, and hands any further free slots
        (a window that grew) to idle agents through the active queue."""
        now = self.env.now
        if not self.concurrency.allows(dest, now):
            if dest.window == SUSPENDED and not dest.timer:
                self._wake_at(dest)
            return None
        envelope = dest.parked.popleft()
        dest.busy += 1
        dest.reserved += 1
        if self._parked_level is not None:
            self._parked_level.add(now, -1)
        if dest.parked:
            self._wake(dest)
        return envelope

    def _wake(self, dest: Destination, now: float | None = None) -> None:
        """Parked mail for every slot the policy allows at ``now`` (default: the present)
        goes first in the active queue, each with its slot held (``reserved``) so that
        no one else takes it."""
        policy, parked = self.concurrency, dest.parked
        if now is None:
            now = self.env.now
        woken = 0
        while parked and policy.allows(dest, now):
            dest.busy += 1
            dest.reserved += 1
            self.active.requeue(parked.popleft())
            woken += 1
        if woken:
            if self._parked_level is not None:
                self._parked_level.add(now, -woken)
            if self._active_level is not None:
                self._active_level.set(now, len(self.active.items))

    def _wake_at(self, dest: Destination) -> None:
        """A suspended destination (``destination_rate_delay``) with parked mail: one
        timer wakes it when the pause is over (the only event rate delay adds)."""
        dest.timer = True
        timer = self.env.timeout(dest.until - self.env.now)
        timer.callbacks.append(lambda _: self._resume(dest))

    def _resume(self, dest: Destination) -> None:
        dest.timer = False
        # The timer fires at now + (until - now), which rounding may put an ulp before
        # ``until``: the pause is over, whatever the last bit says.
        self._wake(dest, max(self.env.now, dest.until))

    def _settle(self, rows: Envelope, reply: Reply, start: float, dst: int, order: int) -> Outcome:
        """The MTA's own ``reply`` for the rows, no session held: a permanent one bounces
        them (no host is better than this server, RFC 5321 5.1; NXDOMAIN; null MX; NODATA); a
        temporary one (SERVFAIL) is recorded and leaves them to be deferred, a failed
        session for the destination's feedback (Postfix's smtp reports a DNS failure
        as a site failure: ``smtp_sess_fail``, the queue throttled).

        With the attempts table, each row gets an attempt row that ended at the MX
        look-up: ``host_order`` 0 (no host tried), or ``order`` + 1 after the
        ``order`` hosts of this attempt tried before it (a reused session's), from
        ``start`` (the look-up's) to now, ``dst`` the node that gave the answer (the
        resolver; the MTA itself for a loop), the reply and its outcome, as Postfix logs
        a delivery attempt that failed at the MX look-up."""
        now = self.env.now
        rec = self.recorder
        permanent = reply.permanent
        if rec.tracing:
            outcome = _BOUNCED if permanent else _DEFERRED
            for msg in rows:
                rec.attempt(msg.id, msg.hop + 1, msg.attempts, order + 1 if order else 0, self.code, dst,
                            start, now, reply, outcome)
        else:
            for msg in rows:
                rec.replied(msg.id, reply)
        if not permanent:
            return _REFUSED
        for msg in rows:
            self._bounce(msg, now, reply.reason)
        if self.space is not None:
            self.space.used -= sum(m.size for m in rows)
        self.in_session -= len(rows)  # settled without a session
        if self._sessions_level is not None:
            self._sessions_level.set(self.env.now, self.in_session)
        return _BOUNCED

    def _bounce(self, msg: Message, now: float, reason: str) -> None:
        """The one way a message this MTA had accepted ends bounced (a 5xx reply from
        the next hop, or its queue lifetime over). A refusal at submission is not
        this: the submitting client is told at once and keeps the message."""
        self.recorder.ended(msg.id, BOUNCED, now, reason)
        self.bounced += 1
        self._notify(msg, now, FAILED)

    def _notify(self, parent: Message, now: float, action: int) -> None:
        """Make the DSN about ``parent`` (none about a DSN) and queue it here at ``now``.

        From the queue it is delivered like any message. An MTA that processes its
        bounces ends it delivered here at once; a DSN to a domain that receives no mail
        ends bounced at once (RFC 7505's 556 5.1.10).
        """
        dsn = notice(self.recorder, parent, now, action)
        if dsn is None:
            return
        rec = self.recorder
        self.notices += 1
        dsn.queued = now
        rec.queued(dsn.id, now, self.code)
        if self.processes_bounces:
            self.bounces_processed += 1
            rec.delivered(dsn.id, now)
        elif not dsn.domain.mx:  # no records (NODATA), a null MX or no such name: no lookup needed
            self.bounced += 1
            reply = dsn.domain.answer
            rec.replied(dsn.id, reply)
            rec.ended(dsn.id, BOUNCED, now, reply.reason)
        else:
            if self.space is not None:
                self.space.used += dsn.size
            self._admit((dsn,))  # an envelope of one
            if self._active_level is not None:
                self._active_level.set(now, len(self.active.items))

    # -- faults (sim.core.faults) ----------------------------------------------------

    def fail(self, failure: Failure) -> None:
        """A fault takes the MTA down: submitting clients get no answer, or a refused
        connection (the fault's ``answer``; an MTA has no answer of its own: none), and
        the delivery side stops (``_halt``)."""
        reply = CONNECTION_REFUSED if failure.answer == "refuse" else NO_ANSWER
        self.up = self._down.change(False, failure.reason, reply)
        self.down_reply = self._down.winning(is_silent)
        self._halt(failure)

    def repair(self, failure: Failure) -> None:
        """The fault is over: up again (unless another fault holds it), the queue moving."""
        self.up = self._down.change(True, failure.reason, NO_ANSWER)
        if not self.up:
            self.down_reply = self._down.winning(is_silent)
        self._unhalt(failure)

    def _halt(self, failure: Failure) -> None:
        """The delivery side is down: no attempt and no session starts (the active queue
        is paused; what the deferred queue releases meanwhile waits there, due at once
        after the repair). A crash cuts the sessions in progress (the schedule does);
        without one they finish. With the disk lost, every row queued here ends lost."""
        self.active.pause()
        wiped = self.halts.hold(failure, self.id, self.env.now)
        if wiped is not None:
            self._lose_disk(wiped)

    def _unhalt(self, failure: Failure) -> None:
        """The fault ``failure`` no longer holds the delivery side: when no other does,
        the queue moves again."""
        if not self.halts.release(failure):
            return
        # Postfix's qmgr, starting, moves what was in the active queue back to be
        # delivered at once and runs the deferred queue: the mail due meanwhile goes now.
        self.deferred.run_now()
        self.active.resume()
        if self._active_level is not None:
            self._active_level.set(self.env.now, len(self.active.items))

    def _lose_disk(self, reason: str) -> None:
        """The queue files are gone: the active, deferred and parked rows end lost. The
        rows in delivery sessions end lost when their attempt ends (``halts.losses``);
        submissions in progress are not lost (the client still has them)."""
        now = self.env.now
        lost = [m for envelope in self.active.items for m in envelope]
        gone = len(self.active.items)  # envelopes that leave the active queue's count
        self.active.items.clear()
        lost += [m for *_, envelope in self.deferred.heap for m in envelope]
        self.deferred.heap.clear()
        lost += [m for envelope in self.held_back for m in envelope]  # the incoming queue
        self.held_back.clear()
        parked = 0
        for dest in self.destinations.values():
            for envelope in dest.parked:
                lost += envelope
                parked += 1
            dest.parked.clear()
        self.in_active -= gone + parked
        # What the scheduler knew (windows, slots held for queued mail) went with the
        # queue: destinations start afresh (attempts still running keep their own).
        self.destinations.clear()
        self._lose(tuple(lost), reason)
        if self._active_level is not None and self._deferred_level is not None:
            self._active_level.set(now, 0)
            self._deferred_level.set(now, 0)
        if self._parked_level is not None and parked:
            self._parked_level.add(now, -parked)

    def _lose(self, rows: Sequence[Message], reason: str, queued: bool = True) -> None:
        """Rows whose only copy here is gone end lost (no DSN: no one knows); ``queued``:
        they were in this MTA's queue (their bytes leave its file system)."""
        now, rec = self.env.now, self.recorder
        for m in rows:
            rec.disk_loss(m.id, self.code, m.hop + 1, m.attempts + 1, now)
            rec.ended(m.id, LOST, now, reason)
        self.lost += len(rows)
        if queued and self.space is not None:
            self.space.used -= sum(m.size for m in rows)

    # -- the books -------------------------------------------------------------------

    def holding(self) -> int:
        """Rows (recipients) this MTA holds: waiting to submit, queued, deferred, parked
        or in a session."""
        waiting = sum(1 + len(item[2]) for item in self.incoming.items)
        waiting += sum(len(e) for e in self.active.items) + self.deferred.rows()
        waiting += sum(len(e) for e in self.held_back)
        waiting += sum(len(e) for d in self.destinations.values() for e in d.parked)
        return waiting + self.in_session

    def stats(self) -> dict[str, float]:
        """Messages held at the end and bounced; DSNs made, and those processed here."""
        return {
            "holding_at_end": self.holding(),
            "bounced": self.bounced,
            "dsn": self.notices,
            "bounces_processed": self.bounces_processed,
            **({} if self.space is None else {"queue_full_refusals": self.space.refused}),
            "lost": self.lost,
        }
