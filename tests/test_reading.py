"""Reading and replies (sim.mail.reading): looks, the read column, reply rows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import build, load_scenario, run
from sim.config import parse_scenario
from sim.config.workload import PROFILES
from sim.mail.dsn import sender_person
from sim.mail.reading import Looks, Reading
from sim.simulation.build import Model
from sim.simulation.summary import LEGS, READING_LEGS
from tests.conftest import assert_key_error, tiny_data
from tests.test_accounting import balanced, check_books
from tests.test_errors import write
from tests.test_links import two_sites

DAY = 86400.0
ROOT = Path(__file__).resolve().parent.parent


# -- looks -------------------------------------------------------------------------------


def test_looks_follow_the_rate_and_the_daily_profile() -> None:
    """300 people, 4 days, 75 looks a day on the office profile at UTC+2: 90,000 looks
    expected (Poisson, sd 300): the count within 1.5 % (5 sd); each local hour's count
    within 5 sd of 90,000 * w_h / sum(w)."""
    looks = Looks(12345, 75.0, PROFILES["office"], 2.0)
    hours = np.zeros(24)
    for person in range(300):
        for t in looks.between(person, 0.0, 4 * DAY):
            hours[int(((t + 2 * 3600) % DAY) // 3600)] += 1
    expected = 300 * 4 * 75
    assert hours.sum() == pytest.approx(expected, rel=0.015)
    w = np.array(PROFILES["office"])
    share = expected * w / w.sum()
    assert np.all(np.abs(hours - share) <= 5 * np.sqrt(share) + 1), (hours, share)


def test_gaps_between_looks_are_exponential_on_a_flat_profile() -> None:
    """Poisson: gaps exponential of mean DAY / 48 = 1800 s; P(gap < 1800) = 1 - 1/e."""
    looks = Looks(7, 48.0, PROFILES["flat"], 0.0)
    gaps = []
    for person in range(200):
        times = list(looks.between(person, 0.0, 5 * DAY))
        gaps += list(np.diff(times))
    gaps_a = np.array(gaps)
    assert gaps_a.mean() == pytest.approx(1800, rel=0.03)
    assert np.mean(gaps_a < 1800) == pytest.approx(1 - math.exp(-1), abs=0.015)


def test_a_person_has_the_same_looks_however_asked() -> None:
    """Pure function of (key, person): two objects agree, the next look after any
    moment between two looks is the later one, and other people's looks differ."""
    a, b = Looks(99, 75.0, PROFILES["office"], -5.0), Looks(99, 75.0, PROFILES["office"], -5.0)
    times = list(a.between(3, 0.0, 2 * DAY))
    assert times == list(b.between(3, 0.0, 2 * DAY))
    assert len(times) > 50
    for before, after in zip(times, times[1:]):
        middle = (before + after) / 2
        assert b.next(3, middle) == after  # asked out of order, by another object
        assert a.next(3, after) == after  # a look at t is the first at or after t
    assert times != list(a.between(4, 0.0, 2 * DAY))
    assert times != list(Looks(100, 75.0, PROFILES["office"], -5.0).between(3, 0.0, 2 * DAY))


# -- read and replies in a run ------------------------------------------------------------


class EveryThousand:
    """Pinned looks for hand-computed timelines: at every multiple of 1000 s."""

    def next(self, person: int, t: float) -> float:
        return math.ceil(t / 1000) * 1000.0


def pin_looks(model: Model) -> None:
    for domain in model.ctx.domains:
        if domain.readers is not None:
            for hook in domain.readers.hooks:
                if isinstance(hook, Reading):
                    hook.looks = EveryThousand()  # type: ignore[assignment]


def reading(**keys: Any) -> dict[str, Any]:
    return {"reply_delay": 50, "reply_size": 10000, **keys}


