"""Relays (a backup MX, a smart host), relayhost and sending IPs, to 1e-9 s.

The tiny world (tests/conftest.py) with relays hung off its router ``r``:

    home --0.02 s, 1 MB/s-- r --0.001 s, 100 MB/s-- mta --0.001 s-- dns
                            r --0.015 s, 5 MB/s-- mx --0.0005 s, 100 MB/s-- store
                            r --0.004 s, 5 MB/s-- backup      (the backup MX test)
                            r --0.002 s, 100 MB/s-- relay1    (the chain test)
                            r --0.003 s, 100 MB/s-- relay2

One message of 10,000 B is created at t = 100. Round trips with TLS 1.3 and
pipelining: submission 9 to acceptance, SMTP relay 8, LMTP 5. The resolver's lookup
takes 0.2 s plus the asker's round trip to it; an answer is cached for mx_ttl = 150 s
from when the lookup ends.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from sim import build, run
from sim.config import ScenarioError, parse_scenario
from sim.mail.smtp import Phase, Reply
from tests.conftest import node, tiny_data
from tests.test_accounting import check_books

SIZE = 10_000
SUBMITTED = 100 + 9 * 2 * 0.021 + SIZE / 1e6  # 100.388: home-r-mta, 1 MB/s
MISS = 0.2  # a lookup the cache cannot answer
SCAN, WRITE = 0.05, 0.01
LMTP = 5 * 2 * 0.0005 + SIZE / 1e8  # 0.0051


def one_message(**changes: Any) -> dict[str, Any]:
    """The tiny world sending one message, at t = 100."""
    data = tiny_data(duration=150, drain=1000, **changes)
    return data


def add(data: dict[str, Any], spec: dict[str, Any], *edges: dict[str, Any]) -> None:
    data["topology"]["nodes"].append(spec)
    data["topology"]["edges"].extend(edges)


def attempts_of(res: Any, mid: int = 0) -> pd.DataFrame:
    a = res.attempts
    return a[a["id"] == mid].reset_index(drop=True)


# -- a backup MX that holds mail until the primary returns --------------------------


def backup_world() -> dict[str, Any]:
    """acme's case in small: the MX is down from 50 to 400 s; ``backup`` (preference
    20) relays, with its own schedule: a queue run every 60 s, backoff at least 120 s."""
    data = one_message()
    add(
        data,
        {"id": "backup", "kind": "relay", "resolver": "dns", "workers": 2,
         "queue_run_delay": 60, "minimal_backoff_time": 120},
        {"a": "r", "b": "backup", "latency": 0.004, "bandwidth": 5.0e6},
    )
    data["domains"][0]["mx"].append({"host": "backup", "preference": 20})
    node(data, "mx")["outages"] = [{"start": 50, "end": 400}]
    return data


def test_a_backup_mx_relay_holds_mail_until_the_primary_returns() -> None:
    """By hand (one-way latencies: mta-r-mx 0.016, mta-r-backup 0.005 at 5 MB/s,
    backup-r-mx 0.019 at 5 MB/s, backup-r-mta-dns 0.006):

    - submitted 100.388; the MTA's lookup misses: ends 100.588 (cached to 250.588),
      answer at 100.590; mx is down: 30 s connect timeout, to 130.590; the backup
      accepts after 8 round trips of 0.010 s + 10,000 B / 5 MB/s = 0.082: 130.672.
    - The relay queues it afresh (queued = 130.672). Its lookup hits the cache:
      + 0.012 = 130.684; mx does not answer: 160.684, deferred (the relay has no better
      host left). Backoff = age 30.012 clamped to [120, 4000] = 120: due 280.684; the
      relay's queue runs every 60 s: released at 300.
    - At 300 the cache has expired (250.588): 300.2 + 0.012 = 300.212; still down: to
      330.212; age 199.540, due 529.752: released at the 540 run.
    - At 540 (mx is back since 400) the lookup misses again (cache to 450.2 expired):
      540.212; 8 round trips of 0.038 + 0.002 = 0.306: accepted by mx at 540.518;
      scanned 0.05, LMTP 0.0051, written 0.01: delivered 540.5831 (the LMTP row ends
      with the write, when the store answers).
    """
    res = run(parse_scenario(backup_world()), trace=True)
    row = res.messages.loc[0]
    check_books(res.messages)
    assert row["status"] == "delivered"
    assert row["submitted"] == pytest.approx(100.388, abs=1e-9)
    assert row["accepted"] == pytest.approx(540.518, abs=1e-9)  # by mx, the last server
    assert row["delivered"] == pytest.approx(540.518 + SCAN + LMTP + WRITE, abs=1e-9)
    assert row["delivered"] == pytest.approx(540.5831, abs=1e-9)
    assert row["mx_host"] == "mx"
    assert row["attempts"] == 3 and row["deferrals"] == 2  # the relay's, its own schedule
    steps = attempts_of(res)
    got = list(zip(steps["hop"], steps["attempt"], steps["host_order"], steps["src"], steps["dst"],
                   steps["outcome"]))
    assert got == [
        (0, 1, 1, "home", "mta", "delivered"),
        (1, 1, 1, "mta", "mx", "timeout"),
        (1, 1, 2, "mta", "backup", "delivered"),
        (2, 1, 1, "backup", "mx", "deferred"),
        (2, 2, 1, "backup", "mx", "deferred"),
        (2, 3, 1, "backup", "mx", "delivered"),
        (3, 1, 1, "mx", "store", "delivered"),
    ]
    starts = [100.0, 100.590, 130.590, 130.684, 300.212, 540.212, 540.568]
    ends = [100.388, 130.590, 130.672, 160.684, 330.212, 540.518, 540.5831]  # LMTP: after the write
    assert steps["start"].tolist() == pytest.approx(starts, abs=1e-9)
    assert steps["end"].tolist() == pytest.approx(ends, abs=1e-9)
    # The relay never wrote into the store: the one write came from mx.
    assert res.stats["relay"]["backup"]["relayed"] == 1
    assert res.stats["relay"]["backup"]["holding_at_end"] == 0


def test_a_message_in_the_relays_queue_is_in_flight_there() -> None:
    """At 200 the message waits in the relay's deferred queue (due 280.684)."""
    model = build(parse_scenario(backup_world()))
    model.run(until=200)
    assert model.census()["relay"] == 1 == model.recorder.in_flight()
    assert model.census()["mta"] == 0
    m = model.recorder.messages()
    assert m.loc[0, "where"] == "backup" and m.loc[0, "status"] == "in_flight"


