"""Store capacity: mailbox quotas and the store's own disk.

A store that has a ``size``, or serves a domain with a ``quota``, keeps its occupancy:
the bytes of every mailbox on it (per mailbox only for the domains with a quota: a dict
of the mailboxes whose content changed, not an array per person) and of the store as a
whole. A message adds its size when it is stored and gives it back when the server's
copy goes (``Copies.server_until``: a POP3 device that deletes it, at once or after
``delete_after``); a copy kept on the server (IMAP, webmail) stays to the end.

Frees lie in the future when a message is stored, so they wait in a heap per store and
are applied when the store is next looked at (a RCPT check, a store, the end of the
run): no SimPy event. When time series are sampled, each free is still written into the
levels at its own time (the heap pops in time order, and a level takes changes at past
times as long as they come in order); :meth:`Monitors.close` asks for the frees due by
the end first.

The MX asks at RCPT (:class:`RoomCheck`, the last rule of its chain, as Dovecot's
quota-status policy service listed last in Postfix's ``smtpd_recipient_restrictions``):

- the store is full (its occupancy and the message over its ``size``): ``452 4.3.1``,
  for every recipient on it, as a queue file system out of space (RFC 3463 X.3.1);
- the recipient's mailbox cannot take the message (Dovecot's rule with ``quota_grace``:
  it fits when occupancy + size is at most the quota, or, for a mailbox still under its
  quota, at most the quota x (1 + grace)): ``452 4.2.2`` while the mailbox has been full
  (at or over its quota) for less than ``full_tempfail_for``, ``552 5.2.2`` after.

The sender acts on the reply as on any other: defers on 4xx (and bounces when its queue
lifetime ends), bounces on 5xx with a DSN. The store itself takes whatever the MX
accepted (the check is at RCPT only), so messages accepted together can take a mailbox
a little past its quota, as with a quota-status check alone.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..config.nodes import MailboxNode
from ..config.quota import Quota
from ..core.monitors import Level, Monitors
from .devices import first_uniforms, person_uniforms
from .mailbox import Mailbox
from .mx import MX
from .smtp import NO_SPACE, Phase, Reply

if TYPE_CHECKING:
    from ..core.component import Context
    from ..core.records import Message
    from .devices import Copies
    from .domains import Domain
    from .policies import ServerState

__all__ = ["MAILBOX_FULL", "Capacity", "MailboxQuota", "OVER_QUOTA", "OVER_QUOTA_PERMANENT", "RoomCheck",
           "STORE_FULL", "StoreCapacity"]

INF = math.inf
NAN = math.nan

# Why a row refused for a full mailbox bounced (the `reason` column).
MAILBOX_FULL = "mailbox full"
# Dovecot's words (quota_exceeded_message's default) with its LMTP codes: 452 4.2.2 with
# quota_full_tempfail = yes (Gmail answers so), 552 5.2.2 without (Yahoo answers so).
_QUOTA_TEXT = "Quota exceeded (mailbox for user is full)"
OVER_QUOTA = Reply(452, "4.2.2", _QUOTA_TEXT, Phase.RCPT, reason=MAILBOX_FULL)
OVER_QUOTA_PERMANENT = Reply(552, "5.2.2", _QUOTA_TEXT, Phase.RCPT, reason=MAILBOX_FULL)
# A full store: the queue file system's reply (sim.mail.policies.QueueSpace), at RCPT,
# where the MX knows which store the recipient is on.
STORE_FULL = Reply(NO_SPACE.code, NO_SPACE.enhanced, NO_SPACE.text, Phase.RCPT)


class MailboxQuota:
    """The mailboxes of one domain on one store, under the domain's quota.

    ``mailboxes`` holds ``[used, full_since]`` for each person whose mailbox changed
    (``full_since``: when it reached its quota, NaN while under it); a person not in it
    holds what it started with (:meth:`initial`): ``initial`` x ``storage`` bytes, or,
    with ``initial_max``, a share uniform on [``initial``, ``initial_max``] drawn from a
    hash of the person (``key``), so that no memory is kept per person.
    """

    __slots__ = ("limit", "ceiling", "tempfail", "start", "span", "key", "users", "mailboxes", "full",
                 "total", "deferred", "bounced")

    def __init__(self, spec: Quota, users: int, key: int = 0) -> None:
        self.limit = float(spec.storage)
        self.ceiling = self.limit * (1.0 + spec.quota_grace)  # what the last message may reach
        self.tempfail = INF if spec.full_tempfail_for is None else float(spec.full_tempfail_for)
        self.start = spec.initial
        self.span = 0.0 if spec.initial_max is None else spec.initial_max - spec.initial
        self.key = key
        self.users = users
        self.mailboxes: dict[int, list[float]] = {}
        # The mailboxes' bytes at t = 0 and how many of them start full: one pass over
        # the people (vectorised) when the shares differ, none when they are alike.
        if self.span == 0.0:
            each = self.initial(0)
            self.total = each * users
            self.full = users if each >= self.limit else 0
        else:
            self.total, self.full = _initial_totals(self, users)
        self.deferred = 0  # RCPTs answered 452 4.2.2
        self.bounced = 0  # RCPTs answered 552 5.2.2

    def initial(self, person: int) -> float:
        """Bytes ``person``'s mailbox holds when the run starts (whole bytes: sums stay exact)."""
        share = self.start
        if self.span:
            share = share + self.span * person_uniforms(self.key, person)[0]
        return float(math.floor(self.limit * share))

    def used(self, person: int) -> float:
        """Bytes in ``person``'s mailbox now (frees due applied by the store)."""
        entry = self.mailboxes.get(person)
        return self.initial(person) if entry is None else entry[0]

    def _entry(self, person: int) -> list[float]:
        """``[used, full_since]`` of ``person``'s mailbox (a new list for one untouched)."""
        entry = self.mailboxes.get(person)
        if entry is None:
            used = self.initial(person)
            entry = [used, 0.0 if used >= self.limit else NAN]
        return entry

    def answer(self, person: int, size: float, now: float) -> Reply | None:
        """None when ``size`` more bytes fit ``person``'s mailbox, else 452 or 552."""
        used, since = self._entry(person)
        limit = self.limit
        if used + size <= limit or (used < limit and used + size <= self.ceiling):
            return None
        # A message too big for the grace of a mailbox under its quota: full for 0 s.
        full_for = now - since if used >= limit else 0.0
        if full_for < self.tempfail:
            self.deferred += 1
            return OVER_QUOTA
        self.bounced += 1
        return OVER_QUOTA_PERMANENT

    def change(self, person: int, delta: float, t: float) -> int:
        """``person``'s mailbox grows by ``delta`` bytes (shrinks: negative) at ``t``;
        the change in the number of full mailboxes (-1, 0 or 1)."""
        entry = self.mailboxes[person] = self._entry(person)
        before = entry[0]
        after = entry[0] = before + delta
        limit = self.limit
        crossed = 0
        if before < limit <= after:
            entry[1] = t
            crossed = 1
        elif after < limit <= before:
            entry[1] = NAN
            crossed = -1
        if after < limit and after == self.initial(person):
            del self.mailboxes[person]  # as it started: keep only mailboxes that changed
        self.full += crossed
        return crossed


