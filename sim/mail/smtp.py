"""SMTP (and the other mail dialogues): replies, phases, and what each phase costs.

A server answers; the sending side spends time. A server's answers are :class:`Reply`
values (code, enhanced status code, text, and the :class:`Phase` they came at) decided
by its policies (``sim.mail.policies``); a client asks for them with plain calls (no
SimPy event), then spends the link time up to the phase of the reply that decided the
session in one timeout. A whole dialogue is computed, never simulated command by
command. Round-trip counts (RFC 5321, 3207, 4954, 2920):

=================================  ===========================================
phase                              round trips
=================================  ===========================================
connect                            TCP handshake 1 + 220 greeting 1
hello                              EHLO 1 [+ STARTTLS 1 + TLS 1-2 + EHLO 1] [+ AUTH 1]
envelope                           MAIL+RCPT+DATA: 1 with PIPELINING, else 3
                                   (+1 per further RCPT without PIPELINING)
data                               body and final "." 1 (+ size / bandwidth)
quit                               QUIT 1
=================================  ===========================================

With TLS 1.3 and pipelining a relay session is 9 round trips before transfer time, a
submission 10; without pipelining 11 and 12. A further transaction on an open session
(connection reuse) skips connect and hello, and starts with RSET (1) when the previous
one ended before DATA.
"""

from __future__ import annotations

from enum import IntEnum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ..config import SMTPSettings
from ..core.records import DOMAIN_NOT_FOUND, NO_MAIL, TOO_LARGE, UNKNOWN_RECIPIENT

if TYPE_CHECKING:
    from ..core.records import Message

__all__ = [
    "ACCEPTED",
    "BUSY",
    "CONNECTION_REFUSED",
    "DialogueCost",
    "Dialogues",
    "GREETING_TIMEOUT",
    "GREYLISTED",
    "HELO_TIMEOUT",
    "INTERRUPTED",
    "NO_ANSWER",
    "is_silent",
    "NO_SPACE",
    "Outcome",
    "Phase",
    "Reply",
    "SMTPServer",
    "ServerTime",
    "TOO_BIG",
    "UNKNOWN_USER",
]


class Phase(IntEnum):
    """Where in a dialogue a reply comes."""

    CONNECT = 0  # the greeting (or no answer at all)
    MAIL = 1
    RCPT = 2
    DATA = 3  # the reply to the final "."


class Reply:
    """A server's reply: ``421 4.3.2 text`` at a phase. ``silent`` means no answer came."""

    __slots__ = ("code", "enhanced", "text", "phase", "silent", "reason", "line")

    def __init__(
        self,
        code: int,
        enhanced: str,
        text: str,
        phase: Phase,
        silent: bool = False,
        reason: str = "",
    ) -> None:
        self.code = code
        self.enhanced = enhanced  # RFC 3463 enhanced status code
        self.text = text
        self.phase = phase
        self.silent = silent
        # A silent "reply" was never sent by the server: no code, only the client's own
        # status (as Postfix logs "dsn=4.4.1, status=deferred (connect to ...: Connection
        # timed out)").
        self.line = f"{code} {enhanced} {text}" if code else f"{enhanced} {text}"
        # What a message bounced by this reply records as its `reason`.
        self.reason = reason or f"rejected: {self.line}"

    @property
    def positive(self) -> bool:
        """2xx (or 3xx): the server goes on."""
        return self.code < 400

    @property
    def permanent(self) -> bool:
        """5xx: do not try again."""
        return self.code >= 500

    def __repr__(self) -> str:
        return f"Reply({self.line!r}, {self.phase.name})"


