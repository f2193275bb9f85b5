"""The sending MTA: submission, the active queue, delivery attempts to MX hosts.

Shaped after Postfix 3.x (docs/model.md, docs/sources.md):

- ``smtpd_workers`` submission sessions take messages from clients (port 587 with
  STARTTLS and AUTH); the MTA answers MAIL FROM through its own policies (a message
  over ``message_size_limit`` is refused, SIZE, RFC 1870) and the sender is told at once;
- accepted messages join the active queue; ``workers`` delivery agents take them one at
  a time, as many per recipient domain as the concurrency policy allows
  (``sim.mail.concurrency``), look the domain's MX records up through the MTA's resolver and
  try the hosts in preference order (equal preferences in random order, RFC 5321 5.1);
- each session asks the server for its replies (``sim.mail.smtp.SMTPServer``) and
  spends the link time up to the reply that decides it: 250 hands the message over, 5xx
  bounces it, anything else sends the agent to the next host;
- when every host failed, the retry schedule says when the message is due again (it
  waits in the deferred queue, ``sim.mail.retry``) or that it has been queued too long
  and bounces.

One process per worker that has had work (workers start on demand), none per message. The MTA knows servers only by id and by the
``SMTPServer`` protocol: it imports nothing of the MX.
"""

from __future__ import annotations

import itertools
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from ..config import MTANode
from ..core.component import Context, registers
from ..core.monitors import Level, Monitors
from ..core.queues import WorkQueue
from ..core.records import BOUNCED, EXPIRED, Message
from .dns import Resolver
from .domains import Domain
from .policies import Chain, SizeLimit
from .concurrency import ConcurrencyPolicy, Destination, FixedConcurrency
from .retry import DeferredQueue, PostfixBackoff, RetrySchedule
from .smtp import ACCEPTED, INTERRUPTED, Outcome, Phase, Reply, SMTPServer

__all__ = ["LOOPS_BACK", "MTA", "sending_ips"]

SUBMISSION = 0  # the attempts table's hop of a submission; a server's own sessions are msg.hop + 1
# RFC 5321 5.1: a relay that finds no MX host better than itself must return the message
# as undeliverable; Postfix words it so (dsn 5.4.6).
LOOPS_BACK = Reply(554, "5.4.6", "mail loops back to myself", Phase.CONNECT,
                   reason="mail loops back to myself")
# Outcomes as plain module constants: compared on every attempt.
_DELIVERED, _BOUNCED, _TRY_NEXT, _DEFERRED, _REFUSED, _TIMEOUT, _INTERRUPTED = tuple(Outcome)


