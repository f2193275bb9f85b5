"""Bookkeeping: the message log, kept as columns.

A message in flight is a small ``Message`` with ``__slots__``; its timestamps go straight
into the log's columns (``array.array``, message id = row), so when it ends nothing of it
is kept but its row. The log becomes one pandas DataFrame at the end, with categoricals
for domains, kinds, statuses, replies and reasons.
"""

from __future__ import annotations

from array import array

import numpy as np
import pandas as pd

__all__ = [
    "BOUNCED",
    "DELIVERED",
    "DISCARDED",
    "EXPIRED",
    "IN_FLIGHT",
    "KINDS",
    "LOST",
    "REASONS",
    "STATUSES",
    "TOO_LARGE",
    "UNKNOWN_RECIPIENT",
    "Labels",
    "Message",
    "MessageLog",
]

STATUSES = ("in_flight", "delivered", "bounced", "lost")
IN_FLIGHT, DELIVERED, BOUNCED, LOST = range(4)
KINDS = ("person", "transactional", "marketing")
# Why a message ended other than delivered (the `reason` column).
TOO_LARGE = "message too large"
UNKNOWN_RECIPIENT = "unknown recipient"
EXPIRED = "queue lifetime expired"
DISCARDED = "discarded by content filter"
REASONS = (TOO_LARGE, UNKNOWN_RECIPIENT, EXPIRED, DISCARDED)

NAN = float("nan")


class Message:
    """A message in flight: what its handlers need to route it, nothing more."""

    __slots__ = ("id", "rcpt", "user", "size", "queued")

    def __init__(self, id: int, rcpt: int, user: int, size: float) -> None:
        self.id = id
        self.rcpt = rcpt  # recipient domain index
        self.user = user  # recipient's index among the domain's users
        self.size = size
        self.queued = NAN  # when the sending MTA queued it (queue lifetime counts from here)


class Labels:
    """Interns strings (SMTP replies, reasons) as small integer codes; 0 is ''."""

    def __init__(self) -> None:
        self.names: list[str] = [""]
        self._codes: dict[str, int] = {"": 0}

    def code(self, name: str) -> int:
        """The code for ``name``, assigning the next one on first use."""
        c = self._codes.get(name)
        if c is None:
            c = self._codes[name] = len(self.names)
            self.names.append(name)
        return c


class MessageLog:
    """One row per message created, as growable typed columns."""

    def __init__(self, domains: list[str]) -> None:
        self.domains = domains
        self.replies = Labels()
        self.reasons = Labels()
        for reason in REASONS:
            self.reasons.code(reason)
        self.hosts = Labels()  # MX hosts, for the column of who accepted each message
        self.sender = array("I")
        self.recipient = array("I")
        self.person = array("I")
        self.kind = array("B")
        self.size = array("d")
        self.created = array("d")
        self.submitted = array("d")
        self.accepted = array("d")
        self.delivered = array("d")
        self.retrieved = array("d")
        self.ended = array("d")
        self.status = array("B")
        self.attempts = array("I")
        self.reply = array("I")
        self.reason = array("I")
        self.mx_host = array("I")

    def __len__(self) -> int:
        return len(self.created)

    def new(self, t: float, sender: int, rcpt: int, person: int, kind: int, size: float) -> int:
        """Add a row for a message created at ``t``; returns its id."""
        mid = len(self.created)
        self.sender.append(sender)
        self.recipient.append(rcpt)
        self.person.append(person)
        self.kind.append(kind)
        self.size.append(size)
        self.created.append(t)
        self.submitted.append(NAN)
        self.accepted.append(NAN)
        self.delivered.append(NAN)
        self.retrieved.append(NAN)
        self.ended.append(NAN)
        self.status.append(IN_FLIGHT)
        self.attempts.append(0)
        self.reply.append(0)
        self.reason.append(0)
        self.mx_host.append(0)
        return mid

    def end(self, mid: int, status: int, t: float, reason: str = "") -> None:
        """Record how and when (``t``) message ``mid`` ended; then it can be dropped."""
        if self.status[mid] != IN_FLIGHT:
            # A message ending twice would break the books; fail loudly, never quietly.
            raise RuntimeError(f"message {mid} ended twice ({STATUSES[self.status[mid]]})")
        self.status[mid] = status
        self.ended[mid] = t
        if reason:
            self.reason[mid] = self.reasons.code(reason)

    def to_frame(self) -> pd.DataFrame:
        """The log as a DataFrame, one row per message, indexed by message id."""
        n = len(self)

        def col(a: array) -> np.ndarray:
            # numpy reads array's C type codes ('I' is C unsigned int) with the platform's
            # own sizes, so the buffer is read right wherever it was written.
            dtype = np.dtype(a.typecode)
            return np.frombuffer(a, dtype=dtype, count=n).copy() if n else np.empty(0, dtype)

        def cat(codes: np.ndarray, names: list[str] | tuple[str, ...]) -> pd.Categorical[str]:
            return pd.Categorical.from_codes(codes.astype(np.int32), categories=pd.Index(names))

        def labels(codes: np.ndarray, table: Labels) -> pd.Categorical[str]:
            # Code 0 ('' while running) is "none": missing (NaN) in the frame. Every label
            # the run knew is a category, used or not, so that runs of one scenario share
            # their categories and concatenate cleanly.
            shifted = codes.astype(np.int32) - 1
            return pd.Categorical.from_codes(
                shifted, categories=pd.Index(table.names[1:], dtype=object)
            )

        domains = self.domains
        frame = pd.DataFrame(
            {
                "sender_domain": cat(col(self.sender), domains),
                "recipient_domain": cat(col(self.recipient), domains),
                "recipient_person": col(self.person),
                "kind": cat(col(self.kind), KINDS),
                "size": col(self.size),
                "created": col(self.created),
                "submitted": col(self.submitted),
                "accepted": col(self.accepted),
                "delivered": col(self.delivered),
                "retrieved": col(self.retrieved),
                "ended": col(self.ended),
                "status": cat(col(self.status), STATUSES),
                "attempts": col(self.attempts),
                "final_reply": labels(col(self.reply), self.replies),
                "reason": labels(col(self.reason), self.reasons),
                "mx_host": labels(col(self.mx_host), self.hosts),
            }
        )
        frame.index.name = "id"
        return frame
