"""A hand-computed timeline: every timestamp of the tiny world's messages, to 1e-9 s.

Round trips (TLS 1.3 and pipelining, sim.smtp): submission 9 to acceptance (TCP 1,
greeting 1, EHLO 1, STARTTLS 1, TLS 1, EHLO 1, AUTH 1, MAIL/RCPT/DATA 1, body 1); relay 8
(no AUTH); LMTP 5 (TCP, greeting, LHLO, envelope, body); IMAP fetch 7 (TCP, TLS,
greeting, LOGIN, SELECT, FETCH, LOGOUT).
"""

from __future__ import annotations

import math

import pytest

from sim import run
from tests.conftest import node, tiny

SIZE = 10_000
# One-way latencies and bottlenecks of the lowest-latency paths, summed by hand.
HOME_MTA = (0.02 + 0.001, 1.0e6)  # home-r-mta
MTA_DNS = 0.001
MTA_MX = (0.001 + 0.015, 5.0e6)  # mta-r-mx
MX_STORE = (0.0005, 1.0e8)
STORE_HOME = (0.0005 + 0.015 + 0.02, 1.0e6)  # store-mx-r-home
LOOKUP, SCAN, WRITE = 0.2, 0.05, 0.01


def leg(path: tuple[float, float], round_trips: int) -> float:
    latency, bandwidth = path
    return round_trips * 2 * latency + SIZE / bandwidth


def expected(created: float, dns_cached: bool) -> dict[str, float]:
    submitted = created + leg(HOME_MTA, 9)
    dns = 2 * MTA_DNS + (0 if dns_cached else LOOKUP)
    accepted = submitted + dns + leg(MTA_MX, 8)
    delivered = accepted + SCAN + leg(MX_STORE, 5) + WRITE
    # IMAP checks every 600 s at phase 0: the first check at or after delivery.
    check = math.ceil(delivered / 600) * 600
    retrieved = check + leg(STORE_HOME, 7)
    return {
        "created": created,
        "submitted": submitted,
        "accepted": accepted,
        "delivered": delivered,
        "retrieved": retrieved,
    }


def test_every_timestamp_matches_the_hand_computed_timeline() -> None:
    messages = run(tiny()).messages
    assert len(messages) == 3  # constant 100 s gaps from t=0, stopping at 350 s
    # The MX answer is cached for mx_ttl=150 s from 100.57: message 2 hits, 3 misses.
    for mid, (created, cached) in enumerate([(100.0, False), (200.0, True), (300.0, False)]):
        row = messages.loc[mid]
        for column, value in expected(created, cached).items():
            assert row[column] == pytest.approx(value, abs=1e-9), (mid, column)
        assert row["status"] == "delivered"
        assert row["attempts"] == 1
        assert row["final_reply"].startswith("250 ")
        assert row["mx_host"] == "mx"


def test_first_message_figures_written_out() -> None:
    # The same timeline as literal numbers, so a wrong helper above cannot hide a bug.
    row = run(tiny()).messages.loc[0]
    assert row["submitted"] == pytest.approx(100.388, abs=1e-9)  # 9*0.042 + 0.01
    assert row["accepted"] == pytest.approx(100.590 + 0.258, abs=1e-9)  # dns .202, relay .258
    assert row["delivered"] == pytest.approx(100.848 + 0.05 + 0.0051 + 0.01, abs=1e-9)
    assert row["retrieved"] == pytest.approx(600 + 7 * 0.071 + 0.01, abs=1e-9)


def test_without_pipelining_or_tls_the_round_trips_change_as_rfc_counts() -> None:
    sc = tiny(smtp={"tls": False, "pipelining": False})
    row = run(sc).messages.loc[0]
    # Submission: TCP, greeting, EHLO, AUTH, MAIL, RCPT, DATA, body = 8 round trips.
    assert row["submitted"] == pytest.approx(100 + 8 * 0.042 + 0.01, abs=1e-9)
    # Relay: TCP, greeting, EHLO, MAIL, RCPT, DATA, body = 7 round trips.
    relay = 7 * 0.032 + SIZE / 5.0e6
    assert row["accepted"] - row["submitted"] == pytest.approx(0.202 + relay, abs=1e-9)
    # LMTP pipelines whatever the SMTP setting (RFC 2033): still 5 round trips.
    lmtp = 5 * 2 * 0.0005 + SIZE / 1.0e8
    assert row["delivered"] - row["accepted"] == pytest.approx(SCAN + lmtp + WRITE, abs=1e-9)


@pytest.mark.parametrize("pipelining, rounds", [(True, 7), (False, 8)])
def test_unknown_recipient_bounces_at_rcpt(pipelining: bool, rounds: int) -> None:
    # TCP, greeting, EHLO, STARTTLS, TLS, EHLO, then RCPT answered 550: with pipelining
    # in the same round trip as MAIL; without, in the second after it.
    data = tiny(smtp={"pipelining": pipelining}).model_dump()
    data["domains"][0]["unknown_recipient_rate"] = 1.0
    from sim.config import parse_scenario

    row = run(parse_scenario(data)).messages.loc[0]
    assert row["status"] == "bounced"
    assert row["ended"] == pytest.approx(row["submitted"] + 0.202 + rounds * 0.032, abs=1e-9)


@pytest.mark.parametrize("pipelining", [True, False])
def test_too_large_is_refused_at_mail_from(pipelining: bool) -> None:
    # TCP, greeting, EHLO, STARTTLS, TLS, EHLO, AUTH, MAIL answered 552: 8 round trips.
    data = tiny(smtp={"pipelining": pipelining}).model_dump()
    node(data, "mta")["message_size_limit"] = 1000
    from sim.config import parse_scenario

    row = run(parse_scenario(data)).messages.loc[0]
    assert row["ended"] == pytest.approx(100 + 8 * 0.042, abs=1e-9)