def sending_ips(node: str, ips: int | list[str]) -> tuple[str, ...] | None:
    """A node's sending IPs by name: ``ips`` names them, or counts them (named
    ``node#1``, ``node#2``, ...); None for a single IP, which is the node itself."""
    if isinstance(ips, int):
        return None if ips == 1 else tuple(f"{node}#{k}" for k in range(1, ips + 1))
    return tuple(ips)


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
        # The MTA's own answers to submitting clients, and its send-side policies.
        self.up = True
        self.connections = 0  # submission sessions open
        self.inbound = Chain([SizeLimit(spec.message_size_limit)])
        self.retry: RetrySchedule = PostfixBackoff(
            spec.minimal_backoff_time, spec.maximal_backoff_time, spec.maximal_queue_lifetime
        )
        self.concurrency: ConcurrencyPolicy = FixedConcurrency(spec.destination_concurrency_limit)
        # A submission: the message, the client's node, and the message's further
        # recipients (one row each) that share its SMTP transaction.
        self.incoming: WorkQueue[tuple[Message, str, tuple[Message, ...]]] = WorkQueue(ctx.env)
        self.active: WorkQueue[Message] = WorkQueue(ctx.env)
        self.deferred = DeferredQueue(ctx.env, spec.queue_run_delay, self.active.put)
        self.destinations: dict[Domain | tuple[str, ...], Destination] = {}
        self.in_session = 0  # messages a worker holds right now
        self.bounced = 0
        # -- relay-esp: sending IPs and the smart host ------------------------------
        # Sessions go out from the sending IPs in turn; with one IP (the default) the
        # client a server sees is the node id and nothing is counted (_client).
        self.ips: tuple[str, ...] | None = sending_ips(spec.id, spec.ips)
        self._ip_turn = 0
        # Postfix relayhost in its [host] form: every message goes there, no MX lookup,
        # and the smart host is the one destination the concurrency policy sees.
        self.relayhost: tuple[str, ...] | None = (spec.relayhost,) if spec.relayhost else None
        self.resolver: Resolver | None = None
        self.started = False
        self.workers: list[simpy.Process] = []  # delivery agents started so far
        self.submission_workers: list[simpy.Process] = []
        # Time-series levels (sim.core.monitors), None unless the run samples them.
        self._active_level: Level | None = None
        self._deferred_level: Level | None = None
        self._sessions_level: Level | None = None
        self._parked_level: Level | None = None

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

    def _release(self, msg: Message) -> None:
        """The deferred queue's runner moves ``msg`` back to the active queue (monitored)."""
        self.active.put(msg)
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
        if concurrency is not None:
            self.concurrency = concurrency

    def start(self) -> None:
        """Find the resolver; start the submission and delivery workers and the queue runner."""
        self.resolver = self.ctx.node(self.spec.resolver, Resolver)
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

    def submit(self, msg: Message, client: str, cc: tuple[Message, ...] = ()) -> None:
        """A client at node ``client`` connects to submit ``msg`` (waits for a free smtpd).

        ``cc`` are the same message's further recipients, one row each: one transaction
        with a RCPT TO per recipient; once accepted, each is queued on its own.
        """
        self.recorder.held(msg.id, self.code)
        for other in cc:
            self.recorder.held(other.id, self.code)
        self.incoming.put((msg, client, cc))

    def campaign(self, rows: list[tuple[Message, tuple[Message, ...]]], client: str) -> None:
        """A batch of messages from ``client``: each submitted on its own, in order (an
        ESP takes a campaign in one API call instead: ``sim.mail.esp``)."""
        for msg, cc in rows:
            self.submit(msg, client, cc)

    def _smtpd(self, first: simpy.Event) -> Generator[simpy.Event, Any, None]:
        """A submission worker, hired with the event that hands it its first session."""
        env, rec, cost, incoming = self.env, self.recorder, self.dialogues.submission, self.incoming
        inbound, mail_phase = self.inbound, Phase.MAIL  # the MTA answers MAIL FROM itself
        sessions, active = self._sessions_level, self._active_level
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
                msg, client, cc = incoming.items.popleft()
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
                msg, client, cc = got
            link = self.network.link(client, self.id)
            gen = self._loss if link.loss > 0.0 else None
            start = env.now
            rows = (msg, *cc) if cc else (msg,)
            self.in_session += len(rows)
            if sessions is not None:
                sessions.set(start, self.in_session)
            self.connections += 1
            held = True  # the message is this session's until queued, bounced or handed back
            try:
                refusal = inbound.answer(mail_phase, self, client, msg, start)
                if refusal is not None:
                    yield env.timeout(link.time(cost.to(refusal.phase), 0, gen))
                    src = rec.nodes.code(client)
                    for m in rows:
                        rec.attempt(m.id, SUBMISSION, 1, 1, src, self.code, start, env.now,
                                    refusal, Outcome.BOUNCED)
                        rec.ended(m.id, BOUNCED, env.now, refusal.reason)
                    self.bounced += len(rows)
                else:
                    # Without PIPELINING each further RCPT TO waits for its own reply.
                    trips = cost.to_accept + cost.per_rcpt * len(cc)
                    yield env.timeout(link.time(trips, msg.size, gen))
                    for m in rows:
                        m.queued = env.now
                        rec.queued(m.id, env.now, self.code)
                        if rec.tracing:
                            src = rec.nodes.code(client)
                            rec.attempt(m.id, SUBMISSION, 1, 1, src, self.code, start, env.now,
                                        ACCEPTED, Outcome.DELIVERED, final=False)
                        self.active.put(m)
                    if active is not None:
                        active.set(env.now, len(self.active.items))
                held = False
                self.in_session -= len(rows)
                if sessions is not None:
                    sessions.set(env.now, self.in_session)
                # The QUIT: nothing can change it, so the worker rests instead of
                # spending it in a timeout of its own (WorkQueue.wait(free)).
                free = env.now + link.time(cost.quit, 0, gen)
            except simpy.Interrupt:
                if held:
                    # Not yet told it was accepted: the client still has the message and
                    # submits it again at once, ahead of later ones.
                    self.in_session -= len(rows)
                    if sessions is not None:
                        sessions.set(env.now, self.in_session)
                    incoming.items.appendleft((msg, client, cc))
            finally:
                self.connections -= 1  # sessions in their dialogue (the QUIT not counted)

    # -- delivery --------------------------------------------------------------------

    def _order(self, answer: tuple[tuple[int, str], ...]) -> tuple[str, ...]:
        """MX hosts in the order to try: by preference, ties shuffled (RFC 5321 5.1)."""
        hosts: list[str] = []
        for _, group in itertools.groupby(answer, key=lambda record: record[0]):
            names = [host for _, host in group]
            if len(names) > 1:
                self._shuffle.shuffle(names)
            hosts += names
        return tuple(hosts)

    def _hosts(self, answer: tuple[tuple[int, str], ...]) -> tuple[str, ...]:
        """The hosts to try for a domain whose MX answer is ``answer`` (a relay keeps
        only the hosts better than itself)."""
        return (answer[0][1],) if len(answer) == 1 else self._order(answer)

    def _client(self) -> str:
        """The sending IP the next session goes out from: the IPs in turn (one IP: the
        node id, as a server has always seen it)."""
        ips = self.ips
        if ips is None:
            return self.id
        turn = self._ip_turn
        self._ip_turn = turn + 1
        return ips[turn % len(ips)]

    def _deliver(self, first: simpy.Event) -> Generator[simpy.Event, Any, None]:
        """A delivery agent: one attempt at a time, as the destination's policy allows.

        An attempt looks the MX hosts up and tries them in order until one settles the
        message (delivered or bounced); otherwise the message is deferred. A message
        whose destination is at its limit is parked with it; the agent that finishes an
        attempt there takes the longest-parked message next. Every counter the attempt
        holds is released on every path, an interrupt included. The agent is hired with
        the event that hands it its first message.
        """
        assert self.resolver is not None  # started
        env, rec, nodes, resolver = self.env, self.recorder, self.ctx.nodes, self.resolver
        active, destinations, policy = self.active, self.destinations, self.concurrency
        queue_level, sessions, parked_level = self._active_level, self._sessions_level, self._parked_level
        relayhost = self.relayhost
        msg: Message | None = None
        waiting: simpy.Event | None = first
        while True:
            if msg is None:
                if waiting is None and active.items:
                    msg = active.items.popleft()
                    if queue_level is not None:
                        queue_level.set(env.now, len(active.items))
                else:
                    if waiting is None:
                        waiting = active.wait()
                    try:
                        msg = yield waiting
                    except simpy.Interrupt:  # interrupted while idle: nothing was held
                        active.cancel(waiting)
                        waiting = None
                        if queue_level is not None:
                            queue_level.set(env.now, len(active.items))
                        continue
                    waiting = None
            # The destination is the next hop: the recipient's domain, or the smart host.
            key = msg.domain if relayhost is None else relayhost
            dest = destinations.get(key)
            if dest is None:
                dest = destinations[key] = Destination()
            if not policy.allows(dest):
                if dest.busy:
                    dest.parked.append(msg)  # the next attempt there to finish takes it
                    if parked_level is not None:
                        parked_level.add(env.now, 1)
                else:
                    # Nothing in progress would ever take it: a destination the policy
                    # closed (a dead one, say) defers its mail at once, as Postfix does.
                    self._defer(msg, dest)
                msg = None
                continue
            dest.busy += 1
            self.in_session += 1
            if sessions is not None:
                sessions.set(env.now, self.in_session)
            msg.attempts += 1
            rec.attempting(msg.id, msg.attempts)
            outcome = _INTERRUPTED
            try:
                if relayhost is None:
                    rtt = self.network.link(self.id, resolver.id).rtt
                    answer = yield from resolver.lookup(msg.domain, rtt)
                    hosts = self._hosts(answer)
                    if not hosts:
                        outcome = self._loops_back(msg)
                else:
                    hosts = relayhost
                last = len(hosts)
                for order, host in enumerate(hosts, 1):
                    server: SMTPServer = nodes[host]  # type: ignore[assignment]
                    outcome = yield from self._session(msg, server, order, order == last)
                    if outcome <= _BOUNCED or outcome == _INTERRUPTED:
                        break
            except simpy.Interrupt:
                outcome = _INTERRUPTED
            finally:
                dest.busy -= 1
            policy.finished(dest, outcome)
            if outcome > _BOUNCED:  # not settled: still ours
                self.in_session -= 1
                if sessions is not None:
                    sessions.set(env.now, self.in_session)
                self._defer(msg, dest)
            parked = dest.parked
            if parked:
                msg = parked.popleft()
                if parked_level is not None:
                    parked_level.add(env.now, -1)
            else:
                msg = None

    def _session(
        self, msg: Message, server: SMTPServer, order: int, last: bool
    ) -> Generator[simpy.Event, Any, Outcome]:
        """One SMTP session with ``server``; its outcome.

        The server answers each phase at once (plain calls); the session spends the link
        time up to the reply that decided it, in one timeout. A settled message leaves
        this MTA's hands at that reply: it is the server's (or bounced) while the agent
        finishes the session with QUIT.
        """
        env, rec, cost = self.env, self.recorder, self.dialogues.relay
        # Read before the server may take the message (and count on from them).
        mid, hop, attempt = msg.id, msg.hop + 1, msg.attempts
        link = self.network.link(self.id, server.id)
        gen = self._loss if link.loss > 0.0 else None
        start = env.now
        client = self.id if self.ips is None else self._client()
        refusal = server.connect(client, start)
        if refusal is not None:
            try:
                if refusal.silent:
                    yield env.timeout(self.spec.smtp_connect_timeout)
                else:
                    yield env.timeout(link.time(cost.connect, 0, gen))
            except simpy.Interrupt:
                refusal, outcome = INTERRUPTED, _INTERRUPTED
            else:
                # Postfix skips a host that greets with 5xx too (smtp_skip_5xx_greeting),
                # so a refusal at connect never bounces the message by itself.
                outcome = _DEFERRED if last else _TIMEOUT if refusal.silent else _REFUSED
            rec.attempt(mid, hop, attempt, order, self.code, server.code, start, env.now,
                        refusal, outcome)
            return outcome
        rec.session(mid, server.code)
        settled = False
        try:
            reply: Reply | None = server.mail(client, msg, start) or server.rcpt(client, msg, start)
            try:
                if reply is None:
                    yield env.timeout(link.time(cost.to_accept, msg.size, gen))
                    reply = server.data(client, msg, env.now)
                    if reply.code < 400:
                        rec.accepted(mid, env.now, server.code)
                else:
                    yield env.timeout(link.time(cost.to(reply.phase), 0, gen))
            except simpy.Interrupt:
                rec.attempt(mid, hop, attempt, order, self.code, server.code, start,
                            env.now, INTERRUPTED, _INTERRUPTED)
                return _INTERRUPTED
            if reply.code < 400:
                outcome = _DELIVERED
            elif reply.code >= 500:
                outcome = _BOUNCED
                self._bounce(msg, env.now, reply.reason)
            else:
                outcome = _DEFERRED if last else _TRY_NEXT
            if rec.tracing:
                rec.attempt(mid, hop, attempt, order, self.code, server.code, start,
                            env.now, reply, outcome)
            else:
                rec.replied(mid, reply)
            if outcome <= _BOUNCED:
                settled = True
                self.in_session -= 1
                if self._sessions_level is not None:
                    self._sessions_level.set(env.now, self.in_session)
            quit = link.time(cost.quit, 0, gen)
            try:
                if quit > 0.0:  # a QUIT over a zero-latency link takes no time: no event
                    yield env.timeout(quit)
            except simpy.Interrupt:
                if not settled:
                    return _INTERRUPTED
        finally:
            server.close(client)
        return outcome

    def _defer(self, msg: Message, dest: Destination) -> None:
        """Every host failed: due again when the schedule says, or bounce as expired."""
        now = self.env.now
        due = self.retry.next_due(msg.queued, msg.attempts, now, dest)
        if due is None:
            self._bounce(msg, now, EXPIRED)
            return
        self.deferred.put(msg, due)
        self.recorder.deferred(msg.id)
        if self._deferred_level is not None:
            self._deferred_level.set(now, len(self.deferred.heap))

    def _loops_back(self, msg: Message) -> Outcome:
        """No host is better than this server (RFC 5321 5.1): the message bounces."""
        self.recorder.replied(msg.id, LOOPS_BACK)
        self._bounce(msg, self.env.now, LOOPS_BACK.reason)
        self.in_session -= 1  # settled without a session
        if self._sessions_level is not None:
            self._sessions_level.set(self.env.now, self.in_session)
        return _BOUNCED

    def _bounce(self, msg: Message, now: float, reason: str) -> None:
        """The one way a message this MTA had accepted ends bounced (a 5xx reply from
        the next hop, or its queue lifetime over). A refusal at submission is not
        this: the submitting client is told at once and keeps the message."""
        self.recorder.ended(msg.id, BOUNCED, now, reason)
        self.bounced += 1

    # -- the books -------------------------------------------------------------------

    def holding(self) -> int:
        """Messages this MTA holds: waiting to submit, queued, deferred or in a session."""
        waiting = sum(1 + len(cc) for _, _, cc in self.incoming.items)
        waiting += len(self.active) + len(self.deferred)
        waiting += sum(len(d.parked) for d in self.destinations.values())
        return waiting + self.in_session

    def stats(self) -> dict[str, float]:
        """Messages held at the end and bounced."""
        return {"holding_at_end": self.holding(), "bounced": self.bounced}
