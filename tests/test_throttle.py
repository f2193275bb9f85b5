"""Rate limits per sending IP and domain, IP warming and receiver presets: hand-computed
timelines to 1e-9 s, the rules one by one, the scenario keys.

The tiny world (tests/conftest.py) with a campaign of 7 messages submitted at t=100
(one batch; 7 submissions in parallel): every one is queued at
Q = 100 + 9 * 0.042 + 0.01 = 100.388, in id order. The MTA has one delivery agent, so
attempts follow each other; a deferred message is due 60 s after its deferral (retry
``intervals: [60]``, no queue grid). With TLS on and no TLS reuse, every attempt is a
new session:

- the first look-up misses: 0.2 + 2 * 0.001 = 0.202 s; later ones hit (TTL 150 s from
  100.59): 0.002 s;
- one MTA <-> MX round trip is 2 * (0.001 + 0.015) = 0.032 s;
- an accepted session: connect 2, EHLO/STARTTLS/TLS/EHLO 4, MAIL+RCPT+DATA 1, body and
  "." 1 = 8 round trips + 10,000 B at 5 MB/s: 0.258 s to the 250, QUIT 0.032: the next
  session starts 0.258 + 0.032 + 0.002 = 0.292 s after;
- a session refused at MAIL FROM (Postfix's 450 or Yahoo's 421): 7 round trips, 0.224 s
  to the reply, QUIT 0.032 (deferred then, at start + 0.256): the next starts 0.258
  after.

A server asks its rules when the session starts (``start``); anvil's window opens at a
client's first request after the previous one ran out (start + 60 < now).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import build, run
from sim.config import ScenarioError, parse_scenario
from sim.config.nodes import MXNode, RateLimits
from sim.mail.smtp import Phase
from sim.mail.throttle import Anvil
from tests.conftest import cli, node, tiny_data
from tests.test_accounting import check_books

Q = 100 + 9 * 0.042 + 0.01
S0 = Q + 0.202  # the first session's start
OK, NO = 0.292, 0.258  # from one start to the next after an accepted / a refused session
TO_250, TO_REFUSAL = 0.258, 0.224
RETRY = 60.0


def campaign(rate_limits: dict[str, Any] | None = None, count: int = 7, **mta: Any) -> dict[str, Any]:
    """The tiny world: ``count`` messages at t=100, one agent, retries 60 s apart."""
    data = tiny_data(duration=150, drain=3000)
    src = data["workload"][0]
    del src["interarrival"]
    src["batches"] = [{"at": 100, "count": count}]
    node(data, "mta").update({"workers": 1, "queue_run_delay": 0, "retry": {"intervals": [RETRY], "give_up": "1d"}, **mta})
    if rate_limits is not None:
        node(data, "mx")["rate_limits"] = rate_limits
    return data


def attempts(data: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """Run traced: the messages, their MTA -> MX attempts in time order, the MX's stats."""
    result = run(parse_scenario(data), trace=True)
    check_books(result.messages)
    tries = result.attempts[result.attempts["hop"] == 1].sort_values(["start", "end"], kind="stable")
    return result.messages, tries, result.stats["mx"]["mx"]


def test_a_throttled_campaign_gets_its_limit_per_window() -> None:
    """smtpd_client_message_rate_limit 3 a minute, 7 messages.

    Round 1: starts S0 + 0, 0.292, 0.584 accepted (window from S0 = 100.59; counts 1-3);
    then 101.466, 101.724, 101.982, 102.240 refused (counts 4-7: 450 4.7.1), each
    deferred 0.256 after its start, due 60 s later.
    Round 2: message 3 is due at 101.466 + 60.256 = 161.722, starts 161.724 (a hit):
    160.59 < 161.724, a new window (count 1); messages 4 and 5 wait for the agent: starts
    161.724 + 0.292 = 162.016 and 162.308 (counts 2, 3) accepted; message 6 at 162.600 is
    the 4th: refused, deferred at 162.856.
    Round 3: due 222.856, starts 222.858 (221.724 < 222.858: a new window): accepted.
    Accepted per window: 3, 3, 1.
    """
    m, tries, stats = attempts(campaign({"smtpd_client_message_rate_limit": 3}))
    r1 = [S0 + k * OK for k in range(3)] + [S0 + 3 * OK + k * NO for k in range(4)]
    r2 = [161.724 + k * OK for k in range(4)]
    starts = r1 + r2 + [r2[3] + 0.256 + RETRY + 0.002]
    assert list(tries["start"]) == pytest.approx(starts, abs=1e-9)
    assert list(tries["reply"]) == [250] * 3 + [450] * 4 + [250] * 3 + [450, 250]
    assert list(tries["id"]) == [0, 1, 2, 3, 4, 5, 6, 3, 4, 5, 6, 6]
    accepted = sorted(m["accepted"])
    assert accepted == pytest.approx([s + TO_250 for s, r in zip(starts, tries["reply"]) if r == 250], abs=1e-9)
    windows = [sum(1 for t in accepted if lo <= t < hi) for lo, hi in ((S0, 160.59 + 1), (161.724, 222), (222, 300))]
    assert windows == [3, 3, 1]
    refusal = tries[tries["reply"] == 450].iloc[0]
    assert refusal["enhanced"] == "4.7.1"
    assert (m["status"] == "delivered").all() and list(m["deferrals"]) == [0, 0, 0, 1, 1, 1, 2]
    assert stats["throttled_messages"] == 5 and stats["throttled"] == 5