# People per slice when the starting shares of a domain's mailboxes are summed.
_SLICE = 1 << 20


def _initial_totals(quota: MailboxQuota, users: int) -> tuple[float, int]:
    """The bytes all of ``quota``'s mailboxes start with, and how many start full: the
    same hash and arithmetic as :meth:`MailboxQuota.initial`, on numpy slices."""
    total, full = 0.0, 0
    for first in range(0, users, _SLICE):
        u = first_uniforms(quota.key, np.arange(first, min(first + _SLICE, users), dtype=np.uint64))
        held = np.floor(quota.limit * (quota.start + quota.span * u))
        total += float(held.sum())
        full += int((held >= quota.limit).sum())
    return total, full


# A free waiting in a store's heap: (when, row id, the mailbox's quota or None, person, bytes).
Free = tuple[float, int, "MailboxQuota | None", int, float]


class StoreCapacity:
    """One store's occupancy: its bytes in all, its quota domains' mailboxes, its
    pending frees, and what it refused."""

    def __init__(self, store: str, size: float | None, quotas: list[MailboxQuota]) -> None:
        self.store = store
        # Each domain on the store and its quota (None: counted in the store's bytes only).
        self.domains: dict[Domain, MailboxQuota | None] = {}
        self.size = INF if size is None else float(size)
        self.quotas = quotas
        self.used = sum(q.total for q in quotas)  # the mailboxes' content at t = 0
        self.peak = self.used
        self.frees: list[Free] = []
        self.refused = 0  # RCPTs answered 452 4.3.1
        self.clock = 0.0  # the last time the levels were given (never goes back)
        self._occupancy: Level | None = None
        self._full: Level | None = None

    def monitor(self, monitors: Monitors) -> None:
        """Follow the store's bytes and its full mailboxes as levels (``timeseries.parquet``)."""
        self._occupancy = monitors.level(self.store, "occupancy", self.used)
        self._full = monitors.level(self.store, "full_mailboxes", self.full_mailboxes)
        monitors.flushes.append(self.advance)

    def add(self, quota: MailboxQuota) -> None:
        """A domain with a quota keeps its mailboxes here (before the run starts)."""
        self.quotas.append(quota)
        self.used += quota.total
        self.peak = max(self.peak, self.used)

    @property
    def full_mailboxes(self) -> int:
        """Mailboxes at or over their quota now (as of the last frees applied)."""
        return sum(q.full for q in self.quotas)

    def advance(self, now: float) -> None:
        """Apply the frees due by ``now``, each at its own time."""
        frees = self.frees
        while frees and frees[0][0] <= now:
            t, _, quota, person, size = heapq.heappop(frees)
            self._change(quota, person, -size, t)

    def _change(self, quota: MailboxQuota | None, person: int, delta: float, t: float) -> None:
        self.used += delta
        if self.used > self.peak:
            self.peak = self.used
        crossed = 0 if quota is None else quota.change(person, delta, t)
        occupancy = self._occupancy
        if occupancy is not None:
            t = self.clock = max(t, self.clock)
            occupancy.set(t, self.used)
            if crossed and self._full is not None:
                self._full.add(t, crossed)

    def stored(self, msg: Message, t: float) -> None:
        """``msg`` is stored at ``t``: it counts from now, whether or not its devices
        can reach the store (a link fault only delays when they take it)."""
        self.advance(t)
        self._change(self.domains.get(msg.domain), msg.user, msg.size, t)

    def leaves(self, msg: Message, until: float) -> None:
        """The server's copy of ``msg`` goes at ``until`` (``INF``: it stays to the end)."""
        if until < INF:
            heapq.heappush(self.frees, (until, msg.id, self.domains.get(msg.domain), msg.user, msg.size))

    def answer(self, quota: MailboxQuota | None, msg: Message, now: float) -> Reply | None:
        """What the MX answers at RCPT for ``msg`` to a mailbox on this store."""
        self.advance(now)
        if self.used + msg.size > self.size:
            self.refused += 1
            return STORE_FULL
        return None if quota is None else quota.answer(msg.user, msg.size, now)

    def stats(self, now: float) -> dict[str, float]:
        """Occupancy now and at its peak, full mailboxes, and the refusals (run.json)."""
        self.advance(now)
        return {
            "occupancy": self.used,
            "peak_occupancy": self.peak,
            "full_mailboxes": self.full_mailboxes,
            "refused_store_full": self.refused,
            "refused_quota_temporary": sum(q.deferred for q in self.quotas),
            "refused_quota_permanent": sum(q.bounced for q in self.quotas),
        }


