"""Recipients' devices: polling arithmetic and the mix of protocols."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim import run
from sim.mail.devices import next_poll
from sim.config import parse_scenario
from tests.conftest import tiny_data


@given(
    t=st.floats(0, 1e6, allow_nan=False),
    interval=st.floats(1, 1e4),
    fraction=st.floats(0, 0.999),
)
def test_next_poll_is_the_first_check_at_or_after_t(t: float, interval: float, fraction: float) -> None:
    phase = fraction * interval
    check = next_poll(t, phase, interval)
    assert check >= t - 1e-9 * max(1.0, t)
    assert check - t < interval + 1e-6 * max(1.0, t)
    cycles = (check - phase) / interval
    assert abs(cycles - round(cycles)) < 1e-6


def test_next_poll_examples() -> None:
    assert next_poll(100.0, 30.0, 600.0) == 630.0
    assert next_poll(630.0, 30.0, 600.0) == 630.0
    assert next_poll(10.0, 30.0, 600.0) == 30.0


def mixed(imap: float, pop3: float, webmail: float, duration: float = 20_000) -> dict:
    data = tiny_data(duration=duration, drain=5000)
    data["workload"][0]["interarrival"] = 2.0
    data["domains"][0]["users"] = 5000
    data["domains"][0]["retrieval"] = {
        "client": "home",
        "imap": {"share": imap, "poll_interval": 600},
        "pop3": {"share": pop3, "poll_interval": 1800},
        "webmail": {"share": webmail},
    }
    return data


def test_webmail_sees_mail_at_once() -> None:
    m = run(parse_scenario(mixed(0, 0, 1))).messages
    # One HTTPS round trip on the store-home path (0.0355 s one way) plus 10 kB at 1 MB/s.
    assert (m["retrieved"] - m["delivered"]).to_numpy() == pytest.approx(0.071 + 0.01)


def test_polling_waits_half_an_interval_on_average() -> None:
    # Random phases: the wait for the next check is uniform on [0, interval).
    m = run(parse_scenario(mixed(1, 0, 0))).messages
    session = 7 * 0.071 + 0.01
    wait = (m["retrieved"] - m["delivered"] - session).to_numpy()
    assert wait.min() >= -1e-9 and wait.max() < 600
    assert wait.mean() == pytest.approx(300, rel=0.05)


def test_protocol_shares_follow_the_mix() -> None:
    m = run(parse_scenario(mixed(0.5, 0.25, 0.25))).messages
    wait = (m["retrieved"] - m["delivered"]).to_numpy()
    fast = np.mean(wait < 0.1)  # webmail only
    assert fast == pytest.approx(0.25, abs=0.03)
    assert np.mean(wait > 600) == pytest.approx(0.25 * 1200 / 1800, abs=0.03)  # POP3 past 600 s


def test_retrieval_after_the_horizon_is_not_recorded() -> None:
    data = mixed(1, 0, 0, duration=1000)
    data["drain"] = 0
    m = run(parse_scenario(data)).messages
    delivered = m[m["status"] == "delivered"]
    assert delivered["retrieved"].isna().any()
    assert (delivered["retrieved"].dropna() <= 1000).all()
    assert not math.isnan(delivered["retrieved"].max())


def test_person_uniforms_are_uniform_independent_and_stable() -> None:
    from scipy import stats

    from sim.mail.devices import person_uniforms

    pairs = np.array([person_uniforms(12345, p) for p in range(20_000)])
    for column in pairs.T:
        assert stats.kstest(column, "uniform").pvalue > 1e-3
    assert abs(np.corrcoef(pairs.T)[0, 1]) < 0.03
    # Neighbours share nothing: no output of one person reappears for the next.
    firsts, seconds = pairs[:, 0], pairs[:, 1]
    assert not np.isin(seconds[:-1], firsts[1:]).any()
    assert abs(np.corrcoef(seconds[:-1], firsts[1:])[0, 1]) < 0.03
    assert person_uniforms(12345, 7) == person_uniforms(12345, 7)
    assert person_uniforms(12345, 7) != person_uniforms(54321, 7)


def test_a_person_keeps_one_device_across_messages() -> None:
    data = mixed(0.5, 0.5, 0)
    data["domains"][0]["users"] = 3  # few people, many messages each
    m = run(parse_scenario(data)).messages.dropna(subset=["retrieved"])
    fetch = {600: 7 * 0.071 + 0.01, 1800: 9 * 0.071 + 0.01}  # IMAP, POP3 sessions
    for _, mine in m.groupby("recipient_person"):
        assert len(mine) > 1000
        # One protocol and one phase per person: every check time sits on one grid.
        grids = [
            {round((t - f) % interval, 6) % interval for t in mine["retrieved"]}
            for interval, f in fetch.items()
        ]
        assert min(len(g) for g in grids) == 1


def test_protocols_left_out_have_no_share() -> None:
    from sim.config import Retrieval

    only = Retrieval.model_validate({"client": "c", "imap": {"share": 1}})
    assert (only.pop3.share, only.webmail.share) == (0, 0)
    default = Retrieval.model_validate({"client": "c"})
    assert (default.imap.share, default.pop3.share, default.webmail.share) == (0.5, 0.1, 0.4)


# -- devices: IDLE, polling, sleep, POP3, flags (hand-computed on the tiny world) ---------
#
# The store-home path: store-mx-r-home, one way 0.0005 + 0.015 + 0.02 = 0.0355 s (RTT
# 0.071 s), bottleneck 1 MB/s, so a 10 kB message takes 0.01 s. Sessions (TLS 1.3):
# IMAP poll 7 round trips (TCP, TLS, greeting, LOGIN, SELECT, FETCH, LOGOUT), POP3 9,
# webmail 1; an IDLE push is the EXISTS one way, then DONE and UID FETCH: 2 round trips.
# Delivery times come from tests/test_timeline.py's hand-computed timeline.

from sim.core.records import Message  # noqa: E402
from sim.simulation.build import build  # noqa: E402
from tests.test_timeline import expected  # noqa: E402

ONE_WAY, RTT, BODY = 0.0355, 0.071, 0.01
IMAP_S, POP3_S, WEB_S = 7 * RTT + BODY, 9 * RTT + BODY, RTT + BODY
IDLE_S = ONE_WAY + 2 * RTT + BODY
ABS = 1e-9


def delivered(mid: int) -> float:
    """Hand-computed delivery of the tiny world's message ``mid`` (created 100, 200, 300)."""
    return expected(100.0 * (mid + 1), mid == 1)["delivered"]


