"""Reading: when people look at their mail, and which mail they answer.

(Seam: the reading issue fills this in; see sim/mail/reading.py.)
"""

from __future__ import annotations

from .base import Strict

__all__ = ["Reading"]


class Reading(Strict):
    """When a domain's people look at their mail and how often they reply."""
