"""Senders: one arrival process per traffic source, never one per person.

Many people's independent Poisson streams add up to one Poisson stream, so a domain's
people are one source with the summed rate; who receives each message is drawn when it
is made. A source is one of:

- ``rate``: Poisson arrivals (people in mail clients, transactional APIs);
- ``interarrival``: a renewal process with any inter-arrival distribution;
- ``batches``: ``count`` messages injected at once at time ``at`` (marketing campaigns).

Every source sends only between its ``start`` and ``stop`` (default: the duration).

Each message is submitted over SMTP from the source's client node to its MTA.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from ..config import Exponential, Source
from ..core.component import Context
from ..core.records import KINDS, Message
from ..core.rng import Choice, Draw
from .mta import MTA

__all__ = ["MAX_SIZE", "TrafficSource"]

MAX_SIZE = 1e15  # bytes: a far tail draw is clamped rather than overflowing


class TrafficSource:
    """One source's arrival process; it creates and submits messages."""

    def __init__(self, ctx: Context, spec: Source) -> None:
        self.ctx = ctx
        self.env = ctx.env
        self.spec = spec
        self.id = spec.name
        self.recorder = ctx.recorder
        self.sender = ctx.domains[spec.domain]
        self.kind = KINDS.index(spec.kind)
        self.stop = spec.stop_time(ctx.scenario.duration)
        if spec.recipients is None:
            recipients = [d for d in ctx.domains if d.users > 0]
            weights = [float(d.users) for d in recipients]
        else:
            recipients = [ctx.domains[name] for name in spec.recipients]
            weights = list(spec.recipients.values())
        self._recipients = recipients
        streams = ctx.streams
        self._pick = Choice(weights, streams.generator("source", spec.name, "recipients"))
        self._person = streams.uniform("source", spec.name, "person")
        self._size = streams.sampler(spec.size, "source", spec.name, "size")
        self._gaps: Draw | None = None
        if spec.batches is None:
            gaps = spec.interarrival
            if gaps is None:
                assert spec.rate is not None  # one arrival process, checked on load
                gaps = Exponential(dist="exponential", mean=1.0 / spec.rate)
            self._gaps = streams.sampler(gaps, "source", spec.name, "arrivals")
        mta = spec.mta or self.sender.spec.outbound
        assert mta is not None  # checked when the scenario was loaded
        self.mta_id = mta
        self.mta: MTA | None = None
        self.created = 0

    def start(self) -> None:
        """Find the MTA and start the arrival process."""
        self.mta = self.ctx.node(self.mta_id, MTA)
        if self._gaps is None:
            self.env.process(self._batches())
        else:
            self.env.process(self._arrivals(self._gaps))

    def _emit(self) -> None:
        domain = self._recipients[self._pick()]
        user = int(self._person() * domain.users)
        size = float(min(max(1, round(self._size())), MAX_SIZE))  # whole bytes, never empty
        mid = self.recorder.created(self.env.now, self.sender.index, domain.index, user, self.kind, size)
        self.created += 1
        assert self.mta is not None
        self.mta.submit(Message(mid, domain, user, size, self.sender), self.spec.client)

    def _arrivals(self, gap: Draw) -> Generator[simpy.Event, Any, None]:
        env, stop = self.env, self.stop
        if self.spec.start > 0:
            yield env.timeout(self.spec.start)
        while True:
            dt = gap()
            if env.now + dt >= stop:
                return
            yield env.timeout(dt)
            self._emit()

    def _batches(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        for batch in sorted(self.spec.batches or [], key=lambda b: b.at):
            if batch.at < self.spec.start:
                continue
            if batch.at >= self.stop:
                return
            if batch.at > env.now:
                yield env.timeout(batch.at - env.now)
            for _ in range(batch.count):
                self._emit()
