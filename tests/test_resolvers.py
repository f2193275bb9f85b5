"""The resolver side of DNS, hand-computed to 1e-9 s (sim/mail/dns.py, docs/dns.md).

The world is tests/test_dns_failures.py's: the tiny one plus a recipient domain
``there`` and MX hosts one LAN hop off the router; here also ``mx3`` (the same 0.015 s
and 5 MB/s as ``mx2``: a migration's new host) and resolvers ``dns2``, ``dns3`` one
0.001 s hop from the MTA (as ``dns``: round trip 0.002, a lookup 0.2). example.org's
people send one 10,000-byte message every 100 s from t = 100 to ``there``:

    submitted            100.388 (and 200.388, 300.388)
    a lookup             miss 0.202, hit 0.002
    a session to mx2/3   8 round trips of 0.032 + 10,000 B over 5 MB/s = 0.258 to accepted
    accepted -> stored   scan 0.05 + LMTP 0.305 + 0.002 + write 0.01 = 0.367

glibc's stub (resolv.conf defaults timeout:5, attempts:2): a server that does not answer
costs its wait, then the next server; the server at index i >= 1 waits
max(1, (5 << i) // n) for n servers, every round alike (res_send.c's send_dg, whose
``ns`` is the server's index): 1 server 5 + 5 = 10 s, 2 servers 5 + 5 + 5 + 5 = 20 s,
3 servers 5 + 3 + 6 + 5 + 3 + 6 = 28 s. A SERVFAIL is cached for servfail_ttl (1 s,
BIND's default): the stub's next try at the same resolver is answered from the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from sim.config import parse_scenario
from sim.mail.dns import Resolver, glibc_tries
from sim.simulation.build import build
from tests.conftest import assert_key_error, cli, node
from tests.test_accounting import check_books
from tests.test_dns_failures import HIT, MISS, RETRY, SERVFAIL_LINE, SUBMITTED, run, world
from tests.test_errors import write

SESSION = 0.258  # session start -> accepted at mx2 or mx3
STORE = 0.367  # accepted -> delivered
THERE = {"users": 1, "mx": [{"host": "mx2", "preference": 10}], "mailbox": "store"}
NODATA_LINE = (
    "550 5.4.4 Host or domain name not found. Name service error for type=A: "
    "Host found but no data record of requested type"
)


def resolvers_world(there: dict[str, Any] = THERE, duration: float = 150, **mta: Any) -> dict[str, Any]:
    """``world`` with resolvers dns2 and dns3 and the MX host mx3 added."""
    data = world(there, duration=duration, **mta)
    nodes, edges = data["topology"]["nodes"], data["topology"]["edges"]
    nodes += [{"id": "dns2", "kind": "resolver", "lookup": 0.2}, {"id": "dns3", "kind": "resolver", "lookup": 0.2},
              {"id": "mx3", "kind": "mx", "processing": 0.05}]
    edges += [{"a": "mta", "b": "dns2", "latency": 0.001}, {"a": "mta", "b": "dns3", "latency": 0.001},
              {"a": "r", "b": "mx3", "latency": 0.015, "bandwidth": 5.0e6}]
    return data


def down(data: dict[str, Any], resolver: str, start: float = 0, end: float = 10_000) -> None:
    node(data, resolver)["outages"] = [{"start": start, "end": end}]


def stats(res: sim.Results, resolver: str) -> dict[str, float]:
    return res.stats["resolver"][resolver]  # type: ignore[no-any-return]


# -- the stub: timeouts and further servers -------------------------------------------


@pytest.mark.parametrize(
    "servers, timeout, attempts, waits",
    [
        (1, 5, 2, [5, 5]),  # glibc: the first server waits the timeout, every round
        (2, 5, 2, [5, 5, 5, 5]),  # server 1: (5 << 1) // 2 = 5
        (3, 5, 2, [5, 3, 6, 5, 3, 6]),  # server 1: (5 << 1) // 3 = 3; server 2: (5 << 2) // 3 = 6
        (3, 1, 3, [1, 1, 1, 1, 1, 1, 1, 1, 1]),  # (1 << 1) // 3 = 0 -> at least 1; (1 << 2) // 3 = 1
        (2, 30, 5, [30] * 10),
    ],
)
def test_glibc_waits_per_server(servers: int, timeout: int, attempts: int, waits: list[int]) -> None:
    names = ["a", "b", "c"][:servers]
    tries = glibc_tries(names, timeout, attempts)
    assert [wait for _, wait in tries] == waits
    assert [name for name, _ in tries] == names * attempts  # the servers in order, each round


def test_a_dead_first_resolver_costs_its_timeout_then_the_second_answers() -> None:
    """dns is down: the query sent at 100.388 is unanswered; after timeout:5 the stub
    asks dns2 at 105.388, a miss: the answer at 105.590, the session then, accepted
    105.848, delivered 106.215. One attempt, no deferral."""
    data = resolvers_world(resolvers=["dns", "dns2"])
    del node(data, "mta")["resolver"]
    down(data, "dns")
    res = run(data)
    row = res.messages.loc[0]
    assert row["status"] == "delivered" and row["attempts"] == 1 and row["deferrals"] == 0
    assert row["accepted"] == pytest.approx(SUBMITTED + 5 + MISS + SESSION, abs=1e-9)
    assert row["accepted"] == pytest.approx(105.848, abs=1e-9)
    assert row["delivered"] == pytest.approx(106.215, abs=1e-9)
    first, second = stats(res, "dns"), stats(res, "dns2")
    assert (first["queries"], first["timeouts"], first["resolutions"]) == (1, 1, 0)
    assert (second["queries"], second["timeouts"], second["resolutions"]) == (1, 0, 1)
    assert second["resolution_mean"] == pytest.approx(0.2, abs=1e-12)


@pytest.mark.parametrize("servers, total", [(["dns"], 10), (["dns", "dns2"], 20), (["dns", "dns2", "dns3"], 28)])
def test_no_resolver_answers_the_rows_defer_with_443_then_retry(servers: list[str], total: float) -> None:
    """Every server is down until 200: the stub gives up at 100.388 + total (10, 20 or
    28 s, above) and the row is deferred with 451 4.4.3 recorded. Postfix's backoff in
    whole seconds: due floor(now) + max(300, age) = 410, 420 or 428 (queue_run_delay
    0: released then). The servers are back: a miss, accepted due + 0.460."""
    data = resolvers_world(resolvers=servers, **RETRY)
    del node(data, "mta")["resolver"]
    for name in servers:
        down(data, name, 0, 200)
    data["drain"] = 200  # the run ends at 350, before the retry: the deferral is seen
    res = run(data)
    row = res.messages.loc[0]
    assert row["status"] == "in_flight" and row["where"] == "mta" and row["deferrals"] == 1
    assert row["final_reply"] == SERVFAIL_LINE
    assert sum(stats(res, name)["timeouts"] for name in servers) == {10: 2, 20: 4, 28: 6}[total]
    data["drain"] = 1000
    row = run(data).messages.loc[0]
    due = 100 + total + 300
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert row["accepted"] == pytest.approx(due + MISS + SESSION, abs=1e-9)


def test_the_deferral_is_at_the_end_of_the_last_timeout() -> None:
    """With the attempts table: the one attempt's 451 4.4.3 is recorded when the stub
    gives up, 100.388 + 10 (one server: 5 + 5); no session was tried."""
    data = resolvers_world(**RETRY)
    down(data, "dns", 0, 200)
    res = run(data)
    row = res.messages.loc[0]
    # The retry is due floor(110.388) + 300 = 410: a miss, accepted 410.460.
    assert row["accepted"] == pytest.approx(410 + MISS + SESSION, abs=1e-9)
    a = res.attempts
    assert a is not None
    tries = a[(a["id"] == 0) & (a["hop"] == 1)]
    # The first attempt ended at the lookup (host_order 0, dst the resolver, 451 4.4.3,
    # deferred, from 100.388 to 110.388); the retry's session at mx2.
    assert list(tries["dst"]) == ["dns", "mx2"] and list(tries["host_order"]) == [0, 1]
    assert list(tries["enhanced"]) == ["4.4.3", "2.0.0"] and list(tries["outcome"]) == ["deferred", "delivered"]
    assert list(tries["end"])[0] == pytest.approx(SUBMITTED + 10, abs=1e-9)


def test_a_failed_lookup_is_a_failed_session_for_the_destination() -> None:
    """As a SERVFAIL: with an initial window of 1, the stub's failure at 110.388 kills
    the destination until 110.388 + 300 = 410.388. The retry due at 410 finds it dead
    and is deferred at once: due floor(410) + age 310 = 720; then a miss, accepted
    720.460."""
    data = resolvers_world(initial_destination_concurrency=1, **RETRY)
    down(data, "dns", 0, 200)
    row = run(data).messages.loc[0]
    assert row["status"] == "delivered" and row["attempts"] == 2 and row["deferrals"] == 2
    assert row["accepted"] == pytest.approx(720 + MISS + SESSION, abs=1e-9)


def test_a_servfail_sends_the_stub_to_its_next_try_at_once() -> None:
    """``there`` SERVFAILs from 0 to 150; resolvers [dns, dns2]. The first try at each
    is a miss answered SERVFAIL after 0.202 (and cached for servfail_ttl, 1 s), and
    glibc moves on at once: dns 100.388-100.590, dns2 -100.792; the second round is
    answered from the caches: dns -100.794, dns2 -100.796: deferred at 100.796 with
    451 4.4.3. Due floor(100.796) + 300 = 400: dns resolves, accepted 400.460."""
    there = dict(THERE, dns_failures=[{"start": 0, "end": 150}])
    data = resolvers_world(there, resolvers=["dns", "dns2"], **RETRY)
    del node(data, "mta")["resolver"]
    res = run(data)
    row = res.messages.loc[0]
    assert row["status"] == "delivered" and row["attempts"] == 2 and row["deferrals"] == 1
    assert row["accepted"] == pytest.approx(400 + MISS + SESSION, abs=1e-9)
    first, second = stats(res, "dns"), stats(res, "dns2")
    assert (first["servfails"], first["servfail_hits"], first["resolutions"]) == (1, 1, 2)
    assert (second["servfails"], second["servfail_hits"], second["resolutions"]) == (1, 1, 1)
    model = build(parse_scenario(data))
    model.run(until=100.796 - 1e-6)
    assert model.node("mta").stub.failures == 0 and model.node("mta").deferred.rows() == 0
    model.run(until=100.796 + 1e-6)
    assert model.node("mta").stub.failures == 1 and model.node("mta").deferred.rows() == 1


# -- outages: a resolution cut short, a cache lost ------------------------------------


def test_a_resolver_that_goes_down_mid_resolution_answers_no_one() -> None:
    """dns resolves from 100.388 to 100.588 and goes down at 100.5 (up again at 103):
    the asker gets no answer and its try times out at 105.388; the second round (10 s)
    asks dns again, up with an empty cache: a miss, the answer at 105.590, accepted
    105.848. The lost resolution was not counted nor cached."""
    data = resolvers_world()
    down(data, "dns", 100.5, 103)
    res = run(data)
    row = res.messages.loc[0]
    assert row["status"] == "delivered" and row["attempts"] == 1
    assert row["accepted"] == pytest.approx(105.848, abs=1e-9)
    s = stats(res, "dns")
    assert (s["queries"], s["timeouts"], s["resolutions"], s["cache_hits"]) == (2, 1, 1, 0)


@pytest.mark.parametrize("outage, second", [(None, HIT), ((150, 160), MISS)])
def test_a_restarted_resolver_starts_with_an_empty_cache(outage: tuple[float, float] | None, second: float) -> None:
    """The first answer is cached from 100.590 for the MX TTL 3600 s. The second
    message's lookup at 200.388 is a hit (0.002), unless dns was down from 150 to 160:
    its cache was lost, a miss (0.202)."""
    there = dict(THERE, mx_ttl=3600)
    data = resolvers_world(there, duration=250)
    if outage is not None:
        down(data, "dns", *outage)
    res = run(data)
    rows = res.messages
    assert list(rows["status"]) == ["delivered", "delivered"]
    assert rows.loc[1, "accepted"] == pytest.approx(SUBMITTED + 100 + second + SESSION, abs=1e-9)
    assert stats(res, "dns")["cache_hits"] == (1 if second == HIT else 0)


# -- NODATA ----------------------------------------------------------------------------


@pytest.mark.parametrize("negative_ttl, second", [(3600, HIT), (50, MISS)])
def test_nodata_bounces_with_554_and_is_cached_for_the_soa_minimum(negative_ttl: float, second: float) -> None:
    """``there`` exists with neither MX nor host: NODATA. The first row bounces at
    100.388 + 0.202 = 100.590 with 550 5.4.4, a DSN to example.org follows; the
    answer is cached for min(negative_ttl, max_negative_ttl 3600): the second lookup
    at 200.388 is a hit (+0.002) when 3600, a miss (+0.202) when 50 (expired at
    150.590)."""
    res = run(resolvers_world({"negative_ttl": negative_ttl}, duration=250))
    m = res.messages
    parents = m[m["kind"] != "dsn"].reset_index()
    assert list(parents["status"]) == ["bounced", "bounced"]
    assert list(parents["final_reply"]) == [NODATA_LINE] * 2
    assert list(parents["reason"]) == ["domain receives no mail"] * 2
    assert parents.loc[0, "ended"] == pytest.approx(100.590, abs=1e-9)
    assert parents.loc[1, "ended"] == pytest.approx(SUBMITTED + 100 + second, abs=1e-9)
    assert (m["kind"] == "dsn").sum() == 2
    s = stats(res, "dns")
    # Queries: there twice and example.org per DSN (its MX TTL 150 s: the second a hit).
    assert s["queries"] == 4
    assert s["negative_hits"] == (1 if second == HIT else 0)
    assert s["cache_hits"] == s["negative_hits"] + 1
    assert s["hit_rate"] == pytest.approx(s["cache_hits"] / 4, abs=1e-12)


def test_a_domain_with_no_records_is_a_recipient_that_bounces() -> None:
    """Before NODATA such a recipient was refused at load ("no MX records and no
    host"); a domain with users still needs somewhere to receive."""
    parse_scenario(resolvers_world({}))
    with pytest.raises(Exception, match="has users but no MX records and no host"):
        parse_scenario(resolvers_world({"users": 1, "mailbox": "store"}))


# -- the cache's size limit ------------------------------------------------------------


def test_the_least_recently_used_answer_is_evicted() -> None:
    """cache_size 2, lookups at t = 0 of a, b, a, c, b, a (each miss 0.2, rtt 0):
    [a] [a b] hit a -> [b a], c evicts b -> [a c], b evicts a -> [c b], a evicts c
    -> [b a]. Without the hit's touch, c would evict a and b would be a hit."""
    data = resolvers_world()
    data["domains"] += [{"name": name, "users": 1, "mx": [{"host": "mx2", "preference": 1}], "mailbox": "store"}
                        for name in ("a", "b", "c")]
    node(data, "dns")["cache_size"] = 2
    model = build(parse_scenario(data))
    dns: Resolver = model.node("dns")
    directory = model.ctx.domains
    seen: list[tuple[str, float]] = []

    def asker() -> Any:
        for name in "abacba":
            yield from dns.lookup(directory[name], 0.0)
            seen.append((name, model.env.now))

    model.env.process(asker())
    model.env.run(until=10)
    assert [t for _, t in seen] == pytest.approx([0.2, 0.4, 0.4, 0.6, 0.8, 1.0], abs=1e-12)
    assert (dns.queries, dns.hits, dns.evictions) == (6, 1, 3)
    assert list(dns._cache) == [directory["b"].index, directory["a"].index]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(1, 4), names=st.lists(st.sampled_from("abcdef"), min_size=1, max_size=30))