def test_under_postfix_the_refused_wait_for_the_queue_run() -> None:
    """The same campaign from an MTA on the `postfix` preset (whole-second backoff, a
    queue run every 300 s). Round 1 as above; the 4 refused are deferred at 101.722,
    101.98, 102.238, 102.496: age floor(now) - 100 = 1 or 2 s, clamped to 300: due 401
    or 402; the run at 600 takes them (due <= 601), in due order. The cache expired at
    250.59: message 3 misses (600.202, a new window: accepted), 4 and 5 follow 0.292
    apart (counts 2, 3), 6 at 601.078 is the 4th: 450, deferred at 601.334: age 601 -
    100 = 501 s: due 1102, taken by the run at 1200; a miss again (the cache from
    600.202 ran out at 750.202): accepted at 1200.202 + 0.258."""
    data = campaign({"smtpd_client_message_rate_limit": 3})
    mta = node(data, "mta")
    del mta["retry"], mta["queue_run_delay"]
    mta["preset"] = "postfix"
    m, tries, stats = attempts(data)
    r1 = [S0 + k * OK for k in range(3)] + [S0 + 3 * OK + k * NO for k in range(4)]
    r2 = [600.202 + k * OK for k in range(4)]
    assert list(tries["start"]) == pytest.approx(r1 + r2 + [1200.202], abs=1e-9)
    assert list(tries["reply"]) == [250] * 3 + [450] * 4 + [250] * 3 + [450, 250]
    assert m.loc[6, "accepted"] == pytest.approx(1200.202 + TO_250, abs=1e-9)
    assert stats["throttled_messages"] == 5


def test_a_request_exactly_at_the_end_of_the_window_is_still_in_it() -> None:
    """anvil starts a new window only when start + unit < now (strictly)."""
    anvil = Anvil(RateLimits(smtpd_client_message_rate_limit=1, anvil_rate_time_unit=60))
    msg = _Msg()
    assert anvil.message(_State(), "ip", msg, 10.0) is None
    assert anvil.message(_State(), "ip", msg, 70.0) is not None  # 10 + 60 is not < 70
    assert anvil.message(_State(), "ip", msg, 70.000001) is None
    # The refused request counted (anvil counts every request): 2 in the first window.
    assert anvil.throttled["messages"] == 1


COLD_WARM = {"reputation": {"base": 3, "growth": 0.5, "ceiling": 100}}


def test_a_cold_ip_is_throttled_and_warms_up() -> None:
    """reputation base 3, growth 0.5: the first window's limit is min(100, 3 + 0.5 * 0)
    = 3, so round 1 is the one above (3 accepted, 4 refused by the reputation rule, in
    Postfix's words 450 4.7.1). The second window opens at 161.724 after 3 accepted:
    limit 3 + 1.5 = 4.5, and all four retries pass (counts 1-4): starts 161.724, 162.016,
    162.308, 162.600 (message 6 was due at 102.240 + 60.256 = 162.496, the agent was busy
    until 162.598); the last 250 at 162.858."""
    m, tries, stats = attempts(campaign(COLD_WARM))
    r1 = [S0 + k * OK for k in range(3)] + [S0 + 3 * OK + k * NO for k in range(4)]
    r2 = [161.724 + k * OK for k in range(4)]
    assert list(tries["start"]) == pytest.approx(r1 + r2, abs=1e-9)
    assert list(tries["reply"]) == [250] * 3 + [450] * 4 + [250] * 4
    assert m["accepted"].max() == pytest.approx(162.600 + TO_250, abs=1e-9)
    assert stats["throttled_reputation"] == 4


