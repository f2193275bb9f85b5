"""Greylisting (postgrey's rules) at an MX: hand-computed timelines per sender preset,
the rules one by one, auto-whitelisting, and the scenario keys.

The tiny world (tests/conftest.py) with one message, created at t=100 (as in
tests/test_presets.py):

- it is queued at Q = 100 + 9 * 0.042 + 0.01 = 100.388;
- every attempt starts with a fresh MX look-up, L = 0.2 + 2 * 0.001 = 0.202 s (every gap
  is longer than the 150 s TTL), then the session starts: the server is asked at
  S = start + 0.202 (the triplet's time is the session's start);
- one MTA <-> MX round trip is 2 * (0.001 + 0.015) = 0.032 s;
- a greylisted attempt: connect 2, EHLO/STARTTLS/TLS/EHLO 4, the pipelined
  MAIL+RCPT 1 = 7 round trips to the 450, then QUIT 1: the row is deferred at
  start + 0.202 + 8 * 0.032 = start + 0.458;
- an accepted attempt: 8 round trips and 10,000 bytes at 5 MB/s: 250 at
  start + 0.202 + 8 * 0.032 + 0.002 = start + 0.46.
"""

from __future__ import annotations

from typing import Any

import pytest

from sim import run
from sim.config import ScenarioError, parse_scenario
from sim.mail.policies import Greylist
from sim.mail.smtp import GREYLISTED
from tests.conftest import node, tiny_data
from tests.test_accounting import check_books

Q = 100 + 9 * 0.042 + 0.01
LOOKUP = 0.202
GREY = LOOKUP + 8 * 0.032  # from an attempt's start to its deferral (after QUIT)
ACCEPT = LOOKUP + 8 * 0.032 + 0.002  # from an attempt's start to the 250 after "."


def greylisted_world(preset: str | None, grey: dict[str, Any] | None = None, **mta: Any) -> dict[str, Any]:
    """The tiny world sending one message (t=100) to an MX that greylists."""
    data = tiny_data(duration=150, drain=30_000)
    if preset is not None:
        node(data, "mta")["preset"] = preset
    node(data, "mta").update(mta)
    node(data, "mx")["greylisting"] = {} if grey is None else grey
    return data


def attempts_of(data: dict[str, Any]) -> tuple[Any, Any]:
    """Run traced: the message's row and its MTA -> MX attempts (start, reply)."""
    result = run(parse_scenario(data), trace=True)
    check_books(result.messages)
    tries = result.attempts[(result.attempts["id"] == 0) & (result.attempts["hop"] == 1)]
    return result.messages.loc[0], tries


# postfix: the 1st attempt starts at Q and is deferred at Q + 0.458 = 100.846; Postfix
#   counts whole seconds: age = 100 - 100 = 0, backoff clamped to 300 -> due 400; the
#   queue is scanned every 300 s from 0: the scan at 600 takes it (due <= 600 + 1). Its
#   session starts at 600.202, 600.202 - (Q + 0.202) = 499.612 >= 300: accepted at
#   600 + 0.46.
# exim (F,2h,15m; queue runs every 30 min): deferred at 100.846, due 1000.846, the run at
#   1800 takes it; 1800.202 - 100.59 >= 300: accepted at 1800.46.
TIMELINES = [("postfix", 600 + ACCEPT), ("exim", 1800 + ACCEPT)]


@pytest.mark.parametrize("preset, accepted", TIMELINES, ids=[p for p, _ in TIMELINES])
def test_greylisted_mail_is_delivered_at_the_first_retry_after_the_delay(preset: str, accepted: float) -> None:
    row, tries = attempts_of(greylisted_world(preset))
    assert row["status"] == "delivered"
    assert row["attempts"] == 2 and row["deferrals"] == 1
    assert row["accepted"] == pytest.approx(accepted, abs=1e-9)
    assert list(tries["reply"]) == [450, 250]
    assert list(tries["enhanced"]) == ["4.7.1", "2.0.0"]
    assert tries["start"].iloc[0] == pytest.approx(Q + LOOKUP, abs=1e-9)