def with_devices(*types: dict, utc_offset: float = 0, drain: float = 40_000) -> dict:
    data = tiny_data(drain=drain)
    retrieval = {"client": "home", "devices": [{"share": 1, **t} for t in types]}
    data["domains"][0].update(retrieval=retrieval, utc_offset=utc_offset)
    return data


def test_idle_tells_a_connected_client_within_one_session_of_storage() -> None:
    m = run(parse_scenario(with_devices({"name": "desktop", "access": "imap", "sync": "idle"}))).messages
    for mid in range(3):
        # EXISTS one way (0.0355), DONE + UID FETCH (2 x 0.071), the body (0.01): 0.1875 s,
        # less than a poll's session (7 x 0.071 + 0.01 = 0.507 s) and no wait for a poll.
        assert m.loc[mid, "retrieved"] == pytest.approx(delivered(mid) + 0.1875, abs=ABS)
        assert m.loc[mid, "retrieved"] - m.loc[mid, "delivered"] < IMAP_S
    assert list(m["access"]) == ["imap"] * 3
    assert (m["synced"] == m["retrieved"]).all()  # one device: synced when retrieved


def test_polling_waits_for_the_next_check_then_a_session() -> None:
    m = run(parse_scenario(with_devices(
        {"name": "iphone", "access": "imap", "poll_interval": 900, "phase": 30}
    ))).messages
    # Checks at 30, 930, 1830...: every message (delivered 100.6 to 300.6) waits for 930.
    for mid in range(3):
        assert m.loc[mid, "retrieved"] == pytest.approx(930 + IMAP_S, abs=ABS)