def test_a_backup_mx_tries_only_better_hosts() -> None:
    """The relay at preference 20 never tries itself or ``other`` (an MX at 30, which
    is up): only mx (10), three times, however long mx is down (RFC 5321 5.1)."""
    data = backup_world()
    add(data, {"id": "other", "kind": "mx"}, {"a": "r", "b": "other", "latency": 0.001})
    data["domains"][0]["mx"].append({"host": "other", "preference": 30})
    res = run(parse_scenario(data), trace=True)
    steps = attempts_of(res)
    relay_tries = steps[steps["src"] == "backup"]
    assert set(relay_tries["dst"]) == {"mx"} and len(relay_tries) == 3
    # The MTA, for its part, tries every host in order: mx, then backup (which accepts).
    assert list(steps.loc[steps["src"] == "mta", "dst"]) == ["mx", "backup"]


def test_a_relay_that_is_the_best_mx_bounces_the_message() -> None:
    """RFC 5321 5.1: no record better than its own left: returned as undeliverable.
    The relay answers for the domain at 5 (better than mx); the MTA reaches it first:
    accepted at 100.590 + 8 * 0.010 + 0.002 = 100.672; its cached lookup comes back at
    100.684 and the message bounces there, 554 5.4.6."""
    data = backup_world()
    data["domains"][0]["mx"][1]["preference"] = 5
    res = run(parse_scenario(data))
    row = res.messages.loc[0]
    assert row["status"] == "bounced"
    assert row["reason"] == "mail loops back to myself"
    assert row["final_reply"] == "554 5.4.6 mail loops back to myself"
    assert row["ended"] == pytest.approx(100.684, abs=1e-9)
    # Its DSN, queued there at that instant, goes back to the sender at example.org,
    # whose best MX is this relay too: its own cached lookup (one more round trip to the
    # resolver, 0.012) finds it loops back, and it bounces at 100.696; no DSN is made
    # about a DSN.
    dsn = res.messages[res.messages["kind"] == "dsn"]
    assert list(dsn["parent_id"]) == [0] and list(dsn["reason"]) == ["mail loops back to myself"]
    assert list(dsn["ended"]) == pytest.approx([100.684 + 0.012], abs=1e-9)
    assert res.stats["relay"]["backup"]["bounced"] == 2