def test_read_is_the_first_look_after_the_first_device_has_it() -> None:
    """The tiny world (tests/test_crash.py's timeline): messages made every 100 s from
    100 s are delivered at x00.9131 (a DNS miss) or x00.7131 and polled by IMAP at the
    multiples of 600 (+ 0.507 s of session): 100-500 retrieved at 600.507, 600-1100 at
    1200.507, 1200 at 1800.507. Looks every 1000 s: read at 1000, 2000, 2000."""
    data = tiny_data(duration=1250, drain=1000)
    data["domains"][0]["retrieval"]["reading"] = reading(reply_share=0)
    model = build(parse_scenario(data))
    pin_looks(model)
    model.run()
    m = model.recorder.messages()
    assert list(m["retrieved"]) == pytest.approx([600.507] * 5 + [1200.507] * 6 + [1800.507], abs=1e-9)
    assert list(m["read"]) == [1000.0] * 5 + [2000.0] * 7
    assert (m["kind"] == "person").all()  # reply_share 0: no replies


def test_no_reading_leaves_read_empty_and_adds_no_hook() -> None:
    model = build(parse_scenario(tiny_data()))
    readers = model.ctx.domains["example.org"].readers
    assert readers is not None and readers.hooks == []
    model.run()
    assert model.recorder.messages()["read"].isna().all()


def across(**reading_keys: Any) -> dict[str, Any]:
    """two_sites (tests/test_links.py) with one message only, from example.org (1000
    people) to other.org (1000 people) at 100 s; both domains read."""
    data = two_sites(duration=1500, drain=1000)
    data["workload"] = [data["workload"][2]]
    data["workload"][0]["batches"] = [{"at": 100, "count": 1}]
    for domain in data["domains"]:
        domain["users"] = 1000
        domain["retrieval"]["reading"] = reading(**reading_keys)
    return data


def test_a_reply_travels_back_the_whole_path() -> None:
    """Row 0: example.org -> other.org, made at 100. Submitted 100.388; MX look-up miss
    0.202; relay mta-r-r2-mx2 (0.066 s one way, 5 MB/s): 8 x 0.132 + 10,000 / 5e6 =
    1.058: accepted 101.648; scan, LMTP and write 0.0651: delivered 101.7131; IMAP poll
    at 600 + 0.507: retrieved 600.507; read at the look of 1000.

    Row 1, the reply: made at 1000 + 50 (reply_delay) by other.org's reader, to the
    sender of row 0 at example.org, over the mirror path (home2 -> mta2, dns2, mta2-r2-r-mx):
    the same times, 1050 + 0.388 + 0.202 + 1.058 = 1051.648 accepted, 1051.7131
    delivered, retrieved 1200.507, read 2000. Its reply would be made at 2050, after
    the duration (1500): none."""
    model = build(parse_scenario(across(reply_share=1)))
    pin_looks(model)
    model.run()
    m = model.recorder.messages()
    assert len(m) == 2
    first, reply = m.loc[0], m.loc[1]
    assert first["accepted"] == pytest.approx(101.648, abs=1e-9)
    assert first["delivered"] == pytest.approx(101.7131, abs=1e-9)
    assert first["retrieved"] == pytest.approx(600.507, abs=1e-9)
    assert first["read"] == 1000.0
    assert reply["kind"] == "reply" and reply["parent_id"] == 0
    assert (reply["sender_domain"], reply["recipient_domain"]) == ("other.org", "example.org")
    assert reply["sender_person"] == first["recipient_person"]  # the reader writes back
    assert reply["recipient_person"] == sender_person(0, 1000)  # to who wrote row 0
    assert reply["created"] == 1050.0
    assert reply["submitted"] == pytest.approx(1050.388, abs=1e-9)
    assert reply["accepted"] == pytest.approx(1051.648, abs=1e-9)
    assert reply["delivered"] == pytest.approx(1051.7131, abs=1e-9)
    assert reply["retrieved"] == pytest.approx(1200.507, abs=1e-9)
    assert reply["read"] == 2000.0
    assert reply["status"] == "delivered" and reply["mx_host"] == "mx"
    # mailflow trace's line names the row it answers and every time of the last hop.
    from sim.faces.trace import message_line

    line = message_line(model.results(), 1)
    assert line.startswith("message 1: reply (to message 0) other.org → example.org")
    assert "retrieved 1,200.507, synced 1,200.507, read 2,000.000" in line


