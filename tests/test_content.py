"""Content checks at an MX (issue 9, part content): hand-computed timelines of the
before- and after-queue scan, the SPF/DKIM/DMARC look-ups and their cache, spam refused
with its DSN or junked, DMARC policies; the scenario keys.

The tiny world (tests/conftest.py), its first message created at t=100 (as in
tests/test_greylisting.py):

- queued at Q = 100 + 9 * 0.042 + 0.01 = 100.388;
- the MTA's MX look-up: 0.2 + 2 * 0.001 = 0.202 s (a cache hit: 0.002 s), then the
  session starts: S = Q + 0.202 = 100.59;
- MTA <-> MX round trip 2 * (0.001 + 0.015) = 0.032 s; 8 round trips and 10,000 bytes
  at 5 MB/s to the reply to ".": accepted at S + 0.258;
- the MX's scan (`processing`) 0.05 s; LMTP to the store: 5 round trips of 0.001 s and
  10,000 bytes at 100 MB/s (0.0001 s), then the write 0.01 s: delivered = accepted +
  0.05 + 0.0151 after queue, accepted + 0.0151 when the scan was spent in the session.

With `authentication`, the MX's resolver `mxdns` is 0.001 s away (a round trip of
0.002 s) and resolves in 0.2 s: a miss costs 0.202 s, a hit 0.002 s.
"""

from __future__ import annotations

from typing import Any

import pytest

from sim import run
from sim.config import ScenarioError, parse_scenario
from sim.mail.content import DMARC_REJECTED, SPAM_REFUSED
from tests.conftest import node, tiny_data
from tests.test_accounting import check_books

Q = 100 + 9 * 0.042 + 0.01
S = Q + 0.202  # the first session's start
ACCEPT = S + 8 * 0.032 + 0.002  # the reply to "." without checks: 100.848
SCAN = 0.05
LMTP = 5 * 0.001 + 0.0001 + 0.01  # the hand-off to the store and its write, after the scan
MISS, HIT = 0.202, 0.002  # a TXT query through mxdns


def world(mx: dict[str, Any] | None = None, duration: float = 150, **domain: Any) -> dict[str, Any]:
    """The tiny world with the MX's keys and the domain's (the sender's too) changed."""
    data = tiny_data(duration=duration, drain=1000)
    data["topology"]["nodes"].append({"id": "mxdns", "kind": "resolver", "lookup": 0.2})
    data["topology"]["edges"].append({"a": "mx", "b": "mxdns", "latency": 0.001})
    node(data, "mx").update(mx or {})
    data["domains"][0].update(domain)
    return data


def spam(data: dict[str, Any]) -> dict[str, Any]:
    data["workload"][0]["kind"] = "spam"
    return data


def result(data: dict[str, Any]) -> Any:
    res = run(parse_scenario(data), trace=True)
    check_books(res.messages)
    return res


def test_a_before_queue_scan_is_spent_in_the_session() -> None:
    """before_queue: the reply to "." waits for the scan (accepted at 100.848 + 0.05),
    and the store has it 0.0151 s later: no scan after queue."""
    res = result(world({"content_filter": "before_queue"}))
    row = res.messages.loc[0]
    assert row["accepted"] == pytest.approx(ACCEPT + SCAN, abs=1e-9)
    assert row["delivered"] == pytest.approx(ACCEPT + SCAN + LMTP, abs=1e-9)
    assert row["folder"] == "inbox"
    hop1 = res.attempts[(res.attempts["id"] == 0) & (res.attempts["hop"] == 1)]
    assert hop1["end"].iloc[0] == pytest.approx(ACCEPT + SCAN, abs=1e-9)
    assert res.stats["mx"]["mx"]["scanned"] == 1


def test_an_after_queue_scan_is_not_the_senders() -> None:
    """after_queue (the default), with a spam filter on: accepted at 100.848 as without
    checks; the scan comes after, delivered at + 0.05 + 0.0151."""
    res = result(world({"spam_filter": {}}))
    row = res.messages.loc[0]
    assert row["accepted"] == pytest.approx(ACCEPT, abs=1e-9)
    assert row["delivered"] == pytest.approx(ACCEPT + SCAN + LMTP, abs=1e-9)
    assert res.stats["mx"]["mx"]["scanned"] == 1