# -- relayhost and a chain of two relays ----------------------------------------------


def chain_world() -> dict[str, Any]:
    """mta --relayhost--> relay1 --relayhost--> relay2 --MX--> mx."""
    data = one_message()
    node(data, "mta")["relayhost"] = "relay1"
    add(
        data,
        {"id": "relay1", "kind": "relay", "resolver": "dns", "relayhost": "relay2"},
        {"a": "r", "b": "relay1", "latency": 0.002, "bandwidth": 1.0e8},
    )
    add(
        data,
        {"id": "relay2", "kind": "relay", "resolver": "dns"},
        {"a": "r", "b": "relay2", "latency": 0.003, "bandwidth": 1.0e8},
    )
    return data


def test_a_chain_of_two_relays_is_four_hops_and_the_lmtp_hand_off() -> None:
    """By hand: submitted 100.388. The MTA sends to its relayhost without a lookup:
    mta-r-relay1 0.003 s at 100 MB/s: 8 * 0.006 + 0.0001 = 0.0481: 100.4361. relay1
    does the same to relay2 (relay1-r-relay2 0.005): 8 * 0.010 + 0.0001 = 0.0801:
    100.5162. relay2 looks mx up (relay2-r-mta-dns 0.005: 0.2 + 0.010): 100.7262, then
    relay2-r-mx 0.018 at 5 MB/s: 8 * 0.036 + 0.002 = 0.290: accepted 101.0162; LMTP
    from 101.0662 (0.0051) and the write (0.01): delivered 101.0813."""
    res = run(parse_scenario(chain_world()), trace=True)
    row = res.messages.loc[0]
    check_books(res.messages)
    assert row["status"] == "delivered"
    assert row["delivered"] == pytest.approx(101.0813, abs=1e-9)
    steps = attempts_of(res)
    assert list(zip(steps["hop"], steps["src"], steps["dst"])) == [
        (0, "home", "mta"), (1, "mta", "relay1"), (2, "relay1", "relay2"), (3, "relay2", "mx"),
        (4, "mx", "store"),
    ]
    assert (steps["attempt"] == 1).all() and (steps["outcome"] == "delivered").all()
    assert steps["start"].tolist() == pytest.approx(
        [100.0, 100.388, 100.4361, 100.7262, 101.0662], abs=1e-9)
    assert steps["end"].tolist() == pytest.approx(
        [100.388, 100.4361, 100.5162, 101.0162, 101.0813], abs=1e-9)  # LMTP ends after the write


def test_relayhost_needs_no_lookup_and_is_one_destination() -> None:
    """An MTA with relayhost never asks its resolver; its one destination (for the
    concurrency policy) is the smart host, whatever the recipient domain."""
    model = build(parse_scenario(chain_world()))
    model.run()
    mta = model.node("mta")
    assert list(mta.destinations) == [("relay1",)]
    # Only relay2 looked the domain up: one query, a miss.
    stats = model.node("dns").stats()
    assert (stats["queries"], stats["cache_hits"], stats["resolutions"]) == (1, 0, 1)


def test_trace_shows_the_relay_hops(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    from sim.faces.trace import print_journey

    res = run(parse_scenario(chain_world()), trace=True)
    console = Console(width=200, record=True)
    print_journey(res, 0, console)
    text = console.export_text()
    for pair in ("mta → relay1", "relay1 → relay2", "relay2 → mx", "mx → store"):
        assert pair in text


@pytest.mark.parametrize(
    "change, path, problem",
    [
        (lambda d: node(d, "mta").update(relayhost="mx"), "topology.nodes[mta].relayhost",
         "'mx' is an mx node, not a relay node"),
        (lambda d: node(d, "mta").update(relayhost="nowhere"), "topology.nodes[mta].relayhost",
         "'nowhere' is not a node of the topology"),
        (lambda d: node(d, "relay1").update(relayhost="relay1"), "topology.nodes[relay1].relayhost",
         "'relay1' names itself as its relayhost"),
        (lambda d: d["domains"][0]["mx"].append({"host": "dns", "preference": 50}),
         "domains[example.org].mx[1].host", "'dns' is a resolver node, not an mx or relay node"),
        (lambda d: node(d, "mta").update(ips=["a", "b", "a"]), "topology.nodes[mta].ips",
         "'a' is listed twice"),
        (lambda d: node(d, "mta").update(ips=[]), "topology.nodes[mta].ips",
         "give 1 to 65536 sending IPs, got 0"),
        (lambda d: node(d, "mta").update(ips=0), "topology.nodes[mta].ips",
         "a count of sending IPs must be 1 to 65536 (got 0)"),
        (lambda d: node(d, "mta").update(ips=True), "topology.nodes[mta].ips",
         "give a count or a list of names (got True)"),
    ],
)
def test_bad_relay_input_is_one_clear_error(change: Any, path: str, problem: str) -> None:
    data = chain_world()
    change(data)
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data)
    assert err.value.path.startswith(path)
    assert problem in str(err.value)


