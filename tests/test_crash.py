"""Node faults on the servers that hold mail, worked out by hand to 1e-9 s.

The tiny world (tests/conftest.py) with one message, created at 100 (``duration`` 150).
Its timeline without faults (tests/test_timeline.py):

- submitted 100.388; the MX look-up misses: 2 x 0.001 + 0.2 = 0.202, so the session to
  the MX opens at 100.590;
- the relay session is 8 round trips on mta-r-mx (one way L = 0.016, RTT 0.032) plus
  10,000 B at 5 MB/s: 0.256 + 0.002 = 0.258, one wait ending at 100.848 when the 250
  arrives; the MX decided (and took the message) one L earlier, at 100.832;
- at the MX: scan 0.05, LMTP 5 x 2 x 0.0005 + 10,000 / 1e8 = 0.0051, write 0.01: 0.0651
  from the scan's start (delivered 100.9131);
- the IMAP poll at 600 sees it at 600 + 7 x 0.071 + 0.01 = 600.507.

A deferral follows Postfix's backoff in whole seconds: due = floor(now) + 300 (the age
is under 300 s), and the queue runs every 300 s take what is due by floor(t) + 1: a
deferral at 100.x is due at 400 and taken by the run at 600. A retry at 600 misses the
cache (the answer cached at 100.590 for 150 s), so it is 600 + 0.202 + 0.258 = 600.460
accepted and 600.5251 delivered.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from sim.faces.trace import message_line

from sim import build, run
from sim.config import parse_scenario
from sim.core.records import BOUNCED, DELIVERED, LOST, Recorder
from tests.conftest import node, tiny_data

ABS = 1e-9
LOOKUP = 0.202
SESSION = 0.258
L = 0.016
AT_MX = 0.0651
RETRY = 600 + LOOKUP + SESSION + AT_MX  # 600.5251


def one(faults: list[dict[str, Any]], duration: float = 150, **changes: Any) -> Any:
    data = tiny_data(duration=duration)
    data["faults"] = faults
    for key, value in changes.items():
        node(data, key).update(value)
    return run(parse_scenario(data), trace=True)


def crash(target: str, start: float, end: float, **more: Any) -> dict[str, Any]:
    return {"kind": "node", "node": target, "start": start, "end": end, **more}


def test_a_crash_of_the_mx_mid_session_cuts_it_and_the_sender_defers() -> None:
    res = one([crash("mx", 100.7, 100.8)])
    row = res.messages.loc[0]
    a = res.attempts
    cut = a[(a["hop"] == 1) & (a["attempt"] == 1)].iloc[0]
    # Cut at 100.7, before "." reached the MX (100.832): an interrupted row, no copy there.
    assert (cut["start"], cut["end"]) == (pytest.approx(100.590, abs=ABS), pytest.approx(100.7, abs=ABS))
    assert cut["outcome"] == "interrupted" and cut["reply"] is pd_na() and cut["enhanced"] == "4.4.2"
    # Deferred at 100.7: due 400, taken by the queue run at 600.
    assert row["deferrals"] == 1 and row["attempts"] == 2
    assert row["accepted"] == pytest.approx(600 + LOOKUP + SESSION, abs=ABS)
    assert row["delivered"] == pytest.approx(RETRY, abs=ABS)
    assert row["copies"] == 1 and row["status"] == "delivered"
    assert res.stats["fault"] == {"fault 0: mx": {"failures": 1, "downtime": pytest.approx(0.1)}}


@pytest.mark.parametrize("answer, ends, outcome", [("refuse", 100.590 + 0.032, "deferred"),
                                                   ("none", 100.590 + 30, "deferred")])
def test_a_down_mx_refuses_at_once_or_stays_silent_for_a_new_session(answer: str, ends: float, outcome: str) -> None:
    # Down from 100.5: the session opened at 100.590 finds it down. Refused: a TCP reset
    # after one round trip; silent: smtp_connect_timeout, 30 s. The only host: deferred.
    res = one([crash("mx", 100.5, 200, answer=answer)])
    first = res.attempts[(res.attempts["hop"] == 1)].iloc[0]
    assert first["end"] == pytest.approx(ends, abs=ABS)
    assert first["outcome"] == outcome and first["enhanced"] == "4.4.1" and first["reply"] is pd_na()
    # Either way due at floor(end) + 300 <= 601: the run at 600.
    assert res.messages.loc[0, "delivered"] == pytest.approx(RETRY, abs=ABS)


def pd_na() -> Any:
    import pandas as pd

    return pd.NA


def test_a_crash_of_the_mx_after_it_answered_the_dot_still_delivers_its_answer() -> None:
    # The MX decided at 100.832 (the 250's arrival 100.848 less L) and crashes at 100.84:
    # its 250 was on the wire already and reaches the sender at 100.848 (a host that
    # goes down does not recall packets in flight). One copy, taken at 100.832: it waits
    # in the MX's queue while the MX is down and is scanned from the repair at 100.9.
    res = one([crash("mx", 100.84, 100.9)])
    row = res.messages.loc[0]
    assert row["copies"] == 1 and row["status"] == "delivered"
    assert row["accepted"] == pytest.approx(100.848 - L, abs=ABS)
    assert row["delivered"] == pytest.approx(100.9 + AT_MX, abs=ABS)
    relay = res.attempts[res.attempts["hop"] == 1]
    assert list(relay["outcome"]) == ["delivered"] and relay["reply"].tolist() == [250]
    assert relay["end"].tolist() == [pytest.approx(100.848, abs=ABS)]
    assert (row["attempts"], row["deferrals"]) == (1, 0)


def test_a_path_cut_after_the_dot_arrived_is_the_classic_duplicate() -> None:
    # r~mx goes down at 100.84 (no detour): the MX took the message when it answered at
    # 100.832 and scans it at once: delivered 100.84 + 0.0651. Its 250, on its way back,
    # is lost with the path: the sender, never told, defers its own copy (due 400, the
    # queue run at 600) and delivers it again: two copies.
    res = one([{"kind": "link", "a": "r", "b": "mx", "start": 100.84, "end": 100.9}])
    row = res.messages.loc[0]
    assert row["copies"] == 2 and row["status"] == "delivered"
    assert row["accepted"] == pytest.approx(100.848 - L, abs=ABS)  # the first copy's
    assert row["delivered"] == pytest.approx(100.84 + AT_MX, abs=ABS)
    # Read once, the first copy, at the IMAP check of 600 (7 round trips of 0.071 s and
    # 10 kB at 1 MB/s), not again after the second copy's delivery.
    assert row["retrieved"] == pytest.approx(600 + 7 * 0.071 + 0.01, abs=ABS)
    assert ", delivered, 2 copies (a duplicate), attempts 2;" in message_line(res, 0)
    lmtp = res.attempts[res.attempts["hop"] == 2]
    assert list(lmtp["end"]) == [pytest.approx(100.84 + AT_MX, abs=ABS), pytest.approx(RETRY, abs=ABS)]
    assert (row["attempts"], row["deferrals"]) == (2, 1)


def test_a_cut_before_the_dot_arrived_leaves_no_copy_at_the_server() -> None:
    # 100.831 is before 100.832 - the "." had not arrived when the MX went: one copy.
    res = one([crash("mx", 100.831, 100.9)])
    row = res.messages.loc[0]
    assert row["copies"] == 1 and row["delivered"] == pytest.approx(RETRY, abs=ABS)


def test_a_crash_of_the_sending_mta_after_the_dot_duplicates_and_requeues_at_once() -> None:
    # The sender crashes at 100.84: the MX (up) took the message at 100.832 and scans
    # it from 100.84: delivered 100.84 + 0.0651. The sender's copy stays in its active
    # queue (Postfix moves the active queue back and delivers it when it starts): at
    # the repair, 100.9, the look-up hits the cache (one round trip, 0.002), the session
    # opens at 100.902 and is accepted at 101.160, delivered again at 101.2251.
    res = one([crash("mta", 100.84, 100.9)])
    row = res.messages.loc[0]
    assert row["delivered"] == pytest.approx(100.84 + AT_MX, abs=ABS)
    assert row["accepted"] == pytest.approx(100.848 - L, abs=ABS)  # the first copy's
    assert row["copies"] == 2
    assert (row["attempts"], row["deferrals"]) == (2, 0)  # no deferral: requeued
    lmtp = res.attempts[res.attempts["hop"] == 2]
    assert list(lmtp["end"]) == [pytest.approx(100.84 + AT_MX, abs=ABS), pytest.approx(100.902 + SESSION + AT_MX, abs=ABS)]


def test_a_crash_of_the_sending_mta_just_after_it_sent_the_dot_duplicates_too() -> None:
    # The "." leaves the sender one round trip before the 250 is back: at 100.848 - 2 L
    # = 100.816. The sender crashes at 100.82, after that: the "." still reaches the MX,
    # which takes the message when it arrives, at 100.832 (counted by the MX from the
    # cut: the census holds); the sender never hears the 250 and sends its own copy
    # again at the repair.
    res = one([crash("mta", 100.82, 100.9)])
    row = res.messages.loc[0]
    assert row["copies"] == 2 and row["accepted"] == pytest.approx(100.848 - L, abs=ABS)
    # The MX has it when the "." arrives, 100.832, and scans it from then.
    assert row["delivered"] == pytest.approx(100.832 + AT_MX, abs=ABS)
    # Before 100.816 the "." had not left: one copy.
    assert one([crash("mta", 100.81, 100.9)]).messages.loc[0, "copies"] == 1


def test_a_crash_of_the_sending_mta_mid_session_retries_at_the_repair() -> None:
    res = one([crash("mta", 100.7, 110)])
    row = res.messages.loc[0]
    cut = res.attempts[res.attempts["hop"] == 1].iloc[0]
    assert cut["outcome"] == "interrupted" and cut["end"] == pytest.approx(100.7, abs=ABS)
    # Back in the active queue; at 110 a cache hit (0.002) and the session: 110.260.
    assert row["accepted"] == pytest.approx(110.002 + SESSION, abs=ABS)
    assert row["delivered"] == pytest.approx(110.002 + SESSION + AT_MX, abs=ABS)
    assert row["copies"] == 1 and (row["attempts"], row["deferrals"]) == (2, 0)


def test_a_disk_failure_loses_the_mta_queue_and_the_rows_in_its_sessions() -> None:
    # The MX refuses all run long (an outage). Message 0: refused at 100.622, deferred.
    # Message 1 (created 200): submitted 200.388, cache hit (cached until 250.59), the
    # session opens at 200.390 and waits for the reset until 200.422. The MTA's disk
    # fails at 200.40: message 0 (deferred) and message 1 (in the session) end lost then.
    data = tiny_data(duration=250)
    node(data, "mx").update(outages=[{"start": 0, "end": 5000}], answer="refuse")
    data["faults"] = [crash("mta", 200.40, 300, disk="lost")]
    model = build(parse_scenario(data), trace=True)
    model.run(until=200.5)
    assert sum(model.census().values()) == model.recorder.in_flight() == 0
    model.run()
    m = model.recorder.messages()
    assert list(m["status"]) == ["lost", "lost"]
    assert list(m["reason"]) == ["disk lost at mta"] * 2
    assert list(m["ended"]) == [pytest.approx(200.40, abs=ABS)] * 2
    a = model.recorder.attempts()
    cut = a[a["outcome"] == "interrupted"].iloc[-1]
    assert (cut["id"], cut["start"]) == (1, pytest.approx(200.390, abs=ABS))
    # Each loss is a row of the attempts table: the attempt the row never made at the
    # MTA (hop 1, its second), the MTA to itself, at the fault's start, outcome lost.
    lost = a[a["outcome"] == "lost"]
    assert list(zip(lost["id"], lost["hop"], lost["attempt"], lost["src"], lost["dst"])) == [
        (0, 1, 2, "mta", "mta"), (1, 1, 2, "mta", "mta")]
    assert list(lost["end"]) == [pytest.approx(200.40, abs=ABS)] * 2 and lost["reply"].isna().all()
    assert model.stats()["mta"]["mta"]["lost"] == 2


def test_a_disk_failure_at_the_store_destroys_what_was_not_retrieved() -> None:
    res = one([crash("store", 300, 400, disk="lost")])
    row = res.messages.loc[0]
    assert row["status"] == "lost" and row["reason"] == "disk lost at store"
    assert row["delivered"] == pytest.approx(100.9131, abs=ABS)  # kept
    assert row["ended"] == 300 and math.isnan(row["retrieved"])
    # In the journey: after its hand-off to the store (hop 2, attempt 1), the store's
    # loss (hop 2, attempt 2, the store to itself, at 300).
    a = res.attempts
    assert list(a.loc[a["hop"] == 2, "outcome"]) == ["delivered", "lost"]
    loss = a[a["outcome"] == "lost"].iloc[0]
    assert (loss["attempt"], loss["src"], loss["dst"], loss["start"]) == (2, "store", "store", 300)
    # Retrieved at 600.507: a loss at 700 takes nothing the person has not got.
    later = one([crash("store", 700, 800, disk="lost")]).messages.loc[0]
    assert later["status"] == "delivered" and later["retrieved"] == pytest.approx(600.507, abs=ABS)


def test_a_store_that_is_down_makes_the_mx_keep_the_message_and_try_again() -> None:
    # Down from 100: at 100.848 the scanner finds it down, and the MX tries again 300 s
    # later (Postfix's first retry): the scan from 400.848, delivered 400.9131.
    res = one([crash("store", 100, 200)])
    assert res.messages.loc[0, "delivered"] == pytest.approx(400.848 + AT_MX, abs=ABS)
    assert res.stats["mx"]["mx"]["lmtp_deferred"] == 1
    # A crash at 100.87 cuts the hand-off in progress (scan from 100.848): the MX keeps
    # it, finds the store down at once, and tries at 400.87.
    cut = one([crash("store", 100.87, 200)])
    assert cut.messages.loc[0, "delivered"] == pytest.approx(400.87 + AT_MX, abs=ABS)


def test_a_disk_failure_at_the_mx_loses_the_message_being_handed_over() -> None:
    res = one([crash("mx", 100.87, 200, disk="lost")])
    row = res.messages.loc[0]
    assert (row["status"], row["reason"], row["ended"]) == ("lost", "disk lost at mx", pytest.approx(100.87, abs=ABS))
    assert row["copies"] == 0
    loss = res.attempts[res.attempts["outcome"] == "lost"]
    assert list(zip(loss["hop"], loss["attempt"], loss["src"], loss["end"])) == [
        (2, 1, "mx", pytest.approx(100.87, abs=ABS))]  # the hand-off it never finished


def test_a_planned_stop_that_loses_the_disk_keeps_what_it_accepts_afterwards() -> None:
    # MX down from 100.7 to 200 with its disk lost, no crash: the session open since
    # 100.59 finishes, accepted at 100.848 on the new disk (after the loss), and the
    # message waits for the scanners until the repair: delivered 200 + 0.0651.
    res = one([crash("mx", 100.7, 200, crash=False, disk="lost")])
    row = res.messages.loc[0]
    assert (row["status"], row["copies"]) == ("delivered", 1)
    assert row["accepted"] == pytest.approx(100.848, abs=ABS)
    assert row["delivered"] == pytest.approx(200 + AT_MX, abs=ABS)


def test_a_message_the_mx_took_just_before_losing_its_disk_is_lost() -> None:
    # The MX took the message when it answered "." (100.832) and its disk goes with the
    # crash at 100.84: the sender heard the 250 (100.848) and is done; the only copy is
    # lost, at the crash: the books say so, as a real operator would find out.
    res = one([crash("mx", 100.84, 100.9, disk="lost")])
    row = res.messages.loc[0]
    assert (row["status"], row["reason"], row["copies"]) == ("lost", "disk lost at mx", 0)
    assert row["ended"] == pytest.approx(100.84, abs=ABS)
    assert res.stats["mx"]["mx"]["lost"] == 1


def test_copies_end_on_their_own_and_nothing_else_ends_twice() -> None:
    rec = Recorder(["a.example"])
    a, b, c = (rec.created(0.0, 0, 0, 0, 0, 100.0) for _ in range(3))
    # a: two copies, both delivered: delivered at the first, copies 2; a third raises.
    rec.split(a)
    assert rec.in_flight() == 4  # a twice, b, c
    rec.delivered(a, 1.0)
    assert rec.status(a) == "delivered" and rec.in_flight() == 3  # a's other copy still counts
    rec.delivered(a, 2.0)
    assert rec.messages().loc[a, "copies"] == 2 and rec.messages().loc[a, "delivered"] == 1.0
    with pytest.raises(RuntimeError, match="ended twice"):
        rec.delivered(a, 3.0)
    # b: one copy bounces while the other lives: only that copy ends; then the last is lost.
    rec.split(b)
    rec.ended(b, BOUNCED, 1.0, "unknown recipient")
    assert rec.status(b) == "in_flight" and rec.in_flight() == 2
    rec.ended(b, LOST, 2.0, "disk lost at mta")
    assert rec.status(b) == "lost"
    with pytest.raises(RuntimeError, match="ended twice"):
        rec.ended(b, DELIVERED, 3.0)
    # c: delivered, then destroyed once (its store's disk); never twice.
    rec.delivered(c, 1.0)
    rec.destroyed(c, 5.0, "disk lost at store")
    assert rec.status(c) == "lost" and rec.messages().loc[c, "delivered"] == 1.0
    with pytest.raises(RuntimeError, match="destroyed while lost"):
        rec.destroyed(c, 6.0, "disk lost at store")
    assert rec.in_flight() == 0 and rec.forks == 2


def test_a_crash_of_the_mx_puts_the_message_being_handed_over_back_first() -> None:
    # The scan started at 100.848; the MX crashes at 100.87 (disk kept) and is back at
    # 100.95: the message is scanned again from then, delivered 100.95 + 0.0651.
    res = one([crash("mx", 100.87, 100.95)])
    row = res.messages.loc[0]
    assert row["delivered"] == pytest.approx(100.95 + AT_MX, abs=ABS)
    assert (row["copies"], row["attempts"]) == (1, 1)


def test_mail_due_while_the_mta_was_down_goes_at_the_repair() -> None:
    # Refused by the MX (down 100.5-200): deferred at 100.622, due 400. The MTA is down
    # from 300 to 410: its queue manager, starting, runs the deferred queue at once (not
    # at the grid's 600): a cache miss, the session, delivered 410 + 0.202 + 0.258 + 0.0651.
    res = one([crash("mx", 100.5, 200, answer="refuse", crash=False), crash("mta", 300, 410)])
    assert res.messages.loc[0, "delivered"] == pytest.approx(410 + LOOKUP + SESSION + AT_MX, abs=ABS)


def test_a_relay_fails_on_both_sides_and_reasons_add_up() -> None:
    from sim.core.faults import Failure
    from sim.mail.smtp import CONNECTION_REFUSED, NO_ANSWER

    data = tiny_data()
    data["topology"]["nodes"].append({"id": "backup", "kind": "relay", "resolver": "dns"})
    data["topology"]["edges"].append({"a": "r", "b": "backup", "latency": 0.004})
    model = build(parse_scenario(data))
    relay, mta = model.node("backup"), model.node("mta")
    refuse, silent = Failure("fault 0", "refuse", True, False), Failure("fault 1", None, False, False)
    for node_ in (relay, mta):
        node_.fail(refuse)
        # The server side refuses (what clients see), the delivery side stops.
        assert (node_.up, node_.down_reply, node_.active.paused) == (False, CONNECTION_REFUSED, True)
        node_.fail(silent)
        assert node_.down_reply is NO_ANSWER  # a silent reason wins
        node_.repair(refuse)
        assert (node_.up, node_.down_reply, node_.active.paused) == (False, NO_ANSWER, True)
        node_.repair(silent)
        assert (node_.up, node_.active.paused) == (True, False)


def test_two_copies_of_one_row_due_at_once_leave_the_deferred_queue_in_turn() -> None:
    """A relay can hold both copies of a duplicate (its own, and the sender's sent
    again), deferred to the same due time: the queue orders them by when they were put,
    never by comparing the messages (which raised)."""
    import simpy

    from sim.core.records import Message
    from sim.mail.retry import DeferredQueue

    env = simpy.Environment()
    released: list[tuple[Message, ...]] = []
    queue = DeferredQueue(env, 300.0, released.append)
    row = Message(0, None, 0, 1.0, None)
    twin = row.twin()
    queue.put((twin,), 5.0)
    queue.put((row,), 5.0)
    queue.start()
    env.run(400)
    assert released == [(twin,), (row,)] and queue.rows() == 0


@pytest.mark.parametrize("fault, copies, accepted", [
    # The path goes after the MX answered (100.832): its 250 is lost, two copies.
    ({"kind": "link", "a": "r", "b": "mx", "start": 100.84, "end": 100.9}, 2, 100.848 - L),
    # The MX crashes after answering: its 250 still arrives, one copy.
    (crash("mx", 100.84, 100.9), 1, 100.848 - L),
    # The path goes while the body is still crossing: nothing was answered, one copy.
    ({"kind": "link", "a": "r", "b": "mx", "start": 100.8, "end": 100.9}, 1, RETRY - AT_MX),
])
def test_shared_links_keep_the_duplicate_rules(fault: dict[str, Any], copies: int, accepted: float) -> None:
    """Every edge shared (one transfer at a time: the same times as unshared): the body
    at its share, then the 250's way back (L = 0.016 s) as a timeout of its own, so a
    cut in it is after the MX answered "." at 100.832, as on unshared links."""
    data = tiny_data(duration=150)
    for edge in data["topology"]["edges"]:
        edge["shared"] = True
    data["faults"] = [fault]
    row = run(parse_scenario(data), trace=True).messages.loc[0]
    assert row["copies"] == copies and row["status"] == "delivered"
    assert row["accepted"] == pytest.approx(accepted, abs=ABS)


def _books_at(faults: list[dict[str, Any]], until: float, **changes: Any) -> tuple[int, int]:
    """The census and the recorder's in-flight count of the tiny world at ``until``."""
    data = tiny_data(duration=150)
    data["faults"] = faults
    for key, value in changes.items():
        node(data, key).update(value)
    model = build(parse_scenario(data))
    model.run(until=until)
    return sum(model.census().values()), model.recorder.in_flight()


