"""The domains of the world: one object per domain with everything known about it.

A :class:`Domain` holds a mail domain's facts in one place (its users, its rates of
unknown recipients and filter discards, its mailbox store, its people's devices), so a
component asks the message's domain instead of indexing parallel lists. The
:class:`Directory` finds domains by name or by index (the index is what the recorder
stores).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import simpy

from ..config import Domain as DomainSpec, MXRecord

from .dsn import NULL_MX
from .policies import Greylist
from .smtp import NODATA, NXDOMAIN
from .traffic import Receivers

if TYPE_CHECKING:
    from .devices import Readers

__all__ = ["Directory", "Domain", "Zone"]

# A zone's answer to an MX query as a resolver reads it: (the answer, its TTL, whether
# the TTL is a negative one (RFC 2308), whether the answer is an implicit MX).
Zone = tuple[Any, float, bool, bool]


class Domain:
    """One mail domain at run time."""

    __slots__ = (
        "index",
        "name",
        "spec",
        "users",
        "unknown_rate",
        "discard_rate",
        "mx",
        "mx_ttl",
        "answer",
        "negative",
        "implicit",
        "zone",
        "failures",
        "greylist",
        "ns",
        "mailbox",
        "readers",
        "dmarc",
        "auth_failure_rate",
        "txt_ttl",
    )

    def __init__(self, index: int, spec: DomainSpec) -> None:
        self.index = index
        self.name = spec.name
        self.spec = spec
        self.users = spec.users
        self.unknown_rate = spec.unknown_recipient_rate
        self.discard_rate = spec.discard_rate
        # What the resolver answers (sim.mail.dns): the MX records, or a reply the
        # sending MTA acts on (NXDOMAIN, null MX, NODATA); ``negative`` caches it for the
        # SOA minimum instead of the MX TTL (RFC 2308); ``failures``: SERVFAIL windows.
        self.mx: tuple[tuple[int, str], ...] = ()
        self.answer: Any = ()
        self.negative: float | None = None
        self.implicit = False  # the answer is the domain's A record as an implicit MX
        self.mx_ttl = spec.mx_ttl
        if not spec.exists:
            self.answer, self.negative = NXDOMAIN, spec.negative_ttl
        elif spec.null_mx:
            self.answer = NULL_MX
        else:
            self._publish(spec.mx)
        self.zone: Zone = self._zone()
        self.failures = tuple((w.start, w.end) for w in spec.dns_failures)
        grey = spec.greylisting
        # The domain's own greylisting table, shared by every MX host that receives for it.
        self.greylist = None if grey is None else Greylist.of(grey)
        # What receivers' SPF/DKIM/DMARC checks find for mail in its name (sim.mail.content).
        self.dmarc = spec.dmarc
        self.auth_failure_rate = spec.auth_failure_rate
        self.txt_ttl = spec.txt_ttl
        # Its authoritative servers (node ids): a resolver's miss walks to them over the
        # graph (sim.mail.dns); empty, the resolver's lookup time stands in for the walk.
        self.ns = tuple(spec.ns)
        self.mailbox: Any = None  # the mailbox store component, set when the world is built
        self.readers: Readers | None = None  # who reads its mail, set when built

    def _publish(self, mx: Sequence[MXRecord]) -> None:
        """The zone's answer to an MX query from these records: sorted by preference, or
        the domain's A record as an implicit MX of preference 0 (RFC 5321 5.1), or
        NODATA (neither), negative for the SOA minimum (RFC 2308 5)."""
        records = [(r.preference, r.host) for r in mx]
        host = self.spec.host
        self.implicit = not records and host is not None
        if not records and host is not None:
            records = [(0, host)]
        self.mx = tuple(sorted(records))
        if self.mx:
            self.answer, self.negative = self.mx, None
        else:
            self.answer, self.negative = NODATA, self.spec.negative_ttl

    def _zone(self) -> Zone:
        """What the zone answers now, in one piece: (answer, its TTL, whether that is a
        negative TTL, whether the answer is an implicit MX). A resolver reads it once per
        answer, so an answer and its TTL always belong together."""
        negative = self.negative is not None
        return (self.answer, self.negative if negative else self.mx_ttl, negative, self.implicit)  # type: ignore[return-value]

    def _changes(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        """The zone's MX changes at their times. What resolvers cached before stays
        theirs until it expires; a resolution sees the zone as it is when it reads it
        (a plain lookup when it starts, a walk when the server answers)."""
        for change in self.spec.mx_changes:
            yield env.timeout(change.at - env.now)
            self._publish(change.mx)
            if change.mx_ttl is not None:
                self.mx_ttl = change.mx_ttl
            self.zone = self._zone()

    def __repr__(self) -> str:
        return f"Domain({self.name!r})"


class Directory:
    """Every domain of the scenario, in scenario order."""

    def __init__(self, specs: Sequence[DomainSpec]) -> None:
        self.all = [Domain(i, spec) for i, spec in enumerate(specs)]
        self.by_name = {d.name: d for d in self.all}
        # Whether any domain greylists with a table of its own: MX hosts then ask it.
        self.greylisting = any(d.greylist is not None for d in self.all)
        self._anyone: Receivers | None = None

    def start(self, env: simpy.Environment) -> None:
        """Start the zone changes: one process per domain with ``mx_changes``, none
        for the others."""
        for domain in self.all:
            if domain.spec.mx_changes:
                env.process(domain._changes(env))

    @property
    def anyone(self) -> Receivers:
        """"Any person on the Internet": domains with users, weighted by users.

        Built once per run on first use and shared by every source that does not name
        its recipients (each draws through its own stream).
        """
        if self._anyone is None:
            receivers = [d for d in self.all if d.users > 0]
            self._anyone = Receivers(receivers, [float(d.users) for d in receivers])
        return self._anyone

    def __iter__(self) -> Iterator[Domain]:
        return iter(self.all)

    def __len__(self) -> int:
        return len(self.all)

    def __getitem__(self, name: str) -> Domain:
        return self.by_name[name]

    @property
    def names(self) -> list[str]:
        """Domain names in scenario order (the recorder's categories)."""
        return [d.name for d in self.all]