# Replies as Postfix words them (RFC 3463 enhanced status codes).
ACCEPTED = Reply(250, "2.0.0", "Ok: queued", Phase.DATA)
UNKNOWN_USER = Reply(
    550, "5.1.1", "Recipient address rejected: User unknown", Phase.RCPT, reason=UNKNOWN_RECIPIENT
)
TOO_BIG = Reply(552, "5.3.4", "Message size exceeds fixed limit", Phase.MAIL, reason=TOO_LARGE)
# postgrey's answer (DEFER_IF_PERMIT "Greylisted, see <url>") in Postfix smtpd's words, with
# milter-greylist's and RFC 3463's 4.7.1 where Postfix hosts send 4.2.0 (docs/sources.md).
GREYLISTED = Reply(450, "4.7.1", "Recipient address rejected: Greylisted", Phase.RCPT)
# Postfix's postscreen when every smtpd is taken (postscreen_post_queue_limit, by default
# default_process_limit): its words, as the server's one connection limit.
BUSY = Reply(421, "4.3.2", "All server ports are busy", Phase.CONNECT)
# A host that does not answer: the client waits out its connect timeout and records the
# failure as Postfix does (dsn=4.4.1, "Connection timed out"); there is no reply code.
NO_ANSWER = Reply(0, "4.4.1", "Connection timed out", Phase.CONNECT, silent=True)
# A server whose greeting, or reply to EHLO, does not come within the client's
# smtp_helo_timeout (a tar-pit): the client gives up; Postfix's smtp logs these words
# with dsn=4.4.2. No reply code.
GREETING_TIMEOUT = Reply(0, "4.4.2", "timed out while receiving the initial server greeting",
                         Phase.CONNECT, silent=True)
HELO_TIMEOUT = Reply(0, "4.4.2", "timed out while performing the EHLO handshake", Phase.CONNECT, silent=True)
# A host whose SMTP port is closed (the service stopped, the machine up): the TCP SYN is
# answered by a reset after one round trip; Postfix logs dsn=4.4.1 "Connection refused".
# No SMTP reply code either.
CONNECTION_REFUSED = Reply(0, "4.4.1", "Connection refused", Phase.CONNECT)
def is_silent(reply: Reply) -> bool:
    """Whether ``reply`` is no answer at all (what wins among a down host's reasons)."""
    return reply.silent


# A session cut short (a crash of either end, a path gone): no reply came; Postfix logs
# "lost connection with HOST" with dsn=4.4.2. No reply code.
INTERRUPTED = Reply(0, "4.4.2", "Connection lost during the session", Phase.DATA)
# Postfix smtpd's answer to MAIL FROM while its queue file system is short of space
# (smtpd_check_queue: free space at most queue_minfree or 1.5 x message_size_limit).
NO_SPACE = Reply(452, "4.3.1", "Insufficient system storage", Phase.MAIL)
# DNS answers the sending MTA turns into a reply of its own (no server spoke): the
# domain does not exist (permanent), or its servers failed to answer (temporary).
NXDOMAIN = Reply(
    550, "5.1.2", "Host or domain name not found", Phase.CONNECT, reason=DOMAIN_NOT_FOUND
)
SERVFAIL = Reply(451, "4.4.3", "Host or domain name not found, try again", Phase.CONNECT)
# NODATA: the name exists with neither MX nor address records. Postfix then looks the
# name's A record up, finds none, and bounces with dsn=5.4.4 (its dns_strerror text).
NODATA = Reply(
    550, "5.4.4", "Host or domain name not found. Name service error for type=A: "
    "Host found but no data record of requested type", Phase.CONNECT, reason=NO_MAIL,
)


class Outcome(IntEnum):
    """How one attempt at one server ended, as the sender acts on it.

    The values index ``sim.core.records.OUTCOMES`` (the attempts table's column).
    """

    DELIVERED = 0  # 250 to the final ".": the server has the message
    BOUNCED = 1  # a 5xx reply: the recipient is bounced
    TRY_NEXT = 2  # a 4xx reply within the session; another host comes next
    DEFERRED = 3  # any temporary failure at the attempt's last host: the message is deferred
    REFUSED = 4  # the connection was refused (a TCP reset, or 421 at the greeting); another host next
    TIMEOUT = 5  # no answer within the connect timeout; another host next
    INTERRUPTED = 6  # the session was cut short

    @property
    def settled(self) -> bool:
        """Whether the message left the sender's hands (delivered or bounced)."""
        return self <= Outcome.BOUNCED