# What the MX asks for a recipient domain: its store's capacity and its quota (or None).
Room = tuple[StoreCapacity, "MailboxQuota | None"]


class RoomCheck:
    """The MX's RCPT rule for store capacity: asks the recipient's store (None for a
    domain on a store without capacity)."""

    phase = Phase.RCPT
    __slots__ = ("rooms",)

    def __init__(self, rooms: dict[Domain, Room]) -> None:
        self.rooms = rooms

    def check(self, server: ServerState, client: str, msg: Message | None, now: float) -> Reply | None:
        """452 4.3.1 for a full store, 452 4.2.2 or 552 5.2.2 for a full mailbox."""
        assert msg is not None
        room = self.rooms.get(msg.domain)
        return None if room is None else room[0].answer(room[1], msg, now)


class Capacity:
    """A run's store capacity: every store that has a ``size`` or a domain with a
    ``quota``, and the MX rule that asks them."""

    def __init__(self, stores: dict[str, StoreCapacity], rooms: dict[Domain, Room]) -> None:
        self.stores = stores
        self.check = RoomCheck(rooms)

    @classmethod
    def wanted(cls, ctx: Context) -> bool:
        """Whether the scenario has any quota or store size (else nothing is made)."""
        return any(d.quota is not None for d in ctx.scenario.domains) or bool(_sized(ctx))

    @classmethod
    def build(cls, ctx: Context, every_store: bool = False) -> Capacity:
        """Make the stores' capacities, hook them into the domains' readers and add the
        rule to every MX that needs it. ``every_store``: count every store, not only
        those with a size or a quota domain (a run sampling their occupancy over time)."""
        counted = {d.mailbox.id for d in ctx.domains if d.mailbox is not None and d.spec.quota is not None}
        counted |= _sized(ctx)
        limited = bool(counted)  # some store can refuse: the MX asks at RCPT
        if every_store:
            counted |= {n.id for n in ctx.scenario.topology.nodes if isinstance(n, MailboxNode)}
        rooms: dict[Domain, Room] = {}
        stores: dict[str, StoreCapacity] = {}
        for store_id in sorted(counted):
            node = ctx.nodes[store_id]
            assert isinstance(node, Mailbox)
            stores[store_id] = node.capacity = StoreCapacity(store_id, node.size, [])
        for domain in ctx.domains:  # every domain on a counted store counts in its bytes
            if domain.mailbox is None or domain.mailbox.id not in counted:
                continue
            capacity = stores[domain.mailbox.id]
            spec = domain.spec.quota
            quota = None
            if spec is not None:
                # The key of the per-person hash of starting shares: drawn only when they differ.
                key = 0 if spec.initial_max is None else int(
                    ctx.streams.generator("quota", domain.name, "initial").integers(0, 2**63))
                quota = MailboxQuota(spec, domain.users, key)
                capacity.add(quota)
            rooms[domain] = (capacity, quota)
            capacity.domains[domain] = quota
            # Only POP3 devices that remove mail within the run free room; without them
            # what is stored stays, and the readers keep their quick path (no hook, no
            # Copies a row).
            if domain.readers is not None and domain.readers.removes_in_run:
                domain.readers.hooks.append(_hook(capacity))
        made = cls(stores, rooms)
        for component in ctx.nodes.values():
            if limited and isinstance(component, MX):
                component.add_policy(made.check)
        return made


def _sized(ctx: Context) -> set[str]:
    """The stores given a ``size``."""
    return {n.id for n in ctx.scenario.topology.nodes if isinstance(n, MailboxNode) and n.size is not None}


def _hook(capacity: StoreCapacity) -> Callable[[Message, Copies, float], None]:
    """The readers' hook of one domain: the message leaves the store when its server
    copy goes (it was counted when stored: ``Mailbox.store``)."""

    def stored(msg: Message, copies: Copies, t: float) -> None:
        capacity.leaves(msg, copies.server_until)

    return stored
