"""Workload: traffic sources, each one arrival process for many senders."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field, PlainValidator, field_validator, model_validator

from .base import MAX_MESSAGES, MAX_TIME, MIN_RATE, Int, NodeId, Num, Strict
from .distributions import (
    AnyDistribution,
    AnyTimeDistribution,
    SizeDistribution,
    SizeLogNormalPart,
    WithAttachments,
    time_is_constant,
)
from .units import Seconds


__all__ = ["BODY_SIZE", "Batch", "MAX_RECIPIENTS", "MESSAGE_SIZE", "PROFILES", "Source", "profile_weights"]

# Message sizes: a body plus, for one message in ten, an attachment. The three measured
# shares of the 2002 list CDF (49% < 4 KB, 90.5% < 64 KB, 98.5% < 1 MB) fix the body's
# median and sigma and the attachment's median, given the attachment share and sigma
# (docs/sources.md, message sizes): about 1.5% above 1 MB, mean about 68 KB.
_BODY = SizeLogNormalPart(median=3600, sigma=1.1)
MESSAGE_SIZE = WithAttachments(
    dist="with_attachments",
    body=_BODY,
    attachment_share=0.1,
    attachment=SizeLogNormalPart(median=300_000, sigma=1.2),
)
# Application and bulk mail carries no attachment: the body alone.
BODY_SIZE = {"dist": "lognormal", "median": _BODY.median, "sigma": _BODY.sigma}

# Daily profiles: relative sending rate in each local hour 0-23 (normalised so that a
# source's `rate` stays its mean over a day). `office`: people at work, quiet at night,
# a morning and an afternoon peak around lunch (docs/sources.md, daily profiles);
# `transactional`: applications follow their users' waking hours with an evening peak.
PROFILES: dict[str, tuple[float, ...]] = {
    "flat": (1.0,) * 24,
    "office": (
        1, 0.7, 0.5, 0.5, 0.6, 1, 2, 5, 11, 15, 16, 15,
        12, 14, 15, 14, 12, 8, 5, 4, 3.5, 3, 2.2, 1.5,
    ),
    "transactional": (
        3, 2, 1.5, 1.2, 1.2, 1.5, 2.5, 4, 5, 6, 6, 6,
        6, 6, 6, 6, 6, 6, 6.5, 7, 7, 6.5, 5, 4,
    ),
}
# A client's wait for a server that does not answer: Thunderbird's connect timeout is its
# mailnews.tcptimeout (100 s) + 60 s (nsMsgProtocol.cpp); botocore's connect_timeout 60 s.
MAIL_CONNECT_TIMEOUT = 160.0
API_CONNECT_TIMEOUT = 60.0
MAX_RECIPIENTS = 1000  # Postfix smtpd_recipient_limit: recipients one message may have


def profile_weights(profile: str | list[float]) -> tuple[float, ...]:
    """The 24 hourly weights of a profile (a name or the weights themselves)."""
    return PROFILES[profile] if isinstance(profile, str) else tuple(profile)


def _profile(value: Any) -> str | list[float]:
    # One validator for both forms: a union would report each member's error, keyed by
    # pydantic's member names, instead of one line about the profile.
    if isinstance(value, str):
        if value not in PROFILES:
            raise ValueError(f"unknown profile: give {', '.join(PROFILES)} or 24 hourly weights")
        return value
    if not isinstance(value, (list, tuple)):
        raise ValueError("a profile is a name (flat, office, transactional) or 24 hourly weights")
    if len(value) != 24:
        raise ValueError(f"a daily profile has 24 hourly weights, got {len(value)}")
    if any(isinstance(w, bool) or not isinstance(w, (int, float)) or not (0 <= w < math.inf) for w in value):
        raise ValueError("hourly weights must be finite numbers >= 0")
    if sum(value) <= 0:
        raise ValueError("hourly weights are all zero")
    return [float(w) for w in value]


Profile = Annotated[str | list[float], PlainValidator(_profile)]


if TYPE_CHECKING:
    # Code reading a source sees the general distributions (the time ones are subclasses
    # of them), so it may put any distribution where a gap goes.
    _Gap = AnyDistribution
else:
    _Gap = AnyTimeDistribution


def _not_too_slow(rate: float) -> float:
    # The run draws gaps from an exponential of mean 1/rate, which must be a valid time
    # (at most MAX_TIME); a slower source would pass validation and fail at run time.
    if rate < MIN_RATE:
        raise ValueError(
            f"rate must be at least {MIN_RATE:g} messages/s (one message in {MAX_TIME:g} s, "
            "about 32 years)"
        )
    return rate


class Batch(Strict):
    at: Seconds = Field(ge=0, le=MAX_TIME, description="when the batch is injected")
    count: Int = Field(gt=0, le=MAX_MESSAGES)
    every: Seconds | None = Field(None, gt=0, le=MAX_TIME, description="repeat period; none: once")

    def times(self, start: float, stop: float) -> Iterator[float]:
        """When this batch is injected within [start, stop), in order."""
        first, n = self._window(start, stop)
        every = self.every or 0.0
        return (first + k * every for k in range(n))

    def _window(self, start: float, stop: float) -> tuple[float, int]:
        if self.every is None:
            return self.at, int(start <= self.at < stop)
        skipped = max(0, math.ceil((start - self.at) / self.every))
        first = self.at + skipped * self.every
        return first, max(0, math.ceil((stop - first) / self.every))

    def injections(self, start: float, stop: float) -> int:
        """How many times this batch is injected within [start, stop)."""
        return self._window(start, stop)[1]


class Source(Strict):
    """One traffic source: many senders' streams merged into one arrival process."""

    name: Annotated[str, Field(min_length=1)]
    kind: Literal["person", "transactional", "marketing", "spam"]
    client: NodeId = Field(description="client node the messages are submitted from")
    domain: str = Field(description="sender domain")
    mta: NodeId | None = Field(None, description="submission MTA; default the domain's outbound")
    rate: Annotated[Num, AfterValidator(_not_too_slow)] | None = Field(
        None, gt=0, description="Poisson arrivals, messages/s"
    )
    # Not Distribution | None: an optional union around the before-validator would try
    # every member and report the wrong key; _constant_gap turns numbers into constants.
    interarrival: _Gap | None = None
    batches: list[Batch] | None = Field(None, min_length=1)
    start: Seconds = Field(0, ge=0, le=MAX_TIME)
    stop: Seconds | None = Field(None, ge=0, le=MAX_TIME, description="default: the scenario's duration")
    recipients: dict[str, Num] | None = Field(
        None, description="recipient domain -> weight; default all domains by users"
    )
    size: SizeDistribution = Field(
        default=MESSAGE_SIZE, description="person; the other kinds default to the body alone"
    )
    profile: Profile = Field("flat", description="daily shape of `rate` in the sender domain's local time")
    utc_offset: Num | None = Field(
        None, ge=-12, le=14,
        description="hours ahead of UTC of these senders' clocks; default the sender domain's",
    )  # a big provider's people live in many time zones: one source per zone
    recipients_per_message: Num = Field(
        1, ge=1, le=MAX_RECIPIENTS, description="mean; 1 + geometric extra (cc)"
    )
    contacts: Int | None = Field(
        None, ge=1, le=1_000_000, description="regular correspondents per person; none: anyone"
    )  # at most 2^20 (sim.mail.traffic.CONTACTS_LIMIT)
    contacts_exponent: Num = Field(1.0, ge=0, le=10, description="Zipf exponent over contacts")
    local_share: Num = Field(0.0, ge=0, le=1, description="share of recipients at the sender's domain")
    # When submission fails (issue 10): a mail client's outbox, an API client's retries.
    outbox_retry: Seconds = Field(
        1800, gt=0, le=MAX_TIME,
        description="a mail client tries a message it could not submit again this long after (send/receive)",
    )
    connect_timeout: Seconds | None = Field(
        None, gt=0, le=MAX_TIME,
        description="how long the client waits for a server that does not answer; "
        "none: 160 s for a mail client (Thunderbird), 60 s for an API client (botocore)",
    )
    max_attempts: Int = Field(
        3, ge=1, le=100, description="an API client's attempts at a request that fails (AWS SDKs' standard mode)"
    )
    max_backoff: Seconds = Field(
        20, gt=0, le=MAX_TIME, description="an API client's longest wait between attempts (AWS SDKs)"
    )

    @property
    def mail_client_timeout(self) -> float:
        """How long a mail client waits for an MTA that does not answer."""
        return self.connect_timeout if self.connect_timeout is not None else MAIL_CONNECT_TIMEOUT

    @property
    def api_client_timeout(self) -> float:
        """How long an API client waits for an ESP that does not answer."""
        return self.connect_timeout if self.connect_timeout is not None else API_CONNECT_TIMEOUT

    @model_validator(mode="before")
    @classmethod
    def _size_by_kind(cls, data: Any) -> Any:
        # People attach files; applications, campaigns and spam send bodies alone.
        if isinstance(data, dict) and "size" not in data and data.get("kind", "person") != "person":
            data = {**data, "size": BODY_SIZE}
        return data

    @field_validator("interarrival", mode="before")
    @classmethod
    def _constant_gap(cls, value: Any) -> Any:
        return time_is_constant(value)

    @model_validator(mode="after")
    def _one_arrival_process(self) -> Source:
        given = [k for k in ("rate", "interarrival", "batches") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of rate, interarrival or batches"
                + (f" (got {', '.join(given)})" if given else "")
            )
        gap = self.interarrival
        if gap is not None and gap.capped_mean(1.0) <= 0:
            raise ValueError("interarrival times must not all be zero")
        if self.stop is not None and self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be after start ({self.start})")
        if self.profile != "flat" and self.rate is None:
            raise ValueError("a daily profile shapes a rate: give rate, not interarrival or batches")
        return self

    def stop_time(self, duration: float) -> float:
        """When this source stops sending in a run whose sources send for ``duration``."""
        return min(self.stop if self.stop is not None else duration, duration)

    def expected_messages(self, duration: float) -> float:
        """About how many rows (recipient deliveries) this source creates in a run of ``duration``."""
        return self._expected_sends(duration) * self.recipients_per_message

    def _expected_sends(self, duration: float) -> float:
        if self.batches is not None:
            # Only batches inside [start, stop) are sent (sim.mail.senders).
            stop = self.stop_time(duration)
            return float(sum(b.count * b.injections(self.start, stop) for b in self.batches))
        window = max(0.0, self.stop_time(duration) - self.start)
        if self.rate is not None:
            # With a daily profile `rate` is the mean over a day: exact for whole days.
            return self.rate * window
        assert self.interarrival is not None
        if window <= 0:
            return 0.0
        # A renewal process makes about window / E[gap] arrivals; capping the gap at the
        # window keeps a heavy tail from hiding a flood of tiny gaps.
        gap = self.interarrival.capped_mean(window)
        return window / gap if gap > 0 else math.inf