def test_a_retry_before_the_delay_is_greylisted_again() -> None:
    """delay 600 under postfix: the scan at 600 starts a session at 600.202, 499.612 s
    after the first (< 600): 450 again (the first sighting stays 100.59). Deferred at
    600.458: age 600 - 100 = 500 -> due 1100 -> the scan at 1200; 1200.202 - 100.59 =
    1099.612 >= 600: accepted at 1200.46, the 3rd attempt."""
    row, tries = attempts_of(greylisted_world("postfix", {"delay": 600}))
    assert list(tries["reply"]) == [450, 450, 250]
    assert row["attempts"] == 3
    assert row["accepted"] == pytest.approx(1200 + ACCEPT, abs=1e-9)


def test_a_first_retry_after_the_window_is_greylisted_as_new() -> None:
    """retry_window 450, delay 300, postfix: the retry at 600.202 comes 499.612 s after
    the first sighting (>= 450, never passed): a new triplet, first = 600.202, 450.
    Deferred at 600.458, age 500 -> due 1100 -> scan 1200: 1200.202 - 600.202 = 600,
    past the delay but again past the window (still never passed): 450. Deferred at
    1200.458, age 1100 -> due 2300 -> scan 2400: 2400.202 - 1200.202 = 1200 >= 450:
    new again. Postfix's gaps only grow, so the mail never passes; the 5th attempt at
    4800 (age 2300 -> due 4700 -> scan 4800) is refused too."""
    data = greylisted_world("postfix", {"retry_window": 450})
    data["drain"] = 5000
    row, tries = attempts_of(data)
    assert list(tries["start"]) == pytest.approx([Q + LOOKUP, 600.202, 1200.202, 2400.202, 4800.202], abs=1e-9)
    assert set(tries["reply"]) == {450}
    assert row["status"] == "in_flight"


def test_gmail_greylisted_again_from_each_of_its_ips() -> None:
    """gmail (no queue grid; gaps 362, 1380, 1654, 2528 s then x 1.5: 3792, 5688, 8532;
    7 sending IPs in turn, one per session). Each attempt is deferred 0.458 s after it
    starts and the next starts a gap later. Attempts 1..7 go out from IPs 1..7: seven
    new triplets, seven 450s. The 8th comes from IP 1 again, whose triplet was first
    seen at 100.59: accepted. Start of the 8th: Q + 7 * 0.458 + (362 + 1380 + 1654 +
    2528 + 3792 + 5688 + 8532 = 23936) = 24039.594; accepted at + 0.46 (6.7 h late)."""
    row, tries = attempts_of(greylisted_world("gmail"))
    gaps = [362, 1380, 1654, 2528, 3792, 5688, 8532]
    starts = [Q]
    for gap in gaps:
        starts.append(starts[-1] + GREY + gap)
    assert list(tries["start"]) == pytest.approx([s + LOOKUP for s in starts], abs=1e-9)
    assert list(tries["reply"]) == [450] * 7 + [250]
    assert row["accepted"] == pytest.approx(Q + 7 * GREY + 23936 + ACCEPT, abs=1e-9)


def test_gmail_from_one_ip_passes_at_its_first_retry() -> None:
    """The same with ips: 1: the retry 362 s after the deferral (Q + 0.458 + 362) passes."""
    row, tries = attempts_of(greylisted_world("gmail", ips=1))
    assert list(tries["reply"]) == [450, 250]
    assert row["accepted"] == pytest.approx(Q + GREY + 362 + ACCEPT, abs=1e-9)


