"""Tar-pitting and slow servers (issue 9, part content): a pause before the greeting, a
delay before each reply, and a tar-pit the sender gives up on (its smtp_helo_timeout).

Times in the tiny world as in tests/test_content.py: the session starts at S = 100.59;
MTA <-> MX round trip 0.032 s; with TLS (the default) a new session waits for 7 replies
the server may delay: EHLO, STARTTLS, EHLO, MAIL, RCPT, DATA and "."; the reply to "."
comes after 8 round trips and 0.002 s of transfer: 100.848 without delays.
"""

from __future__ import annotations

from typing import Any

import pytest

from sim import run
from sim.config import parse_scenario
from sim.mail.smtp import GREETING_TIMEOUT, HELO_TIMEOUT
from tests.conftest import node, tiny_data
from tests.test_accounting import check_books

Q = 100 + 9 * 0.042 + 0.01
S = Q + 0.202
RTT = 0.032
ACCEPT = S + 8 * RTT + 0.002


def slow(mx: dict[str, Any], **mta: Any) -> dict[str, Any]:
    data = tiny_data(duration=150, drain=1000)
    node(data, "mx").update(mx)
    node(data, "mta").update(mta)
    return data


def traced(data: dict[str, Any]) -> tuple[Any, Any]:
    res = run(parse_scenario(data), trace=True)
    check_books(res.messages)
    a = res.attempts
    return res, a[(a["id"] == 0) & (a["hop"] == 1)]


def test_a_greeting_pause_delays_the_session() -> None:
    """greet_pause 6: the reply to "." at 100.848 + 6."""
    res, _ = traced(slow({"greet_pause": 6}))
    assert res.messages.loc[0, "accepted"] == pytest.approx(ACCEPT + 6, abs=1e-9)


def test_a_reply_delay_delays_every_reply_after_the_greeting() -> None:
    """reply_delay 1: seven delayed replies to "." (100.848 + 7); with greet_pause 2
    too, + 9."""
    res, _ = traced(slow({"reply_delay": 1}))
    assert res.messages.loc[0, "accepted"] == pytest.approx(ACCEPT + 7, abs=1e-9)
    res, _ = traced(slow({"reply_delay": 1, "greet_pause": 2}))
    assert res.messages.loc[0, "accepted"] == pytest.approx(ACCEPT + 9, abs=1e-9)


def test_a_refusal_at_rcpt_waits_for_the_replies_before_it() -> None:
    """Greylisting and reply_delay 1: the 450 comes after 7 round trips and 5 delayed
    replies (EHLO, STARTTLS, EHLO, MAIL, RCPT): S + 0.224 + 5."""
    _, tries = traced(slow({"reply_delay": 1, "greylisting": {}}))
    assert tries["reply"].iloc[0] == 450
    assert tries["end"].iloc[0] == pytest.approx(S + 7 * RTT + 5, abs=1e-9)


def test_a_pause_below_the_timeout_is_waited_out() -> None:
    res, _ = traced(slow({"greet_pause": 299.5}))
    assert res.messages.loc[0, "accepted"] == pytest.approx(ACCEPT + 299.5, abs=1e-9)


def test_a_greeting_beyond_the_senders_timeout_is_given_up() -> None:
    """greet_pause 300 (= smtp_helo_timeout): after the TCP handshake (0.032) the client
    waits 300 s and gives up: status 4.4.2, no reply code; the one host: deferred.
    The MX's connection is closed again."""
    res, tries = traced(slow({"greet_pause": 300}))
    assert tries["end"].iloc[0] == pytest.approx(S + RTT + 300, abs=1e-9)
    assert tries["reply"].isna().iloc[0] and tries["enhanced"].iloc[0] == "4.4.2"
    assert list(tries["outcome"])[0] == "deferred"
    row = res.messages.loc[0]
    assert row["deferrals"] >= 1 and row["status"] == "in_flight"
    assert GREETING_TIMEOUT.line == "4.4.2 timed out while receiving the initial server greeting"
    assert res.stats["mx"]["mx"]["sessions"] >= 1
    # The connection the client gave up on is closed: none open a second later.
    seen: list[int] = []

    def hook(model: Any) -> None:
        mx = model.node("mx")
        model.at(S + RTT + 301, lambda: seen.append(mx.connections))

    run(parse_scenario(slow({"greet_pause": 300})), hook=hook)
    assert seen == [0]


def test_the_sender_tries_the_next_host_after_giving_up() -> None:
    """A tar-pit at preference 10 (greet_pause 1000), a plain mx2 at 20: the client
    gives mx up at S + 0.032 + 300 (outcome timeout), then mx2's session (no new
    look-up) is accepted 8 round trips and 0.002 s later."""
    data = slow({"greet_pause": 1000})
    data["topology"]["nodes"].append({"id": "mx2", "kind": "mx", "processing": 0.05})
    data["topology"]["edges"].append({"a": "r", "b": "mx2", "latency": 0.015, "bandwidth": 5.0e6})
    data["domains"][0]["mx"].append({"host": "mx2", "preference": 20})
    res, tries = traced(data)
    assert list(tries["dst"]) == ["mx", "mx2"]
    assert list(tries["outcome"]) == ["timeout", "delivered"]
    gave_up = S + RTT + 300
    assert tries["start"].iloc[1] == pytest.approx(gave_up, abs=1e-9)
    assert res.messages.loc[0, "accepted"] == pytest.approx(gave_up + 8 * RTT + 0.002, abs=1e-9)


def test_an_ehlo_reply_beyond_the_timeout_is_given_up_after_the_greeting() -> None:
    """reply_delay 400, smtp_helo_timeout 120 on the MTA: the greeting comes after 2
    round trips, then the client waits 120 s for EHLO's reply: gives up at S + 0.064 + 120."""
    _, tries = traced(slow({"reply_delay": 400}, smtp_helo_timeout=120))
    assert tries["end"].iloc[0] == pytest.approx(S + 2 * RTT + 120, abs=1e-9)
    assert HELO_TIMEOUT.enhanced == "4.4.2"


def test_a_reused_session_pays_a_delay_per_reply_and_no_greeting() -> None:
    """Without TLS the connection cache reuses sessions. Two messages submitted together
    (t=100), one attempt at a time to the domain (destination_concurrency_limit 1):
    message 0's session (look-up 0.202; connect 2, EHLO 1, envelope 1, "." 1 round
    trips and 0.002 s of transfer; greet_pause 3 and reply_delay 1 on 5 replies: EHLO,
    MAIL, RCPT, DATA, ".") is accepted at submitted + 0.202 + 5 * 0.032 + 0.002 + 3 + 5;
    message 1, parked, takes the session over at once: envelope and "." (2 round trips,
    0.002 s) and 4 delayed replies, no greeting: accepted 0.066 + 4 s later."""
    data = slow({"greet_pause": 3, "reply_delay": 1}, destination_concurrency_limit=1)
    data["smtp"] = {"tls": False}
    data["workload"][0].pop("interarrival")
    data["workload"][0]["batches"] = [{"at": 100, "count": 2}]
    res = run(parse_scenario(data), trace=True)
    check_books(res.messages)
    m = res.messages
    submitted = m.loc[0, "submitted"]
    assert m.loc[1, "submitted"] == submitted
    first = submitted + 0.202 + 5 * RTT + 0.002 + 3 + 5
    assert m.loc[0, "accepted"] == pytest.approx(first, abs=1e-9)
    assert m.loc[1, "accepted"] == pytest.approx(first + 2 * RTT + 0.002 + 4, abs=1e-9)