def test_a_reply_to_a_reply_goes_back_to_who_replied() -> None:
    """With a longer duration the reply (read at 2000) is answered at 2050 by the
    example.org person it went to, back to the other.org person who wrote it."""
    data = across(reply_share=1)
    data["duration"] = 2100
    model = build(parse_scenario(data))
    pin_looks(model)
    model.run()
    m = model.recorder.messages()
    second = m.loc[2]
    assert second["kind"] == "reply" and second["parent_id"] == 1 and second["created"] == 2050.0
    assert second["recipient_domain"] == "other.org"
    assert second["recipient_person"] == m.loc[0, "recipient_person"]
    assert second["sender_person"] == m.loc[1, "recipient_person"]


def test_a_domain_without_an_outbound_mta_sends_no_replies() -> None:
    data = across(reply_share=1)
    del data["domains"][1]["outbound"]
    data["workload"][0]["domain"] = "example.org"
    model = build(parse_scenario(data))
    pin_looks(model)
    model.run()
    m = model.recorder.messages()
    assert len(m) == 1 and m.loc[0, "read"] == 1000.0
    assert [r.domain for r in model.reading if r.replies is not None] == ["example.org"]
    assert model.stats()["reading"] == {
        "example.org": {"read": 0, "replies": 0, "replies_kept": 0},
        "other.org": {"read": 1, "replies": 0, "replies_kept": 0},
    }


def busy(**reading_keys: Any) -> dict[str, Any]:
    """The tiny domain with 300 people writing to each other every 2 s for 20,000 s."""
    data = tiny_data(duration=20_000, drain=2000)
    data["workload"][0]["interarrival"] = 2.0
    domain = data["domains"][0]
    domain["users"] = 300
    domain["retrieval"] = {"client": "home", "webmail": {"share": 1}}
    domain["retrieval"]["reading"] = {"reply_delay": 10, "profile": "flat", **reading_keys}
    return data


def test_the_reply_share_is_kept() -> None:
    """Of the person rows read by duration - 10 s (reply_delay 10), a share 0.3 is
    answered: binomial, 4 sd. Replies of replies the same."""
    m = run(parse_scenario(busy(reply_share=0.3))).messages
    read = m[(m["read"] <= 20_000 - 10)]
    parents = m.loc[m["parent_id"].dropna().astype(int)]
    for kind in ("person", "reply"):
        n = int((read["kind"] == kind).sum())
        answered = int((parents["kind"] == kind).sum())
        sd = math.sqrt(n * 0.3 * 0.7)
        assert n > 300
        assert abs(answered - 0.3 * n) <= 4 * sd, (kind, answered, n)
    replies = m[m["kind"] == "reply"]
    assert np.allclose(replies["created"].to_numpy() - parents["read"].to_numpy(), 10.0, rtol=0, atol=1e-9)


def test_only_people_s_mail_is_answered_and_junk_is_not_read() -> None:
    """Transactional mail, spam in the inbox and DSNs (unknown recipients bounce) are
    read but never answered (reply_share 1: every read person or reply row is). With
    the MX's after-queue filter junking spam (detection 0.5), junked rows are never
    read, the spam it missed is."""
    data = busy(reply_share=1, looks_per_day=300)  # a look every 288 s on average
    data["domains"][0]["unknown_recipient_rate"] = 0.2
    data["topology"]["nodes"][4]["spam_filter"] = {
        "detection_rate": 0.5, "false_positive_rate": 0, "action": "junk"
    }
    people = data["workload"][0]
    data["workload"] += [
        {**people, "name": "shop", "kind": "transactional", "interarrival": 5.0},
        {**people, "name": "junk", "kind": "spam", "interarrival": 5.0},
    ]
    m = run(parse_scenario(data)).messages
    replies = m[m["kind"] == "reply"]
    parents = m.loc[replies["parent_id"].astype(int)]
    assert set(parents["kind"]) == {"person", "reply"}
    # Delivered 4000 s before the horizon: unread with probability e^-13.9 each.
    early = m[(m["status"] == "delivered") & (m["delivered"] < 18_000) & (m["folder"] == "inbox")]
    for kind in ("transactional", "spam", "dsn"):
        rows = early[early["kind"] == kind]
        assert len(rows) > 50 and rows["read"].notna().all(), kind
    junk = m[m["folder"] == "junk"]
    assert len(junk) > 500 and junk["read"].isna().all()
    read_person = m[(m["kind"] == "person") & (m["read"] <= 20_000 - 10)]
    assert set(read_person.index) <= set(parents.index)


