"""Mailbox quotas: how much mail a mailbox may hold, and what a full one answers.

A domain's ``quota:`` block (absent: mailboxes never fill). The rules are in
``sim.mail.quota``; docs/quotas.md says how to read them and docs/sources.md where each
default comes from.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import MAX_TIME, Num, Strict
from .units import Bytes, Seconds

__all__ = ["MAX_STORAGE", "Quota"]

MAX_STORAGE = 10**15  # bytes (a petabyte), as message and queue sizes


class Quota(Strict):
    """A domain's per-mailbox quota and what its MX answers when a mailbox is full.

    A mailbox holds ``storage`` bytes; Dovecot's ``quota_grace`` lets the message that
    brings a mailbox from under its quota to over it in, up to ``storage`` x (1 +
    ``quota_grace``). A message that does not fit is refused at RCPT: ``452 4.2.2`` while
    the mailbox has been full for less than ``full_tempfail_for`` seconds, ``552 5.2.2``
    after (0: at once, Dovecot's default and Yahoo's answer; null: never, Gmail's).
    Mailboxes start with ``initial`` x ``storage`` bytes, or with a share uniform on
    [``initial``, ``initial_max``] drawn per person.
    """

    storage: Bytes = Field(
        15_000_000_000, gt=0, le=MAX_STORAGE, description="bytes a mailbox holds (Dovecot quota_rule storage=)"
    )
    quota_grace: Num = Field(
        0.1, ge=0, le=10, description="Dovecot: the last message may bring a mailbox this share over its storage"
    )
    full_tempfail_for: Seconds | None = Field(
        0, ge=0, le=MAX_TIME,
        description="seconds a full mailbox answers 452 4.2.2 before 552 5.2.2; 0: 552 at once; null: always 452",
    )
    initial: Num = Field(
        0.0, ge=0, le=10,
        description="share of its storage a mailbox holds when the run starts (the least, with initial_max)",
    )
    initial_max: Num | None = Field(
        None, ge=0, le=10,
        description="each mailbox's starting share uniform on [initial, initial_max], per person; none: initial for all",
    )

    @model_validator(mode="after")
    def _spread(self) -> Quota:
        if self.initial_max is not None and self.initial_max < self.initial:
            raise ValueError(f"initial_max ({self.initial_max:g}) must be at least initial ({self.initial:g})")
        return self
