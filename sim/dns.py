"""DNS: caching resolvers answering MX queries from the zone data in the topology.

A resolver answers from its cache while the record's TTL lasts; otherwise it resolves
(a lookup time drawn from its distribution), caches the answer for min(TTL, max_ttl)
and answers. Queries for a name already being resolved wait for that resolution rather
than starting another, as real resolvers coalesce them.

A lookup is a generator that MTA workers delegate to (``yield from``): no process per
query. The answer is the domain's MX list sorted by preference, or its A record as an
implicit MX of preference 0 (RFC 5321 section 5.1).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from .rng import Draw
from .scenario import ResolverNode

__all__ = ["MXAnswer", "Resolver", "Zone"]

MXAnswer = tuple[tuple[int, str], ...]  # ((preference, host), ...) sorted by preference


class Zone:
    """The authoritative data: each domain's MX answer and its TTL."""

    def __init__(self) -> None:
        self.answers: list[MXAnswer] = []
        self.ttls: list[float] = []

    def add(self, mx: list[tuple[int, str]], host: str | None, ttl: float) -> None:
        """Add the next domain (domains are indexed in order of addition)."""
        records = sorted(mx) if mx else ([(0, host)] if host is not None else [])
        self.answers.append(tuple(records))
        self.ttls.append(ttl)


class Resolver:
    """A caching resolver. ``lookup`` spends the query's time and returns the answer."""

    def __init__(self, env: simpy.Environment, spec: ResolverNode, zone: Zone, draw: Draw) -> None:
        self.env = env
        self.id = spec.id
        self.zone = zone
        self.caching = spec.cache
        self.max_ttl = spec.max_ttl
        self._draw = draw
        self._cache: dict[int, float] = {}  # domain -> expiry time
        self._pending: dict[int, simpy.Event] = {}
        self.queries = 0
        self.hits = 0

    def lookup(self, domain: int, rtt: float) -> Generator[simpy.Event, Any, MXAnswer]:
        """Ask for ``domain``'s MX records from a client ``rtt`` away; returns the answer."""
        env = self.env
        self.queries += 1
        expiry = self._cache.get(domain)
        if expiry is not None and expiry > env.now:
            self.hits += 1
            yield env.timeout(rtt)
            return self.zone.answers[domain]
        pending = self._pending.get(domain)
        if pending is not None:
            yield pending
        else:
            done = self._pending[domain] = env.event()
            yield env.timeout(self._draw())
            if self.caching:
                self._cache[domain] = env.now + min(self.zone.ttls[domain], self.max_ttl)
            del self._pending[domain]
            done.succeed()
        yield env.timeout(rtt)
        return self.zone.answers[domain]