def test_each_mx_host_greylists_on_its_own() -> None:
    """Two MX hosts (10: mx, 20: mx2, alike), each with its own table (postgrey per
    host). The 1st attempt: mx answers 450 at 100.59 + 7 * 0.032 = 100.814; after its
    QUIT (one round trip) the session with mx2 starts at 100.846 (no new look-up), 450
    there too at 101.07; deferred. Postfix: whole-second
    age 0 -> due 400 -> scan 600: mx first again, 600.202 - 100.59 >= 300: accepted
    at 600.46. The backup's triplet was useless but cost no delay."""
    data = greylisted_world("postfix")
    nodes = data["topology"]["nodes"]
    nodes.append({**node(data, "mx"), "id": "mx2"})
    data["topology"]["edges"].append({"a": "r", "b": "mx2", "latency": 0.015, "bandwidth": 5.0e6})
    data["domains"][0]["mx"].append({"host": "mx2", "preference": 20})
    result = run(parse_scenario(data), trace=True)
    check_books(result.messages)
    tries = result.attempts[(result.attempts["id"] == 0) & (result.attempts["hop"] == 1)]
    assert list(tries["dst"]) == ["mx", "mx2", "mx"]
    assert list(tries["start"]) == pytest.approx([Q + LOOKUP, 100.846, 600.202], abs=1e-9)
    assert list(tries["reply"]) == [450, 450, 250]
    assert result.messages.loc[0, "accepted"] == pytest.approx(600 + ACCEPT, abs=1e-9)


class _Msg:
    """What Greylist reads of a message."""

    def __init__(self, sender: str = "s.example", domain: str = "r.example", user: int = 0) -> None:
        self.sender, self.domain, self.user = sender, domain, user


def _check(grey: Greylist, client: str, msg: Any, now: float) -> int:
    reply = grey.check(None, client, msg, now)  # type: ignore[arg-type]
    return 250 if reply is None else reply.code


def test_the_delay_boundary_and_the_reply_text() -> None:
    """First seen at 10: 450 at 10 and 309.999; passes at exactly 310 (now - first >=
    delay, postgrey's `diff <= 0`)."""
    grey = Greylist(300, 172_800, 3_024_000, 5)
    msg = _Msg()
    assert _check(grey, "ip1", msg, 10.0) == 450
    assert _check(grey, "ip1", msg, 309.999) == 450
    assert _check(grey, "ip1", msg, 310.0) == 250
    assert GREYLISTED.line == "450 4.7.1 Recipient address rejected: Greylisted"
    assert (grey.greylisted, grey.passed) == (2, 1)


def test_a_triplet_is_client_sender_and_recipient() -> None:
    """Passing (ip1, s, r/0) does not pass another IP, sender, domain or person."""
    grey = Greylist(300, 172_800, 3_024_000, 0)
    msg = _Msg()
    _check(grey, "ip1", msg, 0.0)
    assert _check(grey, "ip1", msg, 300.0) == 250
    for client, other in [("ip2", msg), ("ip1", _Msg(sender="t")), ("ip1", _Msg(domain="q")), ("ip1", _Msg(user=1))]:
        assert _check(grey, client, other, 301.0) == 450


def test_window_and_max_age() -> None:
    """retry_window 1000: first at 0, retried at 1000 (never passed, 1000 >= 1000): new,
    450; passes at 1300. A passed triplet stays passed past the window (at 5000: 250)
    until it is not seen for max_age 10000: at 15000 (10000 after 5000) it is new."""
    grey = Greylist(300, 1000, 10_000, 0)
    msg = _Msg()
    assert [_check(grey, "ip", msg, t) for t in (0.0, 1000.0, 1299.0, 1300.0, 5000.0, 14_999.0)] == [
        450, 450, 450, 250, 250, 250
    ]
    assert _check(grey, "ip", msg, 14_999.0 + 10_000) == 450