def test_the_cache_is_a_least_recently_used_list(size: int, names: list[str]) -> None:
    """Lookups one after another (each miss 0.2 s, TTLs of an hour): the resolver's
    hits, evictions and final order equal those of a plain LRU list kept by hand."""
    data = resolvers_world()
    data["domains"] += [{"name": n, "users": 1, "mx": [{"host": "mx2", "preference": 1}], "mailbox": "store",
                         "mx_ttl": 3600} for n in "abcdef"]
    node(data, "dns")["cache_size"] = size
    model = build(parse_scenario(data))
    dns: Resolver = model.node("dns")
    directory = model.ctx.domains

    def asker() -> Any:
        for name in names:
            yield from dns.lookup(directory[name], 0.0)

    model.env.process(asker())
    model.env.run(until=100)
    order: list[str] = []  # least recently used first
    hits = evictions = 0
    for name in names:
        if name in order:
            hits += 1
            order.remove(name)
        order.append(name)
        if len(order) > size:
            order.pop(0)
            evictions += 1
    assert (dns.hits, dns.evictions) == (hits, evictions)
    assert list(dns._cache) == [directory[n].index for n in order]


def test_an_unlimited_cache_evicts_nothing() -> None:
    model = build(parse_scenario(resolvers_world()))
    dns: Resolver = model.node("dns")
    assert dns._lru is None and type(dns._cache) is dict


