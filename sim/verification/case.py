"""A verification case: one figure of the model against a reference, judged by a
tolerance stated before the run.

A case measures one quantity (a mean wait, a hit fraction, an attempt time) in one or
more simulated runs and gives its value with a 95 % confidence interval; the reference
is a formula from the literature or a documented schedule, with its source. A case
passes when the value lies within its tolerance of the reference. Reality cases
(``scored=False``) set the model beside a published measurement and are not judged.
Each case module registers its cases with :func:`case`; ``sim.verification.run_cases``
runs them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CASES", "Case", "Measured", "Outcome", "case", "measured_from"]


@dataclass(frozen=True)
class Measured:
    """A simulated value, its 95 % confidence interval (``low``, ``high``; equal to the
    value for an exact case) and the number of samples or replications behind it."""

    value: float
    low: float
    high: float
    n: int = 1


Measure = Callable[[bool, int], Measured]  # (quick, seed) -> the simulated value


@dataclass(frozen=True)
class Case:
    """One check of the model against a reference value.

    ``tolerance`` is relative to the reference (``relative``) or absolute, in the
    quantity's unit; it is fixed here, before any run. ``quick``: part of
    ``mailflow verify --quick`` (exact cases and loads up to 0.8, small samples); the
    full run takes every case with larger samples. ``scored=False``: a comparison with
    reality, shown side by side, never failed.
    """

    group: str  # queueing, retry, concurrency, dns, smtp, reality
    name: str  # what is checked, e.g. "M/M/4 at rho 0.8: mean wait in queue"
    unit: str  # "s", "share", "attempts", ...
    reference: float
    source: str  # the formula or document and where it is from
    tolerance: float
    measure: Measure = field(repr=False, compare=False)
    relative: bool = True
    quick: bool = True
    scored: bool = True
    note: str = ""  # how to read it (a reality case: what differs from the measurement, and why)

    def allowed(self) -> float:
        """The largest difference from the reference that passes, in the case's unit."""
        return self.tolerance * abs(self.reference) if self.relative else self.tolerance

    def judge(self, m: Measured) -> bool | None:
        """Whether ``m`` passes (None for a comparison with reality, or no value)."""
        if not self.scored:
            return None
        if math.isnan(m.value):
            return False
        return abs(m.value - self.reference) <= self.allowed()


@dataclass(frozen=True)
class Outcome:
    """A case and what its run gave."""

    case: Case
    measured: Measured
    passed: bool | None
    wall_s: float
    error: str = ""  # the exception of a case that raised (it then fails)


CASES: list[Case] = []


def case(
    group: str, name: str, unit: str, reference: float, source: str, tolerance: float, *,
    relative: bool = True, quick: bool = True, scored: bool = True, note: str = "",
) -> Callable[[Measure], Measure]:
    """Register the decorated function ``(quick, seed) -> Measured`` as a case."""

    def register(measure: Measure) -> Measure:
        if any(c.group == group and c.name == name for c in CASES):
            raise ValueError(f"case {group}: {name!r} registered twice")
        CASES.append(Case(group, name, unit, reference, source, tolerance, measure, relative, quick, scored, note))
        return measure

    return register


def measured_from(samples: list[float] | tuple[float, ...]) -> Measured:
    """The mean of independent replications with its Student-t 95 % interval."""
    from ..simulation.stats import t_interval

    mean, low, high = t_interval(samples)
    return Measured(mean, low, high, len(samples))
