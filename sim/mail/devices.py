"""Recipients' devices: IMAP and POP3 clients that poll, and webmail that shows at once.

Each of a domain's people reads with one protocol (drawn once per person from the
domain's shares) and, for polling protocols, checks at a fixed phase in the polling
cycle (drawn once per person). Retrieval time is then a formula, not an event loop:
the next check at or after delivery, plus the fetch session on the path from the
mailbox store to the person's device.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import Retrieval
from ..core.component import Context
from ..core.records import Message

__all__ = ["IMAP", "POP3", "Readers", "WEBMAIL", "next_poll", "person_uniforms"]

IMAP, POP3, WEBMAIL = range(3)


def next_poll(t: float, phase: float, interval: float) -> float:
    """The first check at or after ``t`` of a device polling every ``interval`` from ``phase``."""
    if t <= phase:
        return phase
    return phase + math.ceil((t - phase) / interval) * interval


_MASK = (1 << 64) - 1


def person_uniforms(key: int, person: int) -> tuple[float, float]:
    """Two uniforms in [0, 1) that belong to one person: splitmix64 of (key, person).

    A person's protocol and polling phase are a pure function of the stream key and the
    person, so they take no memory per person (a domain may have millions) and do not
    depend on the order in which people first receive mail.
    """
    # Mix the person first: adding it to the key directly would make person p's second
    # output equal person p+1's first (splitmix's state advances by the same constant).
    z = _splitmix(key ^ _splitmix(person))
    a = _splitmix(z)
    b = _splitmix(z ^ 0xD1B54A32D192ED03)
    return (a >> 11) * 2.0**-53, (b >> 11) * 2.0**-53


def _splitmix(x: int) -> int:
    """One splitmix64 step: a bijective 64-bit mix."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


class Readers:
    """The people of one domain and the devices they read mail with."""

    def __init__(self, ctx: Context, spec: Retrieval, domain: str, store: str) -> None:
        shares = np.array([spec.imap.share, spec.pop3.share, spec.webmail.share], dtype=float)
        cumulative = np.cumsum(shares / shares.sum())
        self.cut = (float(cumulative[0]), float(cumulative[1]))  # imap below, then pop3
        self.interval = (spec.imap.poll_interval, spec.pop3.poll_interval, 0.0)
        # A person's checks sit at a fixed point of the cycle, spread evenly over it
        # unless the scenario pins it; kept as a fraction of the cycle.
        self.fixed = tuple(
            None if d.phase is None else d.phase / d.poll_interval for d in (spec.imap, spec.pop3)
        ) + (None,)
        self._streams, dialogues = ctx.streams, ctx.dialogues
        self._domain = domain
        # Both streams are made when first needed: most of a big world's domains may
        # never receive mail in a short run, and a Generator costs ~1 KB and ~26 us.
        self._key: int | None = None
        self._loss: np.random.Generator | None = None
        self.network = ctx.network
        self.store = store  # where the mail is fetched from
        self.client = spec.client  # where the devices attach
        self.rounds = (dialogues.imap, dialogues.pop3, dialogues.webmail)
        self.horizon = ctx.horizon
        # Mail delivered while no path joined the devices to their store (a link fault):
        # retrieved at the first poll after a path is back (``_reconnected``).
        self._env, self._recorder = ctx.env, ctx.recorder
        self.cut_off: list[Message] = []
        self._watching = False

    @property
    def key(self) -> int:
        """The key of the per-person hash, drawn once from ``(devices, domain, people)``."""
        if self._key is None:
            gen = self._streams.generator("devices", self._domain, "people")
            self._key = int(gen.integers(0, 2**63))
        return self._key

    def _lossy(self) -> np.random.Generator:
        if self._loss is None:
            self._loss = self._streams.generator("devices", self._domain, "loss")
        return self._loss

    def device(self, person: int) -> tuple[int, float]:
        """A person's protocol (IMAP, POP3 or WEBMAIL) and phase as a fraction of the cycle."""
        u, phase = person_uniforms(self.key, person)
        proto = IMAP if u < self.cut[0] else POP3 if u < self.cut[1] else WEBMAIL
        return proto, phase

    def retrieved_at(self, msg: Message, delivered: float) -> float:
        """When the recipient's device has ``msg``, or NaN if after the run's horizon."""
        proto, phase = self.device(msg.user)
        if proto == WEBMAIL:
            t = delivered
        else:
            interval = self.interval[proto]
            fraction = self.fixed[proto]
            t = next_poll(delivered, (phase if fraction is None else fraction) * interval, interval)
        link = self.network.link(self.store, self.client)
        if not link.up:  # cut off from the store: read when a path is back, if ever
            self._wait_for_path(msg)
            return math.nan
        t += link.time(self.rounds[proto], msg.size, self._lossy() if link.loss > 0.0 else None)
        return t if t <= self.horizon else math.nan

    def _wait_for_path(self, msg: Message) -> None:
        self.cut_off.append(msg)
        if not self._watching:  # the first time only: a world without link faults pays nothing
            self._watching = True
            self.network.watch(self._changed)

    def _changed(self) -> None:
        # A watcher must not look links up while a fault is still changing edges: look
        # once they all changed, at the same instant.
        if self.cut_off:
            self._env.timeout(0).callbacks.append(self._reconnected)

    def _reconnected(self, _: object) -> None:
        """A path may be back: mail that waited for it is read at the devices' next
        polls from now (each still NaN past the horizon)."""
        if not self.cut_off or not self.network.link(self.store, self.client).up:
            return
        now = self._env.now
        waiting, self.cut_off = self.cut_off, []
        rec = self._recorder
        for msg in waiting:
            if rec.status(msg.id) == "delivered":  # not destroyed meanwhile (its store's disk)
                rec.retrieved(msg.id, self.retrieved_at(msg, now))