def test_a_warm_ip_is_not_throttled() -> None:
    """The same campaign from an IP with 200 messages of history here: limit min(100, 3 +
    0.5 * 200) = 100: all 7 pass in round 1, one every 0.292 s; no deferral."""
    limits = {"reputation": {**COLD_WARM["reputation"], "history": {"mta": 200}}}
    m, tries, stats = attempts(campaign(limits))
    assert list(tries["start"]) == pytest.approx([S0 + k * OK for k in range(7)], abs=1e-9)
    assert sorted(m["accepted"]) == pytest.approx([S0 + k * OK + TO_250 for k in range(7)], abs=1e-9)
    assert (m["deferrals"] == 0).all()
    assert stats["throttled"] == 0


def test_a_domain_limit_holds_across_two_ips() -> None:
    """ips 2 (sessions alternate mta#1, mta#2), 2 messages per IP and 3 per sender
    domain a minute: the IPs alone would let 4 through.

    Round 1 (starts as above): mta#1 1 (domain 1), mta#2 1 (2), mta#1 2 (3) accepted;
    mta#2 2 (domain 4): refused by the domain rule "450 4.7.1 Error: too much mail from
    example.org"; then mta#1 3, mta#2 3, mta#1 4: refused per IP (not counted for the
    domain). Round 2 from 161.724, turns 7.. (mta#2, mta#1, ...): new windows for both IPs
    and the domain; counts (IP, domain) (1, 1), (1, 2), (2, 3) accepted; message 6 from
    mta#1 (2, 4) refused by the domain rule. Round 3 at 222.858: accepted.
    """
    limits = {"smtpd_client_message_rate_limit": 2, "sender_domain_message_rate_limit": 3}
    m, tries, stats = attempts(campaign(limits, ips=2))
    assert list(tries["reply"]) == [250] * 3 + [450] * 4 + [250] * 3 + [450, 250]
    assert tries.iloc[-1]["start"] == pytest.approx(162.600 + 0.256 + RETRY + 0.002, abs=1e-9)
    assert (stats["throttled_domain"], stats["throttled_messages"]) == (2, 3)
    anvil = build(parse_scenario(campaign(limits, ips=2))).node("mx").anvil
    assert anvil._refuse("domain", "example.org").line == "450 4.7.1 Error: too much mail from example.org"


def test_messages_per_connection_meet_connection_reuse() -> None:
    """smtp_accept_max_per_connection 2 (Exim), 5 messages, TLS sessions reused.

    Message 0: a new session at S0 = 100.59, 250 at 100.848. The session carries message
    1 (transaction 2: MAIL+RCPT+DATA and the body, 2 round trips + 0.002 = 0.066): 250 at
    100.914. Message 2 is the 3rd MAIL: 421 after one round trip (100.946); the session
    is spent: QUIT (100.978), a look-up (hit, 100.98) and a new session to the same host
    (host order 2, its transaction 1): 250 at 101.238; message 3 on it: 101.304; message
    4: 421 at 101.336, QUIT, look-up, a new session at 101.37: 250 at 101.628. No
    deferral: the limit costs a reconnection, not a retry.
    """
    m, tries, stats = attempts(campaign({"smtp_accept_max_per_connection": 2}, count=5, smtp_tls_connection_reuse=True))
    assert list(tries["id"]) == [0, 1, 2, 2, 3, 4, 4]
    assert list(tries["reply"]) == [250, 250, 421, 250, 250, 421, 250]
    assert list(tries["host_order"]) == [1, 1, 1, 2, 1, 1, 2]
    assert list(tries["start"]) == pytest.approx([S0, 100.848, 100.914, 100.98, 101.238, 101.304, 101.37], abs=1e-9)
    assert list(tries["end"]) == pytest.approx([100.848, 100.914, 100.946, 101.238, 101.304, 101.336, 101.628], abs=1e-9)
    assert (m["deferrals"] == 0).all()
    assert stats["throttled_per_connection"] == 2
    assert tries[tries["reply"] == 421].iloc[0]["enhanced"] == "4.7.0"


