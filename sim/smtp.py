"""SMTP (and the other mail dialogues) as time: round trips on a path plus transfer.

A whole dialogue is computed and spent in one SimPy timeout per phase: nothing can
interrupt it in this model, so simulating every command would only cost time. Round-trip
counts follow email-facts.md section 2 (RFC 5321, 3207, 4954, 2920):

=================================  ===========================================
phase                              round trips
=================================  ===========================================
connect                            TCP handshake 1 + 220 greeting 1
hello                              EHLO 1 [+ STARTTLS 1 + TLS 1-2 + EHLO 1] [+ AUTH 1]
envelope                           MAIL+RCPT+DATA: 1 with PIPELINING, else 3
data                               body and final "." 1 (+ size / bandwidth)
quit                               QUIT 1
=================================  ===========================================

With TLS 1.3 and pipelining a relay session is 9 round trips before transfer time, a
submission 10; without pipelining 11 and 12.

Packet loss on a path delays, it does not drop: TCP retransmits. Each control round
trip loses a packet with probability 1 - (1 - p)^2 and then waits one retransmission
timeout; each lost data segment costs one more round trip (fast retransmit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scenario import SMTPSettings
from .topology import Path

__all__ = [
    "ACCEPTED",
    "BUSY",
    "CONNECT_TIMEOUT",
    "DialogueCost",
    "Dialogues",
    "SEGMENT",
    "TOO_BIG",
    "UNKNOWN_USER",
    "session_time",
]

# Replies as the sending side records them (RFC 3463 enhanced status codes).
ACCEPTED = "250 2.0.0 Ok: queued"
UNKNOWN_USER = "550 5.1.1 Recipient address rejected: User unknown"
TOO_BIG = "552 5.3.4 Message size exceeds fixed limit"
BUSY = "421 4.3.2 Service not available: too many connections"
CONNECT_TIMEOUT = "421 4.4.1 Connection timed out"

SEGMENT = 1460  # TCP payload bytes per segment on a 1500-byte MTU path


@dataclass(frozen=True, slots=True)
class DialogueCost:
    """Round trips of one kind of dialogue, split where the outcome is decided."""

    connect: int  # until the greeting: where a busy server says 421
    hello: int  # EHLO, TLS, AUTH
    envelope: int  # MAIL FROM / RCPT TO / DATA: where unknown users and SIZE are refused
    data: int  # body and final dot: where the message is accepted
    quit: int

    @property
    def to_accept(self) -> int:
        """Round trips from connecting until the message is accepted."""
        return self.connect + self.hello + self.envelope + self.data

    @property
    def to_mail(self) -> int:
        """Round trips until MAIL FROM is answered (where SIZE is refused)."""
        return self.connect + self.hello + 1

    @property
    def to_rcpt(self) -> int:
        """Round trips until RCPT TO is answered (where an unknown user is refused).

        With PIPELINING, MAIL, RCPT and DATA travel together and are answered together;
        without it, RCPT is the second of the three.
        """
        return self.connect + self.hello + min(self.envelope, 2)


class Dialogues:
    """The round-trip costs of every dialogue, given the scenario's SMTP settings."""

    def __init__(self, settings: SMTPSettings) -> None:
        tls = (2 + settings.tls_round_trips) if settings.tls else 0  # STARTTLS, TLS, EHLO
        envelope = 1 if settings.pipelining else 3
        self.settings = settings
        self.relay = DialogueCost(connect=2, hello=1 + tls, envelope=envelope, data=1, quit=1)
        self.submission = DialogueCost(
            connect=2, hello=1 + tls + 1, envelope=envelope, data=1, quit=1
        )
        # LMTP from MX to mailbox store on a trusted LAN: no TLS, a connection per message.
        # RFC 2033 makes PIPELINING mandatory for LMTP, whatever the SMTP setting.
        self.lmtp = DialogueCost(connect=2, hello=1, envelope=1, data=1, quit=1)
        # Retrieval sessions: implicit TLS (RFC 8314), login, fetch one message, leave.
        # POP3 (RFC 1939): TCP, TLS, greeting, USER, PASS, STAT, RETR, DELE, QUIT.
        self.pop3 = 2 + settings.tls_round_trips + 6
        # IMAP (RFC 9051): TCP, TLS, greeting, LOGIN, SELECT, FETCH, LOGOUT.
        self.imap = 2 + settings.tls_round_trips + 4
        # Webmail: the page is already open; an HTTPS fetch on a kept-alive connection.
        self.webmail = 1


def session_time(
    path: Path, round_trips: int, nbytes: float, rto: float, gen: np.random.Generator | None
) -> float:
    """Seconds for ``round_trips`` exchanges plus ``nbytes`` of data on ``path``.

    ``gen`` draws the retransmissions on a lossy path; it is not used on a loss-free one,
    so loss-free timelines are exact and consume no random numbers.
    """
    t = round_trips * 2.0 * path.latency
    if nbytes:
        t += nbytes / path.bandwidth
    p = path.loss
    if p > 0.0 and gen is not None:
        lost_control = gen.binomial(round_trips, 1.0 - (1.0 - p) ** 2) if round_trips else 0
        segments = -(-int(nbytes) // SEGMENT)
        lost_data = gen.binomial(segments, p) if segments else 0
        t += lost_control * rto + lost_data * 2.0 * path.latency
    return t
