"""Mailbox quotas: how much mail a mailbox may hold, and what a full one answers.

(Seam: the store-capacity work fills this in; see sim/mail/quota.py.)
"""

from __future__ import annotations

from .base import Strict

__all__ = ["Quota"]


class Quota(Strict):
    """A domain's per-mailbox quota and what its MX answers when a mailbox is full."""
