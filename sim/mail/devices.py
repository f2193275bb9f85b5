"""Recipients' devices: IMAP clients that poll or IDLE, POP3 clients that take mail
off the server, and webmail that shows the store at once.

Each of a domain's people has one or more devices (drawn once per person and device
type from a hash of the person: no memory per person), each checking at a fixed phase
of its polling cycle. When a message is stored, when each device has it is a formula,
not an event loop: the device's next check at or after storage, plus the fetch session
on the path from the mailbox store to the device. A POP3 device that does not leave a
copy deletes the server's copy when it downloads it, so devices that would look later
never see the message (:class:`Copies`). What follows from these times (reading,
replies, quotas, device loss) plugs in as hooks (:attr:`Readers.hooks`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..config import DeviceType, Retrieval
from ..core.component import Context
from ..core.records import ACCESS, Message

__all__ = ["ACCESS", "Copies", "IMAP", "POP3", "Readers", "WEBMAIL", "next_poll", "person_uniforms"]

IMAP, POP3, WEBMAIL = range(3)
INF = math.inf


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


@dataclass(slots=True)
class Copies:
    """What one recipient's devices do with one stored message (times are absolute
    and may lie past the run's horizon; ``INF``: never).

    ``kinds`` are the person's devices (indexes into :attr:`Readers.types`), ``times``
    when each has the message: ``INF`` for a device whose first look comes after the
    server's copy is gone. ``server_until`` is when a POP3 device removes the server's
    copy (``INF``: kept). ``first`` is the position in ``kinds`` of the device that had
    it first (-1: none ever will).
    """

    person: int
    kinds: tuple[int, ...]
    times: list[float]
    server_until: float
    first: int

    @property
    def retrieved(self) -> float:
        """When the first device has it (``INF``: never)."""
        return self.times[self.first] if self.first >= 0 else INF

    @property
    def synced(self) -> float:
        """When every one of the person's devices has it (``INF``: one never will)."""
        return max(self.times)

    def holders(self, types: list[DeviceType]) -> list[int]:
        """Positions in ``kinds`` of the devices that keep a copy once the server's is
        gone: the POP3 devices that downloaded it (IMAP devices drop theirs with the
        server's). Empty while the server keeps it."""
        if self.server_until == INF:
            return []
        return [
            i for i, (k, t) in enumerate(zip(self.kinds, self.times))
            if types[k].access == "pop3" and t <= self.server_until
        ]


Hook = Callable[[Message, Copies, float], None]


class Readers:
    """The people of one domain and the devices they read mail with."""

    def __init__(self, ctx: Context, spec: Retrieval, domain: str, store: str) -> None:
        types, self.one_each = spec.device_types()
        self.types: list[DeviceType] = types
        self.access = tuple(ACCESS.index(t.access) for t in types)
        shares = np.array([t.share for t in types], dtype=float)
        # One device per person (older form): the cumulative shares pick it.
        self.cumulative = tuple(float(c) for c in np.cumsum(shares / shares.sum())) if self.one_each else ()
        self.shares = tuple(float(x) for x in shares)
        self.interval = tuple(float(t.poll_interval) for t in types)
        # A device's checks sit at a fixed point of its cycle, spread evenly over it
        # unless the scenario pins it; kept as a fraction of the cycle.
        self.fixed = tuple(None if t.phase is None else t.phase / t.poll_interval for t in types)
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
        # What follows from a stored message's copies (reading, replies, quotas, device
        # loss): called once per stored row, in order; none unless a capability needs it.
        self.hooks: list[Hook] = []
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

    def devices(self, person: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """A person's devices (indexes into :attr:`types`) and each one's phase as a
        fraction of its cycle."""
        u, phase = person_uniforms(self.key, person)
        if self.one_each:
            cumulative = self.cumulative
            k = 0
            while k < len(cumulative) - 1 and u >= cumulative[k]:
                k += 1
            return (k,), (phase,)
        kinds: list[int] = []
        phases: list[float] = []
        for k, share in enumerate(self.shares):
            uk, pk = person_uniforms(self.key ^ _splitmix(k + 1), person)
            if uk < share:
                kinds.append(k)
                phases.append(pk)
        if not kinds:  # everyone reads mail somehow: the first type
            kinds.append(0)
            phases.append(person_uniforms(self.key ^ _splitmix(1), person)[1])
        return tuple(kinds), tuple(phases)

    def check_at(self, k: int, phase: float, t: float) -> float:
        """When a device of type ``k`` (phase as a fraction of its cycle) next looks at
        the server at or after ``t``: at once for webmail and IDLE, else its next poll."""
        dt = self.types[k]
        if dt.access == "webmail" or dt.sync == "idle":
            return t
        interval = self.interval[k]
        fraction = self.fixed[k]
        return next_poll(t, (phase if fraction is None else fraction) * interval, interval)

    def copies(self, msg: Message, t: float) -> Copies:
        """When each of the recipient's devices has ``msg``, stored at ``t``."""
        kinds, phases = self.devices(msg.user)
        link = self.network.link(self.store, self.client)
        loss = self._lossy() if link.loss > 0.0 else None
        times = []
        for k, phase in zip(kinds, phases):
            times.append(self.check_at(k, phase, t) + link.time(self.rounds[self.access[k]], msg.size, loss))
        server_until = INF
        for k, phase, tk in zip(kinds, phases, times):
            dt = self.types[k]
            if dt.access != "pop3":
                continue
            if not dt.leave_on_server:
                gone = tk
            elif dt.delete_after is not None:
                gone = self.check_at(k, phase, tk + dt.delete_after)
            else:
                continue
            server_until = min(server_until, gone)
        if server_until < INF:
            times = [tk if tk <= server_until else INF for tk in times]
        first = min(range(len(times)), key=times.__getitem__)
        return Copies(msg.user, kinds, times, server_until, first if times[first] < INF else -1)

    def stored(self, msg: Message, t: float) -> None:
        """``msg`` is in its mailbox at ``t``: record when its devices have it, then run
        the hooks."""
        if not self.network.link(self.store, self.client).up:  # cut off: when a path is back, if ever
            self._wait_for_path(msg)
            return
        c = self.copies(msg, t)
        rec, horizon = self._recorder, self.horizon
        first = c.retrieved
        rec.retrieved(msg.id, first if first <= horizon else math.nan)
        last = c.synced
        rec.synced(msg.id, last if last <= horizon else math.nan)
        if c.first >= 0:
            rec.access(msg.id, self.access[c.kinds[c.first]])
        for hook in self.hooks:
            hook(msg, c, t)

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
                self.stored(msg, now)