def test_the_scan_holds_a_connection_slot() -> None:
    """At ACCEPT + 0.045 (QUIT after an after-queue 250 ends at ACCEPT + 0.032) the
    before-queue session is still scanning: one connection open; after queue, none."""
    seen: dict[str, int] = {}

    def hook(mode: str) -> Any:
        def attach(model: Any) -> None:
            mx = model.node("mx")
            model.at(ACCEPT + 0.045, lambda: seen.__setitem__(mode, mx.connections))
        return attach

    for mode in ("before_queue", "after_queue"):
        run(parse_scenario(world({"content_filter": mode})), hook=hook(mode))
    assert seen == {"before_queue": 1, "after_queue": 0}


def test_the_first_message_pays_the_lookups_and_the_next_within_the_ttl_does_not() -> None:
    """authentication: message 1 (t=100) pays SPF at MAIL FROM (0.202) and DKIM then
    DMARC after "." (2 * 0.202): accepted at 100.848 + 0.606. Message 2 (t=200, Q2 =
    200.388): the MTA's MX answer is cached (expires 100.588 + 150), so its session
    starts at Q2 + 0.002 and its three queries are hits (3 * 0.002): accepted at Q2 +
    0.002 + 0.258 + 0.006."""
    res = result(world({"authentication": True, "resolver": "mxdns"}, duration=250))
    m = res.messages
    assert m.loc[0, "accepted"] == pytest.approx(ACCEPT + 3 * MISS, abs=1e-9)
    q2 = Q + 100
    assert m.loc[1, "accepted"] == pytest.approx(q2 + 0.002 + 0.258 + 3 * HIT, abs=1e-9)
    stats = res.stats["mx"]["mx"]
    assert (stats["dns_checks"], stats["dns_checks_cached"]) == (6, 3)
    assert (res.stats["resolver"]["mxdns"]["queries"], res.stats["resolver"]["mxdns"]["cache_hits"]) == (0, 0)  # MX queries only


def test_a_record_past_its_ttl_is_looked_up_again() -> None:
    """txt_ttl 50: the records cached around t=100.6-101.2 have expired by message 2's
    session (t=200.39): three misses again, accepted at Q2 + 0.002 + 0.258 + 0.606."""
    res = result(world({"authentication": True, "resolver": "mxdns"}, duration=250, txt_ttl=50))
    assert res.messages.loc[1, "accepted"] == pytest.approx(Q + 100 + 0.002 + 0.258 + 3 * MISS, abs=1e-9)
    assert res.stats["mx"]["mx"]["dns_checks_cached"] == 0


def test_spam_caught_before_queue_is_refused_with_5_7_1_and_bounces_with_its_dsn() -> None:
    """Spam, before queue, caught (detection 1): 550 5.7.1 at 100.848 + 0.05; the MTA
    bounces the row and sends a DSN to the sender domain (here the same domain: it is
    scanned too, not spam, false positives 0, delivered into the inbox)."""
    res = result(spam(world({"content_filter": "before_queue",
                             "spam_filter": {"detection_rate": 1, "false_positive_rate": 0}})))
    m = res.messages
    row = m.loc[0]
    assert row["status"] == "bounced" and row["reason"] == "rejected as spam"
    assert row["ended"] == pytest.approx(ACCEPT + SCAN, abs=1e-9)
    assert row["final_reply"] == SPAM_REFUSED.line == "550 5.7.1 Message content rejected"
    dsn = m[m["kind"] == "dsn"]
    assert list(dsn["parent_id"]) == [0]
    assert dsn["created"].iloc[0] == pytest.approx(ACCEPT + SCAN, abs=1e-9)
    assert list(dsn["status"]) == ["delivered"] and list(dsn["folder"]) == ["inbox"]
    assert res.stats["mx"]["mx"]["rejected_spam"] == 1


def test_spam_junked_before_queue_is_delivered_into_the_junk_folder() -> None:
    res = result(spam(world({"content_filter": "before_queue",
                             "spam_filter": {"detection_rate": 1, "action": "junk"}})))
    row = res.messages.loc[0]
    assert row["status"] == "delivered" and row["folder"] == "junk"
    assert row["delivered"] == pytest.approx(ACCEPT + SCAN + LMTP, abs=1e-9)
    assert res.stats["mx"]["mx"]["junked"] == 1


def test_after_queue_spam_is_junked_or_discarded_never_refused() -> None:
    """After queue caught spam is accepted at 100.848: junked (the default action) and
    delivered at + 0.0651, or discarded when the scan ends (lost at + 0.05)."""
    junked = result(spam(world({"spam_filter": {"detection_rate": 1}}))).messages.loc[0]
    assert junked["accepted"] == pytest.approx(ACCEPT, abs=1e-9)
    assert junked["folder"] == "junk" and junked["status"] == "delivered"
    res = result(spam(world({"spam_filter": {"detection_rate": 1, "action": "discard"}})))
    lost = res.messages.loc[0]
    assert lost["status"] == "lost" and lost["reason"] == "discarded as spam"
    assert lost["ended"] == pytest.approx(ACCEPT + SCAN, abs=1e-9)
    assert pd_isna(lost["folder"])
    assert res.stats["mx"]["mx"]["discarded_spam"] == 1 and res.stats["mx"]["mx"]["discarded"] == 0