def test_the_books_balance_with_replies() -> None:
    """Replies are rows of their own: at every instant the census of components (the
    replies' outboxes included) equals the recorder's in-flight count."""
    data = busy(reply_share=0.5)
    data["duration"] = 4000
    model = balanced(data, [0.1, 0.37, 0.5, 0.81])
    m = model.recorder.messages()
    assert (m["kind"] == "reply").sum() > 100


def test_the_books_balance_with_replies_in_the_outbox() -> None:
    """The MTA is down from 1500 to 3500 s: replies made meanwhile wait in the mail
    clients' outbox (held by the client node) and are counted there by the census;
    they are sent after it is back and delivered."""
    data = busy(reply_share=0.5, reply_delay=1)
    data["duration"] = 4000
    data["drain"] = 6000
    data["faults"] = [{"kind": "node", "node": "mta", "start": 1500, "end": 3500}]
    model = balanced(data, [0.2, 0.25, 0.3, 0.33])
    assert model.stats()["reading"]["example.org"]["replies_kept"] > 0  # taken back into an outbox
    m = model.recorder.messages()
    replies = m[m["kind"] == "reply"]
    late = replies[(replies["created"] > 1600) & (replies["created"] < 3400)]
    assert len(late) > 20 and (late["submitted"] >= 3500).all()
    assert (replies["status"] == "delivered").all()


def test_same_scenario_same_replies() -> None:
    a = run(parse_scenario(busy(reply_share=0.3)), seed=3).messages
    b = run(parse_scenario(busy(reply_share=0.3)), seed=3).messages
    assert a.equals(b)


@pytest.mark.parametrize(
    "keys, key, problem",
    [
        ({"reply_share": 2}, "reply_share", "less than or equal to 1"),
        ({"looks_per_day": 0}, "looks_per_day", "greater than 0"),
        ({"profile": "night"}, "profile", "unknown profile"),
        ({"reply_delay": "ten"}, "reply_delay", ""),
        ({"replies": 0.2}, "replies", "unknown key"),
    ],
)
def test_bad_reading_keys_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keys: dict[str, Any], key: str, problem: str
) -> None:
    data = tiny_data()
    data["domains"][0]["retrieval"]["reading"] = keys
    path = write(tmp_path, data)
    assert_key_error(["validate", str(path)], capsys, path, f"domains[example.org].retrieval.reading.{key}", problem)


def test_a_row_lost_with_its_store_before_it_is_read_is_not_read_nor_answered() -> None:
    """The tiny world, messages made at 100 ... 600 (stop 650), looks every 1000 s,
    every read row answered. The store's disk is lost at 700: rows 0-4 were retrieved
    at 600.507 and stay (read at 1000, answered at 1050); row 5 (delivered 600.7131,
    its poll due at 1200.507) is destroyed: its look at 2000 never happens, so its
    read is empty and its reply, due at 2050, is never made."""
    data = tiny_data(duration=2100, drain=1000)
    data["workload"][0]["stop"] = 650
    data["domains"][0]["retrieval"]["reading"] = reading(reply_share=1)
    data["faults"] = [{"kind": "node", "node": "store", "start": 700, "end": 800, "disk": "lost"}]
    model = build(parse_scenario(data))
    pin_looks(model)
    model.run()
    m = model.recorder.messages()
    assert list(m.loc[:4, "read"]) == [1000.0] * 5
    assert m.loc[5, "status"] == "lost" and math.isnan(m.loc[5, "read"])
    check_books(m, faults=True)  # and no device had it: no synced, no access either
    answered = set(m["parent_id"].dropna().astype(int))
    assert {0, 1, 2, 3, 4} <= answered and 5 not in answered
    assert (m.loc[m["parent_id"].isin([0, 1, 2, 3, 4]), "created"] == 1050.0).all()


