"""Submission failures and overload, hand-computed to 1e-9 s (docs/model.md, section 7).

The tiny world (tests/conftest.py): home --0.02 s, 1 MB/s-- r --0.001 s-- mta, so the
client's path to its MTA is 0.021 s one way (a round trip 0.042 s) at 1 MB/s. With TLS
and PIPELINING a submission is 9 round trips plus the 10,000 B body to the reply to
".": 0.378 + 0.01 = 0.388 s; to the reply to MAIL FROM 8 round trips, 0.336 s. A
connection to a host that refuses it is reset after one round trip, 0.042 s; a host
that does not answer is waited for the mail client's connect timeout, 160 s
(Thunderbird). The outbox tries again ``outbox_retry`` (1800 s, Outlook) after the
failed attempt ended. Messages are made at 100, 200 and 300.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from sim import build, run
from sim.config import parse_scenario
from sim.core.faults import Cut
from sim.core.rng import Streams
from sim.mail.smtp import CONNECTION_REFUSED, NO_ANSWER, NO_SPACE, Reply
from tests.conftest import assert_key_error, node, tiny_data
from tests.test_accounting import check_books
from tests.test_esp import API, esp_world
from tests.test_mta import burst

SUBMIT = 9 * 0.042 + 10_000 / 1e6  # 0.388
TO_MAIL = 8 * 0.042  # 0.336
RESET = 0.042
RETRY = 1800.0
MAIL_TIMEOUT = 160.0


def hop0(res: Any, mid: int) -> pd.DataFrame:
    a = res.attempts
    return a[(a["id"] == mid) & (a["hop"] == 0)].reset_index(drop=True)


def mta_down_until(until: float, reply: Reply) -> Any:
    """A hook: the MTA is down from the start (answering ``reply``) until ``until``."""

    def hook(model: Any) -> None:
        mta = model.node("mta")
        mta.up, mta.down_reply = False, reply
        model.at(until, lambda: setattr(mta, "up", True))

    return hook


def one_message(**changes: Any) -> dict[str, Any]:
    """The tiny world with one message, at 100, and a long drain."""
    data = tiny_data(duration=150, drain=6000, **changes)
    return data


@pytest.mark.parametrize(
    "reply, tries", [(NO_ANSWER, [(100, 260)]), (CONNECTION_REFUSED, [(100, 100.042), (1900.042, 1900.084)])]
)
def test_a_down_mta_leaves_the_message_in_the_outbox(reply: Reply, tries: list[tuple[float, float]]) -> None:
    """The MTA is down until 2000.

    Silent: the client waits 160 s (100 -> 260, timeout), tries again at 260 + 1800 =
    2060, when the MTA is up: submitted at 2060.388.
    Refusing: each try is reset after 0.042 s; 100.042 + 1800 = 1900.042 is still
    within the outage (reset at 1900.084); 1900.084 + 1800 = 3700.084: submitted at
    3700.472.
    """
    res = run(parse_scenario(one_message()), trace=True, hook=mta_down_until(2000, reply))
    m = res.messages
    check_books(m)
    last = tries[-1][1] + RETRY
    assert m.loc[0, "status"] == "delivered"
    assert m.loc[0, "submitted"] == pytest.approx(last + SUBMIT, abs=1e-9)
    a = hop0(res, 0)
    assert list(a["attempt"]) == list(range(1, len(tries) + 2))
    assert a["start"].tolist() == pytest.approx([t for t, _ in tries] + [last], abs=1e-9)
    assert a["end"].tolist() == pytest.approx([e for _, e in tries] + [last + SUBMIT], abs=1e-9)
    failed = "timeout" if reply.silent else "refused"
    assert list(a["outcome"]) == [failed] * len(tries) + ["delivered"]
    assert list(a["reply"].fillna(0))[:-1] == [0] * len(tries)  # no SMTP reply: no code
    assert (a["src"] == "home").all() and (a["dst"] == "mta").all()
    assert m.loc[0, "attempts"] == 1  # delivery attempts count from the submission


def test_rows_in_the_outbox_are_in_flight_at_the_client_and_in_the_census() -> None:
    """While the message waits (260 .. 2060) it is in flight, where = home, and the
    census counts it under ``client``; the MTA holds nothing."""
    model = build(parse_scenario(one_message()))
    mta_down_until(2000, NO_ANSWER)(model)
    for t in (150.0, 1000.0):  # waiting for the timeout, then in the outbox
        model.run(until=t)
        m = model.recorder.messages()
        assert m.loc[0, "status"] == "in_flight" and m.loc[0, "where"] == "home"
        assert model.census() == {"client": 1, "mta": 0, "router": 0, "resolver": 0, "mx": 0, "mailbox": 0}
        assert sum(model.census().values()) == model.recorder.in_flight() == 1


def test_a_5xx_at_submission_still_bounces_at_once() -> None:
    """Over message_size_limit: 552 5.3.4 at MAIL FROM (100.336), bounced, no outbox."""
    data = one_message()
    node(data, "mta")["message_size_limit"] = 5000
    res = run(parse_scenario(data), trace=True)
    m = res.messages
    assert m.loc[0, "status"] == "bounced" and m.loc[0, "ended"] == pytest.approx(100 + TO_MAIL, abs=1e-9)
    assert list(hop0(res, 0)["outcome"]) == ["bounced"]


def test_an_unreachable_mta_is_waited_for_as_a_silent_one() -> None:
    """No path from home to the MTA (Link.up false, as a link fault leaves it) until
    2000: the client waits its connect timeout, as for a host that does not answer."""

    def hook(model: Any) -> None:
        mta = model.node("mta")
        mta._reach = True  # as when the scenario has a fault that can break a path
        link = model.ctx.network.link("home", "mta")
        link.up = False
        model.at(2000, lambda: setattr(link, "up", True))

    res = run(parse_scenario(one_message()), trace=True, hook=hook)
    a = hop0(res, 0)
    assert list(a["outcome"]) == ["timeout", "delivered"]
    assert a["end"].tolist() == pytest.approx([100 + MAIL_TIMEOUT, 100 + MAIL_TIMEOUT + RETRY + SUBMIT], abs=1e-9)


@pytest.mark.parametrize("what", ["crash", "link"])
def test_a_cut_submission_goes_back_to_the_outbox(what: str) -> None:
    """At 100.2, mid-dialogue (100 .. 100.388), the MTA crashes (down until 500) or the
    path breaks (the MTA up): the session is cut (interrupted, 100 .. 100.2), the client
    takes the message back and sends it at 100.2 + 1800 = 1900.2: submitted at
    1900.588."""
    # A crash fault elsewhere, late, so that the run keeps its open sessions.
    data = one_message(faults=[{"kind": "node", "node": "mx", "start": 5000, "end": 5001}])

    def hook(model: Any) -> None:
        mta = model.node("mta")

        def crash() -> None:
            if what == "crash":
                mta.up = False
                model.ctx.sessions.at("mta")
            else:
                model.ctx.sessions.cut(lambda a, b: True, Cut("link", "r"))

        model.at(100.2, crash)
        model.at(500, lambda: setattr(mta, "up", True))

    res = run(parse_scenario(data), trace=True, hook=hook)
    m = res.messages
    check_books(m)
    a = hop0(res, 0)
    assert list(a["outcome"]) == ["interrupted", "delivered"]
    assert list(a["reply"])[0] is pd.NA
    assert a["start"].tolist() == pytest.approx([100, 1900.2], abs=1e-9)
    assert a["end"].tolist() == pytest.approx([100.2, 1900.2 + SUBMIT], abs=1e-9)
    assert m.loc[0, "submitted"] == pytest.approx(1900.2 + SUBMIT, abs=1e-9)


def test_a_path_that_goes_while_a_client_waits_for_an_smtpd_is_met_as_silence() -> None:
    """One smtpd; two messages at 10; home~r down from 10.2 to 20. Message 0's session
    is cut at 10.2 (interrupted; its outbox retry at 10.2 + 1800). Message 1 waited for
    the smtpd; taken at 10.2, it finds no path: no answer, the client's 160 s, then the
    outbox: tried again at 170.2 + 1800 = 1970.2, submitted 0.388 later."""
    data = burst(tiny_data(duration=150, drain=3000), 2)
    node(data, "mta")["smtpd_workers"] = 1
    data["faults"] = [{"kind": "link", "a": "home", "b": "r", "start": 10.2, "end": 20}]
    res = run(parse_scenario(data), trace=True)
    one = hop0(res, 1)
    assert list(zip(one["start"], one["end"], one["outcome"])) == [
        (10.2, pytest.approx(170.2, abs=1e-9), "timeout"), (pytest.approx(1970.2, abs=1e-9),
                                                            pytest.approx(1970.588, abs=1e-9), "delivered")]
    assert list(hop0(res, 0)["outcome"]) == ["interrupted", "delivered"]
    check_books(res.messages)


def test_a_down_mta_behind_a_path_that_is_gone_is_silent_whatever_it_would_say() -> None:
    """The MTA is down and would refuse, but home~r is down too (5 to 20): the client's
    SYN never reaches it, so it waits its 160 s (no reset), then tries again 1800 s
    later: 10 + 160 + 1800 = 1970, submitted at 1970.388."""
    data = burst(tiny_data(duration=150, drain=3000), 1)
    data["faults"] = [{"kind": "link", "a": "home", "b": "r", "start": 5, "end": 20},
                      {"kind": "node", "node": "mta", "answer": "refuse", "start": 5, "end": 20}]
    res = run(parse_scenario(data), trace=True)
    a = hop0(res, 0)
    assert list(a["end"]) == pytest.approx([170, 1970.388], abs=1e-9)
    assert list(a["outcome"]) == ["timeout", "delivered"]


def test_a_full_queue_answers_452_and_the_client_tries_later() -> None:
    """message_size_limit 100,000 B: the floor is 150,000 B of free space; the queue's
    file system holds 165,000 B. The MX refuses connections until 1000, so what is
    queued stays. After messages 0 and 1 (10,000 B each) the free space is 145,000 B:
    message 2 (at 300) hears 452 4.3.1 at MAIL FROM (300.336), keeps the message and
    sends it again at 2100.336, when 0 and 1 are long delivered: submitted at 2100.724.
    """
    data = tiny_data(drain=6000)
    mta = node(data, "mta")
    mta.update(message_size_limit=100_000, queue_file_system_size=165_000)
    node(data, "mx").update(outages=[{"start": 0, "end": 1000, "answer": "refuse"}])
    model = build(parse_scenario(data), trace=True)
    model.run()
    res = model.results()
    m = res.messages
    check_books(m)
    assert (m["status"] == "delivered").all()
    a = hop0(res, 2)
    assert list(a["reply"]) == [452, 250]
    assert a.loc[0, "enhanced"] == "4.3.1" and list(a["outcome"]) == ["deferred", "delivered"]
    assert a["end"].tolist() == pytest.approx([300 + TO_MAIL, 300 + TO_MAIL + RETRY + SUBMIT], abs=1e-9)
    assert m.loc[2, "submitted"] == pytest.approx(300 + TO_MAIL + RETRY + SUBMIT, abs=1e-9)
    space = model.node("mta").space
    assert space.used == 0.0 and space.refused == 1  # everything left the queue
    assert model.node("mta").in_active == 0  # deferred and retried, each counted out once
    assert res.stats["mta"]["mta"]["queue_full_refusals"] == 1
    assert NO_SPACE.line == "452 4.3.1 Insufficient system storage"


def test_a_relay_with_a_full_queue_answers_452_at_mail_from() -> None:
    """A relay whose queue file system has no room (a byte above the floor of
    1.5 x 10,240,000, ten bytes of it used) refuses MAIL FROM with 452 4.3.1: the
    sender defers at its last host."""
    from sim.mail.relay import Relay

    data = tiny_data()
    mx = node(data, "mx")
    mx.update(id="relay", kind="relay", resolver="dns", queue_file_system_size=15_360_001)
    for key in ("processing",):
        mx.pop(key)
    for edge in data["topology"]["edges"]:
        for end in ("a", "b"):
            if edge[end] == "mx":
                edge[end] = "relay"
    data["domains"][0]["mx"] = [{"host": "relay", "preference": 10}]
    model = build(parse_scenario(data), trace=True)
    relay = model.node("relay")
    assert isinstance(relay, Relay)
    relay.space.used = 10
    model.run(until=102)
    a = model.recorder.attempts()
    first = a[(a["id"] == 0) & (a["hop"] == 1)]
    assert list(first["reply"]) == [452] and list(first["outcome"]) == ["deferred"]
    assert relay.space.refused == 1


def test_the_active_queue_limit_holds_mail_in_incoming() -> None:
    """qmgr_message_active_limit 1; three messages at 10, all submitted at 10.388.

    Message 0 enters the active queue: lookup 0.202 (a miss), session 8 round trips of
    0.032 s + 10,000 B at 5 MB/s = 0.258: accepted at 10.848, QUIT 0.032 to 10.88, when
    it leaves the active queue and message 1 comes in: a cached lookup 0.002 and the
    session: 11.14; QUIT to 11.172; message 2: 11.432. Without the limit all three are
    accepted at 10.848 (three sessions at once)."""
    data = burst(tiny_data(), 3)
    node(data, "mta")["qmgr_message_active_limit"] = 1
    model = build(parse_scenario(data))
    model.run(until=10.5)
    mta = model.node("mta")
    assert (mta.in_active, len(mta.held_back)) == (1, 2)
    assert sum(model.census().values()) == model.recorder.in_flight() == 3
    model.run()
    m = model.recorder.messages()
    assert m["accepted"].tolist() == pytest.approx([10.848, 11.14, 11.432], abs=1e-9)
    assert (mta.in_active, len(mta.held_back)) == (0, 0)
    free = run(parse_scenario(burst(tiny_data(), 3))).messages
    assert free["accepted"].tolist() == pytest.approx([10.848] * 3, abs=1e-9)


def test_the_api_client_backs_off_and_gives_up_when_the_esp_is_down() -> None:
    """The ESP never answers: each request waits the API client's 60 s (botocore). The
    waits between attempts are min(U_k x 2^k, 20) s, U_k the source's ``backoff``
    stream's k-th uniform: attempt 1 at 100 fails at 160, attempt 2 at 160 + w1 fails
    at 220 + w1, attempt 3 at 220 + w1 + w2 fails at 280 + w1 + w2, and the rows bounce
    then (max_attempts 3), reason "API request failed"."""
    data = esp_world()
    data.update(duration=150, drain=1000)

    def hook(model: Any) -> None:
        model.node("esp").up = False

    res = run(parse_scenario(data), trace=True, hook=hook)
    u = Streams(7).stream("source", "people", "backoff").gen.random(2)
    w1, w2 = min(u[0] * 2, 20), min(u[1] * 4, 20)
    a = hop0(res, 0)
    assert a["start"].tolist() == pytest.approx([100, 160 + w1, 220 + w1 + w2], abs=1e-9)
    assert a["end"].tolist() == pytest.approx([160, 220 + w1, 280 + w1 + w2], abs=1e-9)
    assert list(a["outcome"]) == ["timeout", "timeout", "bounced"]
    m = res.messages
    check_books(m)
    assert m.loc[0, "status"] == "bounced" and m.loc[0, "reason"] == "API request failed"
    assert m.loc[0, "ended"] == pytest.approx(280 + w1 + w2, abs=1e-9)
    assert res.stats["esp"]["esp"]["api_gave_up"] == 1


def test_the_api_client_gets_through_when_the_esp_is_back() -> None:
    """The ESP refuses (503 from its load balancer, after one round trip of 0.042 s)
    until 101; attempt 1 fails at 100.042, attempt 2 at 100.042 + w1 (w1 = 2 U_1 < 2
    s) fails too unless the ESP is back by then, ... The ESP is back at 101 while the
    client waits: the next attempt is answered 202 after 0.052 s."""
    data = esp_world()
    data.update(duration=150, drain=1000)

    def hook(model: Any) -> None:
        esp = model.node("esp")
        esp.up, esp.down_reply = False, CONNECTION_REFUSED
        model.at(101, lambda: setattr(esp, "up", True))

    res = run(parse_scenario(data), trace=True, hook=hook)
    u = Streams(7).stream("source", "people", "backoff").gen.random(2)
    t, starts = 100.0, [100.0]
    while t < 101:  # each failure: 0.042, then the k-th backoff
        k = len(starts)
        t += 0.042 + min(u[k - 1] * 2**k, 20)
        starts.append(t)
    a = hop0(res, 0)
    assert a["start"].tolist() == pytest.approx(starts, abs=1e-9)
    assert list(a["reply"]) == [503] * (len(starts) - 1) + [202]
    assert res.messages.loc[0, "submitted"] == pytest.approx(starts[-1] + API, abs=1e-9)


def test_an_esp_crash_breaks_the_api_requests_in_progress() -> None:
    """The ESP crashes at 100.02 (back at 100.03) while the request made at 100 is on
    its way: the answer due at 100 + API never comes; the client hears the connection
    break then (an interrupted attempt), backs off w1 = 2 U_1 and tries again at
    100 + API + w1, answered 202 after API more. A planned stop (``crash: false``)
    finishes the request in progress: answered at 100 + API."""
    u = Streams(7).stream("source", "people", "backoff").gen.random(1)
    retry = 100 + API + min(u[0] * 2, 20)
    for crash, starts, replies in ((True, [100, retry], [pd.NA, 202]), (False, [100], [202])):
        data = esp_world()
        data.update(duration=150, drain=1000, faults=[
            {"kind": "node", "node": "esp", "start": 100.02, "end": 100.03, "crash": crash}])
        res = run(parse_scenario(data), trace=True)
        a = hop0(res, 0)
        assert a["start"].tolist() == pytest.approx(starts, abs=1e-9)
        assert [None if r is pd.NA else r for r in a["reply"]] == [None if r is pd.NA else r for r in replies]
        assert res.messages.loc[0, "submitted"] == pytest.approx(starts[-1] + API, abs=1e-9)
        check_books(res.messages)


def test_a_default_scenario_pays_nothing_for_the_outbox() -> None:
    """No fault: no source makes its outbox's timeline; the MTA's active count is back
    to zero once its mail has left, and nothing waited in incoming."""
    model = build(parse_scenario(tiny_data()))
    model.run()
    assert all(s._outbox is None for s in model.sources)
    mta = model.node("mta")
    assert mta.in_active == 0 and not mta.held_back and mta.space is None


@pytest.mark.parametrize(
    "where, change, key, problem",
    [
        ("mta", {"qmgr_message_active_limit": 0}, "topology.nodes[mta].qmgr_message_active_limit", "greater than 0"),
        ("mta", {"queue_file_system_size": "lots"}, "topology.nodes[mta].queue_file_system_size", "lots"),
        ("mta", {"queue_minfree": -1}, "topology.nodes[mta].queue_minfree", "greater than or equal to 0"),
        ("mta", {"queue_file_system_size": "15MB"}, "topology.nodes[mta]",
         "queue_file_system_size (1.5e+07 bytes) must be above max(queue_minfree, 1.5 x message_size_limit) "
         "= 1.536e+07 bytes, or the queue never takes a message"),
        ("source", {"outbox_retry": 0}, "workload[people].outbox_retry", "greater than 0"),
        ("source", {"max_attempts": 0}, "workload[people].max_attempts", "greater than or equal to 1"),
        ("source", {"connect_timeout": -5}, "workload[people].connect_timeout", "greater than 0"),
    ],
)
def test_bad_overload_and_client_keys_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, change: dict[str, Any], key: str, problem: str
) -> None:
    data = tiny_data()
    (node(data, "mta") if where == "mta" else data["workload"][0]).update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert_key_error(["validate", str(path)], capsys, path, key, problem)


def test_a_client_that_waits_too_long_for_an_smtpd_gives_up_and_keeps_the_message() -> None:
    """One smtpd, three messages at 10, the clients' connect_timeout 0.4 s. Message 0
    is submitted at 10.388 and the worker is free after its QUIT, at 10.43; messages 1
    and 2 have waited 0.43 s > 0.4 s for a greeting: both gave up at 10.4 (4.4.2, no
    code) and go again at 1810.4. Message 1 gets the smtpd (1810.788); message 2 waits
    again past 1810.8 and gives up again; it goes at 3610.8: submitted 3611.188."""
    data = burst(tiny_data(drain=6000), 3)
    data["workload"][0]["connect_timeout"] = 0.4
    node(data, "mta")["smtpd_workers"] = 1
    res = run(parse_scenario(data), trace=True)
    m = res.messages
    check_books(m)
    assert m["submitted"].tolist() == pytest.approx([10 + SUBMIT, 1810.4 + SUBMIT, 3610.8 + SUBMIT], abs=1e-9)
    a1, a2 = hop0(res, 1), hop0(res, 2)
    assert list(a1["outcome"]) == ["timeout", "delivered"]
    assert list(a2["outcome"]) == ["timeout", "timeout", "delivered"]
    assert a2["start"].tolist() == pytest.approx([10, 1810.4, 3610.8], abs=1e-9)
    assert a2["end"].tolist() == pytest.approx([10.4, 1810.8, 3610.8 + SUBMIT], abs=1e-9)
    assert list(a2["enhanced"])[:2] == ["4.4.2", "4.4.2"]


def test_rows_of_a_failing_api_request_are_held_by_the_client() -> None:
    """The ESP never answers: at 130 the first request (100 .. 160) is waiting for its
    timeout; the row is in flight, held by the client, and counted by the ESP."""
    data = esp_world()
    data.update(duration=150, drain=1000)
    model = build(parse_scenario(data))
    model.node("esp").up = False
    model.run(until=130)
    m = model.recorder.messages()
    assert m.loc[0, "where"] == "home" and m.loc[0, "status"] == "in_flight"
    assert sum(model.census().values()) == model.recorder.in_flight() == 1