def test_auto_whitelisting_after_n_passes_an_hour_apart() -> None:
    """auto_whitelist_clients 2: a client's passes count at most once an hour
    (postgrey). Recipient k's triplet is first seen at k*100 and passes at 10000 (count
    1, at 10000) and 10001 (not counted: < 1 h later); the pass at 13600 counts (2): from
    then on any new triplet from that client passes at once; another client does not."""
    grey = Greylist(300, 172_800, 3_024_000, 2)
    for k in range(3):
        _check(grey, "ip", _Msg(user=k), k * 100.0)
    assert _check(grey, "ip", _Msg(user=0), 10_000.0) == 250
    assert _check(grey, "ip", _Msg(user=1), 10_001.0) == 250
    assert grey.clients["ip"] == (1, 10_000.0)
    assert _check(grey, "ip", _Msg(user=9), 10_002.0) == 450  # not yet whitelisted
    assert _check(grey, "ip", _Msg(user=2), 13_599.0) == 250
    assert grey.clients["ip"] == (1, 10_000.0)
    assert _check(grey, "ip", _Msg(user=1), 13_600.0) == 250
    assert grey.clients["ip"] == (2, 13_600.0)
    assert _check(grey, "ip", _Msg(user=7), 13_601.0) == 250  # never seen, whitelisted client
    assert _check(grey, "other", _Msg(user=7), 13_601.0) == 450


def test_auto_whitelisting_off() -> None:
    """auto_whitelist_clients 0: no client is counted, every new triplet is greylisted."""
    grey = Greylist(0.0 + 300, 172_800, 3_024_000, 0)
    for t in range(0, 40_000, 3600):
        _check(grey, "ip", _Msg(user=t), float(t))
        _check(grey, "ip", _Msg(user=t), t + 300.0)
    assert grey.clients == {}
    assert _check(grey, "ip", _Msg(user=-1), 50_000.0) == 450


def test_off_by_default_costs_no_policy() -> None:
    from sim import build

    model = build(parse_scenario(tiny_data()))
    mx = model.node("mx")
    assert mx.greylist is None
    assert "greylisted" not in mx.stats()


