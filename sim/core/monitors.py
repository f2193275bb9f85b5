"""Time-series monitors that cost no SimPy event: time-weighted levels sampled on a grid.

A :class:`Level` follows a quantity that changes in steps (a queue's length, sessions in
progress) and accumulates the integral of the level over time (its area), so the
time-average over any interval between two readings is exact, not a sample. Components
call :meth:`Level.set` or :meth:`Level.add` where their own counters change; a change
costs a comparison, a multiply-add and a max: no allocation, no event.

Sampling on the grid (``every`` seconds: ``every, 2 * every, ...``, the last point the
end of the run) is lazy: when the level changes past one or more grid points, each
interval passed is closed then, from the area accumulated so far; at the end of the run
:meth:`Monitors.close` closes the rest. Intervals are half open, ``[a, b)``: a change at
exactly a grid point belongs to the next interval, and an interval's ``value`` is the
level just before its end.

:class:`Monitors` holds one run's levels by (component, metric) and gives the long table
of ``timeseries.parquet``: one row per (time, component, metric) with ``mean``, ``max``
and ``value``.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["MAX_POINTS", "Level", "Monitors", "TIMESERIES_COLUMNS"]

TIMESERIES_COLUMNS = ("time", "component", "metric", "mean", "max", "value")
# Grid points per level at most: a sampling step far below the horizon is a mistake.
MAX_POINTS = 1_000_000


class Level:
    """A step function of time with its integral and maximum, sampled on a grid.

    ``every`` is the grid step (seconds) and ``end`` the run's end (the last grid point,
    whether or not it falls on ``k * every``). ``area`` is the integral of the level
    from time 0 to :attr:`last`, the time of the last change (or closed grid point).
    """

    __slots__ = (
        "value", "area", "last", "every", "end", "_k", "_next", "_mark", "_imax", "_peak",
        "times", "means", "maxes", "values",
    )

    def __init__(self, every: float, end: float, value: float = 0.0) -> None:
        if not every > 0.0 or not math.isfinite(every):
            raise ValueError(f"sampling step must be a positive number of seconds, not {every!r}")
        self.value = float(value)
        self.area = 0.0  # integral of the level over [0, last]
        self.last = 0.0
        self.every = every
        self.end = end
        self._k = 1
        self._next = self._point(1)
        self._mark = 0.0  # area at the start of the open interval
        self._imax = self.value  # max over the open interval
        self._peak = self.value  # max over the closed intervals
        self.times: array[float] = array("d")
        self.means: array[float] = array("d")
        self.maxes: array[float] = array("d")
        self.values: array[float] = array("d")

    def _point(self, k: int) -> float:
        """Grid point ``k``; within a billionth of a step of the end, the end itself."""
        every, last = self.every, self.end - self.every * 1e-9
        t = k * every
        if t < last:
            return t
        return self.end if (k - 1) * every < last else math.inf

    def set(self, now: float, value: float) -> None:
        """The level becomes ``value`` at ``now`` (times never go back)."""
        if now >= self._next:
            self._close(now)
        self.area += self.value * (now - self.last)
        self.last = now
        self.value = value
        if value > self._imax:
            self._imax = value

    def add(self, now: float, delta: float) -> None:
        """The level changes by ``delta`` at ``now``."""
        if now >= self._next:
            self._close(now)
        self.area += self.value * (now - self.last)
        self.last = now
        value = self.value + delta
        self.value = value
        if value > self._imax:
            self._imax = value

    def close(self, now: float) -> None:
        """Close every grid interval that ends at or before ``now`` (the end of a run)."""
        if now >= self._next:
            self._close(now)

    def _close(self, now: float) -> None:
        value, t = self.value, self._next
        start = (self._k - 1) * self.every
        while t <= now:
            area = self.area + value * (t - self.last)
            self.times.append(t)
            self.means.append((area - self._mark) / (t - start))
            self.maxes.append(self._imax)
            self.values.append(value)
            if self._imax > self._peak:
                self._peak = self._imax
            self.area, self.last, self._mark, self._imax = area, t, area, value
            self._k += 1
            start, t = t, self._point(self._k)
        self._next = t

    @property
    def max(self) -> float:
        """The highest level so far."""
        return self._peak if self._peak > self._imax else self._imax

    def mean(self, now: float) -> float:
        """The time-average of the level over ``[0, now]`` (exact, not sampled)."""
        if now <= 0.0:
            return self.value
        return (self.area + self.value * (now - self.last)) / now


class Monitors:
    """One run's levels, by component (node id) and metric, all on one grid."""

    def __init__(self, every: float, end: float) -> None:
        if not every > 0.0 or not math.isfinite(every):
            raise ValueError(f"sample_every must be a positive number of seconds, not {every!r}")
        if end / every > MAX_POINTS:
            raise ValueError(
                f"sample_every {every:g} s gives {end / every:,.0f} points over the run "
                f"({end:g} s); at most {MAX_POINTS:,}"
            )
        self.every = every
        self.end = end
        self.levels: dict[tuple[str, str], Level] = {}
        # Who feeds levels lazily (changes worked out after the fact, in time order) and
        # must bring them up to a time before they are closed: called with that time.
        self.flushes: list[Callable[[float], None]] = []

    def level(self, component: str, metric: str, value: float = 0.0) -> Level:
        """A new level for ``metric`` of ``component``, starting at ``value`` at time 0."""
        key = (component, metric)
        if key in self.levels:
            raise ValueError(f"{component} already has a {metric!r} level")
        level = self.levels[key] = Level(self.every, self.end, value)
        return level

    def close(self, now: float) -> None:
        """Close every level's grid intervals up to ``now`` (call it at the end of a run)."""
        for flush in self.flushes:
            flush(now)
        for level in self.levels.values():
            level.close(now)

    def frame(self) -> pd.DataFrame:
        """The closed intervals as one long table (``timeseries.parquet``), by time."""
        keys = list(self.levels)
        components = list(dict.fromkeys(c for c, _ in keys))
        metrics = list(dict.fromkeys(m for _, m in keys))
        sizes = [len(self.levels[k].times) for k in keys]

        def column(name: str) -> np.ndarray:
            parts = [np.frombuffer(getattr(self.levels[k], name), dtype=np.float64) for k in keys]
            return np.concatenate(parts) if parts else np.empty(0)

        comp = np.repeat([components.index(c) for c, _ in keys], sizes).astype(np.int32)
        metric = np.repeat([metrics.index(m) for _, m in keys], sizes).astype(np.int32)
        frame = pd.DataFrame(
            {
                "time": column("times"),
                "component": pd.Categorical.from_codes(comp, categories=pd.Index(components, dtype=object)),
                "metric": pd.Categorical.from_codes(metric, categories=pd.Index(metrics, dtype=object)),
                "mean": column("means"),
                "max": column("maxes"),
                "value": column("values"),
            }
        )
        # Stable: within one time, rows keep the order the levels were made in.
        return frame.sort_values("time", kind="stable", ignore_index=True)
