"""Rate limits per sending IP and per sending domain, as receivers throttle: the MX's
``rate_limits`` block.

The counting is Postfix's anvil(8): per client (the sending IP the server sees) one
window of ``anvil_rate_time_unit`` seconds that opens at the client's first event
after the previous window ran out (``start + unit < now``: a fixed window per client,
not a grid shared by all); within it anvil counts connection attempts, MAIL FROM
requests and RCPT TO requests, refused ones included ("regardless of whether or not
Postfix actually accepts", postconf(5)), and a request is refused when its count is
above the limit. So exactly ``limit`` requests pass per window, and the state is a few
numbers per client: O(1) a check, nothing per message kept. Concurrent connections are
counted while open (``smtpd_client_connection_count_limit``). Per sending domain the
same window counts MAIL requests by ``msg.sender`` (Gmail's "unusual rate ...
originating from your SPF domain"; no Postfix option). Messages per connection is
Exim's ``smtp_accept_max_per_connection``: the MAIL after the limit gets 421 and the
sender connects again (connection reuse meets it as a closed session).

Reputation (IP warming): with ``reputation`` the per-IP message limit of a window is
``min(ceiling, base + growth * accepted)``, where ``accepted`` is the history given for
the IP plus the messages this server has accepted from it (250 to ".") before the
window opened: a new IP starts
at ``base`` per window and, sending at its limit, grows by ``(1 + growth)`` a window
(the ESPs' warm-up tables roughly double a day); an IP with a history near
``(ceiling - base) / growth`` is warm.

How a refusal is worded, and at which phase the message rules answer, is the
receiver's (``reply``): Postfix's own texts, or Gmail's 421 4.7.28, Yahoo's 421 4.7.0
[TS01] at the greeting and [TSS04] at MAIL FROM, Microsoft's 451 4.7.500 after DATA and
4.7.650 at RCPT TO (docs/sources.md, "Rate limits").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .smtp import Phase, Reply

if TYPE_CHECKING:
    from ..config.nodes import RateLimits
    from ..core.records import Message
    from .policies import Check, ServerState

__all__ = ["Anvil", "REPUTATION_PHASES", "RULES", "WORDINGS"]

# The rules, as run.json counts their refusals (``throttled_<rule>``).
CONNECTIONS = "connections"  # smtpd_client_connection_count_limit
CONNECTION_RATE = "connection_rate"  # smtpd_client_connection_rate_limit
MESSAGES = "messages"  # smtpd_client_message_rate_limit
RECIPIENTS = "recipients"  # smtpd_client_recipient_rate_limit
PER_CONNECTION = "per_connection"  # Exim smtp_accept_max_per_connection
DOMAIN = "domain"  # sender_domain_message_rate_limit
REPUTATION = "reputation"  # the warming limit of a new IP
RULES = (CONNECTIONS, CONNECTION_RATE, MESSAGES, RECIPIENTS, PER_CONNECTION, DOMAIN, REPUTATION)

_GMAIL_IP = (
    "[{ip}] Our system has detected an unusual rate of unsolicited mail originating from your "
    "IP address. To protect our users from spam, mail sent from your IP address has been "
    "temporarily rate limited. Please visit https://support.google.com/mail/?p=UnsolicitedRateLimitError "
    "to review our Bulk Email Senders Guidelines. - gsmtp"
)
_GMAIL_DOMAIN = (
    "Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain. "
    "To protect our users from spam, mail sent from your domain has been temporarily rate "
    "limited. Please visit https://support.google.com/mail/?p=UnsolicitedRateLimitError to "
    "review our Bulk Email Senders Guidelines. - gsmtp"
)
_GMAIL_LOW = (
    "Our system has detected that this message is suspicious due to the very low reputation "
    "of the sending IP address. To protect our users from spam, mail sent from your IP address "
    "has been temporarily rate limited. - gsmtp"
)
_GMAIL_CLOSING = "Try again later, closing connection. - gsmtp"
_YAHOO = (
    "[TSS04] Messages from {ip} temporarily deferred due to unexpected volume or user "
    "complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"
)
# At the greeting Yahoo's logged refusal is TS01 ("refused to talk to me: 421 4.7.0 [TS01]").
_YAHOO_GREETING = (
    "[TS01] Messages from {ip} temporarily deferred due to user complaints - 4.16.55.1; "
    "see https://postmaster.yahooinc.com/error-codes"
)
_MS_BUSY = "Server busy. Please try again later from [{ip}]. (S77719)"
_MS_REPUTATION = "The mail server [{ip}] has been temporarily rate limited due to IP reputation."
_CLOSING = "Service not available, closing transmission channel"  # RFC 5321 4.2.3's 421

# Per receiver: the phase the message rules (messages, domain, reputation) answer at,
# and per rule (code, enhanced code, text; {ip} and {domain} filled in). Sources and
# which texts were seen in the wild: docs/sources.md ("Rate limits").
WORDINGS: dict[str, tuple[Phase, dict[str, tuple[int, str, str]]]] = {
    # Postfix smtpd's replies to anvil's limits (smtpd.c); Exim's per-connection reply.
    "postfix": (Phase.MAIL, {
        CONNECTIONS: (421, "4.7.0", "Error: too many connections from {ip}"),
        CONNECTION_RATE: (421, "4.7.0", "Error: too many connections from {ip}"),
        MESSAGES: (450, "4.7.1", "Error: too much mail from {ip}"),
        RECIPIENTS: (450, "4.7.1", "Error: too many recipients from {ip}"),
        PER_CONNECTION: (421, "4.7.0", "too many messages in this connection"),
        DOMAIN: (450, "4.7.1", "Error: too much mail from {domain}"),
        REPUTATION: (450, "4.7.1", "Error: too much mail from {ip}"),
    }),
    # Gmail answers its rate limits after the end of DATA (the sender has sent the body).
    "gmail": (Phase.DATA, {
        CONNECTIONS: (421, "4.7.0", _GMAIL_CLOSING),
        CONNECTION_RATE: (421, "4.7.0", _GMAIL_CLOSING),
        MESSAGES: (421, "4.7.28", _GMAIL_IP),
        RECIPIENTS: (421, "4.7.28", _GMAIL_IP),
        PER_CONNECTION: (421, "4.7.0", _GMAIL_CLOSING),
        DOMAIN: (421, "4.7.28", _GMAIL_DOMAIN),
        REPUTATION: (421, "4.7.0", _GMAIL_LOW),
    }),
    # Yahoo answers TS01 to the greeting ("refused to talk to me") and TSS04 to MAIL FROM.
    "yahoo": (Phase.MAIL, {
        CONNECTIONS: (421, "4.7.0", _YAHOO_GREETING),
        CONNECTION_RATE: (421, "4.7.0", _YAHOO_GREETING),
        MESSAGES: (421, "4.7.0", _YAHOO),
        RECIPIENTS: (421, "4.7.0", _YAHOO),
        PER_CONNECTION: (421, "4.7.0", _CLOSING),
        DOMAIN: (421, "4.7.0", _YAHOO),
        REPUTATION: (421, "4.7.0", _YAHOO),
    }),
    # Exchange Online: 451 4.7.500 at the end of DATA; 4.7.650 (IP reputation) at RCPT TO
    # (REPUTATION_PHASES).
    "outlook": (Phase.DATA, {
        CONNECTIONS: (421, "4.7.500", _MS_BUSY),
        CONNECTION_RATE: (421, "4.7.500", _MS_BUSY),
        MESSAGES: (451, "4.7.500", _MS_BUSY),
        RECIPIENTS: (451, "4.7.500", _MS_BUSY),
        PER_CONNECTION: (421, "4.7.500", _MS_BUSY),
        DOMAIN: (451, "4.7.500", _MS_BUSY),
        REPUTATION: (451, "4.7.650", _MS_REPUTATION),
    }),
}
_PHASES = {CONNECTIONS: Phase.CONNECT, CONNECTION_RATE: Phase.CONNECT, RECIPIENTS: Phase.RCPT,
           PER_CONNECTION: Phase.MAIL}
# A receiver whose reputation rule answers at another phase than its other message rules:
# Microsoft's 4.7.650 is logged "in reply to RCPT TO command" (docs/sources.md). The
# message is then counted at MAIL FROM and its recipients refused at that phase.
REPUTATION_PHASES: dict[str, Phase] = {"outlook": Phase.RCPT}


class _Client:
    """anvil's record of one client: its window and counts, and what this server
    accepted from it (the reputation's history)."""

    __slots__ = ("start", "connects", "mail", "rcpt", "open", "accepted", "limit")

    def __init__(self, now: float, accepted: float) -> None:
        self.start = now
        self.connects = 0
        self.mail = 0
        self.rcpt = 0
        self.open = 0  # sessions open now
        self.accepted = accepted
        self.limit = 0.0  # the reputation's message limit for the window open now


class Anvil:
    """The per-client and per-domain counts of one server, and its refusals by rule.

    Its policies (:meth:`policies`) are the rules that are on, at their phases; a rule
    that is off is not in the chain. The server reports sessions opened and closed
    (:meth:`opened`, :meth:`closed`) when a connection count limit is on, and messages
    accepted (:meth:`accepted`) when reputation is on.
    """

    def __init__(self, spec: RateLimits) -> None:
        self.unit = spec.anvil_rate_time_unit
        self.count_limit = spec.smtpd_client_connection_count_limit
        self.connect_limit = spec.smtpd_client_connection_rate_limit
        self.mail_limit = spec.smtpd_client_message_rate_limit
        self.rcpt_limit = spec.smtpd_client_recipient_rate_limit
        self.per_connection = spec.smtp_accept_max_per_connection
        self.domain_limit = spec.sender_domain_message_rate_limit
        rep = spec.reputation
        self.reputation = rep is not None
        self.base: float = rep.base if rep else 0.0
        self.growth: float = rep.growth if rep else 0.0
        self.ceiling: float = rep.ceiling if rep else 0.0
        self.history: dict[str, float] = dict(rep.history) if rep else {}
        phase, texts = WORDINGS[spec.reply]
        self.message_phase = phase
        self.reputation_phase = REPUTATION_PHASES.get(spec.reply, phase)
        # Reputation at its own phase: MAIL counts the message, that phase refuses.
        self._split = self.reputation and self.reputation_phase != phase
        self._phases = {**dict.fromkeys(RULES, phase), **_PHASES, REPUTATION: self.reputation_phase}
        self._texts = texts
        self._replies: dict[tuple[str, str], Reply] = {}  # (rule, ip or domain) -> its reply
        self.clients: dict[str, _Client] = {}
        self.domains: dict[object, list[float]] = {}  # sender domain -> [window start, MAIL count]
        self.throttled = dict.fromkeys(RULES, 0)

    # -- the policies -------------------------------------------------------------------

    def policies(self) -> list[_Rule]:
        """The rules that are on, as policies of the server's chain."""
        rules: list[_Rule] = []
        if self.count_limit or self.connect_limit:
            rules.append(_Rule(Phase.CONNECT, self.connect))
        if self.per_connection:
            rules.append(_Rule(Phase.MAIL, self.transaction))
        if self._split:
            rules.append(_Rule(Phase.MAIL, self.count))
            rules.append(_Rule(self.reputation_phase, self.warming))
        if self.mail_limit or self.domain_limit or (self.reputation and not self._split):
            rules.append(_Rule(self.message_phase, self.message))
        if self.rcpt_limit:
            rules.append(_Rule(Phase.RCPT, self.recipient))
        return rules

    def _record(self, client: str, now: float) -> _Client:
        """The client's record as it is (made at its first event)."""
        c = self.clients.get(client)
        if c is None:
            c = self.clients[client] = _Client(now, self.history.get(client, 0.0))
            c.limit = self._limit(c.accepted)
        return c

    def _client(self, client: str, now: float) -> _Client:
        """The client's record, its window opened afresh when the last one ran out."""
        c = self.clients.get(client)
        if c is None:
            return self._record(client, now)
        if c.start + self.unit < now:  # anvil: a new window at the first event after
            c.start = now
            c.connects = c.mail = c.rcpt = 0
            c.limit = self._limit(c.accepted)
        return c

    def _limit(self, accepted: float) -> float:
        """The reputation's limit for a window that opens after ``accepted`` messages:
        set when the window opens, so that what is accepted during it counts from the
        next (the limit a receiver grants an IP for the hour, from its history)."""
        return min(self.ceiling, self.base + self.growth * accepted)

    def _refuse(self, rule: str, who: str) -> Reply:
        """The reply of ``rule`` for ``who`` (an IP or a domain name), made once."""
        self.throttled[rule] += 1
        reply = self._replies.get((rule, who))
        if reply is None:
            code, enhanced, text = self._texts[rule]
            phase = self._phases[rule]
            reply = Reply(code, enhanced, text.format(ip=who, domain=who), phase)
            self._replies[(rule, who)] = reply
        return reply

    def connect(self, server: ServerState, client: str, msg: Message | None, now: float) -> Reply | None:
        """Concurrent sessions and connection attempts per window, as anvil counts them
        (a refused attempt counts towards the rate)."""
        c = self._client(client, now)
        c.connects += 1
        if self.count_limit and c.open >= self.count_limit:
            return self._refuse(CONNECTIONS, client)
        if self.connect_limit and c.connects > self.connect_limit:
            return self._refuse(CONNECTION_RATE, client)
        return None

    def transaction(self, server: ServerState, client: str, msg: Message | None, now: float) -> Reply | None:
        """Exim's smtp_accept_max_per_connection: the MAIL after the limit gets 421."""
        if server.transaction > self.per_connection:
            return self._refuse(PER_CONNECTION, client)
        return None

    def message(self, server: ServerState, client: str, msg: Message | None, now: float) -> Reply | None:
        """One message request from ``client`` for ``msg``'s sender: counted per IP and per
        sender domain, refused when a count is above its limit (the reputation's limit
        first: it is the tighter one while an IP is cold)."""
        assert msg is not None
        if self._split:  # counted at MAIL FROM (:meth:`count`), in the window opened then
            c = self._record(client, now)
        else:
            c = self._client(client, now)
            c.mail += 1
        if self.reputation and not self._split and c.mail > c.limit:
            return self._refuse(REPUTATION, client)
        if self.mail_limit and c.mail > self.mail_limit:
            return self._refuse(MESSAGES, client)
        if self.domain_limit:
            sender = msg.sender
            window = self.domains.get(sender)
            if window is None:
                window = self.domains[sender] = [now, 0.0]
            elif window[0] + self.unit < now:
                window[0], window[1] = now, 0.0
            window[1] += 1
            if window[1] > self.domain_limit:
                return self._refuse(DOMAIN, sender.name if sender is not None else "<>")
        return None

    def count(self, server: ServerState, client: str, msg: Message | None, now: float) -> None:
        """MAIL FROM, when the reputation rule answers at a later phase: one message request
        counted (anvil's count), nothing refused here."""
        self._client(client, now).mail += 1

    def warming(self, server: ServerState, client: str, msg: Message | None, now: float) -> Reply | None:
        """The reputation rule at its own phase (Microsoft's RCPT TO): every recipient of
        a message counted above the window's limit is refused."""
        c = self._record(client, now)
        if c.mail > c.limit:
            return self._refuse(REPUTATION, client)
        return None

    def recipient(self, server: ServerState, client: str, msg: Message | None, now: float) -> Reply | None:
        """One RCPT from ``client``: refused above smtpd_client_recipient_rate_limit."""
        c = self._client(client, now)
        c.rcpt += 1
        if c.rcpt > self.rcpt_limit:
            return self._refuse(RECIPIENTS, client)
        return None

    # -- what the server reports ----------------------------------------------------------

    def opened(self, client: str, now: float) -> None:
        """A session from ``client`` was opened."""
        self._record(client, now).open += 1

    def closed(self, client: str) -> None:
        """A session from ``client`` ended."""
        self.clients[client].open -= 1

    def accepted(self, client: str, now: float) -> None:
        """This server accepted one message (whatever its recipients) from ``client``."""
        # Not an anvil event: the window is left as it is.
        self._record(client, now).accepted += 1

    def stats(self) -> dict[str, float]:
        """Refusals by rule (``throttled_<rule>``), their sum, and the clients seen."""
        out: dict[str, float] = {f"throttled_{rule}": n for rule, n in self.throttled.items()}
        out["throttled"] = sum(self.throttled.values())
        out["throttle_clients"] = len(self.clients)
        return out


class _Rule:
    """One of the server's rate rules as a policy: its phase and its check."""

    __slots__ = ("phase", "check")

    def __init__(self, phase: Phase, check: Check) -> None:
        self.phase = phase
        self.check = check
