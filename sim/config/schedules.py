"""Retry schedules as scenario data: an MTA node's ``retry:`` block.

Absent, the MTA follows Postfix's backoff (its ``minimal_backoff_time``,
``maximal_backoff_time`` and ``maximal_queue_lifetime`` keys). Given, it holds exactly
one shape:

- ``rule``: Exim's retry rule text, ``"F,2h,15m; G,16h,1h,1.5; F,4d,6h"`` (fixed and
  geometric segments, each up to a cutoff measured from the first failure; the last
  cutoff is the give-up time);
- ``intervals``: the gaps after the first, second, ... failure, then the last gap again,
  or grown by ``factor`` each time up to ``max_interval``; ``give_up`` is required;
- ``quadratic``: qmail's schedule, a retry at ``quadratic * n**2`` s after queueing;
  ``give_up`` is required.

The rules themselves (what each shape does at a failure) are in ``sim.mail.retry``;
this room only reads and checks the text.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from pydantic import Field, field_validator, model_validator

from .base import MAX_TIME, Num, Strict
from .units import Seconds

__all__ = ["EximSegment", "RetrySpec", "parse_exim_rule"]

MAX_INTERVALS = 1000  # a schedule is a short list; longer ones are a typo or a generator


class EximSegment(NamedTuple):
    """One segment of an Exim rule: until ``cutoff`` s after the first failure, wait
    ``interval`` s (``F``), or ``interval`` growing by ``factor`` each retry (``G``)."""

    kind: str  # "F" or "G"
    cutoff: float
    interval: float
    factor: float


# Exim's time format (spec, "Time intervals"): 2h, 15m, 1h30m, 4d, 1w, or plain seconds.
_EXIM_TIME = re.compile(r"(?:[0-9]+[wdhms])+|[0-9]+")
_EXIM_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def _exim_time(text: str, what: str, segment: str) -> float:
    text = text.strip()
    if not _EXIM_TIME.fullmatch(text):
        raise ValueError(f"{what} {text!r} in {segment!r} is not an Exim time (like 15m, 2h, 1h30m, 4d)")
    if text.isdigit():
        return float(text)
    return float(sum(int(n) * _EXIM_UNITS[u] for n, u in re.findall(r"([0-9]+)([wdhms])", text)))


def parse_exim_rule(text: str) -> tuple[EximSegment, ...]:
    """The segments of an Exim retry rule; a ValueError says which part is wrong."""
    segments: list[EximSegment] = []
    for part in text.split(";"):
        segment = part.strip()
        if not segment:
            raise ValueError(f"empty segment in retry rule {text!r}")
        fields = [f.strip() for f in segment.split(",")]
        kind = fields[0].upper() if fields[0] in ("F", "G", "H", "f", "g", "h") else fields[0]
        if kind == "H":
            raise ValueError(f"{segment!r}: H (randomised) segments are not modelled; use G")
        if kind not in ("F", "G"):
            raise ValueError(f"{segment!r}: a segment starts with F (fixed) or G (geometric)")
        want = 3 if kind == "F" else 4
        if len(fields) != want:
            form = "F,<cutoff>,<interval>" if kind == "F" else "G,<cutoff>,<interval>,<multiplier>"
            raise ValueError(f"{segment!r}: expected {form}")
        cutoff = _exim_time(fields[1], "cutoff", segment)
        interval = _exim_time(fields[2], "interval", segment)
        if interval <= 0:
            raise ValueError(f"{segment!r}: the interval must be positive")
        factor = 1.0
        if kind == "G":
            try:
                factor = float(fields[3])
            except ValueError:
                raise ValueError(f"{segment!r}: multiplier {fields[3]!r} is not a number") from None
            if not 1.0 <= factor <= 100.0:
                raise ValueError(f"{segment!r}: the multiplier must be between 1 and 100")
        if segments and cutoff <= segments[-1].cutoff:
            raise ValueError(f"{segment!r}: cutoffs must increase (the one before is {segments[-1].cutoff:g} s)")
        if cutoff > MAX_TIME:
            raise ValueError(f"{segment!r}: the cutoff is beyond {MAX_TIME:g} s")
        segments.append(EximSegment(kind, cutoff, interval, factor))
    return tuple(segments)


class RetrySpec(Strict):
    """A retry schedule written in the scenario (docs/scenario.md, "retry")."""

    rule: str | None = Field(None, description="Exim retry rule text")
    intervals: list[Seconds] | None = Field(
        None, min_length=1, max_length=MAX_INTERVALS, description="gaps after each failure"
    )
    factor: Num | None = Field(None, ge=1, le=100, description="growth of the gap after the list")
    max_interval: Seconds | None = Field(None, gt=0, le=MAX_TIME, description="cap on a grown gap")
    quadratic: Seconds | None = Field(None, gt=0, le=MAX_TIME, description="qmail: retry at q*n^2 s")
    give_up: Seconds | None = Field(None, gt=0, le=MAX_TIME, description="age at which to bounce")

    @field_validator("rule")
    @classmethod
    def _rule_parses(cls, text: str | None) -> str | None:
        if text is not None:
            parse_exim_rule(text)
        return text

    @field_validator("intervals")
    @classmethod
    def _gaps_positive(cls, gaps: list[float] | None) -> list[float] | None:
        if gaps is not None:
            for i, gap in enumerate(gaps):
                if not 0 < gap <= MAX_TIME:
                    raise ValueError(f"interval {i} ({gap:g} s) must be above 0 and at most {MAX_TIME:g} s")
        return gaps

    @model_validator(mode="after")
    def _one_shape(self) -> RetrySpec:
        shapes = [name for name in ("rule", "intervals", "quadratic") if getattr(self, name) is not None]
        if len(shapes) != 1:
            given = f" (got {', '.join(shapes)})" if shapes else ""
            raise ValueError(f"give exactly one of rule, intervals or quadratic{given}")
        if self.rule is not None and self.give_up is not None:
            raise ValueError("a rule gives up at its last cutoff: give_up does not apply")
        if self.rule is None and self.give_up is None:
            raise ValueError(f"{shapes[0]} needs give_up (the age at which the message bounces)")
        if self.intervals is None and (self.factor is not None or self.max_interval is not None):
            raise ValueError("factor and max_interval apply to intervals only")
        return self
