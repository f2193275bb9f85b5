"""DNS: caching resolvers answering MX queries from the domains' zone data.

A resolver answers from its cache while the record's TTL lasts; otherwise it resolves
(a lookup time drawn from its distribution), caches the answer for min(TTL, max_ttl)
and answers. Queries for a name already being resolved wait for that resolution rather
than starting another, as real resolvers coalesce them.

A lookup is a generator that MTA workers delegate to (``yield from``): no process per
query. The answer is the domain's MX list sorted by preference, or its A record as an
implicit MX of preference 0 (RFC 5321 section 5.1); see ``sim.mail.domains``.

For a domain that names its authoritative servers (``ns:``), a miss is a walk over the
graph instead of a draw (``Resolver._walk``, a process per miss): the MX query to the
domain's servers, then the address records (A/AAAA) of every MX host not in the cache,
each with its own TTL, as Postfix's ``smtp_addr_list`` resolves them all before the
first connection. docs/model.md#authoritative-name-servers gives the rules.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, cast

import simpy

from ..config import ResolverNode
from ..config.nodes import MXNode, RelayNode
from ..core.component import Context, registers
from .authoritative import ANSWERS, REFUSES, SILENT, AuthoritativeServer
from .domains import Domain
from .dsn import NULL_MX
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
        # Issue 9, part auth: walks to authoritative servers, for domains with ns:.
        self._ctx = ctx
        self.time_limit = spec.unknown_server_time_limit
        self.infra_ttl = spec.infra_host_ttl
        # The records a walk fetched, kept apart from the answers' cache above: MX
        # answers by domain index, address records' expiries by MX host.
        self._mx: dict[int, tuple[float, Answer]] = {}
        self._addresses: dict[str, float] = {}
        self._fetching: dict[str, simpy.Event] = {}  # MX host -> its address query under way
        self._hosts: dict[str, tuple[tuple[str, ...], float]] = {}  # host -> (its zone's ns, a_ttl)
        self._timed_out: dict[str, float] = {}  # server -> when a query to it last timed out
        self._loss = ctx.streams.uniform("resolver", spec.id, "loss")
        self.ns_queries = 0
        self.ns_timeouts = 0

    def start(self) -> None:
        """Nothing to start: lookups run in the asking worker."""

    def holding(self) -> int:
        """A resolver holds no messages."""
        return 0

    def stats(self) -> dict[str, float]:
        """Queries and cache hits; queries sent to authoritative servers and timed out."""
        return {
            "queries": self.queries, "cache_hits": self.hits,
            "ns_queries": self.ns_queries, "ns_timeouts": self.ns_timeouts,
        }

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
        asker gets the same answer), after a lookup time drawn from ``lookup``; for a
        domain with name servers, the walk to them (``_walk``).
        """
        if domain.ns:
            return self.env.process(self._walk(domain))
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
            elif domain.ns:  # part auth: until the first of its records expires
                ttl = self._records_left(domain, answer)
            else:
                ttl = min(domain.mx_ttl, self.max_ttl)
            self._cache[key] = (self.env.now + ttl, answer)
        del self._pending[key]

    # Issue 9, part auth: the walk to authoritative name servers.

    def _walk(self, domain: Domain) -> Generator[simpy.Event, Any, Answer]:
        """A miss for a domain with name servers: its MX records (from the cache, or
        asked of its servers), then the address records of each MX host missing from
        the cache, one host after another in preference order (Postfix's
        ``smtp_addr_list``). Addresses an answering server serves come with the MX
        answer (the additional section). A host whose address cannot be had is left
        out of the answer; none left is SERVFAIL."""
        env = self.env
        held = self._mx.get(domain.index) if self.caching else None
        given: tuple[str, ...] = ()  # hosts whose addresses came with the MX answer
        if held is not None and held[0] > env.now:
            answer = held[1]
        else:
            answer, server = yield from self._ask(domain.ns, domain)
            if server is None or not (type(answer) is tuple or answer is NULL_MX):
                return answer  # SERVFAIL (not cached) or NXDOMAIN (cached negatively)
            if self.caching:
                self._mx[domain.index] = (env.now + min(domain.mx_ttl, self.max_ttl), answer)
            if type(answer) is tuple and domain.spec.mx:  # an implicit MX has no additional section
                given = tuple(host for _, host in answer if self._serves(server, host))
                for host in given:
                    self._cache_address(host)
        if type(answer) is not tuple:
            return answer  # null MX: no hosts
        missing = [host for _, host in answer if host not in given and self._addresses.get(host, 0.0) <= env.now]
        lost: list[str] = []
        for host in missing:
            if not (yield from self._address(host, domain)):
                lost.append(host)
        if lost:
            answer = tuple(r for r in answer if r[1] not in lost)
            if not answer:
                return SERVFAIL
        return answer

    def _serves(self, server: str, host: str) -> bool:
        """Whether ``server`` holds ``host``'s address records: it serves the host's
        zone, or the host names no zone servers (it is in the naming domain's zone)."""
        zone = self._host(host)[0]
        return not zone or server in zone

    def _address(self, host: str, domain: Domain) -> Generator[simpy.Event, Any, bool]:
        """Ask for ``host``'s address records (joining a query for them under way):
        whether they were had."""
        pending = self._fetching.get(host)
        if pending is None:
            servers = self._host(host)[0] or domain.ns  # its own zone's, or the domain's
            pending = self._fetching[host] = self.env.process(self._fetch(host, servers))
            pending.callbacks.append(lambda _: self._fetched(host))
        return cast(bool, (yield pending))

    def _fetched(self, host: str) -> None:
        del self._fetching[host]

    def _fetch(self, host: str, servers: Sequence[str]) -> Generator[simpy.Event, Any, bool]:
        _, server = yield from self._ask(servers, None)
        if server is None:
            return False
        self._cache_address(host)
        return True

    def _cache_address(self, host: str) -> None:
        if self.caching:
            self._addresses[host] = self.env.now + min(self._host(host)[1], self.max_ttl)

    def _host(self, host: str) -> tuple[tuple[str, ...], float]:
        """An MX host's zone servers (empty: the naming domain's) and its address TTL."""
        found = self._hosts.get(host)
        if found is None:
            spec = cast(MXNode | RelayNode, getattr(self._ctx.nodes[host], "spec"))
            found = self._hosts[host] = (tuple(spec.ns), spec.a_ttl)
        return found

    def _ask(
        self, servers: Sequence[str], domain: Domain | None
    ) -> Generator[simpy.Event, Any, tuple[Answer, str | None]]:
        """One query to the servers in turn until one answers: ``domain``'s MX answer
        (None: a host's addresses), read from the zone when the server answers, and the
        server that answered (None: none did, and the answer is SERVFAIL).

        A server answers after the round trip and its answer time; a silent one (down,
        or the query or its answer lost on a lossy path) costs ``time_limit`` and is
        tried last for ``infra_ttl``; a refusing one costs the round trip."""
        env, nodes, network = self.env, self._ctx.nodes, self._ctx.network
        for sid in self._order(servers):
            server = cast(AuthoritativeServer, nodes[sid])
            link = network.link(self.id, sid)
            self.ns_queries += 1
            p = link.loss
            # A query or its answer lost on the way: the server never saw it, or the
            # resolver never hears it; either way it waits out its timeout.
            state = SILENT if p > 0.0 and self._loss() < 1.0 - (1.0 - p) ** 2 else server.ask()
            if state == ANSWERS:
                yield env.timeout(link.latency + server.answer_time())
                if domain is None:
                    answer: Answer = ()
                elif domain.failures and self._failing(domain.failures, env.now):
                    answer = SERVFAIL  # the zone is broken at its servers: no use trying others
                else:
                    answer = domain.answer
                if link.latency > 0.0:
                    yield env.timeout(link.latency)
                return answer, (None if answer is SERVFAIL else sid)
            if state == REFUSES:
                if link.latency > 0.0:
                    yield env.timeout(link.rtt)
            else:
                yield env.timeout(self.time_limit)
                self.ns_timeouts += 1
                self._timed_out[sid] = env.now
        return SERVFAIL, None

    def _order(self, servers: Sequence[str]) -> Sequence[str]:
        """The servers in the order they are tried: the nearest first (the one a
        resolver's smoothed RTT settles on), one that timed out within ``infra_ttl``
        after the others; ties in the listed order."""
        if len(servers) == 1:
            return servers
        now, network, timed_out = self.env.now, self._ctx.network, self._timed_out

        def rank(sid: str) -> tuple[bool, float]:
            last = timed_out.get(sid)
            return (last is not None and now - last < self.infra_ttl, network.link(self.id, sid).rtt)

        return sorted(servers, key=rank)

    def _records_left(self, domain: Domain, answer: Answer) -> float:
        """How long a walk's answer may be served from the cache: until the first of
        the MX answer and the hosts' address records expires; not at all when a host
        was left out (its address could not be had)."""
        held = self._mx.get(domain.index)
        if held is None or (type(answer) is tuple and answer is not held[1]):
            return 0.0
        expiry = held[0]
        if type(answer) is tuple:
            addresses = self._addresses
            for _, host in answer:
                expiry = min(expiry, addresses.get(host, 0.0))
        return max(0.0, expiry - self.env.now)