def test_without_the_rule_the_session_carries_all_five() -> None:
    """The same without the limit: one session, 250s 0.066 s apart after the first."""
    m, tries, _ = attempts(campaign(None, count=5, smtp_tls_connection_reuse=True))
    assert list(tries["start"]) == pytest.approx([S0] + [S0 + TO_250 + k * 0.066 for k in range(4)], abs=1e-9)


def test_connections_per_ip_refuse_at_the_greeting() -> None:
    """Two agents, 2 messages, smtpd_client_connection_count_limit 1: both look up at
    100.388 (one resolution: both at 100.59); the first session opens, the second gets
    421 4.7.0 after the handshake and greeting (2 round trips, 100.654) and is deferred;
    due 160.654, starts 160.656 (a hit; the first session closed at 100.88): 250 at
    160.914."""
    m, tries, stats = attempts(campaign({"smtpd_client_connection_count_limit": 1}, count=2, workers=2))
    assert list(tries["reply"]) == [421, 250, 250]
    assert list(tries["start"]) == pytest.approx([S0, S0, 160.656], abs=1e-9)
    refused = tries.iloc[0]
    assert refused["end"] == pytest.approx(100.654, abs=1e-9) and refused["enhanced"] == "4.7.0"
    assert m.loc[1, "accepted"] == pytest.approx(160.914, abs=1e-9)
    assert stats["throttled_connections"] == 1


@pytest.mark.parametrize(
    "reply, code, enhanced, spent",
    [("yahoo", 421, "4.7.0", TO_REFUSAL), ("gmail", 421, "4.7.28", TO_250), ("outlook", 451, "4.7.500", TO_250)],
)
def test_where_each_receiver_refuses_decides_what_the_sender_spends(
    reply: str, code: int, enhanced: str, spent: float
) -> None:
    """4 messages, 3 a minute. Yahoo refuses the 4th at MAIL FROM (7 round trips, 0.224 s
    into the session); Gmail and Microsoft after the body (8 round trips and the
    transfer, 0.258 s, as an accepted message): the 4th attempt starts at S0 + 3 * 0.292
    in each case, and it is deferred (the only MX host)."""
    m, tries, _ = attempts(campaign({"reply": reply, "smtpd_client_message_rate_limit": 3}, count=4))
    fourth = tries.iloc[3]
    assert (fourth["reply"], fourth["enhanced"]) == (code, enhanced)
    assert fourth["start"] == pytest.approx(S0 + 3 * OK, abs=1e-9)
    assert fourth["end"] - fourth["start"] == pytest.approx(spent, abs=1e-9)
    assert list(m["deferrals"]) == [0, 0, 0, 1]  # and delivered at its retry, in a new window


class _Msg:
    """What the rules read of a message."""

    def __init__(self, sender: Any = None) -> None:
        self.sender = sender


class _State:
    transaction = 1


def test_connection_and_recipient_rates_count_refusals_too() -> None:
    """anvil counts every request: with 2 connections a minute the 3rd attempt and the
    4th are refused, the window's count goes on; recipients likewise."""
    anvil = Anvil(RateLimits(smtpd_client_connection_rate_limit=2, smtpd_client_recipient_rate_limit=1))
    state = _State()
    codes = [anvil.connect(state, "ip", None, t) for t in (0.0, 1.0, 2.0, 3.0)]
    assert [r is None for r in codes] == [True, True, False, False]
    assert codes[2] is not None and codes[2].line == "421 4.7.0 Error: too many connections from ip"
    assert codes[2].phase == Phase.CONNECT
    assert anvil.clients["ip"].connects == 4
    rcpt = [anvil.recipient(state, "ip", _Msg(), t) for t in (4.0, 5.0)]
    assert rcpt[0] is None and rcpt[1] is not None
    assert rcpt[1].line == "450 4.7.1 Error: too many recipients from ip" and rcpt[1].phase == Phase.RCPT
    assert anvil.throttled["connection_rate"] == 2 and anvil.throttled["recipients"] == 1


