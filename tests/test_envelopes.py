"""Envelopes, connection reuse, refused connections: timelines computed by hand to 1e-9 s.

The tiny world (tests/conftest.py), with TLS 1.3 and PIPELINING unless said otherwise:
mta -> mx is 0.016 s one way (RTT 0.032 s, 5 MB/s); mta -> mx2 0.018 s (RTT 0.036 s);
mta -> dns 0.001 s; a lookup that misses the cache takes 0.2 s (so 0.202 s with the round
trip); 10 kB at 5 MB/s is 0.002 s. A relay session is TCP 1, greeting 1, EHLO 1,
STARTTLS 1, TLS 1, EHLO 1 (the setup: 6), then MAIL+RCPT+DATA 1 (the RCPT replies come
back here), body and "." 1: 8 round trips, plus QUIT 1. Messages are submitted from a
hook at t = 10 (the tiny source makes none: its first message would be at 100, after
`duration`), so every row is queued at 10 + 9 * 0.042 + 10 kB / 1 MB/s = 10.388 (or later
when the submission carries many RCPTs without PIPELINING).
"""

from __future__ import annotations

from typing import Any

import pytest

import sim
from sim.config import parse_scenario
from sim.core.records import Message
from sim.mail.smtp import UNKNOWN_USER, Phase, Reply
from tests.conftest import node, tiny_data
from tests.test_accounting import check_books
from tests.test_mta import two_mx

RTT, RTT2, BODY = 0.032, 0.036, 10_000 / 5.0e6
QUEUED, LOOKUP = 10.388, 0.202
SIZE = 10_000.0
TRY_LATER = Reply(450, "4.2.1", "Try again later", Phase.RCPT)


def world(**mta: Any) -> dict[str, Any]:
    """Two domains: example.org at mx (as in tiny), other.org at mx2; no traffic of its own."""
    data = two_mx()
    data.update(duration=50, drain=3000)
    data["domains"][0]["mx"] = [{"host": "mx", "preference": 10}]
    data["domains"][0]["users"] = 200
    other = dict(data["domains"][0], name="other.org", mx=[{"host": "mx2", "preference": 10}])
    other.pop("outbound", None)
    data["domains"].append(other)
    node(data, "mta").update(mta)
    return data


def send(model: Any, at: float, recipients: list[tuple[str, int]]) -> None:
    """At ``at``, the client ``home`` submits one message to ``recipients`` (domain, user)."""

    def submit() -> None:
        rec, domains = model.recorder, model.ctx.domains
        sender = domains["example.org"]
        rows = []
        for name, user in recipients:
            domain = domains[name]
            first = rows[0].id if rows else -1
            mid = rec.created(at, sender.index, domain.index, user, 0, SIZE, first)
            rows.append(Message(mid, domain, user, SIZE, sender))
        model.node("mta").submit(rows[0], "home", tuple(rows[1:]))

    model.at(at, submit)


class Refuse:
    """A test policy: ``reply`` at RCPT to the users named, until ``until``."""

    phase = Phase.RCPT

    def __init__(self, reply: Reply, users: set[int], until: float = float("inf")) -> None:
        self.reply, self.users, self.until = reply, users, until

    def check(self, server: Any, client: str, msg: Any, now: float) -> Reply | None:
        return self.reply if msg.user in self.users and now < self.until else None


def run_traced(data: dict[str, Any], recipients: list[list[tuple[str, int]]],
               policies: dict[str, Any] | None = None) -> Any:
    model = sim.build(parse_scenario(data), trace=True)
    for host, policy in (policies or {}).items():
        model.node(host).add_policy(policy)
    for recipient_list in recipients:
        send(model, 10.0, recipient_list)
    seen = []
    for t in (10.5, 10.85, 11.0, 400.0, 600.3, model.scenario.horizon):
        model.run(until=t)
        seen.append(sum(model.census().values()) == model.recorder.in_flight())
    assert all(seen), seen  # the census matches the books at every instant looked at
    return model