# -- MX changes: the migration ---------------------------------------------------------


MIGRATING = dict(THERE, mx_ttl=150, mx_changes=[{"at": 150, "mx": [{"host": "mx3", "preference": 10}]}])


@pytest.mark.parametrize("cache, hosts", [(True, ["mx2", "mx2", "mx3"]), (False, ["mx2", "mx3", "mx3"])])
def test_a_cached_answer_sends_to_the_old_host_until_it_expires(cache: bool, hosts: list[str]) -> None:
    """The zone moves from mx2 to mx3 at 150. The first answer (mx2) is cached from
    100.590 until 250.590: the second message (lookup at 200.388, a hit) still goes to
    mx2; the third (300.388) resolves afresh and goes to mx3. A resolver that caches
    nothing sends the second to mx3 already (a miss at 200.388)."""
    data = resolvers_world(MIGRATING, duration=350)
    node(data, "dns")["cache"] = cache
    res = run(data)
    m = res.messages
    assert list(m["mx_host"]) == hosts and list(m["status"]) == ["delivered"] * 3
    second = HIT if cache else MISS
    assert m.loc[1, "accepted"] == pytest.approx(SUBMITTED + 100 + second + SESSION, abs=1e-9)
    assert m.loc[2, "accepted"] == pytest.approx(SUBMITTED + 200 + MISS + SESSION, abs=1e-9)