@pytest.mark.parametrize(
    "reply, phase, line",
    [
        ("postfix", Phase.MAIL, "450 4.7.1 Error: too much mail from 192.0.2.1"),
        ("gmail", Phase.DATA, "421 4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited "
         "mail originating from your IP address. To protect our users from spam, mail sent from your IP "
         "address has been temporarily rate limited. Please visit "
         "https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our Bulk Email Senders "
         "Guidelines. - gsmtp"),
        ("yahoo", Phase.MAIL, "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to "
         "unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"),
        ("outlook", Phase.DATA, "451 4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77719)"),
    ],
)
def test_each_receiver_words_its_message_limit(reply: str, phase: Phase, line: str) -> None:
    anvil = Anvil(RateLimits(reply=reply, smtpd_client_message_rate_limit=1))  # type: ignore[arg-type]
    assert anvil.message(_State(), "192.0.2.1", _Msg(), 0.0) is None
    refusal = anvil.message(_State(), "192.0.2.1", _Msg(), 1.0)
    assert refusal is not None and (refusal.line, refusal.phase) == (line, phase)
    assert [p.phase for p in anvil.policies()] == [Phase.CONNECT, phase]  # the count limit (50) is on


def test_outlook_answers_the_reputation_limit_4_7_650_at_rcpt_to() -> None:
    """Microsoft's 4.7.650 is logged in reply to RCPT TO: the message is counted at MAIL
    FROM, its recipients refused at RCPT (each), the other message rules stay after DATA
    and read the same count (one per message, not one per phase)."""
    anvil = Anvil(RateLimits(reply="outlook", smtpd_client_message_rate_limit=1,  # type: ignore[arg-type]
                             reputation={"base": 1, "growth": 0, "ceiling": 10}))
    assert [p.phase for p in anvil.policies()] == [Phase.CONNECT, Phase.MAIL, Phase.RCPT, Phase.DATA]
    count, warming, message = (p.check for p in anvil.policies()[1:])
    state, ip = _State(), "192.0.2.1"
    assert count(state, ip, _Msg(), 0.0) is None and warming(state, ip, _Msg(), 0.0) is None
    assert message(state, ip, _Msg(), 0.1) is None and anvil.clients[ip].mail == 1
    assert count(state, ip, _Msg(), 1.0) is None
    refusals = [warming(state, ip, _Msg(), 1.0) for _ in range(2)]  # two recipients
    assert all(r is not None and r.phase == Phase.RCPT for r in refusals)
    assert refusals[0] is not None and refusals[0].line == (
        "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation."
    )
    assert anvil.throttled["reputation"] == 2 and anvil.clients[ip].mail == 2


def test_outlook_refuses_a_cold_ip_at_rcpt_to_in_the_timeline() -> None:
    """4 messages, a reputation limit of 3 a minute: Microsoft refuses the 4th at RCPT TO,
    in the same round trip as MAIL (pipelined: 7 round trips, 0.224 s, where its
    messages limit's 4.7.500 came after the body, 0.258 s), and it is delivered at its
    retry in a new window."""
    m, tries, stats = attempts(campaign(
        {"reply": "outlook", "reputation": {"base": 3, "growth": 0, "ceiling": 3}}, count=4
    ))
    fourth = tries.iloc[3]
    assert (fourth["reply"], fourth["enhanced"]) == (451, "4.7.650")
    assert fourth["start"] == pytest.approx(S0 + 3 * OK, abs=1e-9)
    assert fourth["end"] - fourth["start"] == pytest.approx(TO_REFUSAL, abs=1e-9)
    assert list(m["deferrals"]) == [0, 0, 0, 1] and (m["status"] == "delivered").all()
    assert stats["throttled_reputation"] == 1


def test_yahoo_refuses_at_the_greeting_with_ts01_and_at_mail_with_tss04() -> None:
    """Yahoo's connection rules answer the greeting with TS01 (the "refused to talk to
    me" of Postfix logs), its message rules MAIL FROM with TSS04."""
    anvil = Anvil(RateLimits(reply="yahoo", smtpd_client_connection_rate_limit=1,  # type: ignore[arg-type]
                             smtpd_client_message_rate_limit=1))
    state, ip = _State(), "192.0.2.1"
    assert anvil.connect(state, ip, None, 0.0) is None
    greeting = anvil.connect(state, ip, None, 1.0)
    assert greeting is not None and greeting.phase == Phase.CONNECT and greeting.line == (
        "421 4.7.0 [TS01] Messages from 192.0.2.1 temporarily deferred due to user complaints - "
        "4.16.55.1; see https://postmaster.yahooinc.com/error-codes"
    )
    assert anvil.message(state, ip, _Msg(), 2.0) is None
    mail = anvil.message(state, ip, _Msg(), 3.0)
    assert mail is not None and mail.phase == Phase.MAIL and "[TSS04]" in mail.line


