"""An ESP node: HTTP API submission, 429 over the account's rate, campaigns paced, to 1e-9 s.

The tiny world (tests/conftest.py) with its MTA made an ESP (node ``esp``):

    home --0.02 s, 1 MB/s-- r --0.001 s, 100 MB/s-- esp --0.001 s-- dns
                            r --0.015 s, 5 MB/s-- mx --0.0005 s-- store

home-r-esp is 0.021 s one way at 1 MB/s: an API request of a 10,000 B message is one
round trip plus the body, 0.042 + 0.01 = 0.052 s (an SMTP submission took 9 round trips,
0.388 s). Delivery is the MTA's: a lookup 0.2 s + 0.002 s on a miss, 0.002 s on a hit
(cached for 150 s), then 8 round trips of esp-r-mx (0.016 s one way, 5 MB/s):
0.256 + 0.002 = 0.258 s.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from sim import build, run
from sim.config import ScenarioError, parse_scenario
from tests.conftest import tiny_data
from tests.test_accounting import check_books

API = 2 * 0.021 + 10_000 / 1e6  # 0.052
MISS, HIT = 0.202, 0.002
RELAY = 8 * 2 * 0.016 + 10_000 / 5e6  # 0.258


def esp_world(**esp: Any) -> dict[str, Any]:
    """The tiny world whose sender is an ESP with the given keys."""
    data = tiny_data()
    for item in data["topology"]["nodes"]:
        if item["id"] == "mta":
            item.update(id="esp", kind="esp", **esp)
    for edge in data["topology"]["edges"]:
        for end in ("a", "b"):
            if edge[end] == "mta":
                edge[end] = "esp"
    data["domains"][0]["outbound"] = "esp"
    return data


def attempts_of(res: Any, mid: int) -> pd.DataFrame:
    a = res.attempts
    return a[a["id"] == mid].reset_index(drop=True)


def test_api_submission_is_one_round_trip_and_no_smtp_session() -> None:
    """Messages at 100, 200, 300: each submitted 0.052 s after it is made (202
    Accepted), then delivered as from an MTA: message 0 misses the cache (accepted by
    mx at 100.052 + 0.202 + 0.258 = 100.512)."""
    res = run(parse_scenario(esp_world()), trace=True)
    m = res.messages
    check_books(m)
    assert (m["submitted"] - m["created"]).tolist() == pytest.approx([API] * 3, abs=1e-9)
    assert m.loc[0, "accepted"] == pytest.approx(100.512, abs=1e-9)
    hop0 = res.attempts[res.attempts["hop"] == 0]
    assert list(hop0["reply"]) == [202, 202, 202] and (hop0["src"] == "home").all()
    assert (hop0["end"] - hop0["start"]).tolist() == pytest.approx([API] * 3, abs=1e-9)
    # The final reply is the MX's 250, not the API's 202.
    assert m["final_reply"].str.startswith("250 ").all()
    assert res.stats["esp"]["esp"]["api_requests"] == 3


def test_over_the_account_rate_the_api_answers_429_and_the_client_retries() -> None:
    """api_rate 0.125/s (a token every 8 s), a bucket of 1; messages at 100 and 102.5.

    Message 0 takes the bucket's one token at 100 (it had filled long before).
    Message 1 asks at 102.5: 2.5 s * 0.125 = 0.3125 of a token: 429, Retry-After
    ceil(0.6875 / 0.125) = ceil(5.5) = 6 s (whole seconds); the answer arrives at
    102.552; the client sends again at 108.552, when the bucket holds
    0.3125 + 6.052 * 0.125 >= 1: 202 at 108.604.
    """
    data = esp_world(api_rate=0.125, api_burst=1)
    src = data["workload"][0]
    src.update(interarrival=2.5, start=97.5, stop=103)  # arrivals at 100 and 102.5
    res = run(parse_scenario(data), trace=True)
    m = res.messages
    check_books(m)
    assert m["created"].tolist() == [100.0, 102.5]
    assert m.loc[0, "submitted"] == pytest.approx(100.052, abs=1e-9)
    assert m.loc[1, "submitted"] == pytest.approx(108.604, abs=1e-9)
    tries = attempts_of(res, 1)
    tries = tries[tries["hop"] == 0]
    assert list(tries["attempt"]) == [1, 2]
    assert list(tries["reply"]) == [429, 202]
    assert list(tries["outcome"]) == ["deferred", "delivered"]
    assert tries["start"].tolist() == pytest.approx([102.5, 108.552], abs=1e-9)
    assert tries["end"].tolist() == pytest.approx([102.552, 108.604], abs=1e-9)
    assert res.stats["esp"]["esp"]["throttled"] == 1


def test_a_message_waiting_to_retry_is_held_by_its_client() -> None:
    data = esp_world(api_rate=0.125, api_burst=1)
    data["workload"][0].update(interarrival=2.5, start=97.5, stop=103)
    model = build(parse_scenario(data))
    model.run(until=105)  # message 1 got its 429 at 102.552 and waits until 108.552
    m = model.recorder.messages()
    assert m.loc[1, "where"] == "home" and m.loc[1, "status"] == "in_flight"
    assert sum(model.census().values()) == model.recorder.in_flight() == 1


def campaign_world(**esp: Any) -> dict[str, Any]:
    """Two campaigns handed over at 100 (four recipients at example.org, then two at
    other.org, a second domain served by the same mx and store), no other traffic."""
    data = esp_world(**esp)
    data["domains"].append({**data["domains"][0], "name": "other.org", "retrieval": None})
    data["workload"] = [
        {"name": name, "kind": "marketing", "client": "home", "domain": "example.org",
         "recipients": {dom: 1}, "batches": [{"at": 100, "count": n}], "size": 10_000}
        for name, dom, n in (("a", "example.org", 4), ("b", "other.org", 2))
    ]
    return data


def test_a_campaign_is_one_call_released_at_the_send_rate_and_the_domain_limit() -> None:
    """send_rate 2/s, max_msg_rate 1800/h (a slot every 2 s per recipient domain).

    Both campaigns are accepted at 100.052 (one API call each); their six recipients
    take the send-rate slots 100.052 + k/2 in order (k = 0..5); a recipient whose
    domain's next slot is later waits for it:

    - a (example.org): k=0 100.052; k=1 max(100.552, 102.052) = 102.052;
      k=2 max(101.052, 104.052) = 104.052; k=3 max(101.552, 106.052) = 106.052
    - b (other.org): k=4 102.052; k=5 max(102.552, 104.052) = 104.052

    Each release starts a delivery attempt at once (4 workers, nothing else queued):
    the session starts after the lookup, a miss for each domain's first message
    (0.202 s; the answer is cached 150 s) and a hit (0.002 s) after.
    """
    res = run(parse_scenario(campaign_world(send_rate=2, max_msg_rate=1800)), trace=True)
    m = res.messages
    check_books(m)
    assert (m["status"] == "delivered").all()
    assert m["submitted"].tolist() == pytest.approx([100.052] * 6, abs=1e-9)
    released = [100.052, 102.052, 104.052, 106.052, 102.052, 104.052]
    lookup = [MISS, HIT, HIT, HIT, MISS, HIT]
    a = res.attempts
    first = a[(a["hop"] == 1) & (a["attempt"] == 1)].set_index("id")["start"]
    expected = [r + d for r, d in zip(released, lookup)]
    assert [first[i] for i in range(6)] == pytest.approx(expected, abs=1e-9)
    stats = res.stats["esp"]["esp"]
    assert stats["api_requests"] == 2 and stats["campaigns"] == 2


def test_a_campaign_without_limits_is_released_at_once() -> None:
    res = run(parse_scenario(campaign_world()), trace=True)
    a = res.attempts
    first = a[(a["hop"] == 1) & (a["attempt"] == 1)].set_index("id")["start"]
    # All six at 100.052; four workers: the first four start after their lookups.
    assert sorted(first)[:4] == pytest.approx([100.254] * 4, abs=1e-9)


def test_transactional_mail_does_not_wait_behind_a_campaign() -> None:
    """A campaign of 100 at send_rate 1/s from 100; a password reset made at 110 is
    queued at 110.052 and its attempt starts at once (a cache hit: 110.054), while
    the campaign's 12th message is released only at 111.052."""
    data = campaign_world(send_rate=1)
    data["workload"] = [
        {"name": "news", "kind": "marketing", "client": "home", "domain": "example.org",
         "batches": [{"at": 100, "count": 100}], "size": 10_000},
        {"name": "reset", "kind": "transactional", "client": "home", "domain": "example.org",
         "interarrival": 10, "start": 100, "stop": 115, "size": 10_000},
    ]
    res = run(parse_scenario(data), trace=True)
    m = res.messages
    reset = m.index[m["kind"] == "transactional"][0]
    a = res.attempts
    start = a[(a["id"] == reset) & (a["hop"] == 1)]["start"].iloc[0]
    assert m.loc[reset, "submitted"] == pytest.approx(110.052, abs=1e-9)
    assert start == pytest.approx(110.054, abs=1e-9)


