"""SMTP cases: each mail dialogue's duration against its round-trip count.

A dialogue of r round trips over a path of round-trip time RTT carrying S bytes through
a bottleneck of bandwidth B lasts r x RTT + S / B on a loss-free path. The counts are
the protocols' (written out here from the RFCs, not read from the model's tables):

- submission (RFC 6409 with STARTTLS, RFC 3207, AUTH, RFC 4954): TCP handshake 1,
  greeting 1, EHLO 1, STARTTLS 1, TLS 1.3 handshake 1, EHLO again 1, AUTH 1, then
  MAIL+RCPT+DATA pipelined 1 (RFC 2920; 3 without PIPELINING) and the body's "." 1:
  9 round trips to the 250 that accepts it (11 without PIPELINING, 10 with TLS 1.2);
- relay (RFC 5321): as submission without AUTH: 8;
- LMTP (RFC 2033, PIPELINING mandatory, no TLS on the LAN): TCP 1, greeting 1, LHLO 1,
  MAIL+RCPT+DATA 1, "." 1: 5;
- POP3 (RFC 1939, implicit TLS, RFC 8314): TCP 1, TLS 1, greeting 1, USER, PASS, STAT,
  RETR, DELE, QUIT: 9;
- IMAP (RFC 9051, implicit TLS): TCP 1, TLS 1, greeting 1, LOGIN, SELECT, FETCH,
  LOGOUT: 7;
- IMAP IDLE (RFC 2177), logged in already: the untagged EXISTS one way, then DONE and
  UID FETCH: half a round trip + 2.

One message to 3 recipients at one destination travels in one envelope (one
transaction: MAIL, a RCPT per recipient, DATA; Postfix's recipient limit is 50):

- relay with PIPELINING: the 3 RCPTs travel in the MAIL+RCPT+DATA flight (RFC 2920):
  8 round trips, as for one recipient;
- relay without PIPELINING: MAIL 1, RCPT 1 each, DATA 1 (RFC 5321): 10 + 2 = 12;
- relay refused at MAIL FROM (552 5.3.4, SIZE over the receiver's limit, RFC 1870):
  the setup 6 and MAIL 1, answered before any RCPT is sent (without PIPELINING, where a
  refusal counted at RCPT would be 8 + 2): 7 round trips, for all 3 recipients.

The relay cases count from the message's queueing at the MTA to the 250 after "." (or
the refusal) and include the MTA's MX look-up (a miss: the resolver's time and one
round trip to it).

Each case runs a world of known latencies with one 10,000-byte message and reads the
message's timestamps. These are exact cases: one run, no sampling error, so the
tolerance is 1 µs (float rounding over a few additions); one round trip too many or
too few moves a figure by at least 0.032 s.
"""

from __future__ import annotations

import math
from typing import Any

from ..config import parse_scenario
from .case import Measured, case
from .worlds import node

__all__ = ["dialogue_times"]

SIZE = 10_000.0  # bytes of the one message
LOOKUP = 0.2  # the resolver's lookup time (a miss), s
SCAN = 0.05  # the MX's processing, s
WRITE = 0.01  # the store's write, s
POLL = 600.0  # the polling devices' interval, s (phase 0: they look at 600, 1200, ...)
# One-way latencies (s) and bandwidths (B/s) of the world's links:
#   home --0.02, 1 MB/s-- r --0.001, 100 MB/s-- mta --0.001-- dns
#                         r --0.015, 5 MB/s-- mx --0.0005, 100 MB/s-- store
HOME_MTA = (0.021, 1.0e6)
MTA_DNS = 0.001
MTA_MX = (0.016, 5.0e6)
MX_STORE = (0.0005, 1.0e8)
STORE_HOME = (0.0355, 1.0e6)
TOLERANCE = 1e-6  # s: exact cases (see above)


def _world(access: str, sync: str = "poll", pipelining: bool = True, tls_round_trips: int = 1,
           unknown: float = 0.0) -> dict[str, Any]:
    device: dict[str, Any] = {"name": "d", "share": 1, "access": access, "poll_interval": POLL, "phase": 0}
    if access == "imap":
        device["sync"] = sync
    return {
        "name": "verify-smtp", "seed": 1, "duration": 150, "drain": 2000,
        "smtp": {"pipelining": pipelining, "tls_round_trips": tls_round_trips},
        "topology": {
            "nodes": [
                {"id": "home", "kind": "client"},
                {"id": "r", "kind": "router"},
                {"id": "mta", "kind": "mta", "resolver": "dns", "workers": 4},
                {"id": "dns", "kind": "resolver", "lookup": LOOKUP},
                {"id": "mx", "kind": "mx", "processing": SCAN},
                {"id": "store", "kind": "mailbox", "write": WRITE},
            ],
            "edges": [
                {"a": "home", "b": "r", "latency": 0.02, "bandwidth": 1.0e6},
                {"a": "r", "b": "mta", "latency": 0.001, "bandwidth": 1.0e8},
                {"a": "mta", "b": "dns", "latency": MTA_DNS},
                {"a": "r", "b": "mx", "latency": 0.015, "bandwidth": 5.0e6},
                {"a": "mx", "b": "store", "latency": MX_STORE[0], "bandwidth": MX_STORE[1]},
            ],
        },
        "domains": [{
            "name": "example.org", "users": 1, "outbound": "mta", "mx": [{"host": "mx", "preference": 10}],
            "mailbox": "store", "retrieval": {"client": "home", "devices": [device]},
            "unknown_recipient_rate": unknown,
        }],
        "workload": [{"name": "people", "kind": "person", "client": "home", "domain": "example.org",
                      "interarrival": 100, "size": SIZE}],
    }


