"""Authoritative name servers as nodes: the resolver's walk, hand-computed to 1e-9 s.

The tiny world (tests/conftest.py) with two authoritative servers for example.org
(``ns: [ns1, ns2]``), each one link off the router, answering in 0.001 s:

    dns -> mta -> r -> ns1   0.001 + 0.001 + 0.010 = 0.012 s one way, round trip 0.024
    dns -> mta -> r -> ns2   0.001 + 0.001 + 0.030 = 0.032 s one way, round trip 0.064
    mta -> dns               round trip 0.002 (the stub's query and answer)

So a query answered by ns1 costs 0.024 + 0.001 = 0.025, by ns2 0.064 + 0.001 = 0.065,
and a silent server the resolver's 0.376 (Unbound's unknown-server-time-limit).

example.org's people send one 10,000-byte message every 100 s from t = 100 to
example.org, submitted at 100.388 + 100 k (9 round trips of 0.042 + 10,000 B at 1 MB/s,
tests/test_dns_failures.py). After the lookup the session to ``mx`` takes 8 round trips
of 0.032 and 10,000 B over 5 MB/s: accepted = lookup end + 0.258.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from sim.config import load_scenario, parse_scenario
from sim.mail.authoritative import AuthoritativeServer
from tests.conftest import assert_key_error, cli, node, tiny_data
from tests.test_accounting import balanced, check_books
from tests.test_errors import write

ROOT = Path(__file__).resolve().parent.parent
SUBMITTED = 100.0 + 9 * 0.042 + 10_000 / 1e6  # 100.388
STUB = 0.002  # mta <-> dns
NS1, NS2 = 0.024 + 0.001, 0.064 + 0.001  # a query answered by each
TIMEOUT = 0.376
SESSION = 8 * 0.032 + 10_000 / 5e6  # connect to "." at mx: 0.258
SERVFAIL_LINE = "451 4.4.3 Host or domain name not found, try again"


def world(duration: float = 150, ns: list[str] | None = None, **domain: Any) -> dict[str, Any]:
    """The tiny world with ns1 and ns2 serving example.org (``ns``, default both)."""
    data = tiny_data(duration=duration)
    data["topology"]["nodes"] += [
        {"id": "ns1", "kind": "authoritative", "processing": 0.001},
        {"id": "ns2", "kind": "authoritative", "processing": 0.001},
    ]
    data["topology"]["edges"] += [
        {"a": "r", "b": "ns1", "latency": 0.010},
        {"a": "r", "b": "ns2", "latency": 0.030},
    ]
    data["domains"][0].update({"ns": ["ns1", "ns2"] if ns is None else ns, **domain})
    return data


def run(data: dict[str, Any]) -> sim.Results:
    res = sim.run(parse_scenario(data), trace=True)
    check_books(res.messages)
    return res


def accepted(res: sim.Results) -> list[float]:
    return [float(t) for t in res.messages.sort_index()["accepted"]]


def test_a_cold_lookup_costs_the_round_trip_to_the_nearest_server() -> None:
    res = run(world())
    # The MX query goes to ns1 (nearer): 0.025; mx's address comes with the answer (the
    # additional section: mx names no zone servers of its own). Then the stub's 0.002.
    assert accepted(res) == pytest.approx([SUBMITTED + NS1 + STUB + SESSION], abs=1e-9)
    assert accepted(res)[0] == pytest.approx(100.673, abs=1e-9)
    stats = res.stats
    assert stats["authoritative"]["ns1"] == {"answered": 1, "unanswered": 0, "refused": 0}
    assert stats["authoritative"]["ns2"]["answered"] == 0
    assert stats["resolver"]["dns"]["ns_queries"] == 1


def test_a_host_in_another_zone_costs_a_second_query() -> None:
    # mx's name is in a zone served by ns2 alone (a provider's): the MX answer from ns1
    # carries no address; the A query to ns2 follows: 0.025 + 0.065.
    data = world()
    node(data, "mx")["ns"] = ["ns2"]
    res = run(data)
    assert accepted(res) == pytest.approx([SUBMITTED + NS1 + NS2 + STUB + SESSION], abs=1e-9)
    assert res.stats["resolver"]["dns"]["ns_queries"] == 2
    # Served by ns1 as well: ns1 gives it with the MX answer again.
    node(data, "mx")["ns"] = ["ns2", "ns1"]
    assert accepted(run(data)) == pytest.approx([SUBMITTED + NS1 + STUB + SESSION], abs=1e-9)


def test_an_implicit_mx_needs_its_own_address_query() -> None:
    # No MX records, host: mx. The MX query answers no records (nothing in the
    # additional section), then the address query to the same nearest server: 2 x 0.025.
    res = run(world(mx=[], host="mx"))
    assert accepted(res) == pytest.approx([SUBMITTED + 2 * NS1 + STUB + SESSION], abs=1e-9)


def test_a_cached_answer_costs_the_stub_round_trip_only() -> None:
    # First walk ends at 100.388 + 0.025 = 100.413: MX cached for mx_ttl 150 (to
    # 250.413), the address for a_ttl 300 (to 400.413). At 200.388: a hit, 0.002.
    res = run(world(duration=250))
    assert accepted(res) == pytest.approx(
        [SUBMITTED + NS1 + STUB + SESSION, SUBMITTED + 100 + STUB + SESSION], abs=1e-9
    )
    stats = res.stats["resolver"]["dns"]
    assert stats["cache_hits"] == 1 and stats["ns_queries"] == 1


def test_the_address_expires_before_the_mx_and_is_fetched_alone() -> None:
    # a_ttl 50: the address fetched at 100.413 expires at 150.413, the MX at 250.413.
    # At 200.388 the answer is stale (the first of its records expired): the walk asks
    # ns1 for mx's address alone (0.025); the MX is not asked again. At 300.388 the MX
    # has expired (250.413): asked again, the address with it (0.025).
    data = world(duration=350)
    node(data, "mx")["a_ttl"] = 50
    res = run(data)
    assert accepted(res) == pytest.approx(
        [SUBMITTED + k * 100 + NS1 + STUB + SESSION for k in range(3)], abs=1e-9
    )
    stats = res.stats["resolver"]["dns"]
    assert stats["ns_queries"] == 3 and stats["cache_hits"] == 0
    assert res.stats["authoritative"]["ns1"]["answered"] == 3


def test_the_resolver_caps_each_record_at_max_ttl() -> None:
    # max_ttl 60 caps the address (300) and the MX (150) alike: the walk at 100.388
    # caches both to 160.413; at 200.388 both are asked again, the address with the MX.
    data = world(duration=250)
    node(data, "dns")["max_ttl"] = 60
    res = run(data)
    assert accepted(res)[1] == pytest.approx(SUBMITTED + 100 + NS1 + STUB + SESSION, abs=1e-9)
    assert res.stats["resolver"]["dns"]["ns_queries"] == 2


def test_a_silent_server_costs_the_timeout_then_the_next_answers() -> None:
    # ns1 is down (no answer) all run: the query to it times out after 0.376 at
    # 100.764, ns2 answers 0.065 later. The MX (mx_ttl 150) is cached to 250.829; the
    # second message (200.388) hits. The third (300.388) misses: ns1 timed out 199.6 s
    # ago, within Unbound's infra-host-ttl (900 s), so ns2 is asked first: 0.065.
    data = world(duration=350)
    node(data, "ns1")["outages"] = [{"start": 0, "end": 10_000}]
    res = run(data)
    assert accepted(res) == pytest.approx([
        SUBMITTED + TIMEOUT + NS2 + STUB + SESSION,
        SUBMITTED + 100 + STUB + SESSION,
        SUBMITTED + 200 + NS2 + STUB + SESSION,
    ], abs=1e-9)
    stats = res.stats
    assert stats["authoritative"]["ns1"] == {"answered": 0, "unanswered": 1, "refused": 0}
    assert stats["authoritative"]["ns2"]["answered"] == 2
    assert stats["resolver"]["dns"]["ns_timeouts"] == 1


def test_without_the_memory_the_silent_server_is_asked_first_again() -> None:
    # infra_host_ttl 0: nothing is remembered; the third walk pays the timeout again.
    data = world(duration=350)
    node(data, "ns1")["outages"] = [{"start": 0, "end": 10_000}]
    node(data, "dns")["infra_host_ttl"] = 0
    res = run(data)
    assert accepted(res)[2] == pytest.approx(SUBMITTED + 200 + TIMEOUT + NS2 + STUB + SESSION, abs=1e-9)
    assert res.stats["authoritative"]["ns1"]["unanswered"] == 2


def test_a_hook_takes_a_server_down_and_reasons_add_up() -> None:
    # ns1 taken down by a hook (refusing) and by its own silent outage: the silent
    # reason wins (0.376, then ns2); ending the outage leaves the hook's reason.
    data = world(duration=250)
    node(data, "ns1")["outages"] = [{"start": 0, "end": 150}]
    node(data, "dns")["infra_host_ttl"] = 0
    node(data, "mx")["a_ttl"] = 0
    data["domains"][0]["mx_ttl"] = 0

    def hook(model: Any) -> None:
        model.node("ns1").set_up(False, "fault", refuse=True)

    res = sim.run(parse_scenario(data), hook=hook)
    assert accepted(res) == pytest.approx([
        SUBMITTED + TIMEOUT + NS2 + STUB + SESSION,  # silent outage and the hook: silent
        SUBMITTED + 100 + 0.024 + NS2 + STUB + SESSION,  # the hook's alone: refused
    ], abs=1e-9)
    assert res.stats["authoritative"]["ns1"] == {"answered": 0, "unanswered": 1, "refused": 1}


def test_a_refusing_server_costs_its_round_trip() -> None:
    # ns1 is down refusing (port closed: ICMP unreachable back after 0.024): then ns2.
    data = world()
    node(data, "ns1").update(answer="refuse", outages=[{"start": 0, "end": 10_000}])
    res = run(data)
    assert accepted(res) == pytest.approx([SUBMITTED + 0.024 + NS2 + STUB + SESSION], abs=1e-9)
    assert res.stats["authoritative"]["ns1"] == {"answered": 0, "unanswered": 0, "refused": 1}
    assert res.stats["resolver"]["dns"]["ns_timeouts"] == 0


def test_all_servers_down_is_servfail_deferred_with_443_then_the_retry() -> None:
    # Both down until 150: ns1 times out at 100.764, ns2 at 101.140: SERVFAIL (cached
    # for servfail_ttl, 1 s), the stub hears it at 101.142. glibc's stub leaves a
    # SERVFAIL for its next try at once (resolver_attempts 2, one resolver: the same
    # resolver again; sim.mail.dns.Stub): answered from the cache at 101.144: deferred
    # with 451 4.4.3. A retry 100 s after the failure (intervals, no scan grid) at
    # 201.144; both servers are remembered as timed out (equal rank): the nearer, ns1,
    # first, up again: 0.025.
    data = world(duration=150)
    for ns in ("ns1", "ns2"):
        node(data, ns)["outages"] = [{"start": 0, "end": 150}]
    node(data, "mta").update(queue_run_delay=0, retry={"intervals": [100], "give_up": 86400})
    res = run(data)
    row = res.messages.loc[0]
    assert row["status"] == "delivered" and row["attempts"] == 2 and row["deferrals"] == 1
    deferred = SUBMITTED + 2 * TIMEOUT + 2 * STUB
    assert deferred == pytest.approx(101.144, abs=1e-9)
    assert row["accepted"] == pytest.approx(deferred + 100 + NS1 + STUB + SESSION, abs=1e-9)
    a = res.attempts
    assert a is not None  # the first attempt ended at the lookup (host_order 0), deferred
    tries = a[(a["id"] == 0) & (a["hop"] == 1)]
    assert list(tries["attempt"]) == [1, 2] and list(tries["host_order"]) == [0, 1]
    assert list(tries["enhanced"]) == ["4.4.3", "2.0.0"]
    assert res.stats["resolver"]["dns"]["ns_timeouts"] == 2
    assert res.stats["authoritative"]["ns1"] == {"answered": 1, "unanswered": 1, "refused": 0}


def test_all_servers_down_at_the_end_leaves_the_row_in_flight_with_443() -> None:
    data = world(duration=150)
    for ns in ("ns1", "ns2"):
        node(data, ns)["outages"] = [{"start": 0, "end": 10_000}]
    data["drain"] = 100
    row = run(data).messages.loc[0]
    assert row["status"] == "in_flight" and row["where"] == "mta"
    assert row["final_reply"] == SERVFAIL_LINE


def test_a_host_without_an_address_is_left_out() -> None:
    # Two MX hosts: mx (10, in example.org's zone) and mx2 (20, a zone served by ns2
    # alone, which is down): mx's address comes with the MX answer; the query for mx2's
    # times out (0.376). Postfix delivers to the hosts it has addresses for. The answer
    # without mx2 is not cached: at 200.388 the MX and mx's address are fresh, mx2's is
    # asked for again (0.376 once more).
    data = world(duration=250)
    data["topology"]["nodes"].append({"id": "mx2", "kind": "mx", "ns": ["ns2"]})
    data["topology"]["edges"].append({"a": "r", "b": "mx2", "latency": 0.015})
    data["domains"][0]["mx"].append({"host": "mx2", "preference": 20})
    node(data, "ns2")["outages"] = [{"start": 0, "end": 10_000}]
    res = run(data)
    assert accepted(res) == pytest.approx([
        SUBMITTED + NS1 + TIMEOUT + STUB + SESSION, SUBMITTED + 100 + TIMEOUT + STUB + SESSION
    ], abs=1e-9)
    assert res.stats["resolver"]["dns"]["ns_queries"] == 3
    assert res.stats["authoritative"]["ns2"]["unanswered"] == 2


def test_servfail_windows_are_the_servers_answer() -> None:
    # A dns_failures window with ns: the server answers SERVFAIL (its zone is broken)
    # after its round trip, and no other server is tried: the stub hears it at 100.388 +
    # 0.025 + 0.002 = 100.415 and tries again at once (glibc's next try): the cached
    # SERVFAIL (servfail_ttl 1 s) at 100.417, deferred; the retry 100 s later, after the
    # window, walks again.
    data = world(dns_failures=[{"start": 0, "end": 150}])
    node(data, "mta").update(queue_run_delay=0, retry={"intervals": [100], "give_up": 86400})
    res = run(data)
    row = res.messages.loc[0]
    assert row["status"] == "delivered" and row["deferrals"] == 1
    assert row["accepted"] == pytest.approx(SUBMITTED + NS1 + 2 * STUB + 100 + NS1 + STUB + SESSION, abs=1e-9)
    assert res.stats["authoritative"]["ns2"]["answered"] == 0


@pytest.mark.parametrize("change_at, host", [(100.420, "mx2"), (100.422, "mx")])
def test_the_zone_is_read_when_the_server_answers(change_at: float, host: str) -> None:
    # ns2 alone: the query leaves at 100.388 and ns2 answers at 100.388 + 0.032 +
    # 0.001 = 100.421. The zone's MX moves to mx2 just before that instant, or just after.
    data = world(ns=["ns2"])
    data["topology"]["nodes"].append({"id": "mx2", "kind": "mx"})
    data["topology"]["edges"].append({"a": "r", "b": "mx2", "latency": 0.015, "bandwidth": 5.0e6})
    data["domains"][0]["mx_changes"] = [{"at": change_at, "mx": [{"host": "mx2", "preference": 10}]}]
    res = sim.run(parse_scenario(data))
    row = res.messages.loc[0]
    assert row["mx_host"] == host
    assert row["accepted"] == pytest.approx(SUBMITTED + NS2 + STUB + SESSION, abs=1e-9)


def test_queries_for_one_name_are_coalesced() -> None:
    # Two messages at once (a batch of 2 at t = 100): one walk, both wait for it.
    data = world()
    data["workload"][0].pop("interarrival")
    data["workload"][0]["batches"] = [{"at": 100, "count": 2}]
    res = run(data)
    assert res.stats["resolver"]["dns"]["ns_queries"] == 1
    assert set(res.messages["status"]) == {"delivered"}


def test_a_domain_without_ns_costs_what_it_did() -> None:
    # The name servers exist, but example.org does not name them: results are those of
    # the world without them (the lookup draw of 0.2 stands in for the walk).
    with_servers = world(duration=350, ns=[])
    plain = tiny_data(duration=350)
    a, b = run(with_servers).messages, run(plain).messages
    cols = ["status", "submitted", "accepted", "delivered"]
    assert a[cols].equals(b[cols])
    assert accepted(run(plain))[0] == pytest.approx(SUBMITTED + 0.2 + STUB + SESSION, abs=1e-9)


def test_show_prints_the_name_servers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, world(), "ok.yaml")
    code, out, err = cli(["show", str(path)], capsys)
    assert code == 0 and err == ""
    shown = parse_scenario(yaml.safe_load(out))  # the effective scenario reads back
    ns1 = next(n for n in shown.topology.nodes if n.id == "ns1")
    assert ns1.kind == "authoritative" and ns1.processing.value == 0.001  # type: ignore[union-attr]
    assert shown.domains[0].ns == ["ns1", "ns2"]
    resolver = next(n for n in shown.topology.nodes if n.id == "dns")
    assert resolver.unknown_server_time_limit == 0.376  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "edit, key, problem",
    [
        (lambda d: d["domains"][0].update(ns=["nowhere"]), "domains[example.org].ns[0]",
         "'nowhere' is not a node of the topology"),
        (lambda d: d["domains"][0].update(ns=["mx"]), "domains[example.org].ns[0]",
         "'mx' is an mx node, not an authoritative node"),
        (lambda d: d["domains"][0].update(ns=["ns1", "ns1"]), "domains[example.org].ns[1]",
         "'ns1' is listed twice"),
        (lambda d: node(d, "mx").update(ns=["dns"]), "topology.nodes[mx].ns[0]",
         "'dns' is a resolver node, not an authoritative node"),
        (lambda d: d["domains"].append({"name": "typo.org", "exists": False, "ns": ["ns1"]}),
         "domains[typo.org]", "a domain with exists: false has no name servers (ns)"),
        (lambda d: node(d, "ns1").update(outages=[{"start": 5, "end": 1}]), "topology.nodes[ns1].outages[0]",
         "end (1.0) must be after start (5.0)"),
        (lambda d: node(d, "dns").update(unknown_server_time_limit=0),
         "topology.nodes[dns].unknown_server_time_limit", "greater than 0"),
    ],
)
def test_bad_name_server_keys_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, key: str, problem: str
) -> None:
    data = world()
    edit(data)
    path = write(tmp_path, data)
    assert_key_error(["validate", str(path)], capsys, path, key, problem)


def test_a_lossy_path_loses_queries_and_costs_the_timeout() -> None:
    # Loss 0.5 on ns1's link (and so on its path): a query or its answer is lost with
    # probability 1 - 0.5^2 = 0.75, a timeout, then ns2 (loss-free) answers. Each
    # lookup costs 0.027 (ns1 answered) or 0.376 + 0.065 + 0.002 (lost) exactly.
    data = world(duration=3000, mx_ttl=0)
    node(data, "mx")["a_ttl"] = 0
    node(data, "dns")["infra_host_ttl"] = 0  # every walk asks ns1 first
    for edge in data["topology"]["edges"]:
        if edge["b"] == "ns1":
            edge["loss"] = 0.5
    res = run(data)
    m = res.messages.sort_index()
    lookup = (m["accepted"] - SESSION - (SUBMITTED + 100 * np.arange(len(m)))).to_numpy()
    cold, lost = NS1 + STUB, TIMEOUT + NS2 + STUB
    assert np.all(np.isclose(lookup, cold, atol=1e-9) | np.isclose(lookup, lost, atol=1e-9))
    timeouts = int(np.isclose(lookup, lost, atol=1e-9).sum())
    stats = res.stats
    assert stats["resolver"]["dns"]["ns_timeouts"] == timeouts
    assert stats["authoritative"]["ns2"]["answered"] == timeouts
    assert stats["authoritative"]["ns1"]["answered"] == len(m) - timeouts
    assert 0.5 * len(m) < timeouts < 0.95 * len(m)  # 29 walks at 0.75
    # Same scenario and seed: the same draws.
    assert run(data).messages.equals(res.messages)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(0.05, 2.0),
    duration=st.floats(50, 600),
    drain=st.floats(0, 600),
    outages=st.lists(
        st.tuples(st.sampled_from(["ns1", "ns2", "ns3"]), st.floats(0, 500), st.floats(1, 400),
                  st.sampled_from(["none", "refuse"])),
        max_size=4,
    ),
    loss=st.floats(0, 0.3),
    mx_ttl=st.sampled_from([0, 30, 3600]),
    a_ttl=st.sampled_from([0, 20, 300]),
    provider=st.booleans(),
    cache=st.booleans(),
    instants=st.lists(st.floats(0, 1), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_books_balance_with_name_servers_failing(
    rate: float, duration: float, drain: float, outages: list[tuple[str, float, float, str]],
    loss: float, mx_ttl: int, a_ttl: int, provider: bool, cache: bool, instants: list[float], seed: int,
) -> None:
    data = world(duration=duration, mx_ttl=mx_ttl, users=20)
    data.update(drain=drain, seed=seed)
    src = data["workload"][0]
    src.pop("interarrival")
    src["rate"] = rate
    src["recipients_per_message"] = 1.5
    data["topology"]["nodes"].append({"id": "ns3", "kind": "authoritative"})
    data["topology"]["edges"].append({"a": "r", "b": "ns3", "latency": 0.02, "loss": loss})
    # A second MX host whose name is in a provider's zone (ns3), or in example.org's.
    data["topology"]["nodes"].append({"id": "mx2", "kind": "mx", "a_ttl": a_ttl,
                                      "ns": ["ns3"] if provider else []})
    data["topology"]["edges"].append({"a": "r", "b": "mx2", "latency": 0.015})
    data["domains"][0]["mx"].append({"host": "mx2", "preference": 20})
    node(data, "mx")["a_ttl"] = a_ttl
    node(data, "dns")["cache"] = cache
    for edge in data["topology"]["edges"]:
        if edge["b"] in ("ns1", "ns2"):
            edge["loss"] = loss
    spans: dict[str, list[tuple[float, float, str]]] = {}
    for ns, start, length, answer in outages:
        if all(start >= e or start + length <= s for s, e, _ in spans.get(ns, [])):
            spans.setdefault(ns, []).append((start, start + length, answer))
    for ns, items in spans.items():
        node(data, ns)["outages"] = [{"start": s, "end": e, "answer": a} for s, e, a in items]
    model = balanced(data, instants)
    m = model.recorder.messages()
    # A deferral is never silent: after an attempt (a lookup that failed among them) it
    # is recorded on its rows, and mail a dead destination defers at once carries the
    # reply that closed the destination (Postfix's "delivery temporarily suspended").
    deferred = m[m["deferrals"] > 0]
    assert deferred["final_reply"].notna().all()
    # Every query a walk sent reached a server or was lost on the way.
    stats = {c.id: c.stats() for c in model.ctx.nodes.values() if isinstance(c, AuthoritativeServer)}
    asked = sum(s["answered"] + s["unanswered"] + s["refused"] for s in stats.values())
    resolver = model.node("dns").stats()
    # (A resolver that walked to no name server has no ns_ figures: a run can send nothing.)
    walks = resolver.get("ns_queries", 0)
    assert asked <= walks
    if loss == 0:
        assert asked == walks
        assert resolver.get("ns_timeouts", 0) == sum(s["unanswered"] for s in stats.values())


def test_the_dns_outage_scenario() -> None:
    """topologies/dns-outage.yaml (docs/dns-authoritative.md): the MX answer cached
    near t = 0 for 1 h bridges cust-ns1's outage; from its expiry until both servers
    are back (80 min) every lookup SERVFAILs and the mail waits; all of it arrives."""
    res = sim.run(load_scenario(ROOT / "topologies" / "dns-outage.yaml"))
    m = res.messages
    check_books(m)
    sent = m[m["kind"] != "dsn"]
    assert (sent["status"] != "in_flight").all()
    deferred = sent[sent["deferrals"] > 0]
    assert len(deferred) > 500
    assert deferred["submitted"].min() >= 3600 and deferred["submitted"].max() < 4800
    assert (deferred["status"] == "delivered").all() and (deferred["accepted"] > 4800).all()
    during = sent[(sent["submitted"] > 3700) & (sent["submitted"] < 4790)]
    assert (during["deferrals"] > 0).all()
    stats = res.stats["authoritative"]
    assert stats["cust-ns1"]["unanswered"] > 100 and stats["cust-ns2"]["unanswered"] > 100
    assert stats["provider-ns1"]["answered"] > 10  # the MX hosts' addresses, every 300 s


def test_a_walk_cut_by_the_resolvers_outage_keeps_nothing() -> None:
    """The walk for the first message runs from 100.388 to 100.413; dns is down from
    100.40 to 100.45. The asker gets no answer: glibc's timeout (5 s), then a second
    try at 105.388 finds the resolver up again with an empty cache: a new walk (ns1,
    0.025), accepted 105.388 + 0.025 + 0.002 + 0.258 = 105.673. The cut walk's answer
    is not kept (else the second try would be a hit: 105.648)."""
    data = world(duration=150)
    node(data, "dns")["outages"] = [{"start": 100.40, "end": 100.45}]
    res = run(data)
    assert res.messages.loc[0, "accepted"] == pytest.approx(SUBMITTED + 5 + NS1 + STUB + SESSION, abs=1e-9)
    assert res.stats["resolver"]["dns"]["ns_queries"] == 2
    assert res.stats["authoritative"]["ns1"]["answered"] == 2


def test_an_evicted_walked_answer_is_walked_again() -> None:
    """cache_size 1: a, b, a (each with ns1, 0.025 a walk). b's answer evicts a's, and
    with it the MX records the walk kept: the third lookup walks again (0.025, not 0)."""
    from sim.simulation.build import build

    data = world(duration=250)
    data["domains"] += [{"name": n, "mx": [{"host": "mx", "preference": 1}], "ns": ["ns1"]}
                        for n in ("a.example", "b.example")]
    node(data, "dns")["cache_size"] = 1
    model = build(parse_scenario(data))
    dns, domains = model.node("dns"), model.ctx.domains
    took: list[float] = []

    def asker() -> Any:
        for name in ("a.example", "b.example", "a.example"):
            t0 = model.env.now
            yield from dns.lookup(domains[name], 0.0)
            took.append(model.env.now - t0)

    model.env.process(asker())
    model.env.run(until=50)
    assert took == pytest.approx([NS1, NS1, NS1], abs=1e-9)
    assert (dns.evictions, dns.ns_queries) == (2, 3)


@pytest.mark.parametrize(
    "change, first, second",
    [({"host": "mx", "mx_changes": [{"at": 150, "mx": []}]}, NS1, 2 * NS1),
     ({"mx": [], "host": "mx", "mx_changes": [{"at": 150, "mx": [{"host": "mx", "preference": 10}]}]},
      2 * NS1, NS1)],
    ids=["explicit-to-implicit", "implicit-to-explicit"],
)
def test_an_mx_change_to_or_from_an_implicit_mx_changes_the_walk(
    change: dict[str, Any], first: float, second: float
) -> None:
    """mx_ttl and a_ttl 10, messages at 100.388 and 200.388. Explicit MX records come
    with the host's address (one query, 0.025); an implicit MX (the domain's A record)
    needs the MX query, then the address query (0.05). After the change at 150 the
    second lookup pays what the new zone costs."""
    data = world(duration=250, mx_ttl=10, **change)
    node(data, "mx")["a_ttl"] = 10
    rows = sim.run(parse_scenario(data)).messages.sort_index()
    assert rows.loc[0, "accepted"] == pytest.approx(SUBMITTED + first + STUB + SESSION, abs=1e-9)
    assert rows.loc[1, "accepted"] == pytest.approx(SUBMITTED + 100 + second + STUB + SESSION, abs=1e-9)


def test_a_walk_cut_by_an_outage_forgets_the_slow_server() -> None:
    """ns1 is silent all run, the cache off, dns down from 100.5 to 100.6. The first
    walk asks ns1 at 100.388 and is cut by the outage: it asks no one else and does not
    remember ns1 as slow. The stub's retry at 105.388 walks afresh: ns1 first (nearest,
    nothing remembered), its timeout, then ns2: accepted 105.388 + 0.376 + 0.065 +
    0.002 + 0.258 = 106.089. ns2 answered only the live walks (2)."""
    data = world(duration=250)
    node(data, "ns1")["outages"] = [{"start": 0, "end": 10_000}]
    node(data, "dns")["cache"] = False
    node(data, "dns")["outages"] = [{"start": 100.5, "end": 100.6}]
    res = run(data)
    row = res.messages.loc[0]
    assert row["accepted"] == pytest.approx(SUBMITTED + 5 + TIMEOUT + NS2 + STUB + SESSION, abs=1e-9)
    assert res.stats["authoritative"]["ns2"]["answered"] == 2


def test_an_eviction_during_a_walk_keeps_what_the_walk_fetched() -> None:
    """cache_size 1; a.example has an implicit MX (MX query, then the host's address:
    0.05) with mx_ttl and a_ttl 1. Lookups of a at 0 and 2.0 (expired: a walk again,
    until 2.05), b at 2.01 (0.025: its answer at 2.035 evicts a's expired entry, while
    a's walk is under way). a's walk keeps its MX records and caches its answer when it
    ends: the lookup of a at 2.2 is a hit (0 s), not another walk."""
    from sim.simulation.build import build

    data = world(duration=50)
    data["domains"] += [{"name": "a.example", "mx": [], "host": "mx", "ns": ["ns1"], "mx_ttl": 1},
                        {"name": "b.example", "mx": [{"host": "mx", "preference": 1}], "ns": ["ns1"]}]
    node(data, "dns")["cache_size"] = 1
    node(data, "mx")["a_ttl"] = 1
    model = build(parse_scenario(data))
    dns, domains, env = model.node("dns"), model.ctx.domains, model.env
    took: dict[tuple[str, float], float] = {}

    def ask(name: str, at: float) -> Any:
        yield env.timeout(at)
        yield from dns.lookup(domains[name], 0.0)
        took[name, at] = env.now - at

    for name, at in (("a.example", 0.0), ("a.example", 2.0), ("b.example", 2.01), ("a.example", 2.2)):
        env.process(ask(name, at))
    env.run(until=10)
    assert took["a.example", 2.0] == pytest.approx(2 * NS1, abs=1e-9)
    assert took["b.example", 2.01] == pytest.approx(NS1, abs=1e-9)
    assert took["a.example", 2.2] == pytest.approx(0.0, abs=1e-9)