def test_an_esp_takes_every_mta_key_and_many_ips() -> None:
    data = esp_world(ips=4, workers=7, maximal_queue_lifetime="8h")
    model = build(parse_scenario(data))
    esp = model.node("esp")
    assert esp.ips == ("esp#1", "esp#2", "esp#3", "esp#4")
    assert esp.spec.workers == 7 and esp.retry.lifetime == 8 * 3600
    assert esp.processes_bounces is True


def test_an_esp_refuses_a_message_over_its_size_limit() -> None:
    """413 (5.3.4) after the request's round trip: the client is told at once."""
    res = run(parse_scenario(esp_world(message_size_limit=1000)))
    row = res.messages.loc[0]
    assert row["status"] == "bounced" and row["reason"] == "message too large"
    assert row["final_reply"] == "413 5.3.4 Content Too Large"
    assert row["ended"] == pytest.approx(100.052, abs=1e-9)


def test_api_burst_needs_a_rate() -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(esp_world(api_burst=5))
    assert str(err.value) == (
        "topology.nodes[esp]: api_burst without api_rate: give the rate the bucket refills at"
    )


def test_requests_exactly_at_the_account_rate_are_never_throttled() -> None:
    """api_rate 10/s, a bucket of 1, requests exactly 0.1 s apart: each finds the token
    the last 0.1 s refilled. Summed in floating point the refill can fall an ulp short
    of a whole token (found in review: the fourth request got a 429, and the rest
    cascaded); the bucket counts a token to within rounding."""
    data = esp_world(api_rate=10, api_burst=1)
    data["workload"][0].update(interarrival=0.1, start=99.95, stop=110)  # 100, 100.1, ...
    res = run(parse_scenario(data))
    assert res.stats["esp"]["esp"]["api_requests"] == (res.messages["kind"] != "dsn").sum() >= 99
    assert res.stats["esp"]["esp"]["throttled"] == 0