@pytest.mark.parametrize(
    "grey, problem",
    [
        ({"delay": -1}, "greylisting.delay"),
        ({"retry_window": 0}, "greylisting.retry_window"),
        ({"auto_whitelist_clients": 1.5}, "greylisting.auto_whitelist_clients"),
        ({"dealy": 300}, "greylisting.dealy"),
    ],
)
def test_bad_greylisting_keys_are_refused(grey: dict[str, Any], problem: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(greylisted_world(None, grey))
    assert problem in str(err.value)


def test_the_greylisting_scenario_tells_the_story_of_docs_greylisting_md() -> None:
    """topologies/greylisting.yaml (docs/greylisting.md): every row ends; gmail's tail
    (its IPs in turn) is longer than postfix's slowest; auto-whitelisting ends most
    greylisting in the last 4 hours; the second MX host greylists the attempts the first
    refused."""
    from pathlib import Path

    from sim import load_scenario

    result = run(load_scenario(Path(__file__).resolve().parent.parent / "topologies" / "greylisting.yaml"))
    m = result.messages
    check_books(m)
    assert (m["status"] != "in_flight").all()
    people = m[m["kind"] == "person"]
    t = people["delivered"] - people["created"]
    by = t.groupby(people["sender_domain"], observed=True)
    assert by.quantile(0.99)["gmail.example"] > by.max()["postfix.example"]
    late = people[people["created"] >= 4 * 3600]
    share = (late["deferrals"] > 0).groupby(late["sender_domain"], observed=True).mean()
    assert (share < 0.05).all()
    early = people[people["created"] < 4 * 3600]
    assert ((early["deferrals"] > 0).groupby(early["sender_domain"], observed=True).mean() > 0.5).all()
    stats = result.stats["mx"]["big-mx2"]
    assert stats["greylisted"] > 0.9 * stats["sessions"]


def test_a_bad_greylisting_key_is_one_line_and_exit_2(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from tests.conftest import cli

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(greylisted_world(None, {"retry_window": "soon"})))
    code, out, err = cli(["validate", str(path)], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"mailflow: {path}: topology.nodes[mx].greylisting.retry_window: Input should be a valid "
        "number of seconds, optionally with a unit (ms, s, m, h or d) (got 'soon')\n"
    )


def shared_world(where: str) -> dict[str, Any]:
    """Two MX hosts (10: mx, 20: mx2, alike), postfix sender; mx2 refuses connections
    (a TCP reset) until 200 and mx from 500 on. Greylisting with postgrey's defaults
    either per host (``where="hosts"``) or as the domain's one table (``"domain"``)."""
    data = greylisted_world("postfix")
    nodes = data["topology"]["nodes"]
    mx = node(data, "mx")
    del mx["greylisting"]
    nodes.append({**mx, "id": "mx2", "outages": [{"start": 0, "end": 200, "answer": "refuse"}]})
    mx["outages"] = [{"start": 500, "end": 10_000, "answer": "refuse"}]
    data["topology"]["edges"].append({"a": "r", "b": "mx2", "latency": 0.015, "bandwidth": 5.0e6})
    data["domains"][0]["mx"].append({"host": "mx2", "preference": 20})
    if where == "hosts":
        mx["greylisting"] = node(data, "mx2")["greylisting"] = {}
    else:
        data["domains"][0]["greylisting"] = {}
    return data


def test_a_domain_table_is_shared_by_its_mx_hosts() -> None:
    """The 1st attempt: mx answers 450 at 100.814 (triplet first seen at 100.59), QUIT
    until 100.846; mx2 resets the connection (one round trip) at 100.878: deferred.
    Postfix: whole-second age 0 -> due 400 -> the scan at 600; look-up until 600.202;
    mx is down now: reset at 600.234; mx2's session starts at 600.234. With the
    domain's one table the triplet was seen at 100.59, 499.644 s ago: accepted at
    600.234 + 8 * 0.032 + 0.002 = 600.492. With a table per host, mx2 never saw it:
    450 again (deferred; the next scan, 1200, is past this test's point)."""
    result = run(parse_scenario(shared_world("domain")), trace=True)
    check_books(result.messages)
    tries = result.attempts[(result.attempts["id"] == 0) & (result.attempts["hop"] == 1)]
    assert list(tries["dst"]) == ["mx", "mx2", "mx", "mx2"]
    assert list(tries["start"]) == pytest.approx([Q + LOOKUP, 100.846, 600.202, 600.234], abs=1e-9)
    assert list(tries["reply"].fillna(0)) == [450, 0, 0, 250]
    assert result.messages.loc[0, "accepted"] == pytest.approx(600.492, abs=1e-9)
    tables = result.stats["domain"]
    assert tables == {"example.org": {"greylisted": 1, "greylist_passed": 1, "greylist_triplets": 1}}

    per_host = run(parse_scenario(shared_world("hosts")), trace=True)
    tries = per_host.attempts[(per_host.attempts["id"] == 0) & (per_host.attempts["hop"] == 1)]
    assert list(tries["reply"].fillna(0))[:4] == [450, 0, 0, 450]
    assert "domain" not in per_host.stats


def test_a_greylisted_recipient_counts_towards_the_rate_limit() -> None:
    """Postfix's smtpd asks anvil before its recipient restrictions (postgrey among
    them), so a greylisted RCPT counts. One RCPT per client per 1000 s: the 1st attempt
    (100.59) is counted (1) and greylisted; the retry at the scan at 600 (600.202) is
    the 2nd RCPT in the window that opened at 100.59: refused by the rate limit (450
    4.7.1 too many recipients). Deferred at 600.458: age 500 -> due 1100 -> the scan at
    1200: the window ran out at 1100.59, a new one counts 1; the triplet is old enough:
    accepted at 1200.46. (Were the greylisted RCPT not counted, the 600 retry would
    pass: accepted 600.46.)"""
    data = greylisted_world("postfix")
    data["drain"] = 2000
    node(data, "mx")["rate_limits"] = {"smtpd_client_recipient_rate_limit": 1, "anvil_rate_time_unit": 1000}
    row, tries = attempts_of(data)
    assert list(tries["reply"]) == [450, 450, 250]
    assert row["accepted"] == pytest.approx(1200 + ACCEPT, abs=1e-9)
