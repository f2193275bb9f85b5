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

from collections.abc import Generator, Sequence
from typing import Any

import simpy

from .mta import MTA
from .records import KINDS, Message, MessageLog
from .rng import Choice, Draw, Streams
from .scenario import Exponential, Source
from .topology import Path

__all__ = ["MAX_SIZE", "TrafficSource"]

MAX_SIZE = 1e15  # bytes: a far tail draw is clamped rather than overflowing


class TrafficSource:
    """One source's arrival process; it creates and submits messages."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: Source,
        sender: int,
        recipients: Sequence[int],
        weights: Sequence[float],
        users: Sequence[int],  # of each recipient domain, in the same order
        mta: MTA,
        path: Path,
        log: MessageLog,
        streams: Streams,
        stop: float,
    ) -> None:
        self.env = env
        self.spec = spec
        self.sender = sender
        self.kind = KINDS.index(spec.kind)
        self.mta = mta
        self.path = path
        self.log = log
        self.stop = stop
        self._recipients = list(recipients)
        self._users = list(users)
        self._pick = Choice(weights, streams.generator("source", spec.name, "recipients"))
        self._person = streams.uniform("source", spec.name, "person")
        self._size = streams.sampler(spec.size, "source", spec.name, "size")
        self.created = 0
        if spec.batches is not None:
            env.process(self._batches())
        else:
            gaps = spec.interarrival
            if gaps is None:
                assert spec.rate is not None  # one arrival process, checked on load
                gaps = Exponential(dist="exponential", mean=1.0 / spec.rate)
            env.process(self._arrivals(streams.sampler(gaps, "source", spec.name, "arrivals")))

    def _emit(self) -> None:
        k = self._pick()
        rcpt = self._recipients[k]
        user = int(self._person() * self._users[k])
        size = float(min(max(1, round(self._size())), MAX_SIZE))  # whole bytes, never empty
        mid = self.log.new(self.env.now, self.sender, rcpt, user, self.kind, size)
        self.created += 1
        self.mta.submit(Message(mid, rcpt, user, size), self.path)

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
