"""Content checks and tar-pitting at an MX: the server's own time inside a session, and
what it decides about a message (docs/model.md, "Content checks and slow servers").

- **Authentication** (``authentication``): SPF at MAIL FROM; the DKIM key and the DMARC
  policy after the final "." (milters in turn). Each is a TXT query for the sender
  domain's record through the MX's ``resolver`` (``Resolver.records``), cached there for
  the domain's ``txt_ttl``; the sender waits for it. A share ``auth_failure_rate`` of
  the domain's mail fails (spoofed, forwarded): its ``dmarc`` policy then says reject
  (550 5.7.26), quarantine (the junk folder) or none.
- **The spam scan** runs after queue (``content_filter: after_queue``: the MX's scanners
  after acceptance, Postfix's ``content_filter``, today's behaviour) or before queue
  (``before_queue``: in the session, the sender waiting for the reply to ".", Postfix's
  ``smtpd_proxy_filter``). With a ``spam_filter``, spam is caught at its
  ``detection_rate`` and other mail at its ``false_positive_rate``; caught mail is
  rejected 550 5.7.1 (before queue only: the sender bounces it), junked (delivered into
  the junk folder) or discarded (after queue only: an accepted message cannot be
  refused any more, and bouncing it would be backscatter).
- **Tar-pitting**: ``greet_pause`` before the 220 greeting (sendmail's greet_pause,
  Postfix's postscreen_greet_wait) and ``reply_delay`` before each reply after it. A
  client gives the session up when the greeting or the EHLO reply takes its
  ``smtp_helo_timeout``.

The sending MTA reads a server's ``checks`` once a session (``None``: nothing here, no
cost) and adds the delays to the timeouts it spends anyway: no SimPy event.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..core.records import DMARC_POLICY, KINDS, SPAM_REJECTED, Message, Recorder
from .dns import RECORD_TIMEOUT
from .smtp import Phase, Reply

if TYPE_CHECKING:
    from ..config import MXNode
    from ..core.rng import Draw, Sampler
    from ..world.network import Network
    from .dns import Resolver
    from .domains import Domain

__all__ = ["ContentChecks", "DISCARD", "DMARC_REJECTED", "INBOX", "JUNK", "SPAM_REFUSED"]

# The replies of a refusal at ".": RFC 3463 X.7.1 (delivery not authorized, message
# refused), Postfix's wording for content it refuses; Gmail's 5.7.26 (RFC 7372 3.3,
# multiple authentication checks failed) and wording for a DMARC failure.
SPAM_REFUSED = Reply(550, "5.7.1", "Message content rejected", Phase.DATA, reason=SPAM_REJECTED)
DMARC_REJECTED = Reply(
    550, "5.7.26", "Unauthenticated email is not accepted due to domain's DMARC policy", Phase.DATA,
    reason=DMARC_POLICY,
)
# What becomes of a message the checks let in.
INBOX, JUNK, DISCARD = range(3)
_SPAM = KINDS.index("spam")
# The three records of a sender domain: a query's cache key is its index * 3 + the kind.
_SPF, _DKIM, _DMARC = range(3)


class ContentChecks:
    """An MX's content checks and tar-pit: the delays a client waits for, the verdicts."""

    __slots__ = (
        "greet_pause", "reply_delay", "authentication", "before_queue", "filtering", "detection",
        "false_positive", "action", "resolver", "rtt", "recorder", "_scan", "_draw",
        "_relink", "scanned", "rejected_spam", "rejected_dmarc", "junked", "discarded", "dns_checks", "dns_cached",
    )

    def __init__(self, spec: MXNode, recorder: Recorder, scan: Draw, draw: Sampler) -> None:
        self.greet_pause = spec.greet_pause
        self.reply_delay = spec.reply_delay
        self.authentication = spec.authentication
        self.before_queue = spec.content_filter == "before_queue"
        spam = spec.spam_filter
        self.filtering = spam is not None
        self.detection = spam.detection_rate if spam is not None else 0.0
        self.false_positive = spam.false_positive_rate if spam is not None else 0.0
        action = spam.action if spam is not None else None
        self.action = action or ("reject" if self.before_queue else "junk")
        self.resolver: Resolver | None = None  # the MX finds it when the run starts
        self.rtt = 0.0  # MX <-> resolver
        self._relink: Callable[[], float] = lambda: 0.0
        self.recorder = recorder
        self._scan = scan  # the MX's scan time (its `processing`)
        self._draw = draw  # verdicts
        self.scanned = 0
        self.rejected_spam = 0
        self.rejected_dmarc = 0
        self.junked = 0
        self.discarded = 0
        self.dns_checks = 0
        self.dns_cached = 0

    @staticmethod
    def wanted(spec: MXNode) -> bool:
        """Whether an MX with ``spec`` checks or delays anything (else it has no checks)."""
        return bool(
            spec.authentication or spec.spam_filter is not None or spec.content_filter == "before_queue"
            or spec.greet_pause > 0 or spec.reply_delay > 0
        )

    def follow(self, network: Network, node: str) -> None:
        """Keep ``rtt`` the round trip from ``node`` (the MX) to its resolver, as link
        faults change the routes (infinite while no path joins them): a change marks
        it unknown (negative), and the next query looks it up."""
        resolver = self.resolver
        assert resolver is not None
        self._relink = lambda: network.link(node, resolver.id).rtt
        self.rtt = self._relink()
        network.watch(self._forget)

    def _forget(self) -> None:
        self.rtt = -1.0

    # -- the client's wait ---------------------------------------------------------------

    def envelope_delay(self, msg: Message, at: float) -> float:
        """Seconds MAIL FROM's checks add before the replies to the envelope: the SPF query."""
        return self._query(msg.sender, _SPF, at) if self.authentication else 0.0

    def data_delay(self, rows: Sequence[Message], at: float) -> float:
        """Seconds between "." arriving at ``at`` and the reply: the DKIM key, then the
        DMARC policy, then the before-queue scan."""
        took = 0.0
        if self.authentication:
            sender = rows[0].sender
            took = self._query(sender, _DKIM, at)
            took += self._query(sender, _DMARC, at + took)
        if self.before_queue:
            self.scanned += 1
            took += self._scan()
        return took

    def _query(self, domain: Domain, kind: int, at: float) -> float:
        """One TXT query through the resolver: its answer time plus the round trip."""
        assert self.resolver is not None  # wanted by authentication, checked at load
        self.dns_checks += 1
        rtt = self.rtt
        if rtt < 0.0:  # routes changed since it was looked up
            rtt = self.rtt = self._relink()
        if rtt == math.inf:  # no path to the resolver: unanswered, as when it is down
            return RECORD_TIMEOUT
        resolver = self.resolver
        hits = resolver.record_hits
        took = resolver.records(domain.index * 3 + kind, domain.txt_ttl, at)
        if resolver.record_hits > hits:
            self.dns_cached += 1
        return took + rtt

    # -- verdicts --------------------------------------------------------------------------

    def verdict(self, rows: Sequence[Message]) -> Reply | None:
        """At ".", once the server's policies passed: DMARC, then the before-queue scan. A
        refusal for every row, or None (the rows are accepted; junked ones marked so)."""
        first = rows[0]
        junk = False
        if self.authentication and not first.null_sender:
            # A DSN comes from the sender domain's own MTA: it authenticates.
            sender = first.sender
            rate = sender.auth_failure_rate
            if rate > 0.0 and sender.dmarc != "none" and self._draw() < rate:
                if sender.dmarc == "reject":
                    self.rejected_dmarc += len(rows)
                    return DMARC_REJECTED
                junk = True  # quarantine
        if self.before_queue and self.filtering and self._caught(first):
            if self.action == "reject":
                self.rejected_spam += len(rows)
                return SPAM_REFUSED
            junk = True
        if junk:
            self.junked += len(rows)
            for m in rows:
                self.recorder.junk(m.id)
        return None

    def after_queue(self, msg: Message) -> int:
        """The after-queue scan's verdict on one accepted row: INBOX, JUNK (marked) or DISCARD."""
        self.scanned += 1
        if not self.filtering or not self._caught(msg):
            return INBOX
        if self.action == "discard":
            self.discarded += 1
            return DISCARD
        self.junked += 1
        self.recorder.junk(msg.id)
        return JUNK

    def _caught(self, msg: Message) -> bool:
        """Whether the filter takes ``msg`` for spam: spam at the detection rate, other
        mail at the false-positive rate (a draw only where it can be caught)."""
        rate = self.detection if self.recorder.kind_of(msg.id) == _SPAM else self.false_positive
        return rate > 0.0 and self._draw() < rate

    def stats(self) -> dict[str, float]:
        """Scans, refusals, junked and discarded rows, and the TXT queries made."""
        return {
            "scanned": self.scanned,
            "rejected_spam": self.rejected_spam,
            "rejected_dmarc": self.rejected_dmarc,
            "junked": self.junked,
            "discarded_spam": self.discarded,
            "dns_checks": self.dns_checks,
            "dns_checks_cached": self.dns_cached,
        }