def test_an_asleep_phone_gets_mail_when_it_wakes_plus_a_session() -> None:
    # Local time is UTC + 2 h: mail delivered at 100.6 s (02:01:40 local) finds the phones
    # asleep (23:00 to 06:45); they wake at 06:45 local = 04:45 UTC = 17,100 s and sync
    # with a session of their own (an IDLE client logs in again: no push).
    phones = [
        {"name": "android", "access": "imap", "sync": "idle", "asleep": {"start_hour": 23, "end_hour": 6.75}},
        {"name": "iphone", "access": "imap", "poll_interval": 600, "phase": 0,
         "asleep": {"start_hour": 23, "end_hour": 6.75}},
        {"name": "app", "access": "webmail", "asleep": {"start_hour": 23, "end_hour": 6.75}},
    ]
    for phone, session in zip(phones, (IMAP_S, IMAP_S, WEB_S)):
        m = run(parse_scenario(with_devices(phone, utc_offset=2))).messages
        assert m.loc[0, "retrieved"] == pytest.approx(17_100 + session, abs=ABS), phone["name"]


def test_a_poll_that_falls_asleep_waits_for_the_wake() -> None:
    # UTC - 1 h: delivery at 100.6 s is 23:01:40 local, awake (asleep from 23:03 = 23.05 h);
    # the next poll, at 600 s = 23:10 local, is asleep: the phone syncs at 07:00 local =
    # 08:00 UTC = 28,800 s. An IDLE phone, awake at delivery, has it at once.
    night = {"start_hour": 23.05, "end_hour": 7}
    poller = {"name": "iphone", "access": "imap", "poll_interval": 600, "phase": 0, "asleep": night}
    m = run(parse_scenario(with_devices(poller, utc_offset=-1))).messages
    assert m.loc[0, "retrieved"] == pytest.approx(28_800 + IMAP_S, abs=ABS)
    idle = {"name": "android", "access": "imap", "sync": "idle", "asleep": night}
    m = run(parse_scenario(with_devices(idle, utc_offset=-1))).messages
    assert m.loc[0, "retrieved"] == pytest.approx(delivered(0) + IDLE_S, abs=ABS)


def test_a_poller_asleep_when_mail_comes_syncs_on_waking_not_at_its_next_poll() -> None:
    # Asleep 00:00 to 05:00 UTC; delivery at 100.6 s finds it asleep. Its next poll is
    # at 20,000 s (a daily poll at phase 20,000), after it wakes at 18,000: waking, it
    # syncs then (18,000 + a session), as a phone does when it comes back on; so does a
    # flag set at 17,900 s (next_sync: the wake, then a session without a body).
    poller = {"name": "phone", "access": "imap", "poll_interval": 86_400, "phase": 20_000,
              "asleep": {"start_hour": 0, "end_hour": 5}}
    data = with_devices(poller)
    m = run(parse_scenario(data)).messages
    assert m.loc[0, "retrieved"] == pytest.approx(18_000 + IMAP_S, abs=ABS)
    _, readers = readers_of(data)
    assert readers.next_sync(0, 0, 17_900) == pytest.approx(18_000 + IMAP_S - 0.01, abs=ABS)


def test_a_poller_that_sleeps_before_its_next_poll_syncs_on_waking() -> None:
    # Asleep 00:03 to 00:04:12 (180 s to 252 s), polling hourly at 3000 s: rows 0 and 1
    # (delivered 100.9 and 200.7: awake, then asleep) are fetched when it wakes at 252 s
    # (the sync of a device coming back on), not at the poll at 3000 s; row 2 (300.9,
    # after the wake) waits for that poll.
    dev = {"name": "desktop", "access": "imap", "poll_interval": 3600, "phase": 3000,
           "asleep": {"start_hour": 0.05, "end_hour": 0.07}}
    data = with_devices(dev)
    m = run(parse_scenario(data)).messages
    assert list(m["retrieved"]) == pytest.approx([252 + IMAP_S, 252 + IMAP_S, 3000 + IMAP_S], abs=ABS)
    _, readers = readers_of(data)
    assert readers.next_sync(0, 0, 100) == pytest.approx(252 + IMAP_S - 0.01, abs=ABS)