def dialogue_times(access: str = "imap", sync: str = "poll", pipelining: bool = True,
                   tls_round_trips: int = 1, unknown: float = 0.0, greylisted: bool = False) -> dict[str, float]:
    """Run the world with one message (sent at t = 100); the durations of its legs:
    ``submission`` (created -> submitted), ``relay`` (submitted -> accepted, with the
    MTA's lookup miss), ``lmtp`` (accepted -> delivered, with the scan and the write)
    and ``retrieval`` (the device's look -> retrieved; the look is the delivery for
    IDLE, the next poll otherwise); with ``unknown`` 1 (every recipient unknown) only
    ``refusal`` (submitted -> the row bounced at the MX's 550 to RCPT); with
    ``greylisted`` (the MX greylists, postgrey's 300 s) only ``greylisted`` (the first
    relay attempt, from its session's start to the 450, from the attempts table)."""
    import sim

    data = _world(access, sync, pipelining, tls_round_trips, unknown)
    if greylisted:
        data["topology"]["nodes"][4]["greylisting"] = {"delay": 300}
    res = sim.run(parse_scenario(data), trace=greylisted)
    row = res.messages.iloc[0]
    if unknown:
        return {"refusal": float(row["ended"] - row["submitted"])}
    if greylisted:
        a = res.attempts
        assert a is not None  # traced
        first = a[(a["hop"] == 1) & (a["attempt"] == 1)].iloc[0]
        return {"greylisted": float(first["end"] - first["start"])}
    delivered = float(row["delivered"])
    look = delivered if sync == "idle" else math.ceil(delivered / POLL) * POLL
    return {
        "submission": float(row["submitted"] - row["created"]),
        "relay": float(row["accepted"] - row["submitted"]),
        "lmtp": float(row["delivered"] - row["accepted"]),
        "retrieval": float(row["retrieved"]) - look,
    }


RECIPIENTS = 3  # of the one message in the several-recipients cases
SENT = 100.0  # when that message is submitted (the world's own traffic sends nothing)


def several_recipients(pipelining: bool, size_limit: float | None = None) -> tuple[float, ...]:
    """Run the world with one message to ``RECIPIENTS`` users of one domain, submitted
    at ``SENT``; each row's relay time: queueing to acceptance, or (refused, with the
    MX's ``size_limit`` below the message) to the bounce."""
    import sim
    from ..core.records import Message

    data = _world("imap", pipelining=pipelining)
    data["domains"][0]["users"] = RECIPIENTS
    data["workload"][0]["interarrival"] = 1.0e6  # its first message would come after the run
    if size_limit is not None:
        node(data, "mx")["message_size_limit"] = size_limit

    def send(model: Any) -> None:
        def submit() -> None:
            rec, domain = model.recorder, model.ctx.domains["example.org"]
            rows: list[Message] = []
            for user in range(RECIPIENTS):
                mid = rec.created(SENT, domain.index, domain.index, user, 0, SIZE, rows[0].id if rows else -1)
                rows.append(Message(mid, domain, user, SIZE, domain))
            model.node("mta").submit(rows[0], "home", tuple(rows[1:]))

        model.at(SENT, submit)

    m = sim.run(parse_scenario(data), hook=send).messages
    m = m[m["kind"] != "dsn"]  # the bounces' notices to the sender are rows of their own
    end = m["ended"] if size_limit is not None else m["accepted"]
    ok = (m["status"] == ("bounced" if size_limit is not None else "delivered")).all()
    return tuple(float(v) for v in end - m["submitted"]) if ok and len(m) == RECIPIENTS else ()


def _several(name: str, reference: float, source: str, pipelining: bool, size_limit: float | None = None) -> None:
    def measure(quick: bool, seed: int) -> Measured:
        times = several_recipients(pipelining, size_limit)
        if not times:  # a row lost, or not delivered (refused) as the case expects
            return Measured(math.nan, math.nan, math.nan, 0)
        worst = max(times, key=lambda v: abs(v - reference))  # every row must agree
        return Measured(worst, min(times), max(times), len(times))

    case("smtp", name, "s", reference, source, TOLERANCE, relative=False,
         note=f"one message to {RECIPIENTS} recipients, one envelope; the row farthest from the reference")(measure)