def pd_isna(value: Any) -> bool:
    return value != value or value is None


def test_legitimate_mail_is_caught_at_the_false_positive_rate() -> None:
    """People's mail with false_positive_rate 1 is junked; with 0 (and spam detection 1)
    it is not."""
    caught = result(world({"spam_filter": {"false_positive_rate": 1}})).messages.loc[0]
    assert caught["folder"] == "junk"
    passed = result(world({"spam_filter": {"detection_rate": 1, "false_positive_rate": 0}})).messages.loc[0]
    assert passed["folder"] == "inbox"


def test_dmarc_reject_refuses_with_gmails_5_7_26_after_the_lookups() -> None:
    """The sender domain publishes p=reject and all its mail fails: refused at "." after
    the three look-ups, 100.848 + 0.606; reason `DMARC policy`."""
    res = result(world({"authentication": True, "resolver": "mxdns"}, dmarc="reject", auth_failure_rate=1))
    row = res.messages.loc[0]
    assert row["status"] == "bounced" and row["reason"] == "DMARC policy"
    assert row["ended"] == pytest.approx(ACCEPT + 3 * MISS, abs=1e-9)
    assert row["final_reply"] == DMARC_REJECTED.line
    assert DMARC_REJECTED.line.startswith("550 5.7.26 Unauthenticated email")
    assert res.stats["mx"]["mx"]["rejected_dmarc"] == 1
    # Its DSN comes from the domain's own MTA: it authenticates and is delivered.
    assert list(res.messages.loc[res.messages["kind"] == "dsn", "status"]) == ["delivered"]


@pytest.mark.parametrize("policy, rate, folder", [("quarantine", 1, "junk"), ("none", 1, "inbox"),
                                                  ("reject", 0, "inbox")])
def test_dmarc_quarantine_junks_none_and_passing_mail_go_to_the_inbox(policy: str, rate: float, folder: str) -> None:
    res = result(world({"authentication": True, "resolver": "mxdns"}, dmarc=policy, auth_failure_rate=rate))
    row = res.messages.loc[0]
    assert row["status"] == "delivered" and row["folder"] == folder


def test_checks_off_leave_the_timeline_as_it_was() -> None:
    """No content keys: no checks object, accepted at 100.848, scanned after queue."""
    res = result(world())
    row = res.messages.loc[0]
    assert row["accepted"] == pytest.approx(ACCEPT, abs=1e-9)
    assert row["delivered"] == pytest.approx(ACCEPT + SCAN + LMTP, abs=1e-9)
    assert "scanned" not in res.stats["mx"]["mx"]


BAD = [
    ({"authentication": True}, "authentication needs a resolver"),
    ({"spam_filter": {"action": "reject"}}, "an after-queue filter cannot reject"),
    ({"content_filter": "before_queue", "spam_filter": {"action": "discard"}},
     "a before-queue filter rejects or junks"),
    ({"resolver": "mta"}, "'mta' is an mta node, not a resolver node"),
    ({"spam_filter": {"detection_rate": 1.5}}, "less than or equal to 1"),
]


