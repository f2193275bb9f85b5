"""Reading: when people look at their mail, and which mail they answer.

A domain's ``retrieval.reading:`` block (absent: reading is not modelled, the ``read``
column stays empty and nobody replies). The rules are in docs/reading.md; the run-time
side is ``sim.mail.reading``.
"""

from __future__ import annotations

from pydantic import Field

from .base import Num, Strict
from .distributions import SizeDistribution, SizeLogNormal, TimeDistribution, TimeLogNormal
from .workload import BODY_SIZE, Profile

__all__ = ["Reading"]


class Reading(Strict):
    """When a domain's people look at their mail and how often they reply."""

    looks_per_day: Num = Field(
        75, gt=0, le=10_000, description="mean looks at the mailbox per person and day (Mark et al., CHI 2016)"
    )
    profile: Profile = Field(
        "office", description="daily shape of the looks in the domain's local time (a name or 24 hourly weights)"
    )
    reply_share: Num = Field(
        0.2, ge=0, le=1, description="share of read person and reply rows that are answered"
    )
    reply_delay: TimeDistribution = Field(
        default_factory=lambda: TimeLogNormal(dist="lognormal", median=120, sigma=1.0),
        description="from reading a message to sending the reply",
    )
    reply_size: SizeDistribution = Field(
        default_factory=lambda: SizeLogNormal(**BODY_SIZE),
        description="bytes of a reply: a short body",
    )