def test_an_idle_client_that_woke_after_a_cut_has_a_new_connection() -> None:
    # IDLE, asleep 36 s to 252 s, the path cut 50 s to 150 s (inside the sleep): rows 0
    # and 1 come at the wake (252 + a login); on waking it connected afresh over the
    # healed path, so row 2 (delivered 300.9) is pushed at once, as without the cut.
    dev = {"name": "desktop", "access": "imap", "sync": "idle", "phase": 0,
           "asleep": {"start_hour": 0.01, "end_hour": 0.07}}
    plain = run(parse_scenario(with_devices(dict(dev)))).messages
    data = with_devices(dev)
    behind_a_cut(data, 50, 150)
    m = run(parse_scenario(data)).messages
    assert list(m["retrieved"][:2]) == pytest.approx([252 + IMAP_S] * 2, abs=ABS)
    pushed = plain.loc[2, "retrieved"] - plain.loc[2, "delivered"]
    assert pushed < IMAP_S and m.loc[2, "retrieved"] - m.loc[2, "delivered"] == pytest.approx(pushed, abs=ABS)


def test_pop3_without_a_copy_takes_the_mail_from_devices_that_look_later() -> None:
    # The POP3 desktop polls at 600 (phase 0): its session ends at 600 + 0.649, and DELE
    # takes effect at that QUIT. The IMAP phone polls at 1800: the server's copy is gone,
    # it never has the message, so synced stays empty. Webmail saw it at delivery.
    pop3 = {"name": "desktop", "access": "pop3", "poll_interval": 600, "phase": 0, "leave_on_server": False}
    imap = {"name": "phone", "access": "imap", "poll_interval": 1800, "phase": 0}
    m = run(parse_scenario(with_devices(pop3, imap))).messages
    for mid in range(3):
        assert m.loc[mid, "retrieved"] == pytest.approx(600 + POP3_S, abs=ABS)
    assert m["synced"].isna().all() and list(m["access"]) == ["pop3"] * 3
    web = {"name": "browser", "access": "webmail"}
    m = run(parse_scenario(with_devices(pop3, imap, web))).messages
    assert m.loc[0, "retrieved"] == pytest.approx(delivered(0) + WEB_S, abs=ABS)
    assert m["synced"].isna().all() and list(m["access"]) == ["webmail"] * 3


def readers_of(data: dict):  # noqa: ANN201 - the built Readers
    model = build(parse_scenario(data), seed=1)
    domain = model.ctx.domains["example.org"]
    return domain, domain.readers


def test_copies_ties_and_holders() -> None:
    pop3 = {"name": "desktop", "access": "pop3", "poll_interval": 600, "phase": 0, "leave_on_server": False}
    same = {"name": "laptop", "access": "imap", "poll_interval": 600, "phase": 0}
    # The removal is at 600.649 exactly: an IMAP device looking at that instant is too late.
    at_removal = {"name": "tablet", "access": "imap", "poll_interval": 600, "phase": 300}
    domain, readers = readers_of(with_devices(pop3, same, at_removal))
    msg = Message(0, domain, 0, 10_000, None)
    c = readers.copies(msg, 100.0)
    assert c.kinds == (0, 1, 2)
    assert c.server_until == pytest.approx(600 + POP3_S, abs=ABS)
    # A look at the same instant as the POP3 device's (600) is before its QUIT: it has it.
    assert c.times[:2] == pytest.approx([600 + POP3_S, 600 + IMAP_S], abs=ABS)
    assert list(c.looks) == [600.0, 600.0, 300.0]
    assert c.first == 2 and c.retrieved == pytest.approx(300 + IMAP_S, abs=ABS)  # looked at 300
    # Stored at 400: the tablet's next look is 900, after the removal: never.
    c = readers.copies(msg, 400.0)
    assert c.times[2] == math.inf and c.synced == math.inf
    assert c.holders(readers.types) == [0]  # the POP3 desktop holds the only copy
    # A tie with the removal itself: the tablet's phase put at the removal instant.
    tie = {**at_removal, "phase": 0.0}
    domain, readers = readers_of(with_devices(pop3, {**tie, "poll_interval": 600 + POP3_S}))
    c = readers.copies(Message(0, domain, 0, 10_000, None), 100.0)
    assert c.looks[1] == c.server_until and c.times[1] == math.inf  # the removal wins the tie