@pytest.mark.parametrize("keys, problem", BAD, ids=[p for _, p in BAD])
def test_bad_content_keys_are_one_clear_error(keys: dict[str, Any], problem: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(world(keys))
    assert problem in str(info.value)
    assert "topology.nodes" in str(info.value)


def _records_resolver(**keys: Any) -> Any:
    """The tiny world's MX resolver (lookup 0.2 s), built but not run."""
    from sim.simulation.build import build

    data = world()
    node(data, "mxdns").update(keys)
    return build(parse_scenario(data)).node("mxdns")


def test_record_cache_hits_joins_and_expiry() -> None:
    """Resolver.records, lookup 0.2: a miss at 0 resolves until 0.2 and is cached for
    100 s; a query at 0.1 joins it (0.1 left); at 0.2 and until 100.2 a hit (0); at
    100.2 it has expired: a miss. Another record is cached on its own. A query earlier
    than a recorded resolution's start resolves on its own and, finishing first, is kept."""
    r = _records_resolver()
    assert r.records(1, 100, 0.0) == pytest.approx(0.2)
    assert r.records(1, 100, 0.1) == pytest.approx(0.1)
    assert r.records(1, 100, 0.2) == 0.0
    assert r.records(1, 100, 100.19) == 0.0
    assert r.records(2, 100, 50.0) == pytest.approx(0.2)
    assert r.records(1, 100, 100.2) == pytest.approx(0.2)
    assert (r.record_queries, r.record_hits) == (6, 2)
    assert r.records(3, 100, 5.0) == pytest.approx(0.2)
    assert r.records(3, 100, 1.0) == pytest.approx(0.2)  # before the one recorded: its own
    assert r.records(3, 100, 1.1) == pytest.approx(0.1)  # joins the earlier one
    assert r.records(3, 100, 1.2) == 0.0


def test_record_ttl_is_capped_and_caching_can_be_off() -> None:
    """max_ttl 10 caps a 100 s TTL: cached 0.2 to 10.2. With cache off every query resolves."""
    r = _records_resolver(max_ttl=10)
    r.records(1, 100, 0.0)
    assert r.records(1, 100, 10.1) == 0.0
    assert r.records(1, 100, 10.2) == pytest.approx(0.2)
    off = _records_resolver(cache=False)
    assert [off.records(1, 100, t) for t in (0.0, 0.5, 1.0)] == pytest.approx([0.2] * 3)


def test_content_checks_are_deterministic() -> None:
    """Same scenario and seed, with draws (false positives 0.5, DMARC failures 0.5): the
    same rows, folders and replies."""
    data = world({"content_filter": "before_queue", "authentication": True, "resolver": "mxdns",
                  "spam_filter": {"false_positive_rate": 0.5, "action": "junk"}},
                 duration=2000, dmarc="reject", auth_failure_rate=0.5)
    a, b = (run(parse_scenario(data)).messages for _ in range(2))
    assert a.equals(b)
    assert set(a["folder"].dropna()) == {"inbox", "junk"} and (a["reason"] == "DMARC policy").any()


def test_the_content_checks_scenario() -> None:
    """topologies/content-checks.yaml (docs/content.md): every row ends; spam is refused
    5.7.1 before queue, a DMARC p=reject share refused 5.7.26, a p=quarantine share junked,
    and the sender waits for the scan (the relay leg's median above the 1 s scan)."""
    from pathlib import Path

    from sim.config import load_scenario

    res = run(load_scenario(Path(__file__).resolve().parent.parent / "topologies" / "content-checks.yaml"))
    m = res.messages
    check_books(m)
    assert (m["status"] != "in_flight").all()
    spam_rows = m[m["kind"] == "spam"]
    assert (spam_rows["reason"] == "rejected as spam").mean() > 0.99
    partner = m[m["sender_domain"] == "partner.example"]
    assert 0.01 < (partner["reason"] == "DMARC policy").mean() < 0.03
    news = m[m["sender_domain"] == "news.example"]
    assert (news["folder"] == "junk").sum() > 0
    person = m[m["kind"] == "person"]
    assert (person["accepted"] - person["submitted"]).median() > 1.0


def test_txt_queries_to_a_resolver_that_is_down_time_out_and_pass() -> None:
    """mxdns is down for the whole run: each of the three checks (SPF, DKIM, DMARC)
    waits out glibc's 5 s timeout (plus the round trip) instead of a 0.202 miss, and
    passes (a temperror): the reply to "." comes 3 * 5.002 = 15.006 s later than
    without checks, nothing is cached."""
    data = world({"authentication": True, "resolver": "mxdns"})
    node(data, "mxdns")["outages"] = [{"start": 0, "end": 10_000}]
    res = result(data)
    row = res.messages.loc[0]
    assert row["status"] == "delivered"
    assert row["accepted"] == pytest.approx(ACCEPT + 3 * (5 + HIT), abs=1e-9)
    dns = res.stats["resolver"]["mxdns"]
    assert (dns["record_queries"], dns["record_timeouts"], dns["record_hits"]) == (3, 3, 0)


def test_txt_queries_to_a_refusing_resolver_cost_the_round_trip() -> None:
    """mxdns is down refusing (port unreachable): each check is refused after the round
    trip (0.002) and passes: the reply to "." comes 3 * 0.002 later than without checks."""
    data = world({"authentication": True, "resolver": "mxdns"})
    node(data, "mxdns").update(outages=[{"start": 0, "end": 10_000}], answer="refuse")
    res = result(data)
    assert res.messages.loc[0, "accepted"] == pytest.approx(ACCEPT + 3 * HIT, abs=1e-9)
    assert res.stats["resolver"]["mxdns"]["record_timeouts"] == 3
