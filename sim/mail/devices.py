"""Recipients' devices: IMAP clients that poll or IDLE, POP3 clients that take mail
off the server, and webmail that shows the store at once.

Each of a domain's people has one or more devices (drawn once per person and device
type from a hash of the person: no memory per person), each checking at a fixed phase
of its polling cycle. When a message is stored, when each device has it is a formula,
not an event loop: the device's look at the server (at once for webmail and an IDLE
client that is connected, else its next poll; a device asleep looks when it wakes),
plus the session on the path from the mailbox store to the device (an IDLE client,
already logged in, only ends IDLE and fetches). A POP3 device that does not leave a
copy deletes the server's copy when its session ends, so devices that look later never
see the message (:class:`Copies`). What follows from these times (reading, replies,
quotas, device loss) plugs in as hooks (:attr:`Readers.hooks`); a flag set on one
device reaches another at :meth:`Readers.next_sync`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..config import DeviceType, Retrieval
from ..core.component import Context
from ..core.records import ACCESS, Message
from ..world.links import Link

__all__ = ["ACCESS", "Copies", "IMAP", "POP3", "Readers", "WEBMAIL", "first_uniforms", "next_poll", "person_uniforms"]

IMAP, POP3, WEBMAIL = range(3)
INF = math.inf
HOUR, DAY = 3600.0, 86400.0


def next_poll(t: float, phase: float, interval: float) -> float:
    """The first check at or after ``t`` of a device polling every ``interval`` from ``phase``."""
    if t <= phase:
        return phase
    return phase + math.ceil((t - phase) / interval) * interval


_MASK = (1 << 64) - 1
_SECOND = 0xD1B54A32D192ED03  # sets a person's second uniform apart from the first
_TO_UNIT = 2.0**-32  # 32 random bits to a uniform in [0, 1)


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
    b = _splitmix(z ^ _SECOND)
    return (a >> 11) * 2.0**-53, (b >> 11) * 2.0**-53


def first_uniforms(key: int, people: np.ndarray) -> np.ndarray:
    """``person_uniforms(key, p)[0]`` for each ``p`` of ``people`` (uint64), on arrays."""
    z = _splitmix_array(np.uint64(key) ^ _splitmix_array(people))
    return (_splitmix_array(z) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _splitmix_array(x: np.ndarray) -> np.ndarray:
    """:func:`_splitmix` on an array of uint64 (wrapping as the scalar masks)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


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
    when each has the message (its session over): ``INF`` for a device whose look comes
    at or after the server's copy is gone. ``server_until`` is when a POP3 device
    removes the server's copy (``INF``: kept). ``first`` is the position in ``kinds`` of
    the device that had it first (-1: none ever will). ``looks`` is when each device's
    session began (its look at the server; empty when not kept).
    """

    person: int
    kinds: tuple[int, ...]
    times: list[float]
    server_until: float
    first: int
    looks: Sequence[float] = ()

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
        gone: the POP3 devices that downloaded it (each looked before the removal; IMAP
        devices drop theirs with the server's). Empty while the server keeps it."""
        if self.server_until == INF:
            return []
        return [
            i for i, (k, t) in enumerate(zip(self.kinds, self.times))
            if types[k].access == "pop3" and t < INF
        ]


Hook = Callable[[Message, Copies, float], None]


@dataclass(frozen=True, slots=True)
class _Derived:
    """A domain's device types as the tuples :class:`Readers` reads per row."""

    access: tuple[int, ...]
    cumulative: tuple[float, ...]  # one device per person (older form): the shares, summed
    shares: tuple[float, ...]
    interval: tuple[float, ...]
    # A device's checks sit at a fixed point of its cycle, spread evenly over it unless
    # the scenario pins it; kept as a fraction of the cycle.
    fixed: tuple[float | None, ...]
    idle: tuple[bool, ...]  # how each type learns of new mail
    webmail: tuple[bool, ...]
    refresh: tuple[float, ...]
    asleep: tuple[tuple[float, float] | None, ...]  # daily stretches asleep, seconds of local time
    removes: tuple[bool, ...]  # POP3 types that take the server's copy away
    mix: tuple[int, ...]  # each type's salt of the per-person hash


_SHARED: dict[tuple[int, ...], tuple[list[DeviceType], _Derived]] = {}