@pytest.mark.parametrize("faults, until", [
    # The MX crashed after answering (100.832); its 250 arrives at 100.848: meanwhile
    # the sender holds the row, the MX not yet.
    ([crash("mx", 100.84, 100.9)], 100.845),
    ([crash("mx", 100.84, 100.9, disk="lost")], 100.845),
    # The sender crashed after its "." left (100.816): the "." arrives at 100.832;
    # meanwhile the MX counts the copy on its way, the sender its own.
    ([crash("mta", 100.82, 100.9)], 100.825),
])
def test_the_books_hold_while_a_dot_or_its_answer_is_on_the_wire(faults: list[dict[str, Any]], until: float) -> None:
    census, in_flight = _books_at(faults, until)
    assert census == in_flight and in_flight >= 1


def test_a_dot_on_its_way_to_a_server_that_crashes_meanwhile_never_arrives() -> None:
    # The sender crashes at 100.82 after its "." left; the MX crashes at 100.825, before
    # the "." would arrive (100.832): no copy at the MX. The sender's own copy goes at
    # its repair, 100.9: a cached look-up (0.002) and a session the MX (back at 100.9)
    # answers: accepted 100.902 + 0.258, delivered 0.0651 later. One copy.
    res = one([crash("mta", 100.82, 100.9), crash("mx", 100.825, 100.9)])
    row = res.messages.loc[0]
    assert (row["copies"], row["status"]) == (1, "delivered")
    assert row["accepted"] == pytest.approx(100.902 + SESSION, abs=ABS)
    assert row["delivered"] == pytest.approx(100.902 + SESSION + AT_MX, abs=ABS)


