"""Senders: one arrival process per traffic source, never one per person.

Many people's independent Poisson streams add up to one Poisson stream, so a domain's
people are one source with the summed rate; who receives each message is drawn when it
is made. A source is one of:

- ``rate``: Poisson arrivals (people in mail clients, transactional APIs);
- ``interarrival``: a renewal process with any inter-arrival distribution;
- ``batches``: ``count`` messages injected at once at time ``at`` (marketing campaigns).

Each message is submitted over SMTP from the source's client node to its MTA.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np
import simpy

from .mta import MTA
from .records import KINDS, Message, MessageLog
from .rng import Choice, Draw, Sampler, sampler_for
from .scenario import Exponential, Source
from .topology import Path

__all__ = ["TrafficSource"]


class TrafficSource:
    """One source's arrival process; it creates and submits messages."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: Source,
        sender: int,
        recipients: Sequence[int],
        weights: Sequence[float],
        users: Sequence[int],
        mta: MTA,
        path: Path,
        log: MessageLog,
        gen: np.random.Generator,
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
        self._users = [users[d] for d in recipients]
        self._pick = Choice(weights, gen)
        self._u = Sampler(lambda n: gen.random(n))
        self._size = sampler_for(spec.size, gen)
        self.created = 0
        if spec.batches is not None:
            env.process(self._batches())
        else:
            gap: Draw = sampler_for(
                spec.interarrival or Exponential(dist="exponential", mean=1.0 / spec.rate),  # type: ignore[operator]
                gen,
            )
            env.process(self._arrivals(gap))

    def _emit(self) -> None:
        k = self._pick()
        rcpt = self._recipients[k]
        user = int(self._u() * self._users[k])
        size = float(max(1, round(self._size())))  # whole bytes, never empty
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
            if batch.at >= self.stop:
                return
            if batch.at > env.now:
                yield env.timeout(batch.at - env.now)
            for _ in range(batch.count):
                self._emit()