def test_three_recipients_two_domains_mixed_outcomes() -> None:
    # Rows 0 and 1 (example.org, users 0 and 1) are one envelope to mx; row 2 (other.org)
    # another to mx2. Both agents look their domain up (a miss each) to 10.590.
    # mx: MAIL ok, RCPT user 0 ok, user 1 550 5.1.1. The RCPT replies arrive after 7 round
    # trips: row 1 bounces at 10.590 + 7 * 0.032 = 10.814; then the body and ".": 1 round
    # trip and 0.002 s more, row 0 accepted at 10.848 (the one-recipient time).
    # mx2 answers 450 to every RCPT before t = 500: row 2's reply comes at 10.590 + 7 *
    # 0.036 = 10.842; QUIT to 10.878, deferred at age 0.49 s: due 310.878 (the 300 s
    # minimum), taken at the queue run of t = 600; the MX answer has expired (TTL 150 s),
    # lookup to 600.202, then 8 round trips of 0.036 s and the body: accepted 600.492.
    data = world()
    model = run_traced(data, [[("example.org", 0), ("example.org", 1), ("other.org", 5)]],
                       {"mx": Refuse(UNKNOWN_USER, {1}), "mx2": Refuse(TRY_LATER, {5}, until=500)})
    every = model.recorder.messages()
    check_books(every)
    # Row 1's bounce made one DSN (row 3) at that instant, back to the sender.
    dsn = every[every["kind"] == "dsn"]
    assert list(dsn["parent_id"]) == [1] and list(dsn["created"]) == pytest.approx([10.814], abs=1e-9)
    m = every[every["kind"] != "dsn"]
    a = model.recorder.attempts()
    a = a[a["id"].isin(m.index)]
    assert list(m["message_id"]) == [0, 0, 0]
    assert list(m["status"]) == ["delivered", "bounced", "delivered"]
    assert m.loc[1, "reason"] == "unknown recipient"
    assert m.loc[1, "ended"] == pytest.approx(10.590 + 7 * RTT, abs=1e-9)
    assert m.loc[0, "accepted"] == pytest.approx(10.590 + 8 * RTT + BODY, abs=1e-9)
    assert m.loc[2, "accepted"] == pytest.approx(600.202 + 8 * RTT2 + BODY, abs=1e-9)
    assert list(m["attempts"]) == [1, 1, 2] and list(m["deferrals"]) == [0, 0, 1]
    assert list(m["final_reply"].str[:9]) == ["250 2.0.0", "550 5.1.1", "250 2.0.0"]
    relay = a[a["hop"] == 1].sort_values(["id", "attempt"])
    assert list(zip(relay["id"], relay["attempt"], relay["dst"], relay["reply"], relay["outcome"])) == [
        (0, 1, "mx", 250, "delivered"), (1, 1, "mx", 550, "bounced"),
        (2, 1, "mx2", 450, "deferred"), (2, 2, "mx2", 250, "delivered"),
    ]
    assert list(relay["end"]) == pytest.approx(
        [10.848, 10.814, 10.590 + 7 * RTT2, 600.202 + 8 * RTT2 + BODY], abs=1e-9
    )
    # One session per envelope: mx saw one for rows 0 and 1, and one more for the DSN
    # back to the sender at example.org.
    assert list(dsn["recipient_domain"]) == ["example.org"]
    assert model.node("mx").sessions == 2 and model.node("mx2").sessions == 2


def test_the_recipient_limit_splits_120_recipients_into_50_50_20() -> None:
    # Without PIPELINING each RCPT is a round trip of its own, so an envelope's size shows
    # in its time. Submission: TCP, greeting, EHLO, STARTTLS, TLS, EHLO, AUTH, MAIL, 120
    # RCPTs, DATA, body: 11 + 119 = 130 round trips of 0.042 s and 0.01 s: queued 15.47.
    # Three envelopes (rows 0-49, 50-99, 100-119), three agents; one lookup (the others
    # wait for it) to 15.672. A relay session: setup 6, MAIL 1, RCPT n, DATA 1, body 1:
    # 9 + n round trips: 59 for 50 recipients, 29 for 20.
    data = world()
    data["smtp"] = {"pipelining": False}
    model = run_traced(data, [[("example.org", u) for u in range(120)]])
    m = model.recorder.messages()
    check_books(m)
    queued = 10 + 130 * 0.042 + 0.01
    assert m["submitted"].tolist() == pytest.approx([queued] * 120, abs=1e-9)
    big, small = queued + LOOKUP + 59 * RTT + BODY, queued + LOOKUP + 29 * RTT + BODY
    assert m["accepted"].tolist() == pytest.approx([big] * 100 + [small] * 20, abs=1e-9)
    assert (m["status"] == "delivered").all() and (m["message_id"] == 0).all()
    assert model.node("mx").sessions == 3
    # A limit of 120 or more makes it one envelope: one session of 9 + 120 round trips.
    node(data, "mta")["default_destination_recipient_limit"] = 120
    one = run_traced(data, [[("example.org", u) for u in range(120)]])
    assert one.node("mx").sessions == 1
    accepted = one.recorder.messages()["accepted"]
    assert accepted.tolist() == pytest.approx([queued + LOOKUP + 129 * RTT + BODY] * 120, abs=1e-9)