def test_the_summary_has_reading_legs_only_when_people_read() -> None:
    """Without reading the legs are as before; with it, reading (retrieved -> read) and
    to read (created -> read) over the reading domains' rows, and the note counts the
    replies. Pinned looks: the tiny world's rows are read 1000 - 600.507 = 399.493 s
    after retrieval (rows 0-4) or 2000 - 1200.507 = 799.493 s (rows 5-10)."""
    plain = run(parse_scenario(tiny_data())).summary()
    assert list(plain.times.index) == [name for name, _, _ in LEGS]
    data = tiny_data(duration=1150, drain=1000)
    data["domains"][0]["retrieval"]["reading"] = reading(reply_share=0)
    model = build(parse_scenario(data))
    pin_looks(model)
    model.run()
    s = model.results().summary()
    assert list(s.times.index) == [name for name, _, _ in (*LEGS, *READING_LEGS)]
    legs = s.times.loc["reading"]
    assert legs["count"] == 11 and legs["censored"] == 0
    assert legs["max"] == pytest.approx(799.493, abs=1e-9)
    assert legs["p50"] == pytest.approx(799.493, abs=1e-9)  # 6 of 11 rows
    assert s.reply_rows == 0
    replied = run(parse_scenario(busy(reply_share=0.3))).summary()
    assert replied.reply_rows > 0 and f"{replied.reply_rows:,} of the rows are replies" in replied.note()


def test_the_working_day_scenario() -> None:
    """topologies/reading-day.yaml (docs/reading.md): the books balance, every person
    row is read, mail across the six hours is read later than mail within a company,
    and about a fifth of what is read is answered (less the replies due after the
    duration)."""
    res = run(load_scenario(ROOT / "topologies" / "reading-day.yaml"))
    m = res.messages
    check_books(m)
    person = m[m["kind"] == "person"]
    assert person.loc[person["status"] == "delivered", "read"].notna().mean() > 0.999
    to_read = person["read"] - person["created"]
    across = (person["sender_domain"] != person["recipient_domain"]).to_numpy()
    assert to_read[across].median() > 1.5 * to_read[~across].median()
    assert to_read[across].quantile(0.9) > 3 * to_read[~across].quantile(0.9)
    replies = m[m["kind"] == "reply"]
    read = m[m["kind"].isin(["person", "reply"]) & m["read"].notna()]
    assert 0.17 < len(replies) / len(read) < 0.2
    stats = res.stats["reading"]
    assert sum(d["replies"] for d in stats.values()) == len(replies)
    assert sum(d["read"] for d in stats.values()) == m["read"].notna().sum()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    share=st.floats(0.1, 1.0),
    looks=st.floats(50, 2000),
    delay=st.floats(0, 600),
    outage=st.one_of(st.none(), st.tuples(st.floats(100, 1500), st.floats(10, 1500))),
    loss=st.sampled_from([0.0, 0.02]),
    unknown=st.sampled_from([0.0, 0.1]),
    instants=st.lists(st.floats(0.05, 0.95), min_size=1, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_books_balance_with_replies_in_any_world(
    share: float, looks: float, delay: float, outage: tuple[float, float] | None, loss: float,
    unknown: float, instants: list[float], seed: int,
) -> None:
    """Random reading worlds (replies of replies, an MTA down for a while, lossy links,
    bounces and their DSNs): at random instants the census equals the in-flight count,
    and every row's books hold (tests/test_accounting.py's checks, replies included)."""
    data = busy(reply_share=share, looks_per_day=looks, reply_delay=delay)
    data.update(duration=2000, drain=3000, seed=seed)
    data["workload"][0]["interarrival"] = 5.0
    data["domains"][0].update(users=50, unknown_recipient_rate=unknown)
    if outage is not None:
        data["faults"] = [{"kind": "node", "node": "mta", "start": outage[0], "end": sum(outage)}]
    for edge in data["topology"]["edges"]:
        edge["loss"] = loss
    model = balanced(data, instants)
    m = model.recorder.messages()
    replies = m[m["kind"] == "reply"]
    assert (replies["created"] < 2000).all()
    assert len(replies) == sum(r.stats()["replies"] for r in model.reading)