def test_leave_a_copy_then_delete_after() -> None:
    # POP3 leaves a copy and removes it at the first poll at or after download + 3000 s:
    # download 600.649, so the poll at 4200, whose session (no body) ends 4200 + 0.639.
    # The IMAP phone looking at 1800 has it; an IMAP device asleep until 5 h never does.
    pop3 = {"name": "desktop", "access": "pop3", "poll_interval": 600, "phase": 0, "delete_after": 3000}
    imap = {"name": "phone", "access": "imap", "poll_interval": 1800, "phase": 0}
    late = {"name": "laptop", "access": "imap", "poll_interval": 600, "phase": 0,
            "asleep": {"start_hour": 0, "end_hour": 5}}
    domain, readers = readers_of(with_devices(pop3, imap, late))
    c = readers.copies(Message(0, domain, 0, 10_000, None), 100.0)
    assert c.server_until == pytest.approx(4200 + 9 * RTT, abs=ABS)
    assert c.times == pytest.approx([600 + POP3_S, 1800 + IMAP_S, math.inf], abs=ABS)
    assert c.holders(readers.types) == [0]
    # Leave a copy for ever (delete_after: null): the server keeps it, nobody only holds it.
    forever = {**pop3, "delete_after": None}
    domain, readers = readers_of(with_devices(forever, imap, late))
    c = readers.copies(Message(0, domain, 0, 10_000, None), 100.0)
    assert c.server_until == math.inf and c.holders(readers.types) == []
    assert c.times[2] == pytest.approx(18_000 + IMAP_S, abs=ABS)  # woke at 05:00


def test_a_flag_set_on_the_phone_reaches_the_desktop_at_its_next_sync() -> None:
    phone = {"name": "phone", "access": "imap", "sync": "idle", "asleep": {"start_hour": 23, "end_hour": 7}}
    desktop = {"name": "desktop", "access": "imap", "poll_interval": 600, "phase": 150}
    pop3 = {"name": "laptop", "access": "pop3"}
    web = {"name": "browser", "access": "webmail"}
    _, readers = readers_of(with_devices(phone, desktop, pop3, web))
    # Read on the phone at 1000 s: the STORE reaches the server one way later (1000.0355);
    # the desktop polls at 150 + k 600: at 1350, then syncs flags in a session of 7 round
    # trips without a body: 1350 + 0.497.
    assert readers.next_sync(0, 1, 1000.0) == pytest.approx(1350 + 7 * RTT, abs=ABS)
    # Read on the desktop at 1000 s: the phone is asleep (00:16 UTC = local); it wakes
    # at 07:00 = 25,200 s and logs in: 25,200 + 0.497.
    assert readers.next_sync(0, 0, 1000.0) == pytest.approx(25_200 + 7 * RTT, abs=ABS)
    # Awake at 08:00 (28,800 s): IDLE tells it within one round trip.
    assert readers.next_sync(0, 0, 28_800.0) == pytest.approx(28_800 + RTT, abs=ABS)
    assert readers.next_sync(0, 2, 1000.0) == math.inf  # POP3 keeps no flags on the server
    assert readers.next_sync(0, 3, 1000.0) == pytest.approx(1000 + ONE_WAY + RTT, abs=ABS)
    with pytest.raises(ValueError, match="person 0 has no device of type 'desktop'"):
        with_phone = readers_of(with_devices(phone, {**desktop, "share": 0}))[1]
        with_phone.next_sync(0, 1, 1000.0)


