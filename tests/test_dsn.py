"""Bounces are mail: DSN rows, hand-computed to 1e-9 s (sim/mail/dsn.py, docs/model.md).

The world is the tiny one (tests/conftest.py) with a second domain, lost.example, whose
MX is ``mx2`` (one LAN hop off the same router as ``mx``, the same 0.015 s and 5 MB/s);
its store is the same ``store``. example.org's people send one 10,000-byte message at
t = 100 s to lost.example. One-way latencies and bottlenecks, summed by hand:

    home -> mta   0.021 s, 1 MB/s      (round trip 0.042)
    mta  -> dns   0.001 s              (round trip 0.002; a miss adds lookup 0.2)
    mta  -> mx    0.016 s, 5 MB/s      (round trip 0.032), mx2 the same
    mx   -> store 0.0005 s, 100 MB/s   (round trip 0.001)
    store -> home 0.0355 s, 1 MB/s     (round trip 0.071)

Round trips (TLS 1.3, pipelining): submission 9 to acceptance, relay 8, a 550 at RCPT
7 (it travels with MAIL), LMTP 5, IMAP 7 (docs/model.md, "Round trips").

The parent: submitted = 100 + 9 * 0.042 + 10,000 / 1e6 = 100.388; its MX lookup of
lost.example is a miss: 0.202, so its session starts at 100.590.
A failure DSN is 2,000 + min(10,000, 50,000) = 12,000 bytes; a delay warning 2,000 +
min(10,000, 2,000) = 4,000 bytes (sim.mail.dsn).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

import sim
from sim.config import parse_scenario
from sim.mail.dsn import dsn_size, sender_person
from sim.mail.smtp import NODATA
from sim.core.records import DELAYED, FAILED
from tests.conftest import node, tiny_data
from tests.test_accounting import check_books

SUBMITTED = 100.0 + 9 * 0.042 + 10_000 / 1e6  # 100.388
SESSION = SUBMITTED + 0.202  # the lost.example lookup misses
RELAY_RTT, LMTP_RTT, IMAP_RTT = 0.032, 0.001, 0.071
SCAN, WRITE = 0.05, 0.01


def world(sender_mx: bool = True, **mta: Any) -> dict[str, Any]:
    """One message at t = 100 from example.org to lost.example (see the module doc)."""
    data = tiny_data(duration=150)
    data["topology"]["nodes"].append({"id": "mx2", "kind": "mx", "processing": 0.05})
    data["topology"]["edges"].append({"a": "r", "b": "mx2", "latency": 0.015, "bandwidth": 5.0e6})
    data["domains"].append(
        {"name": "lost.example", "users": 1, "mx": [{"host": "mx2", "preference": 10}],
         "mailbox": "store", "unknown_recipient_rate": 1.0}
    )
    data["workload"][0]["recipients"] = {"lost.example": 1}
    if not sender_mx:  # example.org sends only: no MX, no A record, no people's mailboxes
        for key in ("mx", "mailbox", "retrieval"):
            data["domains"][0].pop(key)
        data["domains"][0]["users"] = 0
    node(data, "mta").update(mta)
    return data


def run(data: dict[str, Any], hook: Any = None) -> sim.Results:
    res = sim.run(parse_scenario(data), trace=True, hook=hook)
    check_books(res.messages)
    return res


def delivered_dsn(created: float, size: float) -> dict[str, float]:
    """A DSN queued at ``created`` at the MTA, travelling to example.org's MX ``mx``.

    Its lookup of example.org is a miss (no one asked before): 0.202; the relay dialogue
    8 round trips plus the DSN over 5 MB/s; the scan; LMTP 5 round trips plus the DSN
    over 100 MB/s; the write; then the sender's IMAP check every 600 s at phase 0 and
    the 7-round-trip fetch over 1 MB/s.
    """
    accepted = created + 0.202 + 8 * RELAY_RTT + size / 5e6
    delivered = accepted + SCAN + 5 * LMTP_RTT + size / 1e8 + WRITE
    retrieved = math.ceil(delivered / 600) * 600 + 7 * IMAP_RTT + size / 1e6
    return {"created": created, "submitted": created, "accepted": accepted,
            "delivered": delivered, "ended": delivered, "retrieved": retrieved}


def expect(row: pd.Series, times: dict[str, float]) -> None:
    for column, value in times.items():
        assert row[column] == pytest.approx(value, abs=1e-9), column


def test_an_unknown_user_bounce_travels_back_to_the_senders_mailbox() -> None:
    res = run(world())
    m = res.messages
    assert len(m) == 2
    parent, dsn = m.loc[0], m.loc[1]
    # The 550 5.1.1 comes back 7 round trips into the session: 100.814.
    bounced = SESSION + 7 * RELAY_RTT
    assert parent["status"] == "bounced" and parent["ended"] == pytest.approx(bounced, abs=1e-9)
    # The DSN is made and queued at the sending MTA at that instant, about the parent,
    # from the null sender to the parent's sender at example.org.
    assert dsn["kind"] == "dsn" and dsn["action"] == "failed"
    assert dsn["parent_id"] == 0 and dsn["message_id"] == 1
    assert dsn["sender_domain"] == dsn["recipient_domain"] == "example.org"
    assert dsn["size"] == 12_000
    assert dsn["status"] == "delivered" and dsn["attempts"] == 1 and dsn["mx_host"] == "mx"
    # Written out: accepted 100.814 + 0.202 + 0.256 + 0.0024 = 101.2744; delivered
    # + 0.05 + 0.005 + 0.00012 + 0.01 = 101.33952; retrieved 600 + 0.497 + 0.012.
    expect(dsn, delivered_dsn(bounced, 12_000))
    assert dsn["accepted"] == pytest.approx(101.2744, abs=1e-9)
    assert dsn["delivered"] == pytest.approx(101.33952, abs=1e-9)
    assert dsn["retrieved"] == pytest.approx(600.509, abs=1e-9)
    # The attempts table has the DSN's own relay hop to mx and the LMTP hand-off; no
    # submission (hop 0): it was made at the MTA.
    a = res.attempts
    assert a is not None
    hops = a[a["id"] == 1]
    assert list(zip(hops["hop"], hops["dst"], hops["outcome"])) == [
        (1, "mx", "delivered"), (2, "store", "delivered")
    ]
    # Other rows have no parent and no action.
    assert pd.isna(parent["parent_id"]) and pd.isna(parent["action"])
    assert res.stats["mta"]["mta"]["dsn"] == 1


def test_an_expired_message_gets_a_dsn_at_its_expiry() -> None:
    # mx2 never answers: the attempt waits the 30 s connect timeout; the message has
    # been queued 30.202 s, past maximal_queue_lifetime = 1 s, so it bounces there.
    data = world(maximal_queue_lifetime=1)
    res = run(data, hook=lambda model: model.node("mx2").set_up(False))
    m = res.messages
    expired = SESSION + 30
    parent, dsn = m.loc[0], m.loc[1]
    assert parent["reason"] == "queue lifetime expired"
    assert parent["ended"] == pytest.approx(expired, abs=1e-9)  # 130.590
    assert dsn["parent_id"] == 0 and dsn["action"] == "failed"
    expect(dsn, delivered_dsn(expired, 12_000))
    assert dsn["delivered"] == pytest.approx(130.590 + 0.4604 + 0.06512, abs=1e-9)


def test_a_dsn_that_bounces_is_not_bounced_again() -> None:
    # The sender's own domain also rejects its user: the DSN gets 550 5.1.1 too. Its
    # lookup of example.org is a miss (0.202) and the 550 comes 7 round trips in.
    data = world()
    data["domains"][0]["unknown_recipient_rate"] = 1.0
    m = run(data).messages
    assert len(m) == 2  # no DSN about the DSN
    dsn = m.loc[1]
    assert dsn["status"] == "bounced" and dsn["reason"] == "unknown recipient"
    assert dsn["ended"] == pytest.approx(SESSION + 7 * RELAY_RTT + 0.202 + 7 * RELAY_RTT, abs=1e-9)


def test_a_dsn_that_expires_is_not_bounced_again() -> None:
    # example.org's MX never answers: the DSN times out (30 s) and, queued longer
    # than maximal_queue_lifetime = 1 s, expires; nothing follows it.
    res = run(world(maximal_queue_lifetime=1), hook=lambda model: model.node("mx").set_up(False))
    m = res.messages
    assert len(m) == 2
    dsn = m.loc[1]
    assert dsn["status"] == "bounced" and dsn["reason"] == "queue lifetime expired"
    assert dsn["ended"] == pytest.approx(SESSION + 7 * RELAY_RTT + 0.202 + 30, abs=1e-9)
    assert res.stats["mta"]["mta"]["bounced"] == 2 and res.stats["mta"]["mta"]["dsn"] == 1


def test_a_dsn_to_a_domain_that_receives_no_mail_bounces_at_once() -> None:
    res = run(world(sender_mx=False))
    m = res.messages
    assert len(m) == 2
    dsn = m.loc[1]
    bounced = SESSION + 7 * RELAY_RTT
    assert dsn["status"] == "bounced" and dsn["reason"] == "domain receives no mail"
    assert dsn["created"] == dsn["submitted"] == dsn["ended"] == pytest.approx(bounced, abs=1e-9)
    # example.org publishes neither MX nor address records here: NODATA (Postfix's
    # 5.4.4 "Host found but no data record"), no longer refused as if it had a null MX.
    assert dsn["final_reply"] == NODATA.line
    assert dsn["final_reply"].startswith("550 5.4.4 Host or domain name not found.")
    assert dsn["attempts"] == 0 and pd.isna(dsn["mx_host"])
    assert res.stats["mta"]["mta"]["bounced"] == 2


def test_refusals_at_submission_make_no_dsn() -> None:
    # The MTA's own 552 at MAIL FROM: the client is told in the session.
    data = world()
    node(data, "mta")["message_size_limit"] = 1000
    m = run(data).messages
    assert len(m) == 1 and m.loc[0, "reason"] == "message too large"


def test_an_mta_that_processes_its_bounces_ends_the_dsn_there() -> None:
    def esp(model: sim.Model) -> None:
        model.node("mta").processes_bounces = True

    res = run(world(), hook=esp)
    dsn = res.messages.loc[1]
    bounced = SESSION + 7 * RELAY_RTT
    assert dsn["status"] == "delivered" and dsn["kind"] == "dsn"
    assert dsn["created"] == dsn["submitted"] == dsn["delivered"] == dsn["ended"]
    assert dsn["ended"] == pytest.approx(bounced, abs=1e-9)
    assert dsn["attempts"] == 0 and pd.isna(dsn["accepted"]) and pd.isna(dsn["retrieved"])
    assert res.stats["mta"]["mta"]["bounces_processed"] == 1


def test_one_delay_warning_per_row_while_it_stays_queued() -> None:
    # mx2 never answers. The first attempt fails at 100.590 + 30 = 130.590, when the
    # message has been queued 30.202 s >= delay_warning_time = 10 s: one delayed DSN
    # (4,000 bytes) then. Its retries (due 130.590 + 300, taken at the scan at 600)
    # fail again and are deferred with no further warning; it is still queued at the
    # end (horizon 1150 s, next due 1,161 s).
    data = world(delay_warning_time=10)
    data["drain"] = 1000
    res = run(data, hook=lambda model: model.node("mx2").set_up(False))
    m = res.messages
    assert len(m) == 2
    parent, dsn = m.loc[0], m.loc[1]
    assert parent["status"] == "in_flight" and parent["deferrals"] >= 2
    assert dsn["action"] == "delayed" and dsn["parent_id"] == 0 and dsn["size"] == 4_000
    # 130.590 + 0.202 + 0.256 + 0.0008 = 131.0488; + 0.05 + 0.005 + 0.00004 + 0.01.
    expect(dsn, delivered_dsn(SESSION + 30, 4_000))
    assert dsn["delivered"] == pytest.approx(131.11384, abs=1e-9)


def test_no_delay_warning_before_its_time_or_when_off() -> None:
    # Queued at most ~530 s when it fails within the run: below 3600 s, no warning.
    for warn in (0, 3600):
        data = world(delay_warning_time=warn)
        data["drain"] = 1000
        m = run(data, hook=lambda model: model.node("mx2").set_up(False)).messages
        assert len(m) == 1, warn


def test_the_headline_summary_leaves_dsn_rows_out() -> None:
    res = run(world())
    s = res.summary()
    assert s.counts["created"] == 1 and s.counts["bounced"] == 1 and s.dsn_rows == 1
    assert "1 DSN rows" in s.note()
    both = res.summary(dsn=True)
    assert both.counts["created"] == 2 and both.counts["delivered"] == 1 and both.dsn_rows == 0
    by_kind = res.summary(by="kind", dsn=True).counts
    assert by_kind.loc["dsn", "delivered"] == 1


def test_dsn_sizes_and_the_sender_person() -> None:
    assert dsn_size(10_000, FAILED) == 12_000
    assert dsn_size(80_000, FAILED) == 52_000  # the returned copy stops at 50,000 bytes
    assert dsn_size(10_000, DELAYED) == 4_000
    assert dsn_size(500, DELAYED) == 2_500  # headers are never more than the message
    people = [sender_person(mid, 10) for mid in range(2000)]
    assert set(people) == set(range(10))  # every person of the domain sends some
    assert people == [sender_person(mid, 10) for mid in range(2000)]  # a pure function
    assert sender_person(5, 0) == 0


def test_trace_names_a_dsns_action_and_parent() -> None:
    from sim.faces.trace import message_line

    res = run(world())
    assert message_line(res, 1).startswith(
        "message 1: dsn (failed, about message 0) example.org → example.org, 12,000 B, delivered"
    )
    assert message_line(res, 0).startswith("message 0: person example.org → lost.example, 10,000 B, bounced")


def test_a_negative_delay_warning_time_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import cli

    code, out, err = cli(["show", "--set", "topology.nodes[acme-mail].delay_warning_time=-1"], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.strip().endswith(
        "topology.nodes[acme-mail].delay_warning_time: Input should be greater than or equal to 0 (got -1)"
    )


def test_delay_warning_time_takes_units_and_is_off_by_default() -> None:
    sc = sim.load_scenario(overrides=["topology.nodes[acme-mail].delay_warning_time=4h"])
    nodes = {n.id: n for n in sc.topology.nodes}
    assert nodes["acme-mail"].delay_warning_time == 4 * 3600  # type: ignore[union-attr]
    assert nodes["gmail-submit"].delay_warning_time == 0  # type: ignore[union-attr]


def test_a_dsn_goes_back_to_the_writer_a_source_with_contacts_drew() -> None:
    """A source with ``contacts`` draws who writes each message (to choose its
    recipients) and records them in ``sender_person``: the bounce goes to that person,
    not to the hash of the message id that names the sender of other sources' mail."""
    from tests.conftest import tiny_data

    data = tiny_data(duration=2000)
    data["domains"][0]["users"] = 50
    data["domains"][0]["unknown_recipient_rate"] = 1.0  # every row bounces at RCPT
    data["workload"][0]["contacts"] = 3
    result = sim.run(parse_scenario(data), seed=2)
    rows = result.messages
    mail, dsns = rows[rows["kind"] == "person"], rows[rows["kind"] == "dsn"]
    assert len(mail) > 10 and len(dsns) == len(mail)
    assert mail["sender_person"].notna().all()
    parents = mail.loc[dsns["parent_id"].to_numpy()]
    assert list(dsns["recipient_person"]) == list(parents["sender_person"].astype(int))
    # The hash would have named someone else for most of them.
    hashed = [sender_person(int(m), 50) for m in parents["message_id"]]
    assert sum(h != p for h, p in zip(hashed, parents["sender_person"])) > len(parents) // 2