def test_off_by_default_costs_nothing() -> None:
    """No rate_limits: no rule in the chain, the server's own methods, no stats keys."""
    mx = build(parse_scenario(tiny_data())).node("mx")
    assert mx.anvil is None
    assert "connect" not in vars(mx) and "data" not in vars(mx) and "close" not in vars(mx)
    assert "throttled" not in mx.stats()


# -- receiver presets -----------------------------------------------------------------------


def test_a_receiver_preset_sets_its_limits_under_the_nodes_keys() -> None:
    """yahoo: the preset's numbers; the node's own key wins; a nested key set alone keeps
    the preset's others (merged at every level)."""
    yahoo = MXNode(kind="mx", id="y", preset="yahoo")
    assert yahoo.rate_limits is not None and yahoo.rate_limits.reply == "yahoo"
    assert (yahoo.rate_limits.smtp_accept_max_per_connection, yahoo.rate_limits.anvil_rate_time_unit) == (20, 3600)
    own = MXNode.model_validate({"kind": "mx", "id": "y", "preset": "yahoo",
                                 "rate_limits": {"smtp_accept_max_per_connection": 5,
                                                 "reputation": {"history": {"esp": 1e6}}}})
    assert own.rate_limits is not None and own.rate_limits.reputation is not None
    assert own.rate_limits.smtp_accept_max_per_connection == 5
    assert (own.rate_limits.reputation.base, own.rate_limits.reputation.history) == (50, {"esp": 1e6})
    assert own.rate_limits.smtpd_client_connection_count_limit == 10


def test_a_preset_node_dumps_what_it_changed_and_loads_back_the_same() -> None:
    own = MXNode.model_validate({"kind": "mx", "id": "y", "preset": "gmail",
                                 "rate_limits": {"reputation": {"history": {"esp": 5}}}})
    dump = own.model_dump(mode="json")
    assert dump == {"kind": "mx", "id": "y", "preset": "gmail", "rate_limits": {"reputation": {"history": {"esp": 5.0}}}}
    assert MXNode.model_validate(dump) == own
    assert own.model_dump(mode="json", context={"resolved": True})["rate_limits"]["reply"] == "gmail"


def test_an_unknown_receiver_preset_is_named() -> None:
    data = tiny_data()
    node(data, "mx")["preset"] = "hotmail"
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data)
    assert str(err.value) == (
        "topology.nodes[mx].preset: unknown preset (known: gmail, yahoo, outlook) (got 'hotmail')"
    )


def _history_error(tmp_path: Any, capsys: pytest.CaptureFixture[str], history: dict[str, int], **mta: Any) -> str:
    """``mailflow validate`` on the tiny world whose MX has a reputation with ``history``:
    the one error line, or "" when it validates."""
    import yaml

    data = campaign({"reputation": {"base": 1, "growth": 0, "ceiling": 1, "history": history}}, **mta)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    code, out, err = cli(["validate", str(path)], capsys)
    assert (code, out == "") in ((0, False), (2, True)), (code, out, err)
    return err.removeprefix(f"mailflow: {path}: ")