class ServerTime(Protocol):
    """A slow server's own time (a tar-pit, content checks: ``sim.mail.content``), which
    the client adds to the link time of its dialogue."""

    greet_pause: float  # before the 220 greeting
    reply_delay: float  # before each reply after it

    def envelope_delay(self, msg: Message, at: float) -> float: ...

    def data_delay(self, rows: Sequence[Message], at: float) -> float: ...


class SMTPServer(Protocol):
    """A server a client can hold a session with (an MX today; relays and ESPs later).

    ``connect`` answers None when the client may go on; otherwise a refusal (or
    ``NO_ANSWER``) and no connection is held. After a successful connect the client
    must ``close()``, on every path; between the two it may run several transactions
    (MAIL, a RCPT per recipient, DATA: connection reuse; ``mail`` is told the
    transaction's number within the session). ``data`` is asked when the
    final "." arrives, for the recipients whose RCPT passed: a positive reply means the
    server has taken the message for all of them.
    """

    id: str
    code: int  # the server's node code in the recorder
    up: bool  # a client about to reuse an open session checks it is still alive

    @property
    def checks(self) -> ServerTime | None: ...  # None: no time of its own beyond the link's

    def connect(self, client: str, now: float) -> Reply | None: ...

    def mail(self, client: str, msg: Message, now: float, transaction: int = 1) -> Reply | None: ...

    def rcpt(self, client: str, msg: Message, now: float) -> Reply | None: ...

    def data(self, client: str, rows: Sequence[Message], now: float, ahead: bool = False) -> Reply: ...

    def close(self, client: str) -> None: ...


class DialogueCost:
    """Round trips of one kind of dialogue, split where the outcome is decided.

    The sums a session needs (``to_accept``, ``to_mail``, ``to_rcpt``) are worked out
    once here: they are read on every session.
    """

    __slots__ = (
        "connect", "hello", "envelope", "data", "quit", "to_accept", "to_mail", "to_rcpt", "per_rcpt",
        "setup", "rcpt", "accept",
    )

    def __init__(self, connect: int, hello: int, envelope: int, data: int, quit: int) -> None:
        self.connect = connect  # until the greeting: where a busy server says 421
        self.hello = hello  # EHLO, TLS, AUTH
        self.envelope = envelope  # MAIL FROM / RCPT TO / DATA: where SIZE and unknown users are refused
        self.data = data  # body and final dot: where the message is accepted
        self.quit = quit
        # Round trips from connecting until the message is accepted.
        self.to_accept = connect + hello + envelope + data
        # Until MAIL FROM is answered (where SIZE is refused).
        self.to_mail = connect + hello + 1
        # Until RCPT TO is answered (where an unknown user is refused): with PIPELINING,
        # MAIL, RCPT and DATA travel together and are answered together; without it,
        # RCPT is the second of the three.
        self.to_rcpt = connect + hello + min(envelope, 2)
        # Each further recipient of one transaction: its RCPT TO is a round trip of its
        # own without PIPELINING, and travels with the others with it (RFC 2920).
        self.per_rcpt = 0 if envelope == 1 else 1
        # A transaction on an open session (connection reuse) costs what follows the
        # setup: to the RCPT replies ``rcpt``, to the reply to "." ``accept``.
        self.setup = connect + hello
        self.rcpt = min(envelope, 2)
        self.accept = envelope + data

    def to(self, phase: Phase) -> int:
        """Round trips from connecting until the reply at ``phase`` arrives."""
        if phase == Phase.CONNECT:
            return self.connect
        if phase == Phase.MAIL:
            return self.to_mail
        if phase == Phase.RCPT:
            return self.to_rcpt
        return self.to_accept


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
        # IMAP IDLE (RFC 2177) on a connection already logged in and selected: the
        # server's untagged EXISTS (one way, counted apart), then DONE and UID FETCH.
        self.imap_idle = 2
        # Webmail: the page is already open; an HTTPS fetch on a kept-alive connection.
        self.webmail = 1