def _rt(trips: float, link: tuple[float, float]) -> float:
    """r round trips over a path of one-way latency ``link[0]`` plus the message over its bandwidth."""
    return trips * 2.0 * link[0] + SIZE / link[1]


def _exact(name: str, reference: float, source: str, leg: str, **world: Any) -> None:
    def measure(quick: bool, seed: int) -> Measured:
        value = dialogue_times(**world)[leg]
        return Measured(value, value, value, 1)

    case("smtp", name, "s", reference, source, TOLERANCE, relative=False)(measure)


_exact("submission, TLS 1.3, PIPELINING: 9 RTT + S/B", _rt(9, HOME_MTA),
       "RFC 6409, 3207, 4954, 2920: 9 round trips", "submission")
_exact("submission, TLS 1.3, no PIPELINING: 11 RTT + S/B", _rt(11, HOME_MTA),
       "RFC 5321 without RFC 2920: 11 round trips", "submission", pipelining=False)
_exact("submission, TLS 1.2, PIPELINING: 10 RTT + S/B", _rt(10, HOME_MTA),
       "RFC 5246 handshake 2 round trips: 10", "submission", tls_round_trips=2)
_exact("relay, TLS 1.3, PIPELINING: lookup + 8 RTT + S/B", LOOKUP + 2 * MTA_DNS + _rt(8, MTA_MX),
       "RFC 5321, 3207, 2920: 8 round trips (after the MX lookup miss)", "relay")
_exact("relay, TLS 1.3, no PIPELINING: lookup + 10 RTT + S/B", LOOKUP + 2 * MTA_DNS + _rt(10, MTA_MX),
       "RFC 5321 without RFC 2920: MAIL, RCPT, DATA one round trip each: 10", "relay", pipelining=False)
_exact("relay, TLS 1.2, PIPELINING: lookup + 9 RTT + S/B", LOOKUP + 2 * MTA_DNS + _rt(9, MTA_MX),
       "RFC 5246 handshake 2 round trips: 9", "relay", tls_round_trips=2)
_exact("relay refused at RCPT (550 5.1.1): lookup + 7 RTT", LOOKUP + 2 * MTA_DNS + 7 * 2.0 * MTA_MX[0],
       "RFC 5321 3.3 and RFC 2920: the pipelined MAIL+RCPT+DATA answered 250, 550 and a refused DATA "
       "(Postfix: 554 5.5.1 no valid recipients; RFC 5321 allows 503 or 554): 7 round trips, no body", "refusal", unknown=1.0)
_exact("relay greylisted at RCPT (450 4.7.1): 7 RTT to the 450", 7 * 2.0 * MTA_MX[0],
       "RFC 5321 4.2.2, RFC 2920; postgrey answers at RCPT: 7 round trips from the session's start",
       "greylisted", greylisted=True)
_exact("LMTP: scan + 5 RTT + S/B + write", SCAN + _rt(5, MX_STORE) + WRITE,
       "RFC 2033: 5 round trips", "lmtp")
_exact("POP3 session: 9 RTT + S/B", _rt(9, STORE_HOME), "RFC 1939 + RFC 8314: 9 round trips",
       "retrieval", access="pop3")
_exact("IMAP poll session: 7 RTT + S/B", _rt(7, STORE_HOME), "RFC 9051 + RFC 8314: 7 round trips",
       "retrieval", access="imap")
_exact("IMAP IDLE push: one way + 2 RTT + S/B", STORE_HOME[0] + _rt(2, STORE_HOME),
       "RFC 2177: EXISTS one way, DONE + FETCH 2 round trips", "retrieval", access="imap", sync="idle")
_several("relay to 3 recipients, PIPELINING: lookup + 8 RTT + S/B", LOOKUP + 2 * MTA_DNS + _rt(8, MTA_MX),
         "RFC 2920: the RCPTs travel with MAIL and DATA, no round trip of their own", pipelining=True)
_several("relay to 3 recipients, no PIPELINING: lookup + 12 RTT + S/B", LOOKUP + 2 * MTA_DNS + _rt(12, MTA_MX),
         "RFC 5321 3.3 without RFC 2920: each RCPT waits for its reply: 10 + 2 round trips", pipelining=False)
_several("relay to 3 recipients refused at MAIL FROM (552 5.3.4), no PIPELINING: lookup + 7 RTT",
         LOOKUP + 2 * MTA_DNS + 7 * 2.0 * MTA_MX[0],
         "RFC 1870 (SIZE: 552 5.3.4 at MAIL FROM), RFC 5321 3.3: no RCPT after a refused MAIL: 7 round trips, "
         "no body", pipelining=False, size_limit=SIZE / 2)