def _derived(types: list[DeviceType], one_each: bool, shared: bool) -> _Derived:
    """The tuples of ``types``; made once for types shared by many domains (``shared``:
    the older form's, from one cache), else per domain."""
    key = (*map(id, types), one_each)
    if shared:
        found = _SHARED.get(key)
        if found is not None and all(a is b for a, b in zip(found[0], types)):
            return found[1]
    shares = np.array([t.share for t in types], dtype=float)
    d = _Derived(
        access=tuple(ACCESS.index(t.access) for t in types),
        cumulative=tuple(float(c) for c in np.cumsum(shares / shares.sum())) if one_each else (),
        shares=tuple(float(x) for x in shares),
        interval=tuple(float(t.poll_interval) for t in types),
        fixed=tuple(None if t.phase is None else t.phase / t.cycle for t in types),
        idle=tuple(t.access == "imap" and t.sync == "idle" for t in types),
        webmail=tuple(t.access == "webmail" for t in types),
        refresh=tuple(float(t.idle_refresh) for t in types),
        asleep=tuple(
            None if t.asleep is None else (t.asleep.start_hour * HOUR, t.asleep.end_hour * HOUR) for t in types
        ),
        removes=tuple(t.access == "pop3" and (not t.leave_on_server or t.delete_after is not None) for t in types),
        mix=tuple(_splitmix(k + 1) for k in range(len(types))),
    )
    if shared:
        if len(_SHARED) > 1024:  # a long session of sweeps: start afresh
            _SHARED.clear()
        _SHARED[key] = (types, d)
    return d


