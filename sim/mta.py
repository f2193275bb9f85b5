"""The sending MTA: submission, the active and deferred queues, delivery to MX hosts.

Shaped after Postfix 3.x (email-facts.md section 1):

- ``smtpd_workers`` submission sessions take messages from clients (port 587 with
  STARTTLS and AUTH); a message over ``message_size_limit`` is refused at MAIL FROM
  (SIZE, RFC 1870) and the sender is told at once;
- accepted messages join the active queue; ``workers`` delivery agents take them one at
  a time, at most ``destination_concurrency_limit`` per recipient domain, look the
  domain's MX records up through the MTA's resolver and try the hosts in preference
  order (equal preferences in random order, RFC 5321 5.1);
- a 5xx reply bounces the message; when every host failed temporarily the message is
  deferred: the deferred queue is data (a heap by next-attempt time), not sleeping
  processes, and one queue runner moves due messages back every ``queue_run_delay``.
  The next attempt is after the message's age, clamped to [minimal_backoff_time,
  maximal_backoff_time]; past ``maximal_queue_lifetime`` it bounces.

One process per worker, none per message.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from . import smtp
from .dns import Resolver
from .queues import WorkQueue
from .records import BOUNCED, EXPIRED, TOO_LARGE, UNKNOWN_RECIPIENT, Message, MessageLog
from .rng import Streams
from .scenario import MTANode
from .smtp import Dialogues, session_time
from .topology import Network, Path

if TYPE_CHECKING:
    from .mx import MX

__all__ = ["MTA"]


class MTA:
    """An outbound mail server: queues, a worker pool and a deferred-queue runner."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: MTANode,
        network: Network,
        resolver: Resolver,
        mx_hosts: dict[str, MX],
        log: MessageLog,
        dialogues: Dialogues,
        streams: Streams,
    ) -> None:
        self.env = env
        self.spec = spec
        self.id = spec.id
        self.network = network
        self.resolver = resolver
        self.resolver_rtt = network.path(spec.id, resolver.id).rtt
        self.mx_hosts = mx_hosts
        self.log = log
        self.dialogues = dialogues
        self.rto = dialogues.settings.rto
        self._shuffle = streams.generator("mta", spec.id, "mx-order")
        self._loss = streams.generator("mta", spec.id, "loss")
        self.incoming: WorkQueue[tuple[Message, Path]] = WorkQueue(env)
        self.active: WorkQueue[Message] = WorkQueue(env)
        self.deferred: list[tuple[float, int, Message]] = []  # (due, id, message)
        self.in_session = 0  # messages a worker holds right now
        self._dest_busy: dict[int, int] = {}  # attempts in progress per recipient domain
        self._parked: dict[int, deque[Message]] = {}  # waiting for their destination
        self.bounced = 0
        self._idle: simpy.Event | None = None  # the sleeping queue runner's wake-up
        code = log.replies.code
        self._accepted, self._unknown, self._too_big, self._busy, self._timeout = (
            code(smtp.ACCEPTED),
            code(smtp.UNKNOWN_USER),
            code(smtp.TOO_BIG),
            code(smtp.BUSY),
            code(smtp.CONNECT_TIMEOUT),
        )
        for _ in range(spec.smtpd_workers):
            env.process(self._smtpd())
        for _ in range(spec.workers):
            env.process(self._deliver())
        env.process(self._queue_runner())

    def _lossy(self, path: Path) -> np.random.Generator | None:
        return self._loss if path.loss > 0.0 else None

    # -- submission ------------------------------------------------------------------

    def submit(self, msg: Message, client: Path) -> None:
        """A client connects to submit ``msg`` over ``client`` (waits for a free smtpd)."""
        self.incoming.put((msg, client))

    def _smtpd(self) -> Generator[simpy.Event, Any, None]:
        env, log, cost, rto = self.env, self.log, self.dialogues.submission, self.rto
        limit, incoming = self.spec.message_size_limit, self.incoming
        while True:
            if incoming.items:
                msg, path = incoming.items.popleft()
            else:
                msg, path = yield incoming.wait()
            self.in_session += 1
            gen = self._lossy(path)
            if msg.size > limit:
                yield env.timeout(session_time(path, cost.to_mail, 0, rto, gen))
                log.reply[msg.id] = self._too_big
                log.end(msg.id, BOUNCED, env.now, TOO_LARGE)
                self.bounced += 1
                self.in_session -= 1
            else:
                yield env.timeout(session_time(path, cost.to_accept, msg.size, rto, gen))
                msg.queued = env.now
                log.submitted[msg.id] = env.now
                self.in_session -= 1
                self.active.put(msg)
            yield env.timeout(session_time(path, cost.quit, 0, rto, gen))

    # -- delivery --------------------------------------------------------------------

    def _order(self, answer: tuple[tuple[int, str], ...]) -> list[str]:
        """MX hosts in the order to try: by preference, ties shuffled (RFC 5321 5.1)."""
        hosts: list[str] = []
        for _, group in itertools.groupby(answer, key=lambda record: record[0]):
            names = [host for _, host in group]
            if len(names) > 1:
                self._shuffle.shuffle(names)
            hosts += names
        return hosts

    def _deliver(self) -> Generator[simpy.Event, Any, None]:
        """A delivery agent: one message at a time, within the destination's limit.

        At most ``destination_concurrency_limit`` attempts to one recipient domain run
        at once (Postfix's per-destination concurrency); a message over the limit is
        parked with its destination, and the agent that finishes an attempt there takes
        the longest-parked message next.
        """
        log, active = self.log, self.active
        busy, parked, limit = self._dest_busy, self._parked, self.spec.destination_concurrency_limit
        msg: Message | None = None
        while True:
            if msg is None:
                msg = active.items.popleft() if active.items else (yield active.wait())
            dest = msg.rcpt
            if busy.get(dest, 0) >= limit:
                parked.setdefault(dest, deque()).append(msg)
                msg = None
                continue
            busy[dest] = busy.get(dest, 0) + 1
            self.in_session += 1
            log.attempts[msg.id] += 1
            answer = yield from self.resolver.lookup(dest, self.resolver_rtt)
            hosts = self._order(answer) if len(answer) > 1 else [h for _, h in answer]
            for host in hosts:
                settled = yield from self._session(msg, self.mx_hosts[host])
                if settled:
                    break
            else:
                self.in_session -= 1
                self._defer(msg)
            busy[dest] -= 1
            waiting = parked.get(dest)
            msg = waiting.popleft() if waiting else None

    def _session(self, msg: Message, mx: MX) -> Generator[simpy.Event, Any, bool]:
        """One SMTP session to ``mx``; True if it settled the message (250 or 5xx).

        A settled message leaves this MTA's hands before QUIT: it is the MX's (or
        bounced) while the worker finishes the session.
        """
        env, log, cost, rto = self.env, self.log, self.dialogues.relay, self.rto
        mid = msg.id
        path = self.network.path(self.id, mx.id)
        gen = self._lossy(path)
        if not mx.up:
            yield env.timeout(self.spec.smtp_connect_timeout)
            log.reply[mid] = self._timeout
            return False
        if mx.connections >= mx.max_connections:
            mx.refused += 1
            yield env.timeout(session_time(path, cost.connect, 0, rto, gen))
            log.reply[mid] = self._busy
            return False
        mx.connections += 1
        mx.sessions += 1
        log.mx_host[mid] = mx.code
        try:
            if mx.recipient_unknown(msg.rcpt):
                yield env.timeout(session_time(path, cost.to_rcpt, 0, rto, gen))
                log.reply[mid] = self._unknown
                log.end(mid, BOUNCED, env.now, UNKNOWN_RECIPIENT)
                self.bounced += 1
            else:
                yield env.timeout(session_time(path, cost.to_accept, msg.size, rto, gen))
                log.reply[mid] = self._accepted
                log.accepted[mid] = env.now
                mx.accept(msg)
            self.in_session -= 1
            yield env.timeout(session_time(path, cost.quit, 0, rto, gen))
        finally:
            # An interrupted session (a fault, later) must still free its slot.
            mx.connections -= 1
        return True

    def _defer(self, msg: Message) -> None:
        now = self.env.now
        age = now - msg.queued
        if age >= self.spec.maximal_queue_lifetime:
            self.log.end(msg.id, BOUNCED, now, EXPIRED)
            self.bounced += 1
            return
        delay = min(max(age, self.spec.minimal_backoff_time), self.spec.maximal_backoff_time)
        heapq.heappush(self.deferred, (now + delay, msg.id, msg))
        if self._idle is not None:
            self._idle.succeed()
            self._idle = None

    def _queue_runner(self) -> Generator[simpy.Event, Any, None]:
        """Scan the deferred queue every ``queue_run_delay`` (at t = k * delay, k >= 1).

        While the deferred queue is empty the runner sleeps instead of waking for
        nothing; it then resumes at the next tick of the same grid, so the schedule is
        exactly that of a runner that never slept.
        """
        env, deferred, every = self.env, self.deferred, self.spec.queue_run_delay
        while True:
            if not deferred:
                self._idle = env.event()
                yield self._idle
            k = math.floor(env.now / every) + 1
            if k * every <= env.now:  # now / every rounded down past a tick
                k += 1
            yield env.timeout(k * every - env.now)
            now = env.now
            while deferred and deferred[0][0] <= now:
                self.active.put(heapq.heappop(deferred)[2])

    def holding(self) -> int:
        """Messages this MTA holds: waiting to submit, queued, deferred or in a session."""
        waiting = len(self.incoming) + len(self.active) + len(self.deferred)
        waiting += sum(len(p) for p in self._parked.values())
        return waiting + self.in_session