def test_a_dot_on_its_way_when_the_sender_lost_its_disk_is_the_only_copy_left() -> None:
    # As above, but the sender's disk goes with its crash: its copy is lost at 100.82;
    # the MX's copy vanishes with the MX's crash: the row ends as its last copy did.
    res = one([crash("mta", 100.82, 100.9, disk="lost"), crash("mx", 100.825, 100.9)])
    row = res.messages.loc[0]
    assert (row["status"], row["reason"]) == ("lost", "disk lost at mta")
    assert row["ended"] == pytest.approx(100.82, abs=ABS)


def test_a_server_that_takes_its_time_after_the_dot_still_has_the_message() -> None:
    # reply_delay 1 s: the MX waits 1 s before each reply, so its 250 is back at 107.848
    # and the "." reached it at 106.832, left the sender at 106.816. A sender crash at
    # 106.9 (after the "." arrived, before the answer) leaves the MX with the message:
    # two copies; at 106.81 (before the "." left) one.
    twice = one([crash("mta", 106.9, 110)], mx={"reply_delay": 1}).messages.loc[0]
    once = one([crash("mta", 106.81, 110)], mx={"reply_delay": 1}).messages.loc[0]
    assert (twice["copies"], once["copies"]) == (2, 1)


def test_shared_links_keep_the_rule_of_a_dot_sent() -> None:
    # Every edge shared; the sender crashes at 100.82, after its "." left (100.816):
    # the MX has it when it arrives, 100.832, as on unshared links.
    data = tiny_data(duration=150)
    for edge in data["topology"]["edges"]:
        edge["shared"] = True
    data["faults"] = [crash("mta", 100.82, 100.9)]
    row = run(parse_scenario(data), trace=True).messages.loc[0]
    assert row["copies"] == 2 and row["accepted"] == pytest.approx(100.848 - L, abs=ABS)