def test_a_loop_of_relays_ends_at_the_hop_limit() -> None:
    """relay1 and relay2 send to each other (each the other's relayhost): Postfix's
    hopcount_limit refuses the message at DATA once it would arrive by more hops, and
    the relay holding it bounces it: hops 1 (mta) .. 4 reach the limit of 4."""
    data = chain_world()
    node(data, "relay2")["relayhost"] = "relay1"
    for rid in ("relay1", "relay2"):
        node(data, rid)["hopcount_limit"] = 4
    res = run(parse_scenario(data), trace=True)
    row = res.messages.loc[0]
    assert row["status"] == "bounced" and row["reason"] == "too many hops"
    assert row["final_reply"] == "554 5.4.0 Error: too many hops"
    steps = attempts_of(res)
    assert steps["hop"].tolist() == [0, 1, 2, 3, 4, 5]
    assert steps["outcome"].tolist() == ["delivered"] * 5 + ["bounced"]


# -- sending IPs ------------------------------------------------------------------------


class Clients:
    """A policy that refuses nothing and notes who connected (as a receiver's per-IP
    limit would see them)."""

    phase = Phase.CONNECT

    def __init__(self) -> None:
        self.seen: list[str] = []

    def check(self, server: Any, client: str, msg: Any, now: float) -> Reply | None:
        self.seen.append(client)
        return None


@pytest.mark.parametrize(
    "ips, expected",
    [
        (1, ["mta"] * 4),
        (3, ["mta#1", "mta#2", "mta#3", "mta#1"]),
        (["10.0.0.1", "10.0.0.2"], ["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.2"]),
    ],
)
def test_sessions_go_out_from_the_sending_ips_in_turn(ips: Any, expected: list[str]) -> None:
    """Four messages (t = 100, 200, 300, 400), one session each: the server sees the
    IPs in turn; one IP (the default) is the node id, as before."""
    data = tiny_data(duration=450)
    node(data, "mta")["ips"] = ips
    spy = Clients()
    model = build(parse_scenario(data))
    model.node("mx").add_policy(spy)
    model.run()
    assert spy.seen == expected
    assert (model.recorder.messages()["status"] == "delivered").all()


def test_one_ip_changes_nothing() -> None:
    """``ips: 1`` written out gives the very same run as leaving it out."""
    a = run(parse_scenario(tiny_data()), trace=True)
    data = tiny_data()
    node(data, "mta")["ips"] = 1
    b = run(parse_scenario(data), trace=True)
    pd.testing.assert_frame_equal(a.messages, b.messages)
    pd.testing.assert_frame_equal(a.attempts, b.attempts)


def test_a_relay_that_is_down_refuses_connections_when_told_to() -> None:
    """A relay takes the host-level `answer` an MX takes. mx and backup are both down
    (mx from 50 to 400; backup for good, `answer: refuse`): the MTA waits out mx's
    30 s connect timeout, then backup resets the connection at once (one round trip of
    2 * 0.005 s): refused, not a timeout, and the message is deferred."""
    data = backup_world()
    node(data, "backup").update(answer="refuse", outages=[{"start": 0, "end": 5000}])
    res = run(parse_scenario(data), trace=True)
    first = attempts_of(res)
    first = first[(first["hop"] == 1) & (first["attempt"] == 1)]
    assert list(first["dst"]) == ["mx", "backup"]
    assert first.iloc[0]["end"] - first.iloc[0]["start"] == pytest.approx(30.0, abs=1e-9)
    assert first.iloc[1]["end"] - first.iloc[1]["start"] == pytest.approx(0.010, abs=1e-9)
    assert pd.isna(first.iloc[1]["reply"]) and first.iloc[1]["enhanced"] == "4.4.1"
    assert first.iloc[1]["outcome"] == "deferred"  # the last host of the attempt
