"""Workload: traffic sources, each one arrival process for many senders."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from .base import MAX_MESSAGES, MAX_TIME, MIN_RATE, Int, NodeId, Num, Strict
from .distributions import AnyDistribution, AnyTimeDistribution, SizeDistribution, SizeLogNormal, time_is_constant
from .units import Seconds


__all__ = ["Batch", "MESSAGE_SIZE", "Source"]

# Message sizes: 49% < 4 KB and 90.5% < 64 KB (2002 list CDF) give median ~4 KB and
# sigma ~2.1, mean ~37 KB, near the ~30 KB quoted average (docs/sources.md, message sizes).
MESSAGE_SIZE = SizeLogNormal(dist="lognormal", median=4096, sigma=2.1)


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


class Source(Strict):
    """One traffic source: many senders' streams merged into one arrival process."""

    name: Annotated[str, Field(min_length=1)]
    kind: Literal["person", "transactional", "marketing"]
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
    size: SizeDistribution = Field(default=MESSAGE_SIZE)

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
        return self

    def stop_time(self, duration: float) -> float:
        """When this source stops sending in a run whose sources send for ``duration``."""
        return min(self.stop if self.stop is not None else duration, duration)

    def expected_messages(self, duration: float) -> float:
        """About how many messages this source creates in a run of ``duration``."""
        if self.batches is not None:
            # Only batches inside [start, stop) are sent (sim.mail.senders).
            stop = self.stop_time(duration)
            return float(sum(b.count for b in self.batches if self.start <= b.at < stop))
        window = max(0.0, self.stop_time(duration) - self.start)
        if self.rate is not None:
            return self.rate * window
        assert self.interarrival is not None
        if window <= 0:
            return 0.0
        # A renewal process makes about window / E[gap] arrivals; capping the gap at the
        # window keeps a heavy tail from hiding a flood of tiny gaps.
        gap = self.interarrival.capped_mean(window)
        return window / gap if gap > 0 else math.inf
