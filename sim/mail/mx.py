"""The receiving MX: answers sessions through its policies, scans, hands to a mailbox.

An MX is an SMTP server (``sim.mail.server``): senders connect and it answers through
its chain of policies (``sim.mail.policies``): no answer while it is down, 421 at its
connection limit, 552 for a message over its size limit, 550 5.1.1 for unknown
recipients, 450 for greylisted triplets, and the throttling replies of its rate limits
per sending IP and domain (``sim.mail.throttle``). A message that passes is accepted at
the final "." and waits in the MX's queue for one of ``workers`` content scanners; the
filter may then silently discard it
(the message is lost, with the reason); otherwise it goes over LMTP to the recipient
domain's mailbox store.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from ..config import MXNode
from ..core.component import Context, registers
from ..core.faults import Failure, Halts, disk_lost
from ..core.monitors import Level, Monitors
from ..core.queues import WorkQueue
from ..core.records import DISCARDED, LOST, SPAM_DISCARDED, Message
from ..world.sharing import transfer
from .content import DISCARD, ContentChecks
from .dns import Resolver
from .policies import Chain, ConnectionLimit, DomainGreylist, Down, Greylist, Policy, SizeLimit, UnknownUsers
from .server import PolicyServer
from .smtp import ACCEPTED, Outcome
from .throttle import Anvil

__all__ = ["LMTP_RETRY", "MX"]

# A message the LMTP client could not hand to its store (down, or no path to it) waits in
# the MX's queue and is tried again this much later: Postfix's minimal_backoff_time and
# queue_run_delay (both 300 s), the first retry of a deferred message (docs/sources.md).
LMTP_RETRY = 300.0


@registers(MXNode)
class MX(PolicyServer):
    """An inbound mail server serving one or more domains."""

    def __init__(self, ctx: Context, spec: MXNode) -> None:
        streams = ctx.streams
        policies: list[Policy] = [Down(), ConnectionLimit(spec.max_connections)]
        # Rate limits per sending IP and domain: the rules that are on, right after the
        # host's overall connection cap, as Postfix's smtpd asks anvil before its other
        # checks of a MAIL or RCPT (so a request refused later, say greylisted, counts).
        self.anvil = None if spec.rate_limits is None else Anvil(spec.rate_limits)
        if self.anvil is not None:
            policies.extend(self.anvil.policies())
        policies += [SizeLimit(spec.message_size_limit), UnknownUsers(streams.uniform("mx", spec.id, "recipients"))]
        grey = spec.greylisting
        # After UnknownUsers, as postgrey sits after Postfix's own recipient checks.
        self.greylist = None if grey is None else Greylist.of(grey)
        if self.greylist is not None:
            policies.append(self.greylist)
        if ctx.domains.greylisting:  # some domain keeps a table of its own
            policies.append(DomainGreylist())
        super().__init__(ctx, spec.id, Chain(policies), spec.answer)
        if self.anvil is not None:  # told only what its rules need
            if self.anvil.count_limit:
                self.session_counts = self.anvil
            if self.anvil.reputation:
                self.accept_counts = self.anvil
        self.ctx = ctx
        self.env = ctx.env
        self.spec = spec
        self.recorder = ctx.recorder
        self.network = ctx.network
        self.lmtp = ctx.dialogues.lmtp
        self.discarded = 0
        self.in_work = 0  # messages a scanner holds right now
        self._filter = streams.uniform("mx", spec.id, "filter")
        self._processing = streams.sampler(spec.processing, "mx", spec.id, "processing")
        self._loss = streams.generator("mx", spec.id, "loss")
        # Content checks and tar-pit delays: None when off.
        if ContentChecks.wanted(spec):
            self.checks = ContentChecks(
                spec, ctx.recorder, self._processing, streams.uniform("mx", spec.id, "content")
            )
        self.queue: WorkQueue[Message] = WorkQueue(ctx.env)
        # Faults (sim.core.faults): the ones holding the scanners down (a scanner cut
        # while the disk's loss count changed lost its message); messages waiting for
        # their store.
        self.halts = Halts()
        self.lost = 0
        self.retrying: dict[Message, None] = {}  # (a dict: lost in the order they came)
        self.deferred = 0  # hand-offs to a store that was down or cut off
        self._cuts = ctx.sessions
        self.started = False
        self.scanners: list[simpy.Process] = []  # scanners started so far (on demand)
        # Time-series levels (sim.core.monitors), None unless the run samples them.
        self._queue_level: Level | None = None
        self._busy_level: Level | None = None

    def monitor(self, monitors: Monitors) -> None:
        """Follow the scan queue, busy scanners and open connections as levels (before
        the run starts: ``timeseries.parquet``)."""
        if self.started:
            raise RuntimeError(f"MX {self.id}: monitor() after the run started")
        self._queue_level = monitors.level(self.id, "scan_queue")
        self._busy_level = monitors.level(self.id, "scanners_busy")
        self._connections_level = monitors.level(self.id, "connections")

    def start(self) -> None:
        """Staff the scan queue (scanners start when mail arrives) and start the
        scheduled outages."""
        self.started = True
        if self.checks is not None and self.spec.resolver is not None:
            resolver = self.ctx.node(self.spec.resolver, Resolver)
            self.checks.resolver = resolver
            self.checks.follow(self.network, self.id)
        self.queue.staff(self.spec.workers, self._hire)
        self.schedule_outages(self.spec.outages)

    def take(self, msg: Message, now: float) -> None:
        """A message whose DATA was just answered 250 joins the scan queue."""
        wiped = self.halts.lost_with(now)
        if wiped is not None:  # on the disk that went
            self._lose((msg,), wiped, self.halts.lost_at)
            return
        self.queue.put(msg)
        if self._queue_level is not None:
            self._queue_level.set(now, len(self.queue.items))

    def holding(self) -> int:
        """Messages accepted here and not yet stored or discarded."""
        return len(self.queue) + self.in_work + len(self.retrying) + self.arriving

    # -- faults (sim.core.faults) ----------------------------------------------------

    def fail(self, failure: Failure) -> None:
        """A fault takes the host down (connects answered as it says) and its scanners
        take nothing (a crash puts the messages being handed over back first: the
        schedule cuts their LMTP sessions). With the disk lost, what is queued here and
        what waits for its store ends lost; the messages being handed over too, when
        their session is cut."""
        PolicyServer.fail(self, failure)
        self.queue.pause()
        wiped = self.halts.hold(failure, self.id, self.env.now)
        if wiped is not None:
            lost = [*self.queue.items, *self.retrying]
            self.queue.items.clear()
            self.retrying.clear()
            self._lose(lost, wiped)
            if self._queue_level is not None:
                self._queue_level.set(self.env.now, 0)

    def repair(self, failure: Failure) -> None:
        """Up again (unless another reason holds it); the scanners go on."""
        PolicyServer.repair(self, failure)
        if self.halts.release(failure):
            self.queue.resume()

    def _lose(self, msgs: list[Message] | tuple[Message, ...], reason: str, at: float | None = None) -> None:
        """Messages whose only copy was here end lost (no DSN: no one knows), at ``at``
        (default: now)."""
        now, rec = self.env.now if at is None else at, self.recorder
        for msg in msgs:
            rec.disk_loss(msg.id, self.code, msg.hop + 1, 1, now)  # before its hand-off
            rec.ended(msg.id, LOST, now, reason)
        self.lost += len(msgs)

    def _later(self, msg: Message) -> None:
        """The store is down or cut off: the message waits here and is tried again
        ``LMTP_RETRY`` later (Postfix's LMTP client defers it)."""
        self.retrying[msg] = None
        self.deferred += 1
        self.env.timeout(LMTP_RETRY).callbacks.append(lambda _: self._again(msg))

    def _again(self, msg: Message) -> None:
        """A hand-off's retry is due: back into the scan queue."""
        if msg in self.retrying:  # not lost with the disk meanwhile
            del self.retrying[msg]
            self.queue.put(msg)

    def stats(self) -> dict[str, float]:
        """Sessions, refusals, discards and what is held at the end."""
        stats = {
            **self.session_stats(),
            "discarded": self.discarded,
            "holding_at_end": self.holding(),
            "lost": self.lost,
            "lmtp_deferred": self.deferred,
        }
        if self.checks is not None:
            stats.update(self.checks.stats())
        if self.greylist is not None:
            stats.update(self.greylist.stats())
        if self.anvil is not None:
            stats.update(self.anvil.stats())
        return stats

    def _hire(self, first: simpy.Event) -> None:
        self.scanners.append(self.env.process(self._worker(first)))

    def _worker(self, first: simpy.Event) -> Generator[simpy.Event, Any, None]:
        """A scanner, hired with the event that hands it its first message."""
        env, rec, cost, queue, cuts, halts = self.env, self.recorder, self.lmtp, self.queue, self._cuts, self.halts
        queue_level, busy = self._queue_level, self._busy_level
        # Content checks: a before-queue scan was spent in the session (none here); an
        # after-queue one gives each row its verdict here.
        checks = self.checks
        before = checks is not None and checks.before_queue
        sorting = checks if checks is not None and not before else None
        waiting: simpy.Event | None = first
        free = 0.0  # when the last LMTP session's QUIT ends (the scanner rests until then)
        while True:
            if waiting is None and queue.items and not queue.paused:
                if free > env.now:  # mail waits: spend the QUIT first (WorkQueue)
                    try:
                        yield env.timeout(free - env.now)
                    except simpy.Interrupt:
                        pass  # the message is stored; only the QUIT was cut
                    free = 0.0
                    continue
                msg = queue.items.popleft()
                if queue_level is not None:
                    queue_level.set(env.now, len(queue.items))
            else:
                if waiting is None:
                    waiting = queue.wait(free)
                try:
                    got = yield waiting
                except simpy.Interrupt:  # interrupted while idle: nothing was held
                    queue.cancel(waiting)
                    waiting, free = None, 0.0
                    if queue_level is not None:
                        queue_level.set(env.now, len(queue.items))
                    continue
                waiting, free = None, 0.0
                if got is None:  # rested: look at the queue
                    continue
                if queue.paused:  # handed over as the host went down
                    queue.requeue(got)
                    continue
                msg = got
            self.in_work += 1
            if busy is not None:
                busy.set(env.now, self.in_work)
            scan = 0.0 if before else self._processing()
            rate = msg.domain.discard_rate
            losses = halts.losses
            try:
                dropped = DISCARDED if rate > 0.0 and self._filter() < rate else None
                if dropped is None and sorting is not None and sorting.after_queue(msg) == DISCARD:
                    dropped = SPAM_DISCARDED
                if dropped is not None:
                    yield env.timeout(scan)
                    rec.ended(msg.id, LOST, env.now, dropped)
                    if dropped is DISCARDED:
                        self.discarded += 1
                    self.in_work -= 1
                    if busy is not None:
                        busy.set(env.now, self.in_work)
                    continue
                store = msg.domain.mailbox
                link = self.network.link(self.id, store.id)
                if not (store.up and link.up):  # the LMTP connection fails: try later
                    self.in_work -= 1
                    if busy is not None:
                        busy.set(env.now, self.in_work)
                    self._later(msg)
                    continue
                gen = self._loss if link.loss > 0.0 else None
                # The scan and the LMTP dialogue in one timeout: nothing can come between.
                start = env.now + scan
                if cuts is not None:  # a crash of either end cuts it
                    cuts.opened(self.id, store.id)
                wait = scan + link.time(cost.to_accept, msg.size, gen)
                if link.shared:  # the body takes its share of shared edges (sim.world.sharing)
                    yield from transfer(env, link, wait, msg.size)
                else:
                    yield env.timeout(wait)
                yield from store.store(msg)
                if cuts is not None:
                    cuts.closed()
            except simpy.Interrupt:
                # Accepted here and not yet stored: the MX still has it (on its disk) and
                # a scanner takes it again, first; unless the disk went meanwhile.
                self.in_work -= 1
                if halts.losses != losses:
                    self._lose((msg,), halts.wiped or disk_lost(self.id))
                else:
                    queue.requeue(msg)
                if busy is not None and queue_level is not None:
                    busy.set(env.now, self.in_work)
                    queue_level.set(env.now, len(queue.items))
                continue
            if rec.tracing:
                # The hand-off to the store is one hop on from the one that brought
                # the message here (2 after submission and one relay; more via relays).
                rec.attempt(msg.id, msg.hop + 1, 1, 1, self.code, store.code, start, env.now,
                            ACCEPTED, Outcome.DELIVERED, final=False)
            self.in_work -= 1
            if busy is not None:
                busy.set(env.now, self.in_work)
            # The QUIT: nothing can change it, so the scanner rests instead of spending
            # it in a timeout of its own (WorkQueue.wait(free)).
            free = env.now + link.time(cost.quit, 0, gen)