# Connection reuse. Two one-recipient messages to example.org queued at 10.388; the
# first session: lookup to 10.590, accepted at 10.590 + 8 * 0.032 + 0.002 = 10.848.
FIRST = 10.590 + 8 * RTT + BODY
REUSED = FIRST + 2 * RTT + BODY  # MAIL+RCPT+DATA 1, body 1 over the open session
# Without reuse: QUIT 0.032, the cached lookup 0.002, a whole new session.
FRESH = FIRST + RTT + 0.002 + 8 * RTT + BODY


@pytest.mark.parametrize("workers, limit", [(1, 20), (2, 1)])
def test_the_next_envelope_reuses_the_open_session(workers: int, limit: int) -> None:
    # (1, 20): the second envelope waits at the head of the active queue; (2, 1): it is
    # parked with its destination. Either way the agent sends it over the session it
    # holds: the 6 setup round trips, QUIT and the lookup are saved: 0.226 s exactly.
    mta = {"workers": workers, "destination_concurrency_limit": limit,
           "smtp_tls_connection_reuse": True}
    model = run_traced(world(**mta), [[("example.org", 0)], [("example.org", 1)]])
    m = model.recorder.messages()
    check_books(m)
    assert m["accepted"].tolist() == pytest.approx([FIRST, REUSED], abs=1e-9)
    assert FRESH - REUSED == pytest.approx(7 * RTT + 0.002, abs=1e-12)
    assert model.node("mx").sessions == 1 and model.node("mx").connections == 0
    a = model.recorder.attempts()
    second = a[(a["id"] == 1) & (a["hop"] == 1)].iloc[0]
    assert second["start"] == pytest.approx(FIRST, abs=1e-9)
    assert (second["host_order"], second["outcome"]) == (1, "delivered")


@pytest.mark.parametrize("smtp, mta, accepted", [
    # Postfix reuses a TLS session only with smtp_tls_connection_reuse = yes (postconf(5)).
    ({}, {}, [FIRST, FRESH]),
    ({}, {"smtp_connection_cache_on_demand": False, "smtp_tls_connection_reuse": True},
     [FIRST, FRESH]),
    # Without TLS the setup is TCP, greeting, EHLO: 3 round trips; 5 to the reply to ".".
    ({"tls": False}, {}, [10.590 + 5 * RTT + BODY, 10.590 + 7 * RTT + 2 * BODY]),
])
def test_reuse_needs_the_cache_on_and_tls_reuse_with_tls(
    smtp: dict[str, Any], mta: dict[str, Any], accepted: list[float]
) -> None:
    data = world(workers=1, **mta)
    data["smtp"] = smtp
    if smtp.get("tls") is False:  # submission without TLS: 6 round trips to the "."
        accepted = [x - 3 * 0.042 for x in accepted]
    m = run_traced(data, [[("example.org", 0)], [("example.org", 1)]]).recorder.messages()
    assert m["accepted"].tolist() == pytest.approx(accepted, abs=1e-9)


@pytest.mark.parametrize("mta", [
    {"smtp_connection_reuse_count_limit": 1},  # one reuse, then QUIT
    {"smtp_connection_reuse_time_limit": 0.3},  # opened at 10.590: reused at age 0.258, not at 0.324
])
def test_the_time_and_count_limits_end_reuse(mta: dict[str, Any]) -> None:
    # Three messages, one agent: the second reuses the session; the third opens a new
    # one after QUIT (0.032) and the cached lookup (0.002).
    data = world(workers=1, smtp_tls_connection_reuse=True, **mta)
    model = run_traced(data, [[("example.org", u)] for u in range(3)])
    m = model.recorder.messages()
    third = REUSED + RTT + 0.002 + 8 * RTT + BODY
    assert m["accepted"].tolist() == pytest.approx([FIRST, REUSED, third], abs=1e-9)
    assert model.node("mx").sessions == 2


