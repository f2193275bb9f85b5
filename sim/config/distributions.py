"""Distributions of service times, inter-arrival times and sizes, as scenario data."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, model_validator

from .base import MAX_TIME, Num, Strict
from .units import Seconds, SizeNum, parse_duration, parse_size


__all__ = [
    "AnyDistribution", "AnyTimeDistribution", "Constant", "Distribution", "Exponential",
    "LogNormal", "SizeDistribution", "SizeLogNormal", "TimeDistribution", "Uniform",
    "WithAttachments",
]


class Constant(Strict):
    """Always the same value."""

    dist: Literal["constant"] = "constant"
    value: Num = Field(ge=0, le=1e15)

    @property
    def mean(self) -> float:
        return self.value

    def capped_mean(self, cap: float) -> float:
        """E[min(X, cap)]."""
        return min(self.value, cap)


class Exponential(Strict):
    """Exponential with the given mean (memoryless; Poisson inter-arrivals)."""

    dist: Literal["exponential"]
    mean: Num = Field(gt=0, le=1e15)

    def capped_mean(self, cap: float) -> float:
        """E[min(X, cap)]."""
        return self.mean * -math.expm1(-cap / self.mean)


class LogNormal(Strict):
    """Log-normal given by its median and the sigma of the underlying normal."""

    dist: Literal["lognormal"]
    median: Num = Field(gt=0, le=1e15)
    sigma: Num = Field(ge=0, le=10)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)

    def capped_mean(self, cap: float) -> float:
        """E[min(X, cap)]: the mean is ruled by a far tail, this by what happens in a run."""
        if self.sigma == 0:
            return min(self.median, cap)
        mu, s = math.log(self.median), self.sigma
        z = (math.log(cap) - mu) / s
        below = self.mean * _phi(z - s)
        return below + cap * (1.0 - _phi(z))


class Uniform(Strict):
    """Uniform on [low, high]."""

    dist: Literal["uniform"]
    low: Num = Field(ge=0, le=1e15)
    high: Num = Field(ge=0, le=1e15)

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) is below low ({self.low})")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def capped_mean(self, cap: float) -> float:
        """E[min(X, cap)]."""
        lo, hi = self.low, self.high
        if cap >= hi:
            return self.mean
        if cap <= lo or hi == lo:
            return min(lo, cap)
        inside = (cap - lo) / (hi - lo)  # P(X < cap)
        return inside * (lo + cap) / 2 + (1 - inside) * cap


def _phi(z: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def number_is_constant(value: Any) -> Any:
    # A bare number is the common case for a fixed delay; spare users the mapping.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    return value


def time_is_constant(value: Any) -> Any:
    """A bare duration (``0.05``, ``'50ms'``) is a constant; a bad unit is reported here."""
    if isinstance(value, str):
        value = parse_duration(value)
    return number_is_constant(value)


def size_is_constant(value: Any) -> Any:
    """A bare size (``6000``, ``'6KB'``) is a constant; a bad unit is reported here."""
    if isinstance(value, str):
        value = parse_size(value)
    return number_is_constant(value)


AnyDistribution = Annotated[
    Union[Constant, Exponential, LogNormal, Uniform], Field(discriminator="dist")
]
Distribution = Annotated[AnyDistribution, BeforeValidator(number_is_constant)]


# The same distributions for times and for sizes: parameters take the matching units, and
# times are bounded like every other time of a run (MAX_TIME), sizes at 1e15 bytes.
class TimeConstant(Constant):
    value: Seconds = Field(ge=0, le=MAX_TIME)


class TimeExponential(Exponential):
    mean: Seconds = Field(gt=0, le=MAX_TIME)


class TimeLogNormal(LogNormal):
    median: Seconds = Field(gt=0, le=MAX_TIME)


class TimeUniform(Uniform):
    low: Seconds = Field(ge=0, le=MAX_TIME)
    high: Seconds = Field(ge=0, le=MAX_TIME)


class SizeConstant(Constant):
    value: SizeNum = Field(ge=0, le=1e15)


class SizeExponential(Exponential):
    mean: SizeNum = Field(gt=0, le=1e15)


class SizeLogNormal(LogNormal):
    median: SizeNum = Field(gt=0, le=1e15)


class SizeUniform(Uniform):
    low: SizeNum = Field(ge=0, le=1e15)
    high: SizeNum = Field(ge=0, le=1e15)


class SizeLogNormalPart(Strict):
    """A log-normal part of a compound size: median (a size) and sigma, no tag."""

    median: SizeNum = Field(gt=0, le=1e15)
    sigma: Num = Field(ge=0, le=10)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)


class WithAttachments(Strict):
    """A message: a log-normal body plus, with probability ``attachment_share``, a
    log-normal attachment (the heavy tail of large messages)."""

    dist: Literal["with_attachments"]
    body: SizeLogNormalPart
    attachment_share: Num = Field(ge=0, le=1)
    attachment: SizeLogNormalPart

    @property
    def mean(self) -> float:
        return self.body.mean + self.attachment_share * self.attachment.mean


AnyTimeDistribution = Annotated[
    Union[TimeConstant, TimeExponential, TimeLogNormal, TimeUniform], Field(discriminator="dist")
]
TimeDistribution = Annotated[AnyTimeDistribution, BeforeValidator(time_is_constant)]
AnySizeDistribution = Annotated[
    Union[SizeConstant, SizeExponential, SizeLogNormal, SizeUniform, WithAttachments],
    Field(discriminator="dist"),
]
SizeDistribution = Annotated[AnySizeDistribution, BeforeValidator(size_is_constant)]
