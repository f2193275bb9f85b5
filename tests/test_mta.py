"""Sending-MTA behaviour: MX fallback, deferral and retry, queue expiry, size limit."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sim import build, run
from sim.config import parse_scenario
from tests.conftest import node, tiny_data


def two_mx(**mx1: Any) -> dict[str, Any]:
    """The tiny world with a backup MX at preference 20 (0.002 s further away)."""
    data = tiny_data()
    node(data, "mx").update(mx1)
    data["topology"]["nodes"].append({"id": "mx2", "kind": "mx", "processing": 0.05})
    data["topology"]["edges"].append({"a": "mx", "b": "mx2", "latency": 0.002})
    data["domains"][0]["mx"].append({"host": "mx2", "preference": 20})
    return data


def burst(data: dict[str, Any], count: int) -> dict[str, Any]:
    data["workload"][0].pop("interarrival")
    data["workload"][0]["batches"] = [{"at": 10, "count": count}]
    return data


def test_busy_primary_sends_the_rest_to_the_backup_mx() -> None:
    # Ten messages at once, ten delivery workers, a primary MX that takes one session.
    # The destination starts at Postfix's initial concurrency of 5: messages 0-4 start
    # (lookup to 10.59), 5-9 wait. 0 gets the primary (accepted 10.59 + 8 x 0.032 +
    # 0.002 = 10.848, QUIT to 10.88); 1-4 hear 421 (2 round trips, 10.654) and go to the
    # preference-20 host (8 x 0.036 + 0.002: accepted 10.944, QUIT to 10.98). At 10.88
    # message 5 starts (cached answer, 0.002 s) and finds the primary free: accepted
    # 10.882 + 0.258 = 11.14. At 10.98 the four others end (the fifth success in a
    # window of 5 opens a sixth slot) and take 6-9: the primary is busy with 5, so 421
    # again and the backup: 10.98 + 0.002 + 0.064 + 0.29 = 11.336.
    data = burst(two_mx(max_connections=1), 10)
    node(data, "mta")["workers"] = 10
    res = run(parse_scenario(data))
    m = res.messages
    assert (m["status"] == "delivered").all()
    assert m["mx_host"].astype(str).value_counts().to_dict() == {"mx2": 8, "mx": 2}
    assert list(m["mx_host"]) == ["mx"] + ["mx2"] * 4 + ["mx"] + ["mx2"] * 4
    assert list(m["accepted"]) == pytest.approx(
        [10.848] + [10.944] * 4 + [11.14] + [11.336] * 4, abs=1e-9
    )
    assert (m["attempts"] == 1).all()
    assert res.stats["mx"]["mx"]["refused"] == 8
    # The 421 cost a TCP handshake and a greeting (2 round trips of 0.032 s) first.
    fallback = m[m["mx_host"] == "mx2"]
    primary = m[m["mx_host"] == "mx"]
    extra = (fallback["accepted"] - fallback["submitted"]).min() - (
        primary["accepted"] - primary["submitted"]
    ).iloc[0]
    assert extra == pytest.approx(2 * 0.032 + 8 * 2 * 0.002, abs=1e-9)


def test_down_primary_costs_the_connect_timeout_then_backup_accepts() -> None:
    m = run(parse_scenario(two_mx()), hook=lambda model: model.node("mx").set_up(False)).messages
    assert (m["status"] == "delivered").all()
    assert set(m["mx_host"]) == {"mx2"}
    first = m.loc[0]
    # Lookup 0.202 s, 30 s connect timeout, then 8 round trips to mx2 (0.036 s one way).
    relay = 0.202 + 30 + 8 * 2 * 0.018 + 10_000 / 5.0e6
    assert first["accepted"] - first["submitted"] == pytest.approx(relay, abs=1e-9)


def test_all_mx_down_defers_then_retries_on_the_postfix_schedule() -> None:
    def outage(model: Any) -> None:
        mx = model.node("mx")
        mx.set_up(False)
        model.at(1000, lambda: mx.set_up(True))

    row = run(parse_scenario(tiny_data(duration=150, drain=5000)), hook=outage).messages.loc[0]
    # Queued at 100.388; attempt 1 fails at +0.202+30 = 130.59: whole-second age 130 - 100
    # = 30 s -> backoff clamps to the 300 s minimum, due 130 + 300 = 430, taken at the
    # queue run of t=600. Attempt 2 fails at 630.202 (age 530 s -> due 1160), taken at
    # 1200, when the MX is back up.
    assert row["status"] == "delivered"
    assert row["attempts"] == 3
    assert row["accepted"] == pytest.approx(1200 + 0.202 + 8 * 0.032 + 0.002, abs=1e-9)


def test_queue_lifetime_expiry_bounces() -> None:
    data = tiny_data(duration=150, drain=5000)
    node(data, "mta")["maximal_queue_lifetime"] = 900
    row = run(parse_scenario(data), hook=lambda model: model.node("mx").set_up(False)).messages.loc[0]
    assert row["status"] == "bounced"
    assert row["reason"] == "queue lifetime expired"
    assert row["final_reply"] == "4.4.1 Connection timed out"  # no reply: the host was down
    # Attempts at 100.4, 600 and 1200 (age 1099.8 > 900): three, then the bounce.
    assert row["attempts"] == 3
    assert math.isnan(row["accepted"])


def test_message_over_the_size_limit_is_refused_at_submission() -> None:
    data = tiny_data()
    node(data, "mta")["message_size_limit"] = 5_000
    m = run(parse_scenario(data)).messages
    assert (m["status"] == "bounced").all()
    assert set(m["reason"]) == {"message too large"}
    assert m["final_reply"].iloc[0].startswith("552 5.3.4")
    assert m["submitted"].isna().all()


def busy_world(**domain: float) -> Any:
    """20,000 messages, one a second, to the tiny domain with these settings."""
    data = tiny_data(duration=20_000)
    data["workload"][0]["interarrival"] = 1.0
    data["domains"][0].update(domain)
    return run(parse_scenario(data)).messages


def near(count: int, n: int, p: float) -> bool:
    """Whether ``count`` of ``n`` is within 4 binomial standard deviations of ``n p``."""
    return abs(count - p * n) < 4 * math.sqrt(n * p * (1 - p))


def test_unknown_recipients_bounce_at_about_their_rate() -> None:
    m = busy_world(unknown_recipient_rate=0.1)
    assert near((m["status"] == "bounced").sum(), len(m), 0.1)
    b = m[m["status"] == "bounced"]
    assert set(b["reason"]) == {"unknown recipient"}
    assert b["final_reply"].str.startswith("550 5.1.1").all()
    assert b["accepted"].isna().all()


def test_content_filter_discards_are_lost_with_a_reason() -> None:
    m = busy_world(discard_rate=0.05)
    lost = m[m["status"] == "lost"]
    assert near(len(lost), len(m), 0.05)
    assert set(lost["reason"]) == {"discarded by content filter"}
    # Accepted with 250 by the MX, then never stored.
    assert lost["final_reply"].str.startswith("250").all()
    assert lost["accepted"].notna().all() and lost["delivered"].isna().all()


def test_equal_preference_hosts_share_the_load() -> None:
    data = two_mx()
    data["domains"][0]["mx"][1]["preference"] = 10
    data = tiny_data(**{k: v for k, v in data.items() if k != "duration"}, duration=4000)
    data["workload"][0]["interarrival"] = 1.0
    counts = run(parse_scenario(data)).messages["mx_host"].value_counts()
    n = counts["mx"] + counts["mx2"]
    assert abs(counts["mx"] - n / 2) < 4 * math.sqrt(n / 4)


def test_backoff_is_capped_at_maximal_backoff_time() -> None:
    # All MX hosts down for good: attempts at queue runs, gaps growing with the message's
    # age until they stop at the 4000 s cap; then one attempt every ~4000 s.
    data = tiny_data(duration=150, drain=40_000)
    node(data, "mta")["maximal_queue_lifetime"] = 30_000
    res = run(parse_scenario(data), trace=True, hook=lambda model: model.node("mx").set_up(False))
    row = res.messages.loc[0]
    assert res.attempts is not None
    relay = res.attempts[(res.attempts["hop"] == 1) & (res.attempts["id"] == 0)]  # not its DSN's
    # Each attempt starts after the 0.202 s lookup and ends 30 s later (connect timeout).
    # The only MX does not answer: each attempt ends deferred, with status 4.4.1 and no code.
    assert (relay["outcome"] == "deferred").all() and relay["reply"].isna().all()
    assert (relay["enhanced"] == "4.4.1").all()
    assert (relay["end"] - relay["start"]).to_numpy() == pytest.approx(30.0)
    tries = list(relay["start"] - 0.202)
    gaps = [b - a for a, b in zip(tries, tries[1:])]
    assert tries[0] == pytest.approx(100.388)
    assert all(round(t, 6) % 300 == 0 for t in tries[1:])  # retries start at queue runs
    assert max(gaps) <= 4000 + 300  # the cap plus the wait for the next queue run
    assert gaps[-1] == pytest.approx(4200)  # 4000 s, taken at the next 300 s queue run
    assert row["status"] == "bounced" and row["reason"] == "queue lifetime expired"
    assert row["attempts"] == len(tries)


def test_a_busy_mx_defers_and_the_retries_deliver_on_queue_runs() -> None:
    # Three messages at t=10, three workers, an MX that takes one session at a time.
    data = burst(tiny_data(drain=2000), 3)
    node(data, "mta")["workers"] = 3
    node(data, "mx")["max_connections"] = 1
    m = run(parse_scenario(data)).messages
    relay = 8 * 0.032 + 0.002  # the session to the MX, 10 kB at 5 MB/s
    # All three are queued at 10.388 and share one lookup (to 10.59). Message 0 takes the
    # slot; 1 and 2 hear 421 at 10.654: whole-second age 10 - 10 = 0, so the 300 s minimum
    # backoff; due at 10 + 300 = 310, they are taken at the queue run of t=600, where the
    # MX answer has expired (TTL 150 s): lookup again to 600.202; 1 gets the slot, 2 hears
    # 421 at 600.266 at age 590 s, is due at 1190 and taken at the queue run of t=1200.
    assert list(m["attempts"]) == [1, 2, 3]
    assert list(m["deferrals"]) == [0, 1, 2]
    assert list(m["accepted"]) == pytest.approx(
        [10.59 + relay, 600.202 + relay, 1200.202 + relay], abs=1e-9
    )
    assert (m["status"] == "delivered").all()


def test_batches_respect_start_and_stop() -> None:
    data = tiny_data(duration=1000)
    src = data["workload"][0]
    src.pop("interarrival")
    src.update(batches=[{"at": 10, "count": 5}, {"at": 300, "count": 7}, {"at": 900, "count": 9}],
               start=100, stop=800)
    m = run(parse_scenario(data)).messages
    assert len(m) == 7 and (m["created"] == 300).all()


def test_poisson_source_sends_rate_times_window() -> None:
    data = tiny_data(duration=50_000)
    src = data["workload"][0]
    src.pop("interarrival")
    src.update(rate=0.5, start=10_000, stop=40_000)
    m = run(parse_scenario(data)).messages
    n = 0.5 * 30_000
    assert abs(len(m) - n) < 4 * math.sqrt(n)
    assert m["created"].min() >= 10_000 and m["created"].max() < 40_000
    gaps = m["created"].diff().dropna()
    assert gaps.mean() == pytest.approx(2.0, rel=0.03)
    assert gaps.std() == pytest.approx(2.0, rel=0.05)  # exponential: sd = mean


def test_destination_concurrency_limit_serialises_attempts() -> None:
    # Five messages at once, five workers, at most two attempts to the domain at a time.
    data = burst(tiny_data(), 5)
    node(data, "mta").update(workers=5, destination_concurrency_limit=2)
    m = run(parse_scenario(data)).messages
    relay, quit_ = 8 * 0.032 + 0.002, 0.032
    # 0 and 1 share the lookup (to 10.59); 2 and 3 wait for them to QUIT, then hit the
    # cache (one round trip to the resolver, 0.002 s); 4 waits for 2 and 3.
    first = 10.59 + relay
    second = first + quit_ + 0.002 + relay
    third = second + quit_ + 0.002 + relay
    assert list(m["accepted"]) == pytest.approx([first, first, second, second, third], abs=1e-9)
    assert (m["attempts"] == 1).all() and (m["status"] == "delivered").all()


def test_scheduled_outage_sends_mail_to_the_backup_mx() -> None:
    data = two_mx(outages=[{"start": 150, "end": 250}])
    m = run(parse_scenario(data)).messages  # messages at 100, 200 and 300
    assert list(m["mx_host"]) == ["mx", "mx2", "mx"]
    # During the outage the sender first waits out its 30 s connect timeout.
    down = m.loc[1]
    relay = 8 * 2 * 0.018 + 10_000 / 5.0e6
    assert down["accepted"] - down["submitted"] == pytest.approx(0.002 + 30 + relay, abs=1e-9)


@pytest.mark.parametrize("lifetime, attempts", [(530, 2), (530.5, 3), (531, 3)])
def test_queue_lifetime_boundary_is_exact(lifetime: float, attempts: int) -> None:
    # The MX never answers. Attempt 2 fails at 630.202 (queue run 600, lookup 0.202,
    # connect timeout 30) when the message, queued at 100.388, is 529.814 s old; Postfix
    # counts whole seconds (qmgr_active.c: event_time() - create_time), 630 - 100 = 530.
    # With maximal_queue_lifetime 530 it bounces there (age >= lifetime); with 530.5 or
    # 531 it is deferred again (due 630 + 530 = 1160, taken at the run of 1200), fails
    # at 1230.202 (age 1130) and bounces. (Before the whole-second rule the boundary lay
    # at the exact age, 529.814.)
    data = tiny_data(duration=150, drain=5000)
    down = {"hook": lambda model: model.node("mx").set_up(False)}
    probe = run(parse_scenario(data), trace=True, **down)
    assert probe.attempts is not None
    fails = probe.attempts[probe.attempts["hop"] == 1]["end"].tolist()
    assert fails[:2] == pytest.approx([130.59, 630.202], abs=1e-9)
    assert probe.messages.loc[0, "submitted"] == pytest.approx(100 + 9 * 0.042 + 0.01, abs=1e-9)
    node(data, "mta")["maximal_queue_lifetime"] = lifetime
    row = run(parse_scenario(data), **down).messages.loc[0]
    assert row["status"] == "bounced" and row["reason"] == "queue lifetime expired"
    assert row["attempts"] == attempts
    assert row["ended"] == pytest.approx(fails[attempts - 1], abs=1e-9)
    assert row["ended"] == pytest.approx(630.202 if attempts == 2 else 1230.202, abs=1e-9)