def test_a_transaction_without_data_costs_a_rset_before_reuse() -> None:
    # User 0 is unknown: the first transaction ends at the RCPT replies (10.590 + 7 *
    # 0.032 = 10.814, bounced) without DATA; the next starts with RSET: 1 + 2 round trips.
    data = world(workers=1, smtp_tls_connection_reuse=True)
    model = run_traced(data, [[("example.org", 0)], [("example.org", 1)]],
                       {"mx": Refuse(UNKNOWN_USER, {0})})
    m = model.recorder.messages()
    assert m.loc[0, "ended"] == pytest.approx(10.590 + 7 * RTT, abs=1e-9)
    assert m.loc[1, "accepted"] == pytest.approx(10.590 + 7 * RTT + 3 * RTT + BODY, abs=1e-9)
    assert model.node("mx").sessions == 1


@pytest.mark.parametrize("host, outage, outcome, wait", [
    (None, None, "timeout", 30.0),  # today's default: no answer, the 30 s connect timeout
    (None, "refuse", "refused", RTT),  # a reset to the SYN after one round trip
    ("refuse", None, "refused", RTT),  # the host's answer applies to its outages
    ("refuse", "none", "timeout", 30.0),  # an outage's own answer wins
])
def test_refused_connections_cost_a_round_trip_silence_the_connect_timeout(
    host: str | None, outage: str | None, outcome: str, wait: float
) -> None:
    # mx is down from 50 to 150 s; the tiny source's message at 100 is queued at 100.388,
    # looked up to 100.590, fails at mx after `wait`, then mx2 takes it in 8 round trips of
    # 0.036 s and the body.
    data = two_mx()
    spell: dict[str, Any] = {"start": 50, "end": 150}
    if outage is not None:
        spell["answer"] = outage
    node(data, "mx")["outages"] = [spell]
    if host is not None:
        node(data, "mx")["answer"] = host
    res = sim.run(parse_scenario(data), trace=True)
    a = res.attempts
    assert a is not None
    first = a[(a["id"] == 0) & (a["hop"] == 1)]
    assert list(first["outcome"]) == [outcome, "delivered"]
    assert pd_na(first["reply"].iloc[0]) and first["enhanced"].iloc[0] == "4.4.1"
    assert first["end"].iloc[0] - first["start"].iloc[0] == pytest.approx(wait, abs=1e-9)
    row = res.messages.loc[0]
    assert row["accepted"] == pytest.approx(100.590 + wait + 8 * RTT2 + BODY, abs=1e-9)
    stats = res.stats["mx"]["mx"]
    assert (stats["refused"], stats["unanswered"]) == ((1, 0) if outcome == "refused" else (0, 1))


def test_a_hook_takes_a_host_down_refusing() -> None:
    from sim.mail.smtp import CONNECTION_REFUSED

    res = sim.run(parse_scenario(two_mx()), trace=True,
                  hook=lambda model: model.node("mx").set_up(False, "fault", CONNECTION_REFUSED))
    a = res.attempts
    assert a is not None
    assert set(a.loc[(a["hop"] == 1) & (a["dst"] == "mx"), "outcome"]) == {"refused"}
    assert res.messages.loc[0, "accepted"] == pytest.approx(100.590 + RTT + 8 * RTT2 + BODY, abs=1e-9)