def behind_a_cut(data: dict, start: float, end: float) -> None:
    """The devices sit behind their own access link (phones-r, as home-r), cut from
    ``start`` to ``end``."""
    data["topology"]["nodes"].append({"id": "phones", "kind": "client"})
    data["topology"]["edges"].append({"a": "phones", "b": "r", "latency": 0.02, "bandwidth": 1.0e6})
    data["domains"][0]["retrieval"]["client"] = "phones"
    data["faults"] = [{"kind": "link", "a": "phones", "b": "r", "start": start, "end": end}]


def test_an_idle_client_cut_off_reconnects_at_its_next_idle() -> None:
    # The devices sit behind their own access link (phones-r, as home-r); it is cut from
    # 50 s to 700 s. Message 0 is delivered at 100.6 while cut off; the path is back at
    # 700; the IDLE client notices its dead connection when it re-issues IDLE (every
    # 1740 s, phase 0: at 1740) and logs in again: 1740 + 0.507. Messages 1 and 2
    # (delivered at 200.6 and 300.6, also cut off) come with it.
    data = with_devices({"name": "desktop", "access": "imap", "sync": "idle", "phase": 0})
    behind_a_cut(data, 50, 700)
    m = run(parse_scenario(data)).messages
    assert list(m["retrieved"]) == pytest.approx([1740 + IMAP_S] * 3, abs=ABS)
    # A poller reconnects at its next poll after the path is back (600 s, phase 0: 1200).
    data["domains"][0]["retrieval"]["devices"][0] = {"name": "laptop", "share": 1, "access": "imap", "phase": 0}
    m = run(parse_scenario(data)).messages
    assert list(m["retrieved"]) == pytest.approx([1200 + IMAP_S] * 3, abs=ABS)


def test_an_idle_client_hears_of_nothing_until_it_has_reconnected_after_a_cut() -> None:
    # The cut is 50 s to 250 s: messages 0 (delivered 100.6) and 1 (200.6) wait for
    # the path. Message 2 is delivered at 300.6, after the path is back, but the IDLE
    # connection died with the cut and the client notices only at its next re-issued
    # IDLE (1740): all three come then, in one login (1740 + 0.507), not message 2
    # first over a connection that no longer exists.
    data = with_devices({"name": "desktop", "access": "imap", "sync": "idle", "phase": 0})
    behind_a_cut(data, 50, 250)
    m = run(parse_scenario(data)).messages
    assert list(m["retrieved"]) == pytest.approx([1740 + IMAP_S] * 3, abs=ABS)
    # A cut that ended before the connection's next re-issue and mail after that
    # re-issue: pushed again (the duration is long enough for a fourth message at
    # 1800 s, after the reconnection at 1740).
    data["duration"] = 1850
    data["drain"] = 100
    m = run(parse_scenario(data)).messages
    pushed = m["retrieved"].iloc[-1] - m["delivered"].iloc[-1]
    assert m["delivered"].iloc[-1] > 1740 and pushed < 0.2


def test_a_persons_devices_are_a_pure_function_of_the_person() -> None:
    """Deterministic and independent of the order people receive mail: two worlds built
    with one seed, asked about the same people in opposite orders, agree; another seed
    gives other draws."""
    types = [
        {"name": "phone", "access": "imap", "sync": "idle"},
        {"name": "desktop", "access": "imap"},
        {"name": "tablet", "access": "webmail"},
    ]
    data = with_devices(*types)
    for t, share in zip(data["domains"][0]["retrieval"]["devices"], (0.9, 0.75, 0.5)):
        t["share"] = share
    people = list(range(500))
    _, a = readers_of(data)
    _, b = readers_of(data)
    forward = [a.devices(p) for p in people]
    backward = [b.devices(p) for p in reversed(people)][::-1]
    assert forward == backward
    other = build(parse_scenario(data), seed=2).ctx.domains["example.org"].readers
    assert [other.devices(p) for p in people] != forward