def test_the_old_host_switched_off_holds_mail_until_the_ttl_runs_out() -> None:
    """As above, and mx2 goes down (no answer) at 180. The second message's cached
    answer still names mx2: connect timeout 30 s from 200.390, deferred at 230.390
    (4.4.1), due floor(230.390) + max(300, age 30) = 530. By then the cached answer
    has expired (250.590): a miss, mx3, accepted 530.460."""
    data = resolvers_world(MIGRATING, duration=250, **RETRY)
    node(data, "mx2")["outages"] = [{"start": 180, "end": 10_000}]
    res = run(data)
    m = res.messages
    assert list(m["mx_host"]) == ["mx2", "mx3"]
    assert m.loc[1, "attempts"] == 2 and m.loc[1, "deferrals"] == 1
    assert m.loc[1, "accepted"] == pytest.approx(530 + MISS + SESSION, abs=1e-9)
    a = res.attempts
    assert a is not None
    first = a[(a["id"] == 1) & (a["hop"] == 1)].iloc[0]
    assert first["dst"] == "mx2" and first["enhanced"] == "4.4.1"
    assert first["end"] == pytest.approx(200.388 + HIT + 30, abs=1e-9)


def test_no_process_without_mx_changes() -> None:
    """A domain without changes costs no process; one with changes costs its process
    (start, one timeout per change, end)."""
    from sim.core.counting import CountingEnvironment

    def events(there: dict[str, Any]) -> int:
        env = CountingEnvironment()
        model = build(parse_scenario(resolvers_world(there, duration=350)), env=env)
        model.run()
        return env.scheduled  # type: ignore[no-any-return]

    still = events(dict(THERE, mx_ttl=150))
    # A change to the same records: the mail goes where it went, and the difference is
    # the process's start, its timeout to 150 and its end.
    same = [{"at": 150, "mx": [{"host": "mx2", "preference": 10}]}]
    assert events(dict(THERE, mx_ttl=150, mx_changes=same)) - still == 3