def pd_na(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


@pytest.mark.parametrize("edit, key, problem", [
    (lambda d: node(d, "mx").update(answer="maybe"), "topology.nodes[mx].answer",
     "Input should be 'none' or 'refuse'"),
    (lambda d: node(d, "mx").update(outages=[{"start": 1, "end": 2, "answer": "rst"}]),
     "topology.nodes[mx].outages[0].answer", "Input should be 'none' or 'refuse'"),
    (lambda d: node(d, "mta").update(default_destination_recipient_limit=0),
     "topology.nodes[mta].default_destination_recipient_limit", "greater than 0"),
    (lambda d: node(d, "mta").update(smtp_connection_reuse_count_limit=-1),
     "topology.nodes[mta].smtp_connection_reuse_count_limit", "greater than or equal to 0"),
    (lambda d: node(d, "mta").update(smtp_connection_reuse_time_limit=0),
     "topology.nodes[mta].smtp_connection_reuse_time_limit", "greater than 0"),
])
def test_bad_keys_are_one_line_with_exit_2(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], edit: Any, key: str, problem: str
) -> None:
    from tests.conftest import cli
    from tests.test_errors import broken, write

    path = write(tmp_path, broken(edit))
    code, out, err = cli(["validate", str(path)], capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mailflow: {path}: {key}: ") and problem in lines[0], lines[0]


class RefuseData:
    """A test policy: 554 to the final "." (content refused)."""

    phase = Phase.DATA
    reply = Reply(554, "5.7.1", "Message content rejected", Phase.DATA)

    def check(self, server: Any, client: str, msg: Any, now: float) -> Reply | None:
        return self.reply


def test_a_data_refusal_applies_to_every_recipient_that_passed_rcpt() -> None:
    # Users 0 and 1 pass RCPT, user 2 is unknown (550 at the RCPT replies, 10.814); the
    # body goes once, and the 554 to "." at 10.848 bounces 0 and 1 together.
    data = world()
    model = sim.build(parse_scenario(data), trace=True)
    model.node("mx").add_policy(Refuse(UNKNOWN_USER, {2}))
    model.node("mx").add_policy(RefuseData())
    send(model, 10.0, [("example.org", u) for u in range(3)])
    model.run()
    every = model.recorder.messages()
    check_books(every)
    m = every[every["kind"] != "dsn"]
    assert (m["status"] == "bounced").all()
    assert list(m["final_reply"].str[:9]) == ["554 5.7.1", "554 5.7.1", "550 5.1.1"]
    assert m["ended"].tolist() == pytest.approx([FIRST, FIRST, 10.590 + 7 * RTT], abs=1e-9)
    # Each bounce made a DSN to the sender at example.org, whose MX refuses them too:
    # they end bounced, and no DSN is made about a DSN. One session each.
    dsn = every[every["kind"] == "dsn"]
    assert sorted(dsn["parent_id"]) == [0, 1, 2] and (dsn["status"] == "bounced").all()
    assert model.node("mx").sessions == 1 + 3 and model.node("mx").connections == 0


def test_a_reused_session_stays_counted_by_the_server_until_quit() -> None:
    # Two envelopes over one session (10.590 .. 10.914), then QUIT to 10.946.
    data = world(workers=1, smtp_tls_connection_reuse=True)
    model = sim.build(parse_scenario(data))
    send(model, 10.0, [("example.org", 0)])
    send(model, 10.0, [("example.org", 1)])
    mx = model.node("mx")
    for t, open_ in ((10.6, 1), (FIRST + 0.01, 1), (REUSED + 0.01, 1), (REUSED + RTT + 1e-6, 0)):
        model.run(until=t)
        assert mx.connections == open_, t
    assert mx.sessions == 1


def test_an_interrupted_reused_session_defers_its_envelope_and_closes() -> None:
    # The agent is interrupted at FIRST + 0.03, inside the second envelope's transaction
    # over the reused session: that row is deferred at once (no lookup, no other host),
    # the server's connection is released, and the books balance. Deferred at 10.878,
    # age 0.49 s: due at 310.878 (the 300 s minimum), taken at the queue run of t = 600;
    # the MX answer (TTL 150 s from 10.590) has expired: lookup to 600.202, then a
    # whole new session.
    data = world(workers=1, smtp_tls_connection_reuse=True)
    model = sim.build(parse_scenario(data), trace=True)
    send(model, 10.0, [("example.org", 0)])
    send(model, 10.0, [("example.org", 1)])
    model.at(FIRST + 0.03, lambda: model.node("mta").workers[0].interrupt("fault"))
    model.run(until=FIRST + 0.031)
    assert model.node("mx").connections == 0
    # Row 0 is at the MX (being scanned), row 1 back in the MTA's deferred queue.
    assert model.census() == {"mta": 1, "mx": 1, "client": 0, "router": 0, "resolver": 0,
                              "mailbox": 0}
    assert model.recorder.in_flight() == 2
    model.run()
    m = model.recorder.messages()
    a = model.recorder.attempts()
    check_books(m)
    relay = a[(a["id"] == 1) & (a["hop"] == 1)]
    assert list(zip(relay["attempt"], relay["host_order"], relay["outcome"])) == [
        (1, 1, "interrupted"), (2, 1, "delivered"),
    ]
    assert relay["end"].iloc[0] == pytest.approx(FIRST + 0.03, abs=1e-9)
    assert FIRST + 0.03 == pytest.approx(10.878, abs=1e-9)
    assert m.loc[1, "accepted"] == pytest.approx(600.202 + 8 * RTT + BODY, abs=1e-9)
    assert model.node("mx").sessions == 2
