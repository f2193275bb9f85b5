"""The mailbox store: where accepted mail lands and waits for the recipient's devices.

A store has ``concurrency`` write slots; a message is delivered when its write ends.
Then the recipient's retrieval is computed, not simulated event by event: a device that
polls every P seconds from phase f next looks at f + ceil((t - f) / P) * P, so no event
is needed until something happens on the device (see ``sim.devices``).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import simpy

from .devices import Readers
from .queues import Slots
from .records import DELIVERED, Message, MessageLog
from .rng import Draw
from .scenario import MailboxNode

__all__ = ["Mailbox"]


class Mailbox:
    """A mailbox store with a bounded number of concurrent writes."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: MailboxNode,
        log: MessageLog,
        write: Draw,
        readers: Sequence[Readers | None],
    ) -> None:
        self.env = env
        self.id = spec.id
        self.log = log
        self._write = write
        self.readers = readers  # by domain index: who reads the mail, or None
        self.slots = Slots(env, spec.concurrency)
        self.stored = 0

    def store(self, msg: Message) -> Generator[simpy.Event, Any, None]:
        """Write ``msg`` into its recipient's mailbox; it is delivered when this returns."""
        env, log = self.env, self.log
        yield from self.slots.acquire()
        yield env.timeout(self._write())
        self.slots.release()
        now = env.now
        log.delivered[msg.id] = now
        log.end(msg.id, DELIVERED, now)
        self.stored += 1
        readers = self.readers[msg.rcpt]
        if readers is not None:
            log.retrieved[msg.id] = readers.retrieved_at(msg, now)
