"""Device loss: people's phones and desktops lost, stolen or broken, and the mail that
existed only on them.

A ``kind: device`` fault (``sim.config.faults.DeviceFault``) loses the devices of one
type in a domain: a ``share`` of them at the instant ``start`` (who is hit is a hash of
the person), or each device at random, at ``rate`` failures a year (a Poisson process
per person and device, the k-th failure the sum of k hashed exponentials). A lost device
is replaced at once by a new, empty one of the same type, on the same schedule.

There is no process per device and no memory per person: a device's failure times are
a pure function of (fault, person, device type). When a message is stored its fate is
therefore known at once (``Readers.copies``): while the server keeps a copy nothing is
lost (IMAP, webmail, POP3 leaving a copy until ``delete_after``); once the server's copy
is gone (``Copies.server_until``) the message lives only on the POP3 devices that
downloaded it (``Copies.holders``), and it is lost at the first instant at or after the
server's copy went when every one of them has failed since it last downloaded it. A
holder that fails while the server still has the message downloads it again, as a new
client, at its next check (if that check comes before the server's copy goes).
Only the losses are scheduled: one timeout per row lost within the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ..config.faults import YEAR, DeviceFault, Fault
from ..core.component import Context
from ..core.records import ACCESS, Message
from .devices import Copies, Readers, person_uniforms
from .domains import Directory

__all__ = ["DEVICE_LOST", "DeviceLosses", "Plan"]

DEVICE_LOST = "device lost"  # the reason of a row whose only copies were on lost devices
INF = math.inf
_MASK = (1 << 64) - 1
_STEP = 0x9E3779B97F4A7C15  # splitmix's (odd) increment: spreads the (type, draw) keys apart


@dataclass(slots=True)
class Plan:
    """One device fault's failures of one device type in one domain."""

    fault: int  # its index in ``faults:``
    label: str  # its name in run.json: ``NAME: DOMAIN/DEVICE``
    key: int  # the hash key, drawn once from the fault's own stream
    start: float
    end: float  # failures at or after it do not happen (the fault's end, or the run's)
    share: float  # scripted: who is hit
    rate: float  # random: failures per second per device; 0: scripted
    devices: int = 0  # devices lost within the run (counted when asked, ``DeviceLosses.stats``)
    rows: int = 0  # rows lost within the run

    def failures(self, person: int, kind: int) -> Iterator[float]:
        """The failure times before ``end`` of the person's device of type ``kind``, in
        order: the scripted instant if the person is hit, or the Poisson process's."""
        if self.rate == 0.0:
            if self.start < self.end and self._u(person, kind, 0) < self.share:
                yield self.start
            return
        at, j = self.start, 0
        while True:
            j += 1
            at += -math.log1p(-self._u(person, kind, j)) / self.rate
            if at >= self.end:
                return
            yield at

    def after(self, person: int, kind: int, t: float) -> float:
        """The first failure at or after ``t`` of the person's device of type ``kind``
        (``INF``: none before ``end``)."""
        return next((f for f in self.failures(person, kind) if f >= t), INF)

    def count(self, person: int, kind: int) -> int:
        """How many times the person's device of type ``kind`` fails before ``end``."""
        return sum(1 for _ in self.failures(person, kind))

    def _u(self, person: int, kind: int, draw: int) -> float:
        # (kind, draw) -> a distinct offset of the key (the step is odd: multiplying by it
        # is a bijection mod 2^64), then the person's own splitmix mixing.
        return person_uniforms((self.key + (((kind + 1) << 40) + draw) * _STEP) & _MASK, person)[0]


@dataclass(slots=True)
class _Domain:
    """The device faults of one domain, by device type, and its hook."""

    readers: Readers
    users: int
    plans: dict[int, list[Plan]] = field(default_factory=dict)  # by type index


def _first(plans: list[Plan], person: int, kind: int, t: float) -> tuple[float, Plan | None]:
    """The first failure at or after ``t`` among ``plans`` and the plan it is of."""
    best, by = INF, None
    for plan in plans:
        f = plan.after(person, kind, t)
        if f < best:
            best, by = f, plan
    return best, by