class Readers:
    """The people of one domain and the devices they read mail with."""

    def __init__(self, ctx: Context, spec: Retrieval, domain: str, store: str) -> None:
        types, self.one_each = spec.device_types()
        self.types: list[DeviceType] = types
        # What each type is, as tuples the per-row path reads: shared by every domain
        # whose people read alike (the older form's types are shared objects).
        d = _derived(types, self.one_each, shared=spec.devices is None)
        self.access, self.cumulative, self.shares, self.interval = d.access, d.cumulative, d.shares, d.interval
        self.fixed, self.idle, self.webmail, self.refresh = d.fixed, d.idle, d.webmail, d.refresh
        self.asleep, self.removes, self._mix = d.asleep, d.removes, d.mix
        self.offset = float(ctx.domains[domain].spec.utc_offset) * HOUR
        # Whether some device can take a server copy away within the run (a copy kept
        # 14 days outlives a shorter run): what frees room in a mailbox.
        self.removes_in_run = any(
            t.access == "pop3" and (not t.leave_on_server or float(t.delete_after or INF) < ctx.horizon)
            for t in types
        )
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
        self.idle_rounds = dialogues.imap_idle
        self.horizon = ctx.horizon
        # What follows from a stored message's copies (reading, replies, quotas, device
        # loss): called once per stored row, in order; none unless a capability needs it.
        self.hooks: list[Hook] = []
        # Mail delivered while no path joined the devices to their store (a link fault):
        # retrieved at the first poll after a path is back (``_reconnected``).
        self._env, self._recorder = ctx.env, ctx.recorder
        self.cut_off: list[Message] = []
        self._watching = False
        self._looking = False  # a look at the path is scheduled for this instant
        # The latest cut of the path (went down, came back): an IDLE client's connection
        # died with it, and it hears of new mail only once it has reconnected at its next
        # re-issued IDLE after the path came back. Followed only when some fault can cut
        # links and some device IDLEs.
        self._path_up = True
        self._down_at = 0.0
        self._last_cut: tuple[float, float] | None = None
        if any(self.idle) and any(f.kind in ("link", "partition") for f in ctx.scenario.faults):
            self._watch()

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
        key = self.key
        if self.one_each:
            u, phase = person_uniforms(key, person)
            return (self._one(u),), (phase,)
        # One 64-bit hash per type: its high 32 bits decide whether the person has one,
        # its low 32 bits the phase (a 600 s cycle in steps of 0.14 us); the person's own
        # mix is made once. Two uniforms from one hash halve the cost of three types.
        z = _splitmix(key ^ _splitmix(person))
        kinds: list[int] = []
        phases: list[float] = []
        for k, share in enumerate(self.shares):
            h = _splitmix(z ^ self._mix[k])
            if (h >> 32) * _TO_UNIT < share:
                kinds.append(k)
                phases.append((h & 0xFFFFFFFF) * _TO_UNIT)
        if not kinds:  # everyone reads mail somehow: the first type, at its own phase
            kinds.append(0)
            phases.append((_splitmix(z ^ self._mix[0]) & 0xFFFFFFFF) * _TO_UNIT)
        return tuple(kinds), tuple(phases)

    def _one(self, u: float) -> int:
        """The one device type (older form) a person's uniform picks."""
        cumulative = self.cumulative
        k = 0
        while k < len(cumulative) - 1 and u >= cumulative[k]:
            k += 1
        return k

    def awake(self, k: int, t: float) -> float:
        """``t``, or when a device of type ``k`` asleep at ``t`` wakes (local time)."""
        window = self.asleep[k]
        if window is None:
            return t
        start, end = window
        local = (t + self.offset) % DAY
        if start < end:
            return t + (end - local) if start <= local < end else t
        if local >= start:  # asleep past midnight
            return t + (DAY - local) + end
        return t + (end - local) if local < end else t

    def _next_wake(self, k: int, t: float) -> float:
        """The first instant after ``t`` at which a device of type ``k`` wakes (INF: it
        never sleeps)."""
        window = self.asleep[k]
        if window is None:
            return INF
        ahead = (window[1] - (t + self.offset)) % DAY
        return t + (ahead if ahead > 0.0 else DAY)

    def _look(self, k: int, phase: float, t: float, reconnect: bool = False) -> tuple[float, bool]:
        """When a device of type ``k`` looks at the server for mail stored at ``t``, and
        whether that is an IDLE push (no login) rather than a session of its own."""
        sleeps = self.asleep[k] is not None
        if sleeps:
            woken = self.awake(k, t)
            if woken != t:  # asleep when the mail comes: it syncs on waking, a session of its own
                return woken, False
        if self.webmail[k]:
            when, push = t, False
        elif self.idle[k]:
            fraction = self.fixed[k]
            refresh = self.refresh[k]
            start = (phase if fraction is None else fraction) * refresh
            cut = self._last_cut
            if reconnect or (
                cut is not None and next_poll(cut[1], start, refresh) > t
                and not (sleeps and self._next_wake(k, cut[1]) <= t)  # woken since: a new connection
            ):
                # The old connection died with the path: noticed at the next re-issued
                # IDLE after the path came back, then a session of its own.
                when, push = next_poll(t, start, refresh), False
            else:
                when, push = t, True
        else:
            interval = self.interval[k]
            fraction = self.fixed[k]
            when, push = next_poll(t, (phase if fraction is None else fraction) * interval, interval), False
        if sleeps and not push:
            # A sleep before its look (the look falling in it, or over by then): it
            # syncs on waking, a session of its own.
            woken = self._next_wake(k, t)
            if woken <= self.awake(k, when):
                return woken, False
        return when, push

    def check_at(self, k: int, phase: float, t: float) -> float:
        """When a device of type ``k`` (phase as a fraction of its cycle) next looks at
        the server at or after ``t``: at once for webmail and IDLE, else its next poll;
        a device asleep looks when it wakes."""
        return self._look(k, phase, t)[0]

    def _session(self, k: int, push: bool, size: float, link: Link, loss: np.random.Generator | None) -> float:
        """Seconds from a device's look to having a message of ``size`` bytes."""
        if push:  # the untagged EXISTS travels one way, then DONE and UID FETCH
            return link.latency + link.time(self.idle_rounds, size, loss)
        return link.time(self.rounds[self.access[k]], size, loss)

    def copies(self, msg: Message, t: float, reconnect: bool = False, link: Link | None = None) -> Copies:
        """When each of the recipient's devices has ``msg``, stored at ``t`` (or, with
        ``reconnect``, waiting since before ``t`` for a path that came back at ``t``);
        ``link``: the store-to-client path, if the caller has it already."""
        kinds, phases = self.devices(msg.user)
        if link is None:
            link = self.network.link(self.store, self.client)
        loss = self._lossy() if link.loss > 0.0 else None
        looks = []
        times = []
        for k, phase in zip(kinds, phases):
            when, push = self._look(k, phase, t, reconnect)
            looks.append(when)
            times.append(when + self._session(k, push, msg.size, link, loss))
        server_until, remover = INF, -1
        for i, k in enumerate(kinds):
            if not self.removes[k]:
                continue
            dt = self.types[k]
            if dt.leave_on_server:  # removed at the session of the first poll after the age
                later = self._look(k, phases[i], times[i] + (dt.delete_after or 0.0))[0]
                gone = later + link.time(self.rounds[POP3], 0, None)
            else:  # DELE takes effect at the QUIT ending the download (RFC 1939)
                gone = times[i]
            if gone < server_until:
                server_until, remover = gone, i
        if remover >= 0:
            # A device that looks at or after the removal finds nothing; the remover had it.
            times = [
                tk if i == remover or looks[i] < server_until else INF for i, tk in enumerate(times)
            ]
        first = min(range(len(times)), key=times.__getitem__)
        return Copies(msg.user, kinds, times, server_until, first if times[first] < INF else -1, looks)

    def next_sync(self, person: int, k: int, t: float) -> float:
        """When the person's device of type ``k`` sees a change (a flag: read, deleted,
        moved) made at ``t`` on another of their IMAP or webmail devices.

        The change reaches the server one way after ``t``; then an IDLE client awake is
        told at once (one way more: one round trip in all), webmail shows it after its
        request, a polling client at its next poll plus a session, a device asleep when
        it wakes plus a session. POP3 keeps no flags on the server: never (``INF``).
        Exact (no retransmissions drawn): reading it changes no random stream. The
        path is taken as it is now (``INF`` while none joins the store and the client).
        """
        kinds, phases = self.devices(person)
        if k not in kinds:
            raise ValueError(f"person {person} has no device of type {self.types[k].name!r}")
        if self.access[k] == POP3:
            return INF
        link = self.network.link(self.store, self.client)
        at_server = t + link.latency
        when, push = self._look(k, phases[kinds.index(k)], at_server)
        if push:
            return when + link.latency
        return when + link.time(self.rounds[self.access[k]], 0, None)

    def stored(self, msg: Message, t: float) -> None:
        """``msg`` is in its mailbox at ``t``: record when its devices have it, then run
        the hooks."""
        self._stored(msg, t, False)

    def _stored(self, msg: Message, t: float, reconnect: bool) -> None:
        link = self.network.link(self.store, self.client)
        if not link.up:  # cut off: when a path is back, if ever
            self._wait_for_path(msg)
            return
        rec, horizon = self._recorder, self.horizon
        if self.one_each and not self.hooks:
            # One device and nobody to tell (the older form): no lists, no Copies.
            u, phase = person_uniforms(self.key, msg.user)
            k = self._one(u)
            when, push = self._look(k, phase, t, reconnect)
            tk = when + self._session(k, push, msg.size, link, self._lossy() if link.loss > 0.0 else None)
            if tk <= horizon:
                rec.retrieved(msg.id, tk)
                rec.synced(msg.id, tk)
                rec.access(msg.id, self.access[k])
            return
        c = self.copies(msg, t, reconnect, link)
        first = c.retrieved
        rec.retrieved(msg.id, first if first <= horizon else math.nan)
        last = c.synced
        rec.synced(msg.id, last if last <= horizon else math.nan)
        if first <= horizon:  # (INF: no device ever has it)
            rec.access(msg.id, self.access[c.kinds[c.first]])
        for hook in self.hooks:
            hook(msg, c, t)

    def _wait_for_path(self, msg: Message) -> None:
        self.cut_off.append(msg)
        self._watch()

    def _watch(self) -> None:
        if not self._watching:  # once only: a world without link faults pays nothing
            self._watching = True
            self.network.watch(self._changed)

    def _changed(self) -> None:
        # A watcher must not look links up while a fault is still changing edges: look
        # once they all changed, at the same instant (once, however many edges changed).
        if not self._looking:
            self._looking = True
            self._env.timeout(0).callbacks.append(self._reconnected)

    def _reconnected(self, _: object) -> None:
        """The graph changed: note when the path went down or came back (IDLE clients'
        connections), and when it is back, mail that waited for it is read at the
        devices' next polls from now (an IDLE client reconnects at its next re-issued
        IDLE; each still NaN past the horizon)."""
        self._looking = False
        up = self.network.link(self.store, self.client).up
        now = self._env.now
        if up != self._path_up:
            self._path_up = up
            if up:
                self._last_cut = (self._down_at, now)
            else:
                self._down_at = now
        if not self.cut_off or not up:
            return
        waiting, self.cut_off = self.cut_off, []
        rec = self._recorder
        for msg in waiting:
            if rec.status(msg.id) == "delivered":  # not destroyed meanwhile (its store's disk)
                self._stored(msg, now, True)
