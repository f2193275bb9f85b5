"""Bounces are mail: delivery status notifications (RFC 3464) back to the sender.

When an MTA gives up on a row it had accepted (a 5xx from the next hop, or the queue
lifetime over: ``MTA._bounce``), it makes a DSN, a message of its own (``kind`` dsn,
``parent_id`` the bounced row, ``action`` failed), with the null envelope sender
(``MAIL FROM:<>``, RFC 5321 4.5.5), to the parent's sender at the parent's sender
domain. It is queued at the bouncing MTA at the bounce time and delivered from there
like any message: the MX lookup, the retries, the sender domain's MX and store, the
sender's devices (docs/model.md, "Bounces are mail"). With ``delay_warning_time`` on,
a row still queued that long gets one DSN with action delayed (Postfix's delay
notice) while it stays in the queue.

What is never done:

- a DSN about a DSN (RFC 5321 6.1: when the reverse-path is null, no notification is
  sent; 4.5.5: notifications travel with the null reverse-path). When a DSN bounces it ends ``bounced`` with its reason
  and no row follows; Postfix would send an optional "double bounce" to its own
  postmaster (``bounce_notify_service.c``), which is not the sender's mail and is not
  modelled;
- a DSN for a refusal at submission: the MTA's own 552 at MAIL FROM is told to the
  client in the session, which keeps the message;
- a delivery attempt to a domain that receives no mail: the DSN ends ``bounced`` at
  once with the reason "domain receives no mail" and the domain's own answer: NODATA
  (no MX and no A record: Postfix's 5.4.4), the null MX (a send-only domain that
  publishes one, RFC 7505 4.1) or NXDOMAIN.

A DSN's ``recipient_person`` is who sent the parent: the ``sender_person`` its row
records (a reply's writer, sim.mail.reading; the writer a source with ``contacts``
drew); for every other row a hash (splitmix64) of the parent's ``message_id`` and a fixed key, scaled to
the sender domain's users: one person per message, the same for every recipient row of
it, no memory and no random stream (docs/model.md).
"""

from __future__ import annotations

from typing import ClassVar

from ..core.records import DELAYED, NO_MAIL, Message, Recorder
from .devices import person_uniforms
from .smtp import Phase, Reply

__all__ = [
    "BOUNCE_SIZE_LIMIT",
    "DSN_OVERHEAD",
    "HEADER_BYTES",
    "NULL_MX",
    "Notice",
    "dsn_size",
    "notice",
    "sender_person",
    "who_sent",
]

# Sizes (docs/sources.md, "Bounces"). A failure DSN returns the original message
# (Postfix: "a full copy is sent to the originator", bounce_notify_service.c) up to
# bounce_size_limit; a delay warning returns its headers only (postconf(5),
# delay_warning_time).
BOUNCE_SIZE_LIMIT = 50_000  # Postfix bounce_size_limit (bytes of the original returned)
DSN_OVERHEAD = 2_000  # assumption: the DSN's own headers, explanation and status part
HEADER_BYTES = 2_000  # assumption: the returned header block of a delayed message

# RFC 7505 4.1: mail to a domain with a null MX fails at once with 556 and 5.1.10.
NULL_MX = Reply(556, "5.1.10", "Recipient address has null MX", Phase.RCPT, reason=NO_MAIL)

_PERSON_KEY = 0x5D5E_7D0E_B0C3_D5A1  # any fixed key: the sender-person hash (no stream)


class Notice(Message):
    """A DSN in flight: a message with the null envelope sender ``MAIL FROM:<>``.

    The same slots as any message (no per-message cost); only the class says null
    sender, so the MTA never makes a DSN about it.
    """

    __slots__ = ()
    null_sender: ClassVar[bool] = True


def dsn_size(parent_size: float, action: int) -> float:
    """Bytes of a DSN about a message of ``parent_size`` bytes (whole bytes).

    Failed: the overhead plus the returned message up to ``BOUNCE_SIZE_LIMIT``;
    delayed: the overhead plus the returned headers (never more than the message).
    """
    returned = min(parent_size, HEADER_BYTES if action == DELAYED else BOUNCE_SIZE_LIMIT)
    return float(DSN_OVERHEAD + returned)


def sender_person(message_id: int, users: int) -> int:
    """Who sent message ``message_id``: a person of a domain with ``users`` people.

    A pure function of the message (splitmix64), so every row of one message names the
    same person and nothing is stored or drawn; 0 for a domain without users.
    """
    return int(person_uniforms(_PERSON_KEY, message_id)[0] * users) if users > 0 else 0


def who_sent(rec: Recorder, mid: int, users: int) -> int:
    """Who wrote row ``mid``: the person its row records (a reply's writer), else the
    one :func:`sender_person` names for its message among the sender domain's ``users``."""
    writer = rec.writer(mid)
    return writer if writer >= 0 else sender_person(rec.message_of(mid), users)


def notice(rec: Recorder, parent: Message, now: float, action: int) -> Notice | None:
    """The DSN about ``parent`` made at ``now`` (its row created), or None when none
    is due: a DSN is never about a DSN (null sender)."""
    if parent.null_sender:
        return None
    to = parent.sender
    person = who_sent(rec, parent.id, to.users)
    size = dsn_size(parent.size, action)
    row = rec.notice(now, parent.id, person, size, action)
    return Notice(row, to, person, size, to)
