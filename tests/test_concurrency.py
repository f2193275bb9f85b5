"""Postfix's per-destination concurrency scheduler (sim.mail.concurrency), alone and in
the MTA: the slow start, the window after failures, dead destinations, the rate delay.

The rules (docs/model.md, "Destination concurrency"), with hysteresis 1 and the default
feedback 1/window:

- success:  if window < limit and window < busy + initial:
            success += 1/window; while success + f/2 >= 1: window += 1, success -= 1
- failure:  cohorts += 1/window; cohorts >= cohort_limit: dead until now + throttle;
            else failure -= 1/window; while failure - f/2 < 0: window -= 1, failure += 1
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from sim import build, run
from sim.config import ScenarioError, load_scenario, parse_scenario
from sim.mail.concurrency import DEAD, SUSPENDED, Destination, Feedback, FixedConcurrency, PostfixConcurrency
from sim.mail.smtp import Outcome
from tests.conftest import cli, node, tiny_data
from tests.test_mta import burst

OK, LATER, REFUSED, TIMEOUT = Outcome.DELIVERED, Outcome.DEFERRED, Outcome.REFUSED, Outcome.TIMEOUT


def ended(policy: PostfixConcurrency, dest: Destination, outcome: Outcome, now: float = 0.0) -> bool:
    """One attempt of those in progress at ``dest`` ends (the MTA releases the slot first)."""
    dest.busy -= 1
    return policy.finished(dest, outcome, now)


# -- the rules alone --------------------------------------------------------------------


def test_a_window_of_successes_opens_one_more_slot() -> None:
    policy = PostfixConcurrency(5, 20)
    dest = policy.destination()
    assert dest.window == 5
    dest.busy = 5
    dest.parked.append(object())  # type: ignore[arg-type]  # mail waiting: not idle
    for k in range(4):  # 4/5 + 1/10 < 1: not yet
        ended(policy, dest, OK)
        dest.busy += 1  # the agent takes the next message
        assert dest.window == 5
    ended(policy, dest, OK)  # the fifth: 5/5 + 1/10 >= 1
    assert dest.window == 6
    assert dest.success == pytest.approx(0.0, abs=1e-12)


def test_a_4xx_reply_in_a_working_session_is_positive_feedback() -> None:
    # Postfix's qmgr unthrottles after every delivery whose agent reported no site
    # failure: a deferral by a reply the server gave counts as the site answering.
    policy = PostfixConcurrency(1, 20)
    dest = policy.destination()
    dest.busy = 1
    dest.parked.append(object())  # type: ignore[arg-type]
    ended(policy, dest, LATER)
    assert dest.window == 2


def test_the_window_does_not_grow_past_what_is_in_use_plus_the_initial() -> None:
    # One attempt at a time (busy 1, counting the one that ended) in a window of 6:
    # 6 < 1 + 5 fails, so successes are not counted at all.
    policy = PostfixConcurrency(5, 20)
    dest = policy.destination()
    dest.window, dest.busy = 6, 1
    dest.parked.append(object())  # type: ignore[arg-type]
    for _ in range(20):
        ended(policy, dest, OK)
        dest.busy += 1
    assert (dest.window, dest.success) == (6, 0.0)


def test_failed_sessions_shrink_the_window_then_kill_the_destination() -> None:
    # Five attempts in a window of 5 time out one after another (hand computed):
    #   1st: cohorts 1/5 = 0.2;  failure -0.2 - 0.1 < 0 -> window 4, failure 0.8
    #   2nd: cohorts 0.45;       failure 0.55 - 0.125 >= 0 -> 4
    #   3rd: cohorts 0.70;       failure 0.30 - 0.125 >= 0 -> 4
    #   4th: cohorts 0.95;       failure 0.05 - 0.125 < 0 -> window 3, failure 1.05
    #   5th: cohorts 0.95 + 1/3 >= 1 -> dead until now + 300
    policy = PostfixConcurrency(5, 20, throttle_time=300)
    dest = policy.destination()
    dest.busy = 5
    dest.parked.append(object())  # type: ignore[arg-type]
    windows = []
    for _ in range(4):
        assert not ended(policy, dest, TIMEOUT, 40.0)
        windows.append(dest.window)
    assert windows == [4, 4, 4, 3]
    assert dest.cohorts == pytest.approx(0.95)
    assert ended(policy, dest, REFUSED, 40.0)  # it died: the MTA defers what is parked
    assert dest.dead and dest.until == 340.0
    assert not policy.allows(dest, 339.9)
    # An attempt still out that fails while the destination is dead changes nothing.
    dest.busy = 1
    assert not ended(policy, dest, TIMEOUT, 100.0) and dest.dead
    # At 340 it opens again at the initial window (nothing in progress).
    assert policy.allows(dest, 340.0)
    assert (dest.window, dest.cohorts, dest.success, dest.failure) == (5, 0.0, 0.0, 0.0)


def test_a_success_revives_a_dead_destination_at_the_attempts_still_out() -> None:
    # qmgr_queue_unthrottle: window = busy_refcount, which still counts the attempt
    # that succeeded: two out, one succeeds -> window 2.
    policy = PostfixConcurrency(5, 20, cohort_limit=1)
    dest = policy.destination()
    dest.window, dest.until, dest.busy = DEAD, 500.0, 2
    ended(policy, dest, OK, 10.0)
    assert dest.window == 2 and not dest.dead


def test_a_success_between_failures_starts_the_cohort_count_again() -> None:
    policy = PostfixConcurrency(5, 20)
    dest = policy.destination()
    dest.busy = 5
    dest.parked.append(object())  # type: ignore[arg-type]
    for outcome in (TIMEOUT, TIMEOUT, TIMEOUT, TIMEOUT, OK, TIMEOUT, TIMEOUT):
        assert not ended(policy, dest, outcome)
        dest.busy += 1
    assert dest.cohorts == pytest.approx(2 / 3)  # 1/3 + 1/3 after the success (window 3)


def test_an_idle_destination_forgets_its_window() -> None:
    # qmgr_queue_done: nothing queued, nothing in progress: the queue is discarded.
    policy = PostfixConcurrency(5, 20)
    dest = policy.destination()
    dest.window, dest.busy, dest.cohorts = 12, 1, 0.5
    ended(policy, dest, OK)
    assert (dest.window, dest.cohorts, dest.success) == (5, 0.0, 0.0)


def test_a_cohort_limit_of_zero_never_kills() -> None:
    policy = PostfixConcurrency(2, 20, cohort_limit=0)
    dest = policy.destination()
    dest.busy = 2
    dest.parked.append(object())  # type: ignore[arg-type]
    for _ in range(50):
        assert not ended(policy, dest, TIMEOUT)
        dest.busy += 1
    assert dest.window == 1


@pytest.mark.parametrize(
    "text, window, value",
    [("1/concurrency", 4, 0.25), ("1/sqrt_concurrency", 4, 0.5), ("1/8", 4, 0.125), ("0.5", 9, 0.5)],
)
def test_feedback_values_as_postconf_writes_them(text: str, window: int, value: float) -> None:
    assert Feedback(text).value(window) == value


def test_rate_delay_means_one_at_a_time_and_a_pause() -> None:
    policy = PostfixConcurrency(5, 20, rate_delay=60)
    assert (policy.initial, policy.limit) == (1, 1)
    dest = policy.destination()
    dest.busy = 1
    ended(policy, dest, OK, 100.0)
    assert dest.suspended and dest.window == SUSPENDED and dest.until == 160.0
    assert not policy.allows(dest, 159.0)
    assert policy.allows(dest, 160.0) and dest.window == 1


def test_fixed_concurrency_is_the_old_rule() -> None:
    policy = FixedConcurrency(3)
    dest = policy.destination()
    dest.busy = 2
    assert policy.allows(dest, 0.0)
    dest.busy = 3
    assert not policy.allows(dest, 0.0) and not policy.finished(dest, TIMEOUT, 0.0)


# -- the slow start in the MTA ----------------------------------------------------------


def one_second_world(count: int) -> dict[str, Any]:
    """``count`` messages at t=10 to one domain whose MX takes exactly 1 s per attempt.

    The MTA-MX path is 1/32 s one way (0.0625 s round trip): 8 round trips and 7,000
    bytes at 16,000 B/s to the 250 after "." (0.5 + 0.4375 = 0.9375 s), then QUIT
    (0.0625 s): 1 s per attempt, every figure a binary fraction. The resolver sits on
    the MTA's host (no round trip); its one lookup takes 0.25 s.
    """
    data = burst(tiny_data(duration=20, drain=100), count)
    data["workload"][0]["size"] = 7000
    edges = data["topology"]["edges"]
    edges[1]["latency"] = 0.0  # r - mta
    edges[2]["latency"] = 0.0  # mta - dns
    edges[3].update(latency=1 / 32, bandwidth=16_000)  # r - mx
    node(data, "dns")["lookup"] = 0.25
    node(data, "mta").update(workers=50, smtpd_workers=count)
    return data


def test_slow_start_from_5_to_20_deliveries_a_second() -> None:
    """200 messages: 5 at once, one more after each full window of successes, up to 20.

    All are queued at Q. Round 0 (5 attempts) waits for the lookup: accepted at
    Q + 0.25 + 0.9375, ends at Q + 1.25. Each round's last success opens one more slot
    (window w: w successes of 1/w each), so round n (n >= 1) has 5 + n attempts, all
    starting at Q + 0.25 + n (cached answer, no time) and accepted 0.9375 s later,
    until the window reaches the limit of 20 at round 15. Rounds 0..14 carry
    5 + 6 + ... + 19 = 180 messages, round 15 the last 20.
    """
    m = run(parse_scenario(one_second_world(200))).messages
    assert (m["status"] == "delivered").all() and (m["attempts"] == 1).all()
    q = m["submitted"].iloc[0]
    assert (m["submitted"] == q).all()
    expected = np.repeat(q + 0.25 + np.arange(16) + 0.9375, [*range(5, 20), 20])
    assert np.sort(m["accepted"].to_numpy()) == pytest.approx(expected, abs=1e-9)
    per_second = np.bincount(np.floor(m["accepted"] - q - 1.1875).astype(int))
    assert list(per_second) == [*range(5, 20), 20]


def test_connection_reuse_does_not_hold_the_window_back() -> None:
    """The same 200 messages with sessions reused (TLS reuse on): each finishing agent
    carries the next envelope over its session, and every slot the window gains goes to
    an idle agent, which opens a session of its own. The window grows 5 -> 20 as
    without reuse, so the MX sees exactly 20 sessions (5, then one per slot gained),
    each reused until the backlog is gone; were the gained slots lost to reuse, it would
    stay at 5 or 6."""
    data = one_second_world(200)
    node(data, "mta")["smtp_tls_connection_reuse"] = True
    res = run(parse_scenario(data))
    m = res.messages
    assert (m["status"] == "delivered").all() and (m["attempts"] == 1).all()
    assert res.stats["mx"]["mx"]["sessions"] == 20
    # A reused transaction is 2 round trips and the body (0.125 + 0.4375 s) instead of
    # 8 and the body (0.9375 s): the backlog ends sooner than its last acceptance
    # without reuse, Q + 0.25 + 15 + 0.9375 (the test above).
    assert m["accepted"].max() - m["submitted"].min() < 0.25 + 15 + 0.9375 - 4


def test_with_the_old_fixed_limit_there_is_no_slow_start() -> None:
    # The same world with FixedConcurrency(20): ten rounds of 20 from the start.
    data = one_second_world(200)
    fixed = FixedConcurrency(20)
    m = run(parse_scenario(data), hook=lambda model: model.node("mta").use(concurrency=fixed)).messages
    q = m["submitted"].iloc[0]
    expected = np.repeat(q + 0.25 + np.arange(10) + 0.9375, 20)
    assert np.sort(m["accepted"].to_numpy()) == pytest.approx(expected, abs=1e-9)


# -- a dead destination in the MTA ------------------------------------------------------


def dead_and_fine() -> dict[str, Any]:
    """20 messages at t=10 to example.org (its only MX down until 500), 3 at t=10.1 to
    ok.example (its MX as far away as the other); 8 delivery agents."""
    data = tiny_data(duration=100, drain=2000)
    people = data["workload"].pop()
    people.pop("interarrival")
    data["workload"] = [
        {**people, "name": "to-dead", "batches": [{"at": 10, "count": 20}],
         "recipients": {"example.org": 1}},
        {**people, "name": "to-fine", "batches": [{"at": 10.1, "count": 3}],
         "recipients": {"ok.example": 1}},
    ]
    data["topology"]["nodes"].append({"id": "okmx", "kind": "mx", "processing": 0.05})
    data["topology"]["edges"].append({"a": "r", "b": "okmx", "latency": 0.015, "bandwidth": 5.0e6})
    data["domains"].append(
        {**data["domains"][0], "name": "ok.example", "mx": [{"host": "okmx", "preference": 10}]}
    )
    node(data, "mta")["workers"] = 8
    return data


def mx_down_until_500(model: Any) -> None:
    mx = model.node("mx")
    mx.set_up(False)
    model.at(500, lambda: mx.set_up(True))


def test_a_dead_destination_defers_its_mail_at_once_and_spares_the_rest() -> None:
    """Hand timeline (Q = when the 20 are queued, T = Q + 0.202 + 30):

    - Q: five attempts start (window 5), 15 wait; lookup 0.202 s, then 30 s of connect
      timeout each. Three agents stay free.
    - Q + 0.1: the 3 ok.example messages take the free agents: lookup 0.202 s, 8 round
      trips of 0.032 s and 10 kB at 5 MB/s: accepted at Q + 0.1 + 0.46.
    - T: the five time out one after another: window 4, 4 (a parked message starts), 4
      (another starts), 3, then cohorts 0.2 + 0.25 * 3 + 1/3 >= 1: dead. The 13 still
      parked are deferred at T, never tried; the two started at T fail at T + 30.002.
    - Every deferred message is due before the queue run at 600; the MX is back at 500
      and the dead destination reopened at T + 300 at the initial window: a slow start
      again, lookup 0.202 s, attempts of 0.29 s (with QUIT) and 0.002 s cached lookups:
      5 accepted at 600.46, 6 at 600.752, 7 at 601.044, the last 2 at 601.336.
    """
    res = run(parse_scenario(dead_and_fine()), hook=mx_down_until_500, trace=True)
    m = res.messages
    dead, fine = m[m["recipient_domain"] == "example.org"], m[m["recipient_domain"] == "ok.example"]
    q = dead["submitted"].iloc[0]
    assert (dead["submitted"] == q).all() and (fine["submitted"] == q + 0.1).all()
    assert list(fine["accepted"]) == pytest.approx([q + 0.1 + 0.46] * 3, abs=1e-9)
    assert (m["status"] == "delivered").all()
    # The free agents parked 5, 8-19 (the first one drained the queue), then 6 and 7:
    # the two started at T are 5 and 8; the other 13 were never tried before 600.
    assert set(dead.index[dead["attempts"] == 2]) == {0, 1, 2, 3, 4, 5, 8}
    assert (dead["attempts"] >= 1).all()
    assert (dead["deferrals"] == 1).all()
    relay = res.attempts[(res.attempts["hop"] == 1) & (res.attempts["start"] < 500)]
    t = q + 0.202 + 30
    first_ends = relay.groupby("id")["end"].first()
    assert list(first_ends) == pytest.approx([t] * 5 + [t + 30.002] * 2 + [q + 0.1 + 0.46] * 3, abs=1e-9)
    assert np.sort(dead["accepted"].to_numpy()) == pytest.approx(
        np.repeat([600.46, 600.752, 601.044, 601.336], [5, 6, 7, 2]), abs=1e-9
    )


def test_without_the_rule_the_dead_destination_holds_every_agent() -> None:
    # The old fixed limit of 20: all eight agents wait out connect timeouts (Q to T,
    # then T to T + 30.002 for messages 8-15); the ok.example mail is taken only then.
    fixed = FixedConcurrency(20)

    def hook(model: Any) -> None:
        mx_down_until_500(model)
        model.node("mta").use(concurrency=fixed)

    m = run(parse_scenario(dead_and_fine()), hook=hook).messages
    q = m["submitted"].iloc[0]
    fine = m[m["recipient_domain"] == "ok.example"]
    assert list(fine["accepted"]) == pytest.approx([q + 30.202 + 30.002 + 0.46] * 3, abs=1e-9)


# -- destination_rate_delay in the MTA --------------------------------------------------


def test_rate_delay_spaces_deliveries_by_the_delay_after_each_ends() -> None:
    """Three messages at once, ``destination_rate_delay: 60``: one at a time, each
    starting 60 s after the previous one ended (Postfix suspends the queue when an
    attempt ends). Q = 10.388; lookup 0.202; session 0.258 to the 250, QUIT 0.032:
    0 accepted at 10.848, ends 10.88; 1 starts at 70.88 (cached answer, 0.002 s),
    accepted 71.14, ends 71.172; 2 starts at 131.172, accepted 131.432."""
    data = burst(tiny_data(drain=2000), 3)
    node(data, "mta")["destination_rate_delay"] = "1m"
    m = run(parse_scenario(data)).messages
    assert list(m["accepted"]) == pytest.approx([10.848, 71.14, 131.432], abs=1e-9)
    assert (m["attempts"] == 1).all() and (m["deferrals"] == 0).all()


def test_rate_delay_parks_mail_that_arrives_during_the_pause() -> None:
    # One message at 10 (ends 10.88: paused to 70.88), one at 30 (queued 30.388, parked
    # with nothing else: it starts the wake-up timer itself): 70.88 + 0.002 + 0.258.
    data = tiny_data(drain=2000)
    src = data["workload"][0]
    src.pop("interarrival")
    src["batches"] = [{"at": 10, "count": 1}, {"at": 30, "count": 1}]
    node(data, "mta")["destination_rate_delay"] = 60
    m = run(parse_scenario(data)).messages
    assert list(m["accepted"]) == pytest.approx([10.848, 71.14], abs=1e-9)


# -- the scenario keys ------------------------------------------------------------------


def test_the_keys_reach_the_policy() -> None:
    data = tiny_data()
    node(data, "mta").update(
        initial_destination_concurrency=3, destination_concurrency_limit=7,
        destination_concurrency_positive_feedback="1/sqrt_concurrency",
        destination_concurrency_negative_feedback=0.25,
        destination_concurrency_failed_cohort_limit=2, minimal_backoff_time=100,
    )
    policy = build(parse_scenario(data)).node("mta").concurrency
    assert isinstance(policy, PostfixConcurrency)
    assert (policy.initial, policy.limit, policy.cohort_limit, policy.throttle_time) == (3, 7, 2, 100)
    assert (policy.positive.index, policy.negative.value(3)) == ("sqrt_concurrency", 0.25)


def test_a_lower_limit_alone_caps_the_initial_window() -> None:
    # As Postfix does (qmgr_queue_create): the limit of 2 needs no second key.
    data = tiny_data()
    node(data, "mta")["destination_concurrency_limit"] = 2
    policy = build(parse_scenario(data)).node("mta").concurrency
    assert isinstance(policy, PostfixConcurrency) and policy.initial == 2


@pytest.mark.parametrize(
    "keys, path, problem",
    [
        ({"initial_destination_concurrency": 8, "destination_concurrency_limit": 4},
         "topology.nodes[mta]",
         "initial_destination_concurrency (8) is above destination_concurrency_limit (4)"),
        ({"destination_concurrency_positive_feedback": "1/windows"},
         "topology.nodes[mta].destination_concurrency_positive_feedback",
         "not a feedback value: write a number in (0, 1], a fraction like 1/8, N/concurrency or N/sqrt_concurrency (got '1/windows')"),
        ({"destination_concurrency_negative_feedback": "3/concurrency"},
         "topology.nodes[mta].destination_concurrency_negative_feedback",
         "the feedback must be above 0 and at most 1"),
        ({"destination_concurrency_negative_feedback": True},
         "topology.nodes[mta].destination_concurrency_negative_feedback",
         "feedback value such as 1/concurrency"),
        ({"destination_rate_delay": -1},
         "topology.nodes[mta].destination_rate_delay", "greater than or equal to 0"),
        ({"destination_concurrency_failed_cohort_limit": -1},
         "topology.nodes[mta].destination_concurrency_failed_cohort_limit",
         "greater than or equal to 0"),
    ],
)
def test_bad_concurrency_keys_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keys: dict[str, Any], path: str, problem: str
) -> None:
    data = tiny_data()
    node(data, "mta").update(keys)
    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError) as info:
        load_scenario(file)
    assert (info.value.path, problem in info.value.problem) == (path, True), info.value.problem
    code, out, err = cli(["validate", str(file)], capsys)
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [f"mailflow: {file}: {path}: {info.value.problem}"]


def test_mail_for_a_dead_destination_is_deferred_on_arrival_and_tried_when_due() -> None:
    """The only MX never answers; ten agents. Five messages at t=10 (queued 10.388) fail
    together at 10.388 + 0.202 + 30 = 40.59 (windows 4, 4, 4, 3, then dead) until
    40.59 + 300 = 340.59. Message 5 (t=100, queued 100.388) is deferred on arrival with
    no attempt: due 100.388 + 300, taken at the queue run of 600 behind 0-4 (due 340.59).
    At 600 the destination is open again at the initial 5: 0-4 start (lookup 0.202 s, the
    answer's TTL of 150 s ran out), 5 waits. At 630.202 they fail: after the first the
    window is 4 with 4 running (5 still waits), after the second 4 with 3: 5 starts (the
    answer cached, 0.002 s) at 630.204; the fifth failure kills it again. 5 fails at
    660.204, changing nothing: two deferrals, one attempt.
    """
    data = tiny_data(duration=150, drain=1150)
    src = data["workload"][0]
    src.pop("interarrival")
    src["batches"] = [{"at": 10, "count": 5}, {"at": 100, "count": 1}]
    node(data, "mta")["workers"] = 10
    res = run(parse_scenario(data), trace=True, hook=lambda model: model.node("mx").set_up(False))
    m, tries = res.messages, res.attempts
    assert list(m["attempts"]) == [2, 2, 2, 2, 2, 1]
    assert list(m["deferrals"]) == [2] * 6
    assert (m["status"] == "in_flight").all() and (m["where"] == "mta").all()
    relay = tries[tries["hop"] == 1]
    five = relay[relay["id"] == 5]
    assert (list(five["start"]), list(five["end"])) == (
        pytest.approx([630.204], abs=1e-9), pytest.approx([660.204], abs=1e-9)
    )
    assert sorted(relay.loc[relay["id"] < 5, "end"]) == pytest.approx([40.59] * 5 + [630.202] * 5, abs=1e-9)


def test_421_at_the_greeting_of_the_last_host_is_a_failed_session() -> None:
    """An MX that takes one session at a time; ten messages, ten agents. Q = 10.388.

    Message 0 gets the session (accepted 10.848); 1-4 hear 421 at connect (2 round trips
    of 0.032: 10.654) at their only host, each a failed session: windows 4 (none taken),
    4 (5 starts), 4 (6 starts), 3. 5 and 6 (cached answer, 0.002 s) hear 421 at 10.72:
    cohorts 0.95 + 1/3 >= 1, dead: 7-9 are deferred at 10.72 untried.
    """
    data = burst(tiny_data(duration=150, drain=300), 10)
    node(data, "mta")["workers"] = 10
    node(data, "mx")["max_connections"] = 1
    res = run(parse_scenario(data), trace=True)
    m, tries = res.messages, res.attempts
    relay = tries[tries["hop"] == 1].set_index("id").sort_index()
    assert list(relay.index) == list(range(7))
    assert list(relay["end"]) == pytest.approx([10.848] + [10.654] * 4 + [10.72] * 2, abs=1e-9)
    assert list(relay["outcome"]) == ["delivered"] + ["deferred"] * 6
    assert list(m["attempts"]) == [1] * 7 + [0] * 3
    assert list(m["deferrals"]) == [0] + [1] * 9


@pytest.mark.parametrize("workers", [3, 4])
def test_reused_sessions_leave_no_slot_held_once_the_mail_is_gone(workers: int) -> None:
    """Found in review: an agent reusing its session could take, from the head of the
    active queue, an envelope that a grown window had woken with a slot held for it,
    and hold a second slot for it; one was never given back (busy 1, reserved 1 with
    nothing left), so the destination never went idle. After the run every
    destination's counters are back to zero."""
    data = one_second_world(120)
    node(data, "mta").update(workers=workers, initial_destination_concurrency=1,
                             smtp_tls_connection_reuse=True)
    model = build(parse_scenario(data))
    model.run()
    assert model.recorder.in_flight() == 0
    for dest in model.node("mta").destinations.values():
        assert (dest.busy, dest.reserved, len(dest.parked)) == (0, 0, 0)