# -- keys and their errors -------------------------------------------------------------


@pytest.mark.parametrize(
    "change, key, problem",
    [
        ({"resolvers": ["dns2"]}, "topology.nodes[mta]", "give resolver (one resolver) or resolvers"),
        ({"resolver": None, "resolvers": ["dns", "dns2", "dns3", "dns"]}, "topology.nodes[mta]",
         "resolvers lists 1 to 3 resolvers"),
        ({"resolver": None, "resolvers": ["dns", "dns"]}, "topology.nodes[mta]", "listed twice"),
        ({"resolver": None, "resolvers": ["dns", "mx2"]}, "topology.nodes[mta].resolvers[1]",
         "'mx2' is an mx node, not a resolver node"),
        ({"resolver_timeout": 31}, "topology.nodes[mta].resolver_timeout", "less than or equal to 30"),
        ({"resolver_attempts": 0}, "topology.nodes[mta].resolver_attempts", "greater than or equal to 1"),
    ],
)
def test_bad_resolver_keys_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], key: str, problem: str
) -> None:
    data = resolvers_world()
    mta = node(data, "mta")
    mta.update(change)
    if mta.get("resolver", "") is None:
        del mta["resolver"]
    path = write(tmp_path, data)
    assert_key_error(["run", str(path), "--out", str(tmp_path / "out")], capsys, path, key, problem)