def test_a_history_for_an_ip_nobody_sends_from_is_named(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The names a receiver sees: the node id for one IP, node#k for a count, the given
    names for a list; any other key of ``history`` is a one-line error naming it."""
    assert _history_error(tmp_path, capsys, {"mta": 5}) == ""
    assert _history_error(tmp_path, capsys, {"mta#2": 5}, ips=2) == ""
    assert _history_error(tmp_path, capsys, {"a": 5}, ips=["a", "b"]) == ""
    assert _history_error(tmp_path, capsys, {"nosuch": 5}) == (
        "topology.nodes[mx].rate_limits.reputation.history.nosuch: no sending IP of that name (known: mta)\n"
    )
    assert _history_error(tmp_path, capsys, {"mta": 5}, ips=7) == (  # the node id is no IP once it has 7
        "topology.nodes[mx].rate_limits.reputation.history.mta: no sending IP of that name "
        "(known: mta#1, mta#2, mta#3, mta#4, mta#5, ...)\n"
    )
    assert _history_error(tmp_path, capsys, {"mta#3": 5}, ips=2).startswith(
        "topology.nodes[mx].rate_limits.reputation.history.mta#3: no sending IP"
    )


@pytest.mark.parametrize(
    "limits, problem",
    [
        ({"smtpd_client_message_rate_limit": -1}, "rate_limits.smtpd_client_message_rate_limit"),
        ({"anvil_rate_time_unit": 0}, "rate_limits.anvil_rate_time_unit"),
        ({"reply": "aol"}, "rate_limits.reply"),
        ({"reputation": {"base": 1}}, "rate_limits.reputation.growth"),
        ({"smtpd_client_mesage_rate_limit": 5}, "rate_limits.smtpd_client_mesage_rate_limit"),
    ],
)
def test_bad_rate_limit_keys_are_refused(limits: dict[str, Any], problem: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(campaign(limits))
    assert problem in str(err.value)


def test_a_bad_key_is_one_line_and_exit_2(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(campaign({"anvil_rate_time_unit": "hourly"})))
    code, out, err = cli(["validate", str(path)], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"mailflow: {path}: topology.nodes[mx].rate_limits.anvil_rate_time_unit: Input should be a valid "
        "number of seconds, optionally with a unit (ms, s, m, h or d) (got 'hourly')\n"
    )


def test_show_prints_the_resolved_receiver(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    data = tiny_data()
    node(data, "mx")["preset"] = "outlook"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    code, out, _ = cli(["show", str(path), "--set", "topology.nodes[mx].rate_limits.smtpd_client_connection_count_limit=3"], capsys)
    assert code == 0
    shown = yaml.safe_load(out)
    mx = next(n for n in shown["topology"]["nodes"] if n["id"] == "mx")
    assert mx["rate_limits"]["reply"] == "outlook"
    assert mx["rate_limits"]["smtpd_client_connection_count_limit"] == 3
    assert mx["rate_limits"]["reputation"]["ceiling"] == 30000


# -- the scenario of docs/throttling.md ---------------------------------------------------------


def _campaign_run(warm: bool) -> Any:
    from pathlib import Path

    from sim import load_scenario

    path = Path(__file__).resolve().parent.parent / "topologies" / "throttled-campaign.yaml"
    sets = ["topology.nodes[yahoo-mx].rate_limits.reputation.history={esp: 1000000}"] if warm else []
    return run(load_scenario(path, sets))


def test_the_throttled_campaign_from_a_new_ip_grows_by_the_warming_rule() -> None:
    """topologies/throttled-campaign.yaml (docs/throttling.md): 5,000 messages at 1 h from
    the ESP's one new IP to the yahoo preset (base 50 an hour, growth 0.03). The ESP
    retries at most an hour apart, so each anvil window takes its limit: window k allows
    floor(50 + 0.03 * accepted before it): 50, 51 (50 + 1.5), 53 (50 + 0.03 * 101), 54,
    56; every row is delivered within the ESP's 72 h."""
    result = _campaign_run(warm=False)
    m = result.messages
    check_books(m)
    assert (m["status"] == "delivered").all()
    hours = ((m["accepted"] - 3600) // 3600).value_counts().sort_index()
    expected, done = [], 0
    for _ in range(5):
        expected.append(int(50 + 0.03 * done))
        done += expected[-1]
    assert list(hours.iloc[:5]) == expected == [50, 51, 53, 54, 56]
    assert m["delivered"].max() - 3600 < 72 * 3600
    stats = result.stats["mx"]["yahoo-mx"]
    assert stats["throttled_reputation"] > 20 * 5000


def test_the_same_campaign_from_a_warm_ip_is_through_in_minutes() -> None:
    """With 1,000,000 messages of history the IP's limit is the ceiling (min(20,000, 50 +
    0.03 * 1e6) = 20,000 an hour, above the 5,000): nothing is refused for volume. Only
    the preset's 20 messages per connection (a reconnection, no deferral) and 10 sessions
    per IP (421 TS01 at the greeting: a failed session, whose message is deferred for the
    ESP's retry gaps, 5 min, then 10) hold it back. docs/throttling.md: 786 refusals,
    774 rows deferred once and 6 twice, the last in at 944 s.

    The checks are bounds of the model's logic, not seed 1's figures, except where said:
    - every deferral is a refused greeting (deferrals == TS01 refusals == refused
      sessions): a 421 after 20 messages goes to a new session at once, and the
      destination never closes (a closed one defers its parked mail with no session;
      closing takes 11 or more refusals in a row, and the 10 open sessions deliver
      between them: one or two in a row at seed 1);
    - a row deferred d times waits at least its gaps, 300 * (2^d - 1) s (each gap runs
      from a deferral), and less than a minute more: the first pass of the 5,000 and
      the retries 5 min later each go through in under a minute (46 s at seed 1: a
      margin on this scenario's throughput, not a law);
    - a refusal needs 10 of the IP's sessions open and an 11th attempt, so a third
      deferral needs 11 or more rows deferred twice: while they are at most 10 (6 at
      seed 1; a seed's figure), they come back alone once the rest is delivered and
      pass. Hence at most two deferrals each, all 5,000 in within 960 s."""
    result = _campaign_run(warm=True)
    m = result.messages
    check_books(m)
    assert (m["status"] == "delivered").all()
    stats = result.stats["mx"]["yahoo-mx"]
    assert stats["throttled_reputation"] == 0
    assert stats["throttled_per_connection"] > 0 and stats["throttled_connections"] > 0
    assert m["deferrals"].sum() == stats["throttled_connections"] == stats["refused"]
    delay = m["delivered"] - m["created"]
    beyond_gaps = delay - 300.0 * (2.0 ** m["deferrals"] - 1)
    assert (beyond_gaps >= 0).all() and (beyond_gaps < 60).all()
    assert (m["deferrals"] == 2).sum() <= 10
    assert m["deferrals"].max() <= 2
    assert delay.max() < 960


# -- the books under throttling ---------------------------------------------------------------

@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    reply=st.sampled_from(["postfix", "gmail", "yahoo", "outlook"]),
    unit=st.floats(5, 600),
    count_limit=st.integers(0, 2),
    connect_limit=st.integers(0, 5),
    mail_limit=st.integers(0, 5),
    rcpt_limit=st.integers(0, 6),
    per_connection=st.integers(0, 3),
    domain_limit=st.integers(0, 5),
    reputation=st.one_of(st.none(), st.tuples(st.floats(0, 5), st.floats(0, 1), st.floats(1, 20))),
    workers=st.integers(1, 4),
    ips=st.integers(1, 3),
    tls=st.booleans(),
    recipients=st.sampled_from([1.0, 2.5]),
    instants=st.lists(st.floats(0, 1), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_books_balance_under_any_rate_limits(
    reply: str, unit: float, count_limit: int, connect_limit: int, mail_limit: int, rcpt_limit: int,
    per_connection: int, domain_limit: int, reputation: tuple[float, float, float] | None, workers: int,
    ips: int, tls: bool, recipients: float, instants: list[float], seed: int,
) -> None:
    """Random limits on random traffic (retries 60 s apart, reuse on without TLS): at any
    instant the census equals the recorder's rows in flight and the sessions counted per
    IP add up to the host's open sessions; at the end every row has ended or says where
    it is."""
    data = campaign(None, count=1)
    data.update(seed=seed, duration=400, drain=400, smtp={"tls": tls})
    src = data["workload"][0]
    del src["batches"]
    src.update(rate=0.3, recipients_per_message=recipients)
    node(data, "mta").update(workers=workers, ips=ips, smtp_tls_connection_reuse=True)
    limits: dict[str, Any] = {
        "reply": reply, "anvil_rate_time_unit": unit, "smtpd_client_connection_count_limit": count_limit,
        "smtpd_client_connection_rate_limit": connect_limit, "smtpd_client_message_rate_limit": mail_limit,
        "smtpd_client_recipient_rate_limit": rcpt_limit, "smtp_accept_max_per_connection": per_connection,
        "sender_domain_message_rate_limit": domain_limit,
    }
    if reputation is not None:
        limits["reputation"] = dict(zip(("base", "growth", "ceiling"), reputation))
    node(data, "mx")["rate_limits"] = limits
    model = build(parse_scenario(data))
    mx = model.node("mx")
    anvil = mx.anvil
    assert anvil is not None
    horizon = model.scenario.horizon
    for t in sorted(instants) + [1.0]:
        if t * horizon > model.env.now:
            model.run(until=t * horizon)
        assert sum(model.census().values()) == model.recorder.in_flight()
        if count_limit:  # sessions per IP are counted open to close, on every path
            assert sum(c.open for c in anvil.clients.values()) == mx.connections
    check_books(model.recorder.messages())
    assert mx.stats()["throttled"] == sum(anvil.throttled.values())