def test_shares_give_the_expected_proportions_of_people() -> None:
    """Each type with its own share, drawn independently per person; a person who draws
    none has the first type. With n = 40,000 people a proportion's standard error is at
    most 0.0025: the tolerance 0.012 is about five of them."""
    shares = (0.9, 0.75, 0.5)
    data = with_devices(*({"name": n, "access": "imap"} for n in ("phone", "desktop", "tablet")))
    for t, share in zip(data["domains"][0]["retrieval"]["devices"], shares):
        t["share"] = share
    _, readers = readers_of(data)
    n = 40_000
    has = np.zeros((n, 3), dtype=bool)
    for p in range(n):
        has[p, list(readers.devices(p)[0])] = True
    none = (1 - 0.9) * (1 - 0.75) * (1 - 0.5)
    assert has.mean(axis=0) == pytest.approx([0.9 + none, 0.75, 0.5], abs=0.012)
    assert (has[:, 1] & has[:, 2]).mean() == pytest.approx(0.75 * 0.5, abs=0.012)  # independent
    assert has.any(axis=1).all()


BAD_DEVICES = [
    pytest.param({"asleep": {"start_hour": 23, "end_hour": 23}}, "devices[p].asleep",
                 "start_hour and end_hour are both 23: give a stretch of the day", id="empty-sleep"),
    pytest.param({"asleep": {"start_hour": 24, "end_hour": 7}}, "devices[p].asleep.start_hour",
                 "less than 24", id="hour-24"),
    pytest.param({"asleep": {"start_hour": 1380, "end_hour": 7}}, "devices[p].asleep.start_hour",
                 "YAML reads an unquoted 23:00 as 1380", id="sexagesimal"),
    pytest.param({"asleep": {"start_hour": "23:00", "end_hour": 7}}, "devices[p].asleep.start_hour",
                 "give the local hour as a number (23:30 is 23.5)", id="clock-string"),
    pytest.param({"access": "pop3", "sync": "idle"}, "devices[p]",
                 "sync: idle needs access: imap, not pop3", id="pop3-idle"),
    pytest.param({"sync": "idle", "phase": 1800}, "devices[p]",
                 "phase (1800.0) must be below idle_refresh", id="idle-phase"),
    pytest.param({"share": 1.5}, "devices[p].share", "less than or equal to 1", id="share-above-1"),
    pytest.param({"idle_refresh": 0}, "devices[p].idle_refresh", "greater than or equal to 1", id="refresh-0"),
    pytest.param({"sync": "idle", "idle_refresh": 3600}, "devices[p].idle_refresh", "less than or equal to 1800",
                 id="refresh-past-autologout"),
    pytest.param({"asleep": "23-7"}, "devices[p].asleep",
                 "give asleep as a mapping: {start_hour: 23, end_hour: 7}", id="sleep-not-a-mapping"),
    pytest.param({"leave_on_server": False}, "devices[p]",
                 "leave_on_server is for access: pop3 (POP3 removes mail from the server), not imap", id="imap-leave"),
    pytest.param({"access": "pop3", "leave_on_server": False, "delete_after": 3600}, "devices[p]",
                 "delete_after needs leave_on_server: true", id="delete-without-copy"),
]


def test_show_of_devices_reads_back() -> None:
    """The effective scenario dumps each device type without the POP3 keys it does not
    use, so it loads again (the defaults are filled in on every device type)."""
    from sim.config import parse_scenario as parse

    data = with_devices({"name": "phone", "access": "imap", "sync": "idle"},
                        {"name": "desktop", "access": "pop3", "leave_on_server": False},
                        {"name": "laptop", "access": "pop3"})
    scenario = parse(data)
    again = parse(scenario.model_dump(mode="json"))
    assert again.domains[0].retrieval == scenario.domains[0].retrieval