@pytest.mark.parametrize(
    "change, key, problem",
    [
        ({"mx_changes": [{"at": 200, "mx": []}, {"at": 100, "mx": []}]}, "domains[there]",
         "mx_changes must be in time order: 100.0 follows 200.0"),
        ({"mx_changes": [{"at": 100, "mx": [{"host": "nowhere", "preference": 1}]}]},
         "domains[there].mx_changes[0].mx[0].host", "'nowhere' is not a node of the topology"),
        ({"mx": [], "exists": False, "users": 0, "mailbox": None, "mx_changes": [{"at": 1, "mx": []}]},
         "domains[there]", "a domain with exists: false has no MX changes"),
    ],
)
def test_bad_mx_changes_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], key: str, problem: str
) -> None:
    there = {k: v for k, v in {**THERE, **change}.items() if v is not None}
    path = write(tmp_path, resolvers_world(there))
    code, out, err = cli(["run", str(path), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and out == ""
    assert err.strip().startswith(f"mailflow: {path}: {key}: "), err
    assert problem in err


@pytest.mark.parametrize("where", ["node", "outage"])
def test_a_refusing_first_resolver_costs_a_round_trip(where: str) -> None:
    """dns is down with its port closed (the node's ``answer: refuse``, or the
    outage's): the query sent at 100.388 is refused after the round trip (100.390) and
    glibc asks dns2 at once: a miss, the answer at 100.592, accepted 100.850."""
    data = resolvers_world(resolvers=["dns", "dns2"])
    del node(data, "mta")["resolver"]
    down(data, "dns")
    if where == "node":
        node(data, "dns")["answer"] = "refuse"
    else:
        node(data, "dns")["outages"][0]["answer"] = "refuse"
    res = run(data)
    row = res.messages.loc[0]
    assert row["status"] == "delivered" and row["attempts"] == 1
    assert row["accepted"] == pytest.approx(SUBMITTED + HIT + MISS + SESSION, abs=1e-9)
    assert row["accepted"] == pytest.approx(100.850, abs=1e-9)
    s = stats(res, "dns")
    assert (s["queries"], s["refused"], s["timeouts"], s["hit_rate"]) == (1, 1, 0, 0.0)


def test_a_refusing_resolver_alone_fails_the_lookup_in_round_trips() -> None:
    """One resolver, refusing, two attempts: refused at 100.390 and 100.392, then the
    row is deferred with 451 4.4.3: due floor(100.392) + 300 = 400, when dns is back
    (outage to 200): a miss, accepted 400.460."""
    data = resolvers_world(**RETRY)
    down(data, "dns", 0, 200)
    node(data, "dns")["answer"] = "refuse"
    res = run(data)
    row = res.messages.loc[0]
    assert row["status"] == "delivered" and row["attempts"] == 2 and row["deferrals"] == 1
    assert row["accepted"] == pytest.approx(400 + MISS + SESSION, abs=1e-9)
    assert stats(res, "dns")["refused"] == 2
    model = build(parse_scenario(data))
    model.run(until=100.392 - 1e-6)
    assert model.node("mta").deferred.rows() == 0
    model.run(until=100.392 + 1e-6)
    assert model.node("mta").deferred.rows() == 1


def test_a_dump_keeps_the_form_given() -> None:
    """``resolver: dns`` dumps as written (existing scenarios and sweeps over
    ``resolver`` are unchanged); ``resolvers`` dumps as a list."""
    one = parse_scenario(resolvers_world())
    dumped = next(n for n in one.model_dump(mode="json")["topology"]["nodes"] if n["id"] == "mta")
    assert dumped["resolver"] == "dns" and "resolvers" not in dumped
    data = resolvers_world(resolvers=["dns2", "dns"])
    del node(data, "mta")["resolver"]
    two = parse_scenario(data)
    dumped = next(n for n in two.model_dump(mode="json")["topology"]["nodes"] if n["id"] == "mta")
    assert dumped["resolvers"] == ["dns2", "dns"] and "resolver" not in dumped
    assert parse_scenario(two.model_dump(mode="json")) == two


def test_further_servers_cost_nothing_while_the_first_answers() -> None:
    """The stub is entered only when the first server does not answer: a run with
    resolvers [dns, dns2, dns3] schedules exactly the events of one with dns alone."""
    from sim.core.counting import CountingEnvironment

    def events(**mta: Any) -> int:
        data = resolvers_world(duration=350, **mta)
        if "resolvers" in mta:
            del node(data, "mta")["resolver"]
        env = CountingEnvironment()
        model = build(parse_scenario(data), env=env)
        model.run()
        assert model.node("mta").stub.failures == 0
        return env.scheduled  # type: ignore[no-any-return]

    assert events(resolvers=["dns", "dns2", "dns3"]) == events()


def test_neither_resolver_key_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = resolvers_world()
    del node(data, "mta")["resolver"]
    path = write(tmp_path, data)
    code, _, err = cli(["validate", str(path)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"mailflow: {path}: topology.nodes[mta]: ")
    assert "give resolver (a resolver node) or resolvers (a list)" in err


# -- the migration scenario's figures (docs/dns.md) ----------------------------------------


MIGRATION = Path(__file__).resolve().parent.parent / "topologies" / "mx-migration.yaml"


@pytest.mark.parametrize(
    "sets, to_old, deferred, unanswered, last_old",
    [
        ([], 887, 1281, 126, 8107),
        (["topology.nodes[old-mx].outages[0].start=9000"], 2067, 0, 0, 8395),
        (["domains[shop.example].mx_ttl=300"], 46, 0, 0, 5472),
    ],
)
def test_the_migration_figures_in_dns_md(
    sets: list[str], to_old: int, deferred: int, unanswered: int, last_old: int
) -> None:
    """docs/dns.md's table, seed 1: mail accepted at old-mx after the change at 5,400 s,
    rows deferred, sessions to old-mx unanswered, the last attempt there; every row
    delivered but the 2 over the size limit; the run repeats exactly."""
    scenario = sim.load_scenario(MIGRATION, sets)
    res = sim.run(scenario, trace=True)
    m = res.messages
    check_books(m)
    parents = m[m["kind"] != "dsn"]
    assert dict(parents["status"].value_counts()) == {"delivered": 21_324, "bounced": 2, "in_flight": 0, "lost": 0}
    old = parents[parents["mx_host"] == "old-mx"]
    assert (old["accepted"] >= 5400).sum() == to_old
    assert (parents["deferrals"] > 0).sum() == deferred
    a = res.attempts
    assert a is not None
    at_old = a[(a["hop"] == 1) & (a["dst"] == "old-mx")]
    assert (at_old["outcome"] != "delivered").sum() == unanswered
    assert round(at_old["start"].max()) == last_old
    assert res.stats["resolver"]["south-dns1"]["timeouts"] == 224
    if not sets:
        assert sim.run(scenario, trace=True).messages.equals(m)



def test_a_resolvers_reasons_to_be_down_add_up() -> None:
    """A hook takes dns down at 50 for good; a scheduled outage from 60 to 70 ends, but
    does not bring it up: the message at 100.388 never gets an answer (in flight at
    the end, 451 4.4.3). A reason given as the hooks of MX hosts give it is a reason,
    not a way of answering: the node's own (none: silence)."""
    data = resolvers_world()
    down(data, "dns", 60, 70)
    res = sim.run(parse_scenario(data), hook=lambda model: model.at(50, lambda: model.node("dns").set_up(False)))
    row = res.messages.loc[0]
    assert row["status"] == "in_flight" and row["final_reply"] == SERVFAIL_LINE
    model = build(parse_scenario(resolvers_world()))
    model.node("dns").set_up(False, "maintenance")
    assert not model.node("dns").up and not model.node("dns").refusing
    model.node("dns").set_up(True, "another")
    assert not model.node("dns").up
    model.node("dns").set_up(True, "maintenance")
    assert model.node("dns").up


def test_an_answer_is_cached_with_the_ttl_it_came_with() -> None:
    """``there`` is NODATA (negative_ttl 60) until 150.1, then has records with
    mx_ttl 86400. A resolution that starts at 150.0 (before the change) answers NODATA
    at 150.2 and caches it for the NODATA's 60 s, not for the new records' day."""
    there = dict(THERE, mx=[], negative_ttl=60, mx_ttl=86400,
                 mx_changes=[{"at": 150.1, "mx": [{"host": "mx3", "preference": 10}]}])
    model = build(parse_scenario(resolvers_world(there, duration=1)))
    dns, domain = model.node("dns"), model.ctx.domains["there"]
    model.ctx.domains.start(model.env)
    got: list[Any] = []

    def asker() -> Any:
        yield model.env.timeout(150.0)
        got.append((yield from dns.lookup(domain, 0.0)))

    model.env.process(asker())
    model.env.run(until=151)
    assert got[0].enhanced == "5.4.4"
    expiry, _ = dns._cache[domain.index]
    assert expiry == pytest.approx(150.2 + 60, abs=1e-9)


def test_mail_for_a_dead_destination_keeps_the_reply_that_closed_it() -> None:
    """As above (initial window 1, dns down until 200): the first message's lookup fails
    at 110.388 and kills the destination until 410.388. The second message, submitted
    at 200.388, is deferred at once without an attempt; it is told why: the 451 4.4.3
    that closed the destination (Postfix: "delivery temporarily suspended")."""
    data = resolvers_world(initial_destination_concurrency=1, duration=250, **RETRY)
    down(data, "dns", 0, 200)
    data["drain"] = 50  # the run ends at 300, with both rows waiting
    m = run(data).messages
    assert list(m["status"]) == ["in_flight", "in_flight"]
    assert list(m["deferrals"]) == [1, 1]
    assert list(m["final_reply"]) == [SERVFAIL_LINE, SERVFAIL_LINE]
