"""The receiving MX: accepts sessions up to a connection limit, scans, hands to a mailbox.

Sessions are driven by the sending MTA (it holds one of the MX's ``max_connections``
slots for the length of the dialogue; past the limit the MX answers 421 and the sender
tries its next MX). The MX decides what only it can know: whether the recipient exists
(550 5.1.1 at RCPT) and, after accepting, whether its content filter silently discards
the message. Accepted messages wait in the MX's queue for one of ``workers`` scanners,
then go over LMTP to the recipient domain's mailbox store.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import simpy

from .mailbox import Mailbox
from .queues import WorkQueue
from .records import DISCARDED, LOST, Message, MessageLog
from .rng import Streams
from .scenario import MXNode
from .smtp import Dialogues, session_time
from .topology import Network

__all__ = ["MX"]


class MX:
    """An inbound mail server serving one or more domains."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: MXNode,
        network: Network,
        mailboxes: Sequence[Mailbox | None],
        unknown_rate: Sequence[float],
        discard_rate: Sequence[float],
        log: MessageLog,
        dialogues: Dialogues,
        streams: Streams,
    ) -> None:
        self.env = env
        self.id = spec.id
        self.code = log.hosts.code(spec.id)
        self.up = True  # a down host does not answer: senders wait out their connect timeout
        self.connections = 0
        self.max_connections = spec.max_connections
        self.network = network
        self.mailboxes = mailboxes  # by domain index
        self.unknown_rate = unknown_rate
        self.discard_rate = discard_rate
        self.log = log
        self.dialogues = dialogues
        self.sessions = 0
        self.refused = 0
        self.discarded = 0
        self.in_work = 0  # messages a scanner holds right now
        self._recipients = streams.uniform("mx", spec.id, "recipients")
        self._filter = streams.uniform("mx", spec.id, "filter")
        self._processing = streams.sampler(spec.processing, "mx", spec.id, "processing")
        self._loss = streams.generator("mx", spec.id, "loss")
        self.queue: WorkQueue[Message] = WorkQueue(env)
        for _ in range(spec.workers):
            env.process(self._worker())
        if spec.outages:
            env.process(self._outages(sorted((o.start, o.end) for o in spec.outages)))

    def _outages(self, spans: list[tuple[float, float]]) -> Generator[simpy.Event, Any, None]:
        env = self.env
        for start, end in spans:
            yield env.timeout(start - env.now)
            self.up = False
            yield env.timeout(end - env.now)
            self.up = True

    def recipient_unknown(self, domain: int) -> bool:
        """Whether RCPT TO for this domain's recipient is refused (draws only if it can be)."""
        rate = self.unknown_rate[domain]
        return rate > 0.0 and self._recipients() < rate

    def accept(self, msg: Message) -> None:
        """Take a message whose DATA was just answered 250."""
        self.queue.put(msg)

    def holding(self) -> int:
        """Messages accepted here and not yet stored or discarded."""
        return len(self.queue) + self.in_work

    def _worker(self) -> Generator[simpy.Event, Any, None]:
        env, log, cost = self.env, self.log, self.dialogues.lmtp
        rto = self.dialogues.settings.rto
        queue = self.queue
        while True:
            msg = queue.items.popleft() if queue.items else (yield queue.wait())
            self.in_work += 1
            scan = self._processing()
            rate = self.discard_rate[msg.rcpt]
            if rate > 0.0 and self._filter() < rate:
                yield env.timeout(scan)
                log.end(msg.id, LOST, env.now, DISCARDED)
                self.discarded += 1
                self.in_work -= 1
                continue
            mailbox = self.mailboxes[msg.rcpt]
            assert mailbox is not None  # checked when the scenario was loaded
            path = self.network.path(self.id, mailbox.id)
            gen = self._loss if path.loss > 0.0 else None
            # The scan and the LMTP dialogue in one timeout: nothing can come between.
            yield env.timeout(scan + session_time(path, cost.to_accept, msg.size, rto, gen))
            yield from mailbox.store(msg)
            self.in_work -= 1
            yield env.timeout(session_time(path, cost.quit, 0, rto, gen))
