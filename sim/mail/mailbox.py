"""The mailbox store: where accepted mail lands and waits for the recipient's devices.

A store has ``concurrency`` write slots; a message is delivered when its write ends.
Then the recipient's retrieval is computed, not simulated event by event: a device that
polls every P seconds from phase f next looks at f + ceil((t - f) / P) * P, so no event
is needed until something happens on the device (see ``sim.mail.devices``).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from ..config import MailboxNode
from ..config.faults import NodeFault
from ..core.component import Context, registers
from ..core.faults import Failure, Halts
from ..core.monitors import Level, Monitors
from ..core.queues import Slots
from ..core.records import Message

if TYPE_CHECKING:
    from .quota import StoreCapacity

__all__ = ["Mailbox"]


@registers(MailboxNode)
class Mailbox:
    """A mailbox store with a bounded number of concurrent writes."""

    def __init__(self, ctx: Context, spec: MailboxNode) -> None:
        self.env = ctx.env
        self.id = spec.id
        self.code = ctx.recorder.nodes.code(spec.id)
        self.recorder = ctx.recorder
        self._write = ctx.streams.sampler(spec.write, "mailbox", spec.id, "write")
        self.slots = Slots(ctx.env, spec.concurrency)
        self.stored = 0
        self._writes_level: Level | None = None  # set when the run samples levels
        # Faults: the ones holding it down (the MX's LMTP client defers meanwhile), and
        # the rows stored here since the last disk loss, kept only when some fault can
        # lose this store's disk (no cost otherwise).
        self.up = True
        self.halts = Halts()
        losable = any(
            isinstance(f, NodeFault) and f.disk == "lost" and spec.id in f.targets for f in ctx.scenario.faults
        )
        self.kept: list[tuple[int, int]] | None = [] if losable else None
        self.destroyed = 0
        # Capacity (sim.mail.quota): the store's size, and its occupancy when the run
        # keeps one (a size here or a quota on one of its domains; None: nothing counted).
        self.size = spec.size
        self.capacity: StoreCapacity | None = None

    def monitor(self, monitors: Monitors) -> None:
        """Follow writes in progress (and occupancy, when kept) as levels (``timeseries.parquet``)."""
        self._writes_level = monitors.level(self.id, "writes")
        if self.capacity is not None:
            self.capacity.monitor(monitors)

    def start(self) -> None:
        """Nothing to start: writes run in the MX's scanner that hands the message over."""

    def holding(self) -> int:
        """A stored message has ended (delivered): the store holds none in flight."""
        return 0

    def stats(self) -> dict[str, float]:
        """Messages stored, those destroyed with a lost disk before retrieval, and the
        occupancy figures when kept."""
        stats: dict[str, float] = {"stored": self.stored, "destroyed": self.destroyed}
        if self.capacity is not None:
            stats.update(self.capacity.stats(self.env.now))
        return stats

    def fail(self, failure: Failure) -> None:
        """A fault takes the store down: it takes no LMTP hand-off (a crash cuts those in
        progress: the MX keeps the message). With its disk lost, every row stored here
        and not yet retrieved is destroyed: lost, its delivered time kept."""
        self.up = False
        reason = self.halts.hold(failure, self.id, self.env.now)
        if reason is not None and self.kept is not None:
            now, rec = self.env.now, self.recorder
            for mid, hop in {mid: hop for mid, hop in self.kept}.items():  # a duplicate's copies: one row
                if not rec.retrieved_by(mid, now):
                    rec.disk_loss(mid, self.code, hop, 2, now)  # after its hand-off (attempt 1)
                    rec.destroyed(mid, now, reason)
                    self.destroyed += 1
            self.kept.clear()

    def repair(self, failure: Failure) -> None:
        """Up again unless another fault holds it."""
        self.up = self.halts.release(failure)

    def store(self, msg: Message) -> Generator[simpy.Event, Any, None]:
        """Write ``msg`` into its recipient's mailbox; it is delivered when this returns."""
        env, rec = self.env, self.recorder
        writes = self._writes_level
        yield from self.slots.acquire()
        if writes is not None:
            writes.set(env.now, self.slots.busy)
        try:
            write = self._write()
            if write > 0.0:  # a store that writes in no time takes no event
                yield env.timeout(write)
        finally:
            self.slots.release()
            if writes is not None:
                writes.set(env.now, self.slots.busy)
        now = env.now
        first = rec.delivered(msg.id, now)
        self.stored += 1
        if self.kept is not None:  # with the LMTP hand-off's hop, for the attempts table
            self.kept.append((msg.id, msg.hop + 1))
        if first and self.capacity is not None:  # it takes room from now (a hook frees it)
            self.capacity.stored(msg, now)
        readers = msg.domain.readers
        if readers is not None and first:  # a duplicate is read as one, the first
            readers.stored(msg, now)