class DeviceLosses:
    """Plays a scenario's device faults: a hook on each hit domain's readers
    (``Readers.hooks``) that schedules the rows it will lose; no process per device."""

    def __init__(self, ctx: Context, faults: Sequence[Fault], labels: Sequence[str]) -> None:
        self.env = ctx.env
        self.recorder = ctx.recorder
        self.horizon = ctx.horizon
        self.plans: dict[int, list[Plan]] = {}  # by fault index, one per domain it hits
        self.domains: dict[str, _Domain] = {}
        # Rows lost and devices lost by the access method of the lost device.
        self.rows_by_access = [0] * len(ACCESS)
        self._counted = False
        directory: Directory = ctx.domains
        for i, fault in enumerate(faults):
            if not isinstance(fault, DeviceFault):
                continue
            for name in fault.targets:
                domain = directory[name]
                readers = domain.readers
                assert readers is not None  # validated: the domain has users and a retrieval
                kind = next(k for k, t in enumerate(readers.types) if t.name == fault.device)
                # Its own stream: a fault added to a scenario changes no other draw.
                key = int(ctx.streams.generator("fault", str(i), "device", name).integers(0, 2**63))
                end = self.horizon if fault.end is None else min(fault.end, self.horizon)
                rate = 0.0 if fault.random is None else fault.random.rate / YEAR
                label = f"{labels[i]}: {name}/{fault.device}"
                share = 1.0 if fault.share is None else float(fault.share)
                plan = Plan(i, label, key, float(fault.start), end, share, rate)
                self.plans.setdefault(i, []).append(plan)
                dom = self.domains.get(name)
                if dom is None:
                    dom = self.domains[name] = _Domain(readers, domain.users)
                    readers.hooks.append(self._hook(dom))
                dom.plans.setdefault(kind, []).append(plan)

    def _hook(self, dom: _Domain) -> Callable[[Message, Copies, float], None]:
        def stored(msg: Message, copies: Copies, t: float) -> None:
            self.stored(dom, msg, copies, t)

        return stored

    def stored(self, dom: _Domain, msg: Message, c: Copies, t: float) -> None:
        """``msg`` was stored at ``t`` with these copies: if its only copies will all be
        lost within the run, schedule the loss."""
        gone = c.server_until
        if gone >= self.horizon:  # the server keeps it through the run: nothing to lose
            return
        readers = dom.readers
        holders = c.holders(readers.types)
        if not holders:
            return
        last, by, kind = -INF, None, 0
        phases: tuple[float, ...] | None = None
        for i in holders:
            plans = dom.plans.get(c.kinds[i])
            if plans is None:  # a device that never fails keeps it
                return
            k, have = c.kinds[i], c.times[i]
            while True:
                f, plan = _first(plans, c.person, k, have)
                if f >= gone or plan is None:
                    break
                # Lost while the server still has it: the replacement, a new client,
                # downloads it again at its next check if the server has it then.
                if phases is None:
                    phases = readers.devices(c.person)[1]
                check = readers.check_at(k, phases[i], f)
                if check >= gone:  # a look at the removal finds nothing (Readers.copies)
                    break
                # Its download takes what the first one took (the same path and size);
                # the next failure that matters comes after this one in any case.
                have = max(check + (c.times[i] - readers.check_at(k, phases[i], t)), math.nextafter(f, INF))
            if plan is None:  # this holder keeps a copy through the run
                return
            if f > last:  # the last holder to fail decides when, and which fault it was
                last, by, kind = f, plan, k
        lost = max(gone, last)
        if lost >= self.horizon or by is None:
            return
        access = readers.access[kind]
        mid = msg.id
        self.env.timeout(lost - self.env.now).callbacks.append(lambda _: self.lose(mid, by, access))

    def lose(self, mid: int, plan: Plan, access: int) -> None:
        """Row ``mid``'s last copy went with a lost device (unless it ended otherwise meanwhile)."""
        rec = self.recorder
        if rec.status(mid) != "delivered":  # its store's disk took it first
            return
        rec.destroyed(mid, self.env.now, DEVICE_LOST, device=True)
        if rec.status(mid) == "lost":
            plan.rows += 1
            self.rows_by_access[access] += 1

    # -- run.json ----------------------------------------------------------------------

    def _count_devices(self) -> None:
        """Devices lost within the run, per plan: every person's device of the type,
        whether or not mail reached them (a loop over people, once, when asked)."""
        if self._counted:
            return
        self._counted = True
        for dom in self.domains.values():
            readers = dom.readers
            for person in range(dom.users):
                for k in readers.devices(person)[0]:
                    for plan in dom.plans.get(k, ()):
                        plan.devices += plan.count(person, k)

    def stats(self, index: int) -> dict[str, dict[str, float]]:
        """Fault ``index``'s counters per domain hit: devices lost (``failures``) and rows lost."""
        self._count_devices()
        return {plan.label: {"failures": plan.devices, "rows_lost": plan.rows} for plan in self.plans[index]}

    def by_access(self) -> dict[str, dict[str, float]]:
        """Devices and rows lost by the access method of the lost device."""
        self._count_devices()
        devices = [0] * len(ACCESS)
        for dom in self.domains.values():
            for k, plans in dom.plans.items():
                devices[dom.readers.access[k]] += sum(p.devices for p in plans)
        return {
            name: {"devices_lost": devices[a], "rows_lost": self.rows_by_access[a]} for a, name in enumerate(ACCESS)
        }
