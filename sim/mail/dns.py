"""DNS: caching resolvers answering MX queries from the domains' zone data, and the
stub resolver an MTA asks them through.

A resolver answers from its cache while the record's TTL lasts; otherwise it resolves
(a lookup time drawn from its distribution), caches the answer for min(TTL, max_ttl)
and answers. Queries for a name already being resolved wait for that resolution rather
than starting another, as real resolvers coalesce them. A cache with a size limit
(``cache_size``) evicts the least recently used answer, as Unbound's LRU hash tables
do. A resolver that is down (``outages``) answers nothing and loses its cache and the
resolutions in progress: it restarts empty.

A lookup is a generator that MTA workers delegate to (``yield from``): no process per
query. The answer is the domain's MX list sorted by preference, or its A record as an
implicit MX of preference 0 (RFC 5321 section 5.1), or a reply (NXDOMAIN, null MX,
NODATA, SERVFAIL); see ``sim.mail.domains``. ``None`` means no answer came: the
:class:`Stub` (glibc's resolver in the MTA) then waits out its timeout and asks the next
server, round after round.

For a domain that names its authoritative servers (``ns:``), a miss is a walk over the
graph instead of a draw (``Resolver._walk``, a process per miss): the MX query to the
domain's servers, then the address records (A/AAAA) of every MX host not in the cache,
each with its own TTL, as Postfix's ``smtp_addr_list`` resolves them all before the
first connection. docs/model.md#authoritative-name-servers gives the rules.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import simpy

from ..config import ResolverNode
from ..config.nodes import MXNode, RelayNode
from ..core.faults import Failure
from ..core.component import Context, registers
from ..core.downtime import Downtime, run_outages
from .authoritative import ANSWERS, REFUSES, SILENT, AuthoritativeServer
from .domains import Domain, Zone
from .dsn import NULL_MX
from .smtp import SERVFAIL, Reply

if TYPE_CHECKING:
    from ..world.network import Network

__all__ = ["MXAnswer", "Resolver", "Stub", "glibc_tries"]

MXAnswer = tuple[tuple[int, str], ...]  # ((preference, host), ...) sorted by preference
Answer = MXAnswer | Reply  # the records, or NXDOMAIN / NULL_MX / NODATA / SERVFAIL


@registers(ResolverNode)
class Resolver:
    """A caching resolver. ``lookup`` spends the query's time and returns the answer
    (None when the resolver is down: no answer comes)."""

    def __init__(self, ctx: Context, spec: ResolverNode) -> None:
        self.env = ctx.env
        self.id = spec.id
        self.caching = spec.cache
        self.max_ttl = spec.max_ttl
        self.max_negative_ttl = spec.max_negative_ttl
        self._draw = ctx.streams.sampler(spec.lookup, "resolver", spec.id, "lookup")
        # TXT queries draw from a stream of their own: turning an MX's checks on leaves
        # the MX lookups' times as they were (common random numbers across variants).
        self._record_draw = ctx.streams.sampler(spec.lookup, "resolver", spec.id, "records")
        self._cache: dict[int, tuple[float, Answer]] = {}  # domain index -> (expiry, answer)
        # With a size limit the cache keeps its use order (an OrderedDict: O(1) touch and
        # eviction); without one, a plain dict and no bookkeeping.
        self.cache_size = spec.cache_size
        self._lru: OrderedDict[int, tuple[float, Answer]] | None = None
        if spec.cache_size:
            self._cache = self._lru = OrderedDict()
        self._pending: dict[int, simpy.Event] = {}
        self.up = True
        self.refusing = False  # while down: refuse queries (port unreachable), else silence
        self._refuse = spec.answer == "refuse"  # how it is down unless an outage says
        self._down: Downtime[bool] = Downtime()  # why it is down -> whether it refuses meanwhile
        self._epoch = 0  # times it went down: a resolution from before then answers no one
        self._outages = sorted(
            (o.start, o.end, self._refuse if o.answer is None else o.answer == "refuse") for o in spec.outages
        )
        self.queries = 0
        self.hits = 0
        self.negative_hits = 0
        self.servfails = 0
        self.servfail_hits = 0  # SERVFAILs answered from the cache (servfail_ttl)
        self.servfail_ttl = spec.servfail_ttl
        self.timeouts = 0  # queries unanswered: the resolver was down
        self.refused = 0  # queries refused: down, with its port closed
        self.evictions = 0
        self._resolutions = array("d")  # how long each resolution (a miss) took
        # TXT records (SPF, DKIM keys, DMARC policies): key -> (start, ready, expiry).
        self._records: dict[int, tuple[float, float, float]] = {}
        self.record_queries = self.record_hits = self.record_timeouts = 0
        # Walks to authoritative servers, for domains with ns:.
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
        """Schedule the outages (one process for them all, none without); lookups run
        in the asking worker."""
        if self._outages:
            self.env.process(run_outages(self.env, self._outages, self.set_up))

    def set_up(self, up: bool, reason: str | None = None, refuse: bool | None = None) -> None:
        """Take the resolver down for ``reason`` or bring it back, as an MX host's
        ``set_up``: reasons add up (the end of an outage does not undo a hook's), and a
        silent reason wins over refusing ones. Down, it answers no query, or with
        ``refuse`` (default: the node's ``answer``) refuses each: the host answers
        "port unreachable" after a round trip, and glibc moves to its next server at
        once. Going down loses what it held in memory: every cache (a restarted Unbound
        or BIND starts empty), what it knew of slow servers, and the resolutions in
        progress, whose askers get no answer and whose results are dropped."""
        now_up = self._down.change(up, reason, self._refuse if refuse is None else refuse)
        if self.up and not now_up:
            self._cache.clear()
            self._pending.clear()
            self._records.clear()  # the TXT records' cache
            self._mx.clear()  # the records walks fetched
            self._addresses.clear()
            self._fetching.clear()
            self._timed_out.clear()
            self._epoch += 1
        self.up = now_up
        self.refusing = not now_up and all(self._down.hows)

    def fail(self, failure: Failure) -> None:
        """A fault takes the resolver down (``sim.core.faults``): as an outage, with the
        fault's answer (default: the node's); its caches are lost (it restarts empty)."""
        self.set_up(False, failure.reason, None if failure.answer is None else failure.answer == "refuse")

    def repair(self, failure: Failure) -> None:
        """The fault is over (up again unless another reason holds it)."""
        self.set_up(True, failure.reason)

    def holding(self) -> int:
        """A resolver holds no messages."""
        return 0

    def stats(self) -> dict[str, float]:
        """Queries, cache hits and their rate (of the queries answered), negative hits,
        SERVFAILs, queries unanswered or refused (down), evictions, the resolutions'
        times (0 when there were none), and queries to authoritative servers."""
        answered = self.queries - self.timeouts - self.refused
        times = np.frombuffer(self._resolutions, dtype=np.float64) if self._resolutions else None
        out: dict[str, float] = {
            "queries": self.queries,
            "cache_hits": self.hits,
            "hit_rate": self.hits / answered if answered else 0.0,
            "negative_hits": self.negative_hits,
            "servfails": self.servfails,
            "servfail_hits": self.servfail_hits,
            "timeouts": self.timeouts,
            "refused": self.refused,
            "evictions": self.evictions,
            "resolutions": len(self._resolutions),
        }
        if self.ns_queries:  # walks to authoritative servers (domains with ns:)
            out["ns_queries"] = self.ns_queries
            out["ns_timeouts"] = self.ns_timeouts
        if self.record_queries:  # MX hosts' SPF/DKIM/DMARC queries (sim.mail.content)
            out["record_queries"] = self.record_queries
            out["record_hits"] = self.record_hits
            out["record_timeouts"] = self.record_timeouts
        pcts = np.percentile(times, [50, 95, 99]) if times is not None else (0.0, 0.0, 0.0)
        for name, value in zip(("p50", "p95", "p99"), pcts):
            out[f"resolution_{name}"] = float(value)
        out["resolution_mean"] = float(times.mean()) if times is not None else 0.0
        return out

    def lookup(self, domain: Domain, rtt: float) -> Generator[simpy.Event, Any, Answer | None]:
        """Ask for ``domain``'s MX records from a client ``rtt`` away; returns the
        answer, or None at once when the resolver is down or no path joins them
        (``rtt`` infinite; the asker's timeout runs),
        or SERVFAIL after the round trip when it is down refusing (the asker moves on:
        glibc treats a refused query as a failed server)."""
        env = self.env
        key = domain.index
        if rtt == math.inf:  # no path from the client: the query never arrives
            return None
        self.queries += 1
        if not self.up:
            if self.refusing:
                self.refused += 1
                if rtt > 0.0:
                    yield env.timeout(rtt)
                return SERVFAIL
            self.timeouts += 1
            return None
        cached = self._cache.get(key)
        if cached is not None and cached[0] > env.now:
            self.hits += 1
            if self._lru is not None:
                self._lru.move_to_end(key)
            answer = cached[1]
            if answer is SERVFAIL:
                self.servfail_hits += 1
            elif type(answer) is not tuple:
                self.negative_hits += 1
            if rtt > 0.0:  # a resolver on the same host answers at once: no event
                yield env.timeout(rtt)
            return answer
        pending = self._pending.get(key)
        if pending is None:
            # The resolution belongs to the resolver, not to the worker that asked first:
            # one event that caches the answer when it fires, which every asker waits
            # on. An interrupted asker stops waiting; the resolution goes on.
            pending = self._pending[key] = self._resolve(domain)
            began = env.now
            pending.callbacks.append(lambda event: self._resolved(domain, event, began))
        epoch = self._epoch
        value = yield pending
        if self._epoch != epoch:  # it went down meanwhile: the answer never comes
            self.timeouts += 1
            return None
        if rtt > 0.0:
            yield env.timeout(rtt)
        return value if value is SERVFAIL else value[0]

    def _resolve(self, domain: Domain) -> simpy.Event:
        """Resolve ``domain`` (a cache miss): an event whose value is the zone's answer
        with its TTL (a :data:`~sim.mail.domains.Zone`), or SERVFAIL.

        The zone as it stands when the resolution starts, or SERVFAIL when it starts in
        one of the domain's failure windows (decided here, so that every asker gets the
        same answer), after a lookup time drawn from ``lookup``; for a domain with name
        servers, the walk to them (``_walk``).
        """
        if domain.ns:
            return self.env.process(self._walk(domain))
        failed = domain.failures and self._failing(domain.failures, self.env.now)
        return self.env.timeout(self._draw(), SERVFAIL if failed else domain.zone)

    @staticmethod
    def _failing(windows: tuple[tuple[float, float], ...], now: float) -> bool:
        return any(start <= now < end for start, end in windows)

    def _resolved(self, domain: Domain, event: simpy.Event, began: float) -> None:
        """Cache a resolution's answer: records for min(TTL, max_ttl), a negative
        answer for min(SOA minimum, max_negative_ttl) (RFC 2308), a failure for
        ``servfail_ttl`` (BIND's servfail-ttl; RFC 9520); nothing when the resolver went
        down meanwhile (the resolution was lost)."""
        key = domain.index
        if self._pending.get(key) is not event:
            return
        del self._pending[key]
        now = self.env.now
        self._resolutions.append(now - began)
        value = event.value
        if value is SERVFAIL:
            self.servfails += 1
        if self.caching:
            if value is SERVFAIL:
                answer: Answer = SERVFAIL
                ttl = self.servfail_ttl
                if ttl <= 0.0:
                    return
            else:
                answer, ttl, negative, _ = cast(Zone, value)
                ttl = min(ttl, self.max_negative_ttl if negative else self.max_ttl)
            lru = self._lru
            if lru is None:
                self._cache[key] = (now + ttl, answer)
                return
            # An expired answer still holds its place until it is replaced or evicted
            # (Unbound's caches keep it too); the new one is the most recently used.
            lru[key] = (now + ttl, answer)
            lru.move_to_end(key)
            if len(lru) > self.cache_size:
                evicted, _ = lru.popitem(last=False)
                if evicted not in self._pending:  # not a walk under way, which needs them
                    self._mx.pop(evicted, None)  # the MX records a walk kept for it go too
                self.evictions += 1

    # -- TXT records: SPF, DKIM keys, DMARC policies (sim.mail.content) -----------------

    def records(self, key: int, ttl: float, at: float) -> float:
        """How long the resolver takes to answer a query for the record ``key`` asked
        at ``at`` (now or later in the asking session): 0 from the cache; the rest of a
        resolution in progress (coalesced); else a ``lookup`` draw, after which the
        answer is cached for min(``ttl``, ``max_ttl``). While the resolver is down the
        query goes unanswered: the asker waits out glibc's timeout (``RECORD_TIMEOUT``)
        and nothing is cached. The round trip to the resolver is the asker's. No event:
        the asker adds the time to its own."""
        self.record_queries += 1
        if not self.up:  # refused at once (port unreachable), or waited out
            self.record_timeouts += 1
            return 0.0 if self.refusing else RECORD_TIMEOUT
        cache = self._records
        entry = cache.get(key)
        if entry is not None:
            start, ready, expiry = entry
            if ready <= at < expiry:
                self.record_hits += 1
                return 0.0
            if start <= at < ready:  # a resolution in progress: wait for it
                return ready - at
        took = self._record_draw()
        if self.caching and (entry is None or at >= entry[2] or at + took < entry[1]):
            cache[key] = (at, at + took, at + took + min(ttl, self.max_ttl))
        return took

    # -- The walk to authoritative name servers (domains with ns:) ---------------------

    def _walk(self, domain: Domain) -> Generator[simpy.Event, Any, Zone | Reply]:
        """A miss for a domain with name servers: its MX records (from the cache, or
        asked of its servers), then the address records of each MX host missing from
        the cache, one host after another in preference order (Postfix's
        ``smtp_addr_list``). Addresses an answering server serves come with the MX
        answer (the additional section). A host whose address cannot be had is left
        out of the answer; none left is SERVFAIL."""
        env, epoch = self.env, self._epoch
        held = self._mx.get(domain.index) if self.caching else None
        given: tuple[str, ...] = ()  # hosts whose addresses came with the MX answer
        if held is not None and held[0] > env.now:
            answer = held[1]
        else:
            got, server = yield from self._ask(domain.ns, domain)
            if self._epoch != epoch:  # the resolver went down meanwhile: nothing is kept
                return SERVFAIL
            if server is None:
                return SERVFAIL
            zone = cast(Zone, got)
            answer, ttl, _, implicit = zone
            if not (type(answer) is tuple or answer is NULL_MX):
                return zone  # NXDOMAIN or NODATA, cached negatively
            if self.caching:
                self._mx[domain.index] = (env.now + min(ttl, self.max_ttl), answer)
            if type(answer) is tuple and not implicit:  # an implicit MX has no additional section
                given = tuple(host for _, host in answer if self._serves(server, host))
                for host in given:
                    self._cache_address(host)
        if type(answer) is not tuple:
            return (answer, self._records_left(domain, answer), False, False)  # null MX: no hosts
        missing = [host for _, host in answer if host not in given and self._addresses.get(host, 0.0) <= env.now]
        lost: list[str] = []
        for host in missing:
            if not (yield from self._address(host, domain)):
                lost.append(host)
            if self._epoch != epoch:
                return SERVFAIL
        if lost:
            answer = tuple(r for r in answer if r[1] not in lost)
            if not answer:
                return SERVFAIL
        # Served from the cache until the first of its records expires.
        return (answer, self._records_left(domain, answer), False, False)

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
            pending.callbacks.append(lambda event: self._fetched(host, event))
        return cast(bool, (yield pending))

    def _fetched(self, host: str, event: simpy.Event) -> None:
        if self._fetching.get(host) is event:  # not one from before an outage
            del self._fetching[host]

    def _fetch(self, host: str, servers: Sequence[str]) -> Generator[simpy.Event, Any, bool]:
        epoch = self._epoch
        _, server = yield from self._ask(servers, None)
        if server is None or self._epoch != epoch:
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
    ) -> Generator[simpy.Event, Any, tuple[Zone | Answer, str | None]]:
        """One query to the servers in turn until one answers: ``domain``'s zone (its
        answer with the TTL; for None, a host's addresses: ``()``), read when the server
        answers, and the server that answered (None: none did, and the answer is
        SERVFAIL).

        A server answers after the round trip and its answer time; a silent one (down,
        or the query or its answer lost on a lossy path) costs ``time_limit`` and is
        tried last for ``infra_ttl``; a refusing one costs the round trip. Once the
        resolver has gone down (and maybe up again) meanwhile, the walk stops: no
        further query, nothing remembered."""
        env, nodes, network = self.env, self._ctx.nodes, self._ctx.network
        epoch = self._epoch
        for sid in self._order(servers):
            if self._epoch != epoch:
                return SERVFAIL, None
            server = cast(AuthoritativeServer, nodes[sid])
            link = network.link(self.id, sid)
            self.ns_queries += 1
            p = link.loss
            # A query or its answer lost on the way (or no path at all): the server never
            # saw it, or the resolver never hears it; either way it waits out its timeout.
            if not link.up:
                state = SILENT
            else:
                state = SILENT if p > 0.0 and self._loss() < 1.0 - (1.0 - p) ** 2 else server.ask()
            if state == ANSWERS:
                yield env.timeout(link.latency + server.answer_time())
                answer: Zone | Answer
                if domain is None:
                    answer = ()
                elif domain.failures and self._failing(domain.failures, env.now):
                    answer = SERVFAIL  # the zone is broken at its servers: no use trying others
                else:
                    answer = domain.zone
                if link.latency > 0.0:
                    yield env.timeout(link.latency)
                return answer, (None if answer is SERVFAIL else sid)
            if state == REFUSES:
                if link.latency > 0.0:
                    yield env.timeout(link.rtt)
            else:
                yield env.timeout(self.time_limit)
                if self._epoch != epoch:
                    return SERVFAIL, None
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


# What a TXT query to a resolver that is down costs its asker (an MX checking SPF,
# DKIM, DMARC): glibc's first timeout (resolv.conf(5) timeout:5), after which the check
# gives up (a temperror) and passes.
RECORD_TIMEOUT = 5.0


def glibc_tries(servers: Sequence[Any], timeout: int, attempts: int) -> list[tuple[Any, int]]:
    """The tries of glibc's stub resolver in order, each (server, seconds to wait for
    its answer): every server in turn, for ``attempts`` rounds. The wait depends on the
    server's place in the list, not on the round: the first server waits ``timeout``,
    the server at index i > 0 max(1, (timeout << i) // servers), the integer
    arithmetic of glibc's ``send_dg`` (resolv/res_send.c), whose ``ns`` is the server's
    index."""
    n = len(servers)
    waits = [(server, timeout if i == 0 else max(1, (timeout << i) // n)) for i, server in enumerate(servers)]
    return waits * attempts


class Stub:
    """An MTA's stub resolver (glibc's, configured by resolv.conf(5)): the query goes
    to the first server; one that does not answer costs its timeout, then the next is
    asked, round after round; one that answers SERVFAIL is left at once for the next
    try, as glibc's ``send_dg`` does (``next_ns``). When no try brings an answer the
    lookup fails temporarily (SERVFAIL's 451 4.4.3: Postfix reports a resolver timeout
    as "Host not found, try again" too). The MTA asks the first server itself (no
    frame, no event more than a plain lookup) and hands over to :meth:`retry` only
    when it did not answer or answered SERVFAIL."""

    def __init__(
        self, env: simpy.Environment, network: Network, client: str,
        servers: Sequence[Resolver], timeout: int, attempts: int,
    ) -> None:
        self.env = env
        self.network = network
        self.client = client
        self.tries = glibc_tries(servers, timeout, attempts)
        self.failures = 0  # lookups no server answered

    def retry(
        self, domain: Domain, sent: float, first: Answer | None
    ) -> Generator[simpy.Event, Any, Answer]:
        """The first server answered the query sent at ``sent`` with ``first``: None
        (no answer: its timeout is waited out) or SERVFAIL (the next try at once); then
        the further tries in turn. The answer, or SERVFAIL when no try brought one."""
        env, network, client = self.env, self.network, self.client
        answer = first
        for k, (server, wait) in enumerate(self.tries):
            if k:
                sent = env.now
                rtt = network.link(client, server.id).rtt
                answer = yield from server.lookup(domain, rtt)
                if answer is not None and answer is not SERVFAIL:
                    return answer
            if answer is None:
                rest = sent + wait - env.now
                if rest > 0.0:
                    yield env.timeout(rest)
        self.failures += 1
        return SERVFAIL
