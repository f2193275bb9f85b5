"""DNS answers that are not MX records, hand-computed to 1e-9 s (sim/mail/dns.py).

The world is the tiny one (tests/conftest.py) plus one recipient domain, ``there``,
whose DNS answer each test chooses, and an MX ``mx2`` one LAN hop off the router (the
same 0.015 s and 5 MB/s as ``mx``). example.org's people send one 10,000-byte message
every 100 s from t = 100 to ``there``. One-way latencies and bottlenecks:

    home -> mta   0.021 s, 1 MB/s      (round trip 0.042)
    mta  -> dns   0.001 s              (round trip 0.002; a miss adds the lookup 0.2)
    mta  -> mx2   0.016 s, 5 MB/s      (round trip 0.032)
    mx2  -> store 0.0305 s, 5 MB/s     (via r and mx; round trip 0.061)

Submitted = 100 + 9 * 0.042 + 10,000 / 1e6 = 100.388 (9 round trips, TLS 1.3); a lookup
miss ends 0.2 + 0.002 = 0.202 later (100.590), a hit 0.002 later. A bounce at lookup
makes a 12,000-byte failure DSN to example.org (tests/test_dsn.py computes its trip).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import sim
from sim.config import ScenarioError, parse_scenario
from tests.conftest import assert_key_error, node, tiny_data
from tests.test_accounting import check_books
from tests.test_dsn import delivered_dsn, expect
from tests.test_errors import write

SUBMITTED = 100.0 + 9 * 0.042 + 10_000 / 1e6  # 100.388
MISS, HIT = 0.202, 0.002
RELAY_RTT = 0.032
NXDOMAIN_LINE = "550 5.1.2 Host or domain name not found"
SERVFAIL_LINE = "451 4.4.3 Host or domain name not found, try again"


def world(there: dict[str, Any], duration: float = 150, **mta: Any) -> dict[str, Any]:
    """Mail from example.org to ``there`` (its DNS keys given), every 100 s from t = 100."""
    data = tiny_data(duration=duration)
    data["topology"]["nodes"].append({"id": "mx2", "kind": "mx", "processing": 0.05})
    data["topology"]["edges"].append({"a": "r", "b": "mx2", "latency": 0.015, "bandwidth": 5.0e6})
    data["domains"].append({"name": "there", **there})
    data["workload"][0]["recipients"] = {"there": 1}
    node(data, "mta").update(mta)
    return data


def run(data: dict[str, Any]) -> sim.Results:
    res = sim.run(parse_scenario(data), trace=True)
    check_books(res.messages)
    return res


def test_nxdomain_bounces_after_the_lookup_with_a_dsn() -> None:
    res = run(world({"exists": False}))
    m = res.messages
    parent, dsn = m.loc[0], m.loc[1]
    # The lookup misses: bounced at 100.388 + 0.202 = 100.590, no session, 550 5.1.2.
    assert parent["status"] == "bounced" and parent["reason"] == "domain not found"
    assert parent["ended"] == pytest.approx(SUBMITTED + MISS, abs=1e-9)
    assert parent["ended"] == pytest.approx(100.590, abs=1e-9)
    assert parent["final_reply"] == NXDOMAIN_LINE
    assert parent["attempts"] == 1 and pd_na(parent["mx_host"])
    # The DSN is made at that instant and travels to example.org like any DSN.
    assert dsn["kind"] == "dsn" and dsn["parent_id"] == 0 and dsn["status"] == "delivered"
    expect(dsn, delivered_dsn(SUBMITTED + MISS, 12_000))
    a = res.attempts
    assert a is not None
    # No MX host was tried: one attempt row that ended at the lookup (host_order 0,
    # the resolver that answered), from the lookup's start to the bounce.
    tries = a[(a["id"] == 0) & (a["hop"] == 1)]
    assert list(tries["dst"]) == ["dns"] and list(tries["host_order"]) == [0]
    assert list(tries["reply"]) == [550] and list(tries["enhanced"]) == ["5.1.2"]
    assert list(tries["outcome"]) == ["bounced"]
    assert list(tries["start"]) == pytest.approx([SUBMITTED], abs=1e-9)
    assert list(tries["end"]) == pytest.approx([SUBMITTED + MISS], abs=1e-9)
    assert res.stats["resolver"]["dns"]["queries"] == 2  # there, then example.org


def pd_na(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_null_mx_bounces_at_once_with_556() -> None:
    res = run(world({"null_mx": True}))
    parent, dsn = res.messages.loc[0], res.messages.loc[1]
    # A null MX is an answer like any: the miss costs 0.202, then 556 5.1.10 (RFC 7505).
    assert parent["status"] == "bounced" and parent["reason"] == "domain receives no mail"
    assert parent["ended"] == pytest.approx(100.590, abs=1e-9)
    assert parent["final_reply"] == "556 5.1.10 Recipient address has null MX"
    expect(dsn, delivered_dsn(SUBMITTED + MISS, 12_000))


def test_implicit_mx_delivers_to_the_address_host() -> None:
    res = run(world({"users": 1, "host": "mx2", "mailbox": "store"}))
    row = res.messages.loc[0]
    # No MX records: the A record's host at preference 0. Session at 100.590; relay 8
    # round trips + 10,000 B over 5 MB/s: 100.590 + 0.256 + 0.002 = 100.848 accepted;
    # scan 0.05, LMTP 5 x 0.061, 10,000 B over 5 MB/s, write 0.01: 101.215 delivered.
    assert row["status"] == "delivered" and row["mx_host"] == "mx2"
    assert row["accepted"] == pytest.approx(100.848, abs=1e-9)
    assert row["delivered"] == pytest.approx(100.848 + 0.05 + 0.305 + 0.002 + 0.01, abs=1e-9)
    assert row["delivered"] == pytest.approx(101.215, abs=1e-9)


@pytest.mark.parametrize(
    "there, resolver, second",
    [
        # Cached for the SOA minimum (default 3600 s): the second lookup is a hit.
        ({"exists": False}, {}, HIT),
        # negative_ttl 50: expired at 100.590 + 50 before the second message's lookup.
        ({"exists": False, "negative_ttl": 50}, {}, MISS),
        # The resolver's cap (Unbound's cache-max-negative-ttl) beats the domain's TTL.
        ({"exists": False}, {"max_negative_ttl": 50}, MISS),
        # negative_ttl 0: never cached.
        ({"exists": False, "negative_ttl": 0}, {}, MISS),
    ],
)
def test_a_negative_answer_is_cached_for_the_negative_ttl(
    there: dict[str, Any], resolver: dict[str, Any], second: float
) -> None:
    data = world(there, duration=250)
    node(data, "dns").update(resolver)
    res = run(data)
    m = res.messages
    parents = m[m["kind"] != "dsn"].reset_index()
    # The first at 100.388 + 0.202; the second at 200.388 + 0.002 (hit) or + 0.202.
    assert parents.loc[0, "ended"] == pytest.approx(100.590, abs=1e-9)
    assert parents.loc[1, "ended"] == pytest.approx(SUBMITTED + 100 + second, abs=1e-9)
    assert list(parents["final_reply"]) == [NXDOMAIN_LINE] * 2
    assert list(parents["reason"]) == ["domain not found"] * 2
    # Queries: there twice, example.org for each DSN; example.org's answer, resolved at
    # 100.790, is cached for its MX TTL 150 s (to 250.790): the second DSN's is a hit.
    stats = res.stats["resolver"]["dns"]
    assert stats["queries"] == 4
    assert stats["cache_hits"] == (2 if second == HIT else 1)


SERVFAIL_WORLD = {"users": 1, "mx": [{"host": "mx2", "preference": 10}], "mailbox": "store",
                  "dns_failures": [{"start": 0, "end": 150}]}
RETRY = {"queue_run_delay": 0}  # no scan grid: released at the due time itself


def test_servfail_defers_with_443_recorded() -> None:
    # The run ends at 150 + drain 100 = 250, before the retry at 400: in flight.
    data = world(SERVFAIL_WORLD, **RETRY)
    data["drain"] = 100
    res = run(data)
    row = res.messages.loc[0]
    assert row["status"] == "in_flight" and row["where"] == "mta"
    assert row["final_reply"] == SERVFAIL_LINE and row["attempts"] == 1
    assert len(res.messages) == 1  # no DSN: a deferral is not a failure


def test_servfail_window_then_the_retry_after_it_delivers() -> None:
    res = run(world(SERVFAIL_WORLD, **RETRY))
    row = res.messages.loc[0]
    # The resolution starts at 100.388, in the window [0, 150): SERVFAIL at 100.590,
    # cached for servfail_ttl (1 s); the stub's second try (glibc: attempts 2) is
    # answered from the cache at 100.592: deferred. Postfix's backoff in whole seconds:
    # floor(100.592) + the age (0) clamped to minimal_backoff_time 300, due at 400. The
    # cached failure has expired: a miss again, session at 400.202; accepted 400.202 +
    # 0.256 + 0.002 = 400.460, delivered + 0.367 (as in the implicit-MX test) = 400.827.
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert row["accepted"] == pytest.approx(400.0 + MISS + 0.258, abs=1e-9)
    assert row["accepted"] == pytest.approx(400.460, abs=1e-9)
    assert row["delivered"] == pytest.approx(400.827, abs=1e-9)
    assert row["final_reply"].startswith("250 ")
    dns = res.stats["resolver"]["dns"]
    assert (dns["cache_hits"], dns["servfail_hits"], dns["servfails"]) == (1, 1, 1)


def test_a_cached_answer_is_served_through_a_failure_window() -> None:
    # The window opens at 150, after the first lookup (cached for 3600 s): the second
    # message's lookup at 200.388 is a hit (0.002), the failure never seen.
    there = dict(SERVFAIL_WORLD, mx_ttl=3600, dns_failures=[{"start": 150, "end": 250}])
    res = run(world(there, duration=250))
    rows = res.messages
    assert list(rows["status"]) == ["delivered", "delivered"]
    assert rows.loc[1, "accepted"] == pytest.approx(200.388 + HIT + 0.258, abs=1e-9)


@pytest.mark.parametrize(
    "there, key, problem",
    [
        ({"exists": False, "mx": [{"host": "mx2", "preference": 0}]}, "domains[there]",
         "a domain with exists: false has no MX records"),
        ({"null_mx": True, "host": "mx2"}, "domains[there]", "a domain with null_mx: true has no host"),
        ({"exists": False, "users": 3}, "domains[there]", "a domain with exists: false has no users"),
        ({"exists": False, "null_mx": True}, "domains[there]",
         "a domain with exists: false publishes no null MX"),
        ({"exists": False, "dns_failures": [{"start": 10, "end": 10}]},
         "domains[there].dns_failures[0]", "end (10.0) must be after start (10.0)"),
        ({"exists": False, "negative_ttl": -1}, "domains[there].negative_ttl", "greater than or equal to 0"),
    ],
)
def test_bad_dns_keys_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], there: dict[str, Any], key: str, problem: str
) -> None:
    path = write(tmp_path, world(there))
    assert_key_error(["run", str(path), "--out", str(tmp_path / "out")], capsys, path, key, problem)


def test_a_domain_that_exists_with_no_users_is_still_refused_as_recipients() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(world({"users": 0, "host": "mx2"}))
    assert info.value.path == "workload[people].recipients.there"
    assert "has no users to receive mail" in info.value.problem


def test_typo_recipients_bounce_and_the_books_balance() -> None:
    """A share of the mail to a typo domain: every such row bounces at lookup, the rest
    is delivered, each row ends once (check_books), and the run repeats exactly."""
    data = world({"users": 2, "host": "mx2", "mailbox": "store"}, duration=3000)
    data["domains"].append({"name": "thre", "exists": False, "negative_ttl": 600})
    data["workload"][0]["recipients"] = {"there": 3, "thre": 1}
    data["workload"][0]["interarrival"] = {"dist": "exponential", "mean": 20}
    res = run(data)
    m = res.messages
    parents = m[m["kind"] != "dsn"]
    typo = parents["recipient_domain"] == "thre"
    assert 0 < typo.sum() < len(parents)
    assert set(parents[typo]["status"]) == {"bounced"}
    assert set(parents[typo]["final_reply"]) == {NXDOMAIN_LINE}
    assert set(parents[~typo]["status"]) == {"delivered"}
    dsns = m[m["kind"] == "dsn"]
    assert len(dsns) == typo.sum() and set(dsns["parent_id"]) == set(parents[typo]["message_id"])
    again = run(data).messages
    assert again.equals(m)


def test_a_servfail_is_a_failed_session_for_the_destination() -> None:
    """As Postfix's smtp_sess_fail: with an initial window of 1 the one failed lookup
    (SERVFAIL twice: the stub's two tries end at 100.792) is a failed cohort (c = 1/1
    reaches the limit 1): the destination is dead from 100.592 until 100.592 +
    minimal_backoff_time 300 = 400.592. The retry due at 400 finds it
    dead and is deferred at once (no attempt): due floor(400) + age (400 - 100 = 300)
    = 700, when the destination reopens: a miss (nothing cached), session at 700.202,
    accepted 700.460, delivered 700.827; final_reply 451 4.4.3 until then."""
    res = run(world(SERVFAIL_WORLD, initial_destination_concurrency=1, **RETRY))
    row = res.messages.loc[0]
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert row["accepted"] == pytest.approx(700.460, abs=1e-9)
    assert row["delivered"] == pytest.approx(700.827, abs=1e-9)


@pytest.mark.parametrize(
    "start, end, servfail_ttl, accepted",
    [(0, 100.3, 1, 100.848), (0, 100.5, 1, 400.460), (0, 100.5, 0, 101.050), (0, 100.6, 0, 400.460),
     (100.4, 200, 1, 100.848)],
)
def test_the_window_holds_when_the_resolution_starts(
    start: float, end: float, servfail_ttl: float, accepted: float
) -> None:
    """The resolution starts at 100.388 and ends at 100.588: it fails when its start is
    in [start, end), whenever it ends (a window opening at 100.4, mid-resolution, is
    not seen): accepted at once, 100.848. A SERVFAIL sends glibc's stub to its next try
    at once (its second round, the same resolver). With servfail_ttl 1 (the default)
    that try is answered from the cache: deferred with 451 4.4.3, and the retry at
    floor(100.592) + 300 = 400 delivers it (400.460). With servfail_ttl 0 nothing is
    cached: a second resolution from 100.590 to 100.790, answered 100.792, succeeds
    when 100.590 is past the window's end (accepted 100.792 + 0.258 = 101.050), else
    the row is deferred and the retry at floor(100.792) + 300 = 400 delivers it."""
    there = dict(SERVFAIL_WORLD, dns_failures=[{"start": start, "end": end}])
    data = world(there, **RETRY)
    node(data, "dns")["servfail_ttl"] = servfail_ttl
    row = run(data).messages.loc[0]
    assert row["status"] == "delivered"
    assert row["accepted"] == pytest.approx(accepted, abs=1e-9)