@pytest.mark.parametrize("change, key, problem", BAD_DEVICES)
def test_bad_devices_input_is_one_line_naming_the_key(
    tmp_path, capsys: pytest.CaptureFixture[str], change: dict, key: str, problem: str  # noqa: ANN001
) -> None:
    import yaml

    from sim.config import ScenarioError, load_scenario
    from tests.conftest import cli

    data = with_devices({"name": "p", "access": "imap", **change})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.path == f"domains[example.org].retrieval.{key}"
    assert problem in info.value.problem
    code, out, err = cli(["run", str(path), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert f"domains[example.org].retrieval.{key}" in err


def test_the_summary_has_a_sync_leg_and_splits_retrieval_by_access() -> None:
    # The POP3 desktop takes every message off the server at 600.649; the IMAP phone
    # never has them: the sync leg never completes (censored at the horizon, as "never"
    # cannot be told from "later"), the retrieval leg ends at the POP3 download.
    pop3 = {"name": "desktop", "access": "pop3", "poll_interval": 600, "phase": 0, "leave_on_server": False}
    imap = {"name": "phone", "access": "imap", "poll_interval": 1800, "phase": 0}
    res = run(parse_scenario(with_devices(pop3, imap, drain=1000)))
    s = res.summary()
    assert s.times.loc["sync", "count"] == 0 and s.times.loc["sync", "censored"] == 3
    assert s.times.loc["retrieval", "count"] == 3
    split = s.access
    assert split is not None and list(split.index) == ["pop3"] and split.loc["pop3", "rows"] == 3
    waits = [600 + POP3_S - delivered(mid) for mid in range(3)]
    assert split.loc["pop3", "mean"] == pytest.approx(sum(waits) / 3, abs=ABS)
    assert "retrieval by the first device's access" in str(s)


def test_the_example_of_docs_devices_md_is_valid() -> None:
    """docs/devices.md's yaml block: its retrieval validates as written (the python block
    of that page runs in tests/test_docs.py)."""
    import re
    from pathlib import Path

    import yaml

    from sim.config import Retrieval

    page = (Path(__file__).resolve().parent.parent / "docs" / "devices.md").read_text()
    (block,) = re.findall(r"```yaml\n(.*?)```", page, flags=re.S)
    retrieval = Retrieval.model_validate(yaml.safe_load(block)["domains"][0]["retrieval"])
    types, one_each = retrieval.device_types()
    assert [t.name for t in types] == ["desktop", "android", "iphone", "laptop"] and not one_each
    assert types[1].idle_refresh == 1440 and types[2].asleep is not None and not types[3].leave_on_server


def test_two_pop3_devices_that_both_downloaded_both_hold_copies() -> None:
    # Two POP3 devices that delete: the desktop looks at 600 (removal at its QUIT,
    # 600.649), the laptop at 600.3, before that QUIT: it downloads too, its session
    # ending after the removal (600.949). Both hold the only copies; the IMAP phone
    # looking at 1800 has none.
    desktop = {"name": "desktop", "access": "pop3", "poll_interval": 600, "phase": 0, "leave_on_server": False}
    laptop = {**desktop, "name": "laptop", "phase": 0.3}
    phone = {"name": "phone", "access": "imap", "poll_interval": 1800, "phase": 0}
    domain, readers = readers_of(with_devices(desktop, laptop, phone))
    c = readers.copies(Message(0, domain, 0, 10_000, None), 100.0)
    assert c.server_until == pytest.approx(600 + POP3_S, abs=ABS)
    assert c.times == pytest.approx([600 + POP3_S, 600.3 + POP3_S, math.inf], abs=ABS)
    assert c.holders(readers.types) == [0, 1]


def test_access_is_empty_for_a_row_no_device_had_within_the_run() -> None:
    """A device polling every 3000 s from 0 with the run over at 1350 s: no row is
    retrieved, so none has a first device's access (both forms)."""
    data = with_devices({"name": "desktop", "access": "imap", "poll_interval": 3000, "phase": 0}, drain=1000)
    m = run(parse_scenario(data)).messages
    assert m["delivered"].notna().all() and m["retrieved"].isna().all()
    assert m["access"].isna().all() and m["synced"].isna().all()
    data = tiny_data()  # the older one-device form
    data["domains"][0]["retrieval"]["imap"] = {"share": 1, "poll_interval": 3000, "phase": 0}
    m = run(parse_scenario(data)).messages
    assert m["retrieved"].isna().all() and m["access"].isna().all()
