"""DNS: caching resolvers answering MX queries from the domains' zone data.

A resolver answers from its cache while the record's TTL lasts; otherwise it resolves
(a lookup time drawn from its distribution), caches the answer for min(TTL, max_ttl)
and answers. Queries for a name already being resolved wait for that resolution rather
than starting another, as real resolvers coalesce them.

A lookup is a generator that MTA workers delegate to (``yield from``): no process per
query. The answer is the domain's MX list sorted by preference, or its A record as an
implicit MX of preference 0 (RFC 5321 section 5.1); see ``sim.mail.domains``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from ..config import ResolverNode
from ..core.component import Context, registers
from .domains import Domain
from .smtp import SERVFAIL, Reply

__all__ = ["MXAnswer", "Resolver"]

MXAnswer = tuple[tuple[int, str], ...]  # ((preference, host), ...) sorted by preference
Answer = MXAnswer | Reply  # the records, or NXDOMAIN / NULL_MX / SERVFAIL


@registers(ResolverNode)
class Resolver:
    """A caching resolver. ``lookup`` spends the query's time and returns the answer."""

    def __init__(self, ctx: Context, spec: ResolverNode) -> None:
        self.env = ctx.env
        self.id = spec.id
        self.caching = spec.cache
        self.max_ttl = spec.max_ttl
        self.max_negative_ttl = spec.max_negative_ttl
        self._draw = ctx.streams.sampler(spec.lookup, "resolver", spec.id, "lookup")
        self._cache: dict[int, tuple[float, Answer]] = {}  # domain index -> (expiry, answer)
        self._pending: dict[int, simpy.Event] = {}
        self.queries = 0
        self.hits = 0

    def start(self) -> None:
        """Nothing to start: lookups run in the asking worker."""

    def holding(self) -> int:
        """A resolver holds no messages."""
        return 0

    def stats(self) -> dict[str, float]:
        """Queries and cache hits."""
        return {"queries": self.queries, "cache_hits": self.hits}

    def lookup(self, domain: Domain, rtt: float) -> Generator[simpy.Event, Any, Answer]:
        """Ask for ``domain``'s MX records from a client ``rtt`` away; returns the answer."""
        env = self.env
        key = domain.index
        self.queries += 1
        cached = self._cache.get(key)
        if cached is not None and cached[0] > env.now:
            self.hits += 1
            if rtt > 0.0:  # a resolver on the same host answers at once: no event
                yield env.timeout(rtt)
            return cached[1]
        pending = self._pending.get(key)
        if pending is None:
            # The resolution belongs to the resolver, not to the worker that asked first:
            # one event that caches the answer when it fires, which every asker waits
            # on. An interrupted asker stops waiting; the resolution goes on.
            pending = self._pending[key] = self._resolve(domain)
            pending.callbacks.append(lambda event: self._resolved(domain, event.value))
        answer = yield pending
        if rtt > 0.0:
            yield env.timeout(rtt)
        return answer

    def _resolve(self, domain: Domain) -> simpy.Event:
        """Resolve ``domain`` (a cache miss): an event whose value is the answer.

        The zone's answer as it stands when the resolution starts, or SERVFAIL when it
        starts in one of the domain's failure windows (decided here, so that every
        asker gets the same answer), after a lookup time drawn from ``lookup``.
        """
        failed = domain.failures and self._failing(domain.failures, self.env.now)
        return self.env.timeout(self._draw(), SERVFAIL if failed else domain.answer)

    @staticmethod
    def _failing(windows: tuple[tuple[float, float], ...], now: float) -> bool:
        return any(start <= now < end for start, end in windows)

    def _resolved(self, domain: Domain, answer: Answer) -> None:
        """Cache a resolution's answer: records for min(TTL, max_ttl), a negative
        answer for min(SOA minimum, max_negative_ttl) (RFC 2308), a failure not at all."""
        key = domain.index
        if self.caching and answer is not SERVFAIL:
            if domain.negative is not None:
                ttl = min(domain.negative, self.max_negative_ttl)
            else:
                ttl = min(domain.mx_ttl, self.max_ttl)
            self._cache[key] = (self.env.now + ttl, answer)
        del self._pending[key]

    # -- TXT-style records (issue 9, part content): SPF, DKIM keys, DMARC policies ------
    # Their own cache and counters, made at the first query: a resolver no MX checks
    # with costs nothing more.
    _records: dict[int, tuple[float, float, float]] | None = None  # key -> (start, ready, expiry)
    record_queries = 0
    record_hits = 0

    def records(self, key: int, ttl: float, at: float) -> float:
        """How long the resolver takes to answer a query for the record ``key`` asked
        at ``at`` (now or later in the asking session): 0 from the cache; the rest of a
        resolution in progress (coalesced); else a ``lookup`` draw, after which the
        answer is cached for min(``ttl``, ``max_ttl``). The round trip to the resolver
        is the asker's. No event: the asker adds the time to its own."""
        self.record_queries += 1
        cache = self._records
        if cache is None:
            cache = self._records = {}
        entry = cache.get(key)
        if entry is not None:
            start, ready, expiry = entry
            if ready <= at < expiry:
                self.record_hits += 1
                return 0.0
            if start <= at < ready:  # a resolution in progress: wait for it
                return ready - at
        took = self._draw()
        if self.caching and (entry is None or at >= entry[2] or at + took < entry[1]):
            cache[key] = (at, at + took, at + took + min(ttl, self.max_ttl))
        return took

