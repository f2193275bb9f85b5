"""The statistics room: time-to-event estimators with censoring and competing risks.

A leg of a message's journey is a time to an event. The event of interest (the leg
completes, e.g. delivery) competes with others that end the row another way (bounce,
loss), and rows still in flight when the run stops are right-censored: all we know is
that their time exceeds ``horizon - start``. Dropping those rows, as a plain mean over
the completed ones does, leaves out exactly the slow ones and biases times low.

The estimators here take that into account:

- :func:`kaplan_meier`: the survival curve of one event type with right censoring;
- :func:`cumulative_incidence`: the Aalen-Johansen cumulative incidence of one event
  type among competing ones (Kaplan-Meier when nothing competes);
- :func:`percentile`, :func:`restricted_mean`: statistics read off those curves, each
  with a flag saying whether the censored mass could still change it;
- :func:`t_interval`, :func:`batch_means`: Student t confidence intervals, over
  replications or over batches of one long run.

Every curve is a step function in a DataFrame with one row per distinct observed time
(event or censoring, ties grouped exactly), so its last ``time`` is the largest
observed time. Everything is vectorised; the cost is one sort, O(n log n).

Event codes: ``0`` (or the strings ``"censored"``, ``"in_flight"``) is censored; any
other value is an event type, e.g. 1 delivered, 2 bounced, 3 lost, or their names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "CENSORED",
    "EVENTS",
    "RestrictedMean",
    "aalen_johansen",
    "batch_means",
    "cumulative_incidence",
    "kaplan_meier",
    "percentile",
    "restricted_mean",
    "t_interval",
    "unresolved_mass",
]

# The event codes the summary uses (strings work as well: any value but a censored one
# is an event type).
EVENTS = {"censored": 0, "delivered": 1, "bounced": 2, "lost": 3}
# Values that mean "censored" in an events array.
CENSORED = (0, "censored", "in_flight")

# Curves are sums of up to n floating-point terms: a share q counts as reached when the
# curve is within this of it, so that e.g. 3 deliveries out of 10 reach q = 0.3 even if
# the sum came to 0.29999999999999993.
_EPS = 1e-9

ArrayLike = npt.ArrayLike


def _durations(durations: ArrayLike) -> npt.NDArray[np.float64]:
    d = np.asarray(durations, dtype=float)
    if d.ndim != 1:
        raise ValueError("durations must be one-dimensional")
    if np.isnan(d).any():
        raise ValueError("durations must not be NaN (a censored row has its censoring time)")
    if (d < 0).any():
        raise ValueError("durations must not be negative")
    return d


def _censored(events: ArrayLike) -> npt.NDArray[np.bool_]:
    e = np.asarray(events)
    if e.dtype.kind in "biuf":  # numbers and booleans: 0 / False is censored
        return np.asarray(e == 0)
    # Strings, objects, categoricals: pandas compares them without a Python loop.
    return np.asarray(pd.Series(e, copy=False).isin(CENSORED).to_numpy())


class _Grouped(NamedTuple):
    """Rows grouped by distinct time: the at-risk counts and events at each time."""

    times: npt.NDArray[np.float64]
    at_risk: npt.NDArray[np.float64]  # rows with duration >= time
    events: npt.NDArray[np.float64]  # rows with an event (any type) at time
    inverse: npt.NDArray[np.intp]  # each row's index into times


def _group(durations: npt.NDArray[np.float64], is_event: npt.NDArray[np.bool_]) -> _Grouped:
    # np.unique sorts once; exact ties share one time, so events at equal times are
    # one step of the curve, as the estimators require.
    times, inverse, counts = np.unique(durations, return_inverse=True, return_counts=True)
    n = len(durations)
    # Censored rows at a time are still at risk at it (they left just after), the
    # usual convention: at_risk counts every row whose time is >= this one.
    at_risk = n - np.concatenate(([0], np.cumsum(counts)[:-1])).astype(float)
    events = np.bincount(inverse, weights=is_event.astype(float), minlength=len(times)).astype(np.float64)
    return _Grouped(times, at_risk, events, inverse.reshape(-1))


def _survival(g: _Grouped) -> npt.NDArray[np.float64]:
    return np.cumprod(1.0 - g.events / g.at_risk).astype(np.float64)


def kaplan_meier(durations: ArrayLike, observed: ArrayLike) -> pd.DataFrame:
    """Kaplan-Meier survival S(t) of one event type under right censoring.

    ``durations`` are times to the event, or to censoring where ``observed`` is false.
    Returns columns ``time`` (every distinct observed time, ascending) and
    ``survival`` (S just after that time; S = 1 before the first time).
    """
    d = _durations(durations)
    obs = np.asarray(observed, dtype=bool)
    if obs.shape != d.shape:
        raise ValueError("durations and observed must have the same length")
    if len(d) == 0:
        return pd.DataFrame({"time": np.empty(0), "survival": np.empty(0)})
    g = _group(d, obs)
    return pd.DataFrame({"time": g.times, "survival": _survival(g)})


def cumulative_incidence(durations: ArrayLike, events: ArrayLike, event_of_interest: Any = 1) -> pd.DataFrame:
    """Aalen-Johansen cumulative incidence F_k(t) of one event type among competing ones.

    ``events`` holds each row's outcome: censored (0, ``"censored"`` or
    ``"in_flight"``) or an event type (e.g. 1 delivered, 2 bounced, 3 lost, or names).
    F_k(t) = sum over event times s <= t of S(s-) d_k(s) / n(s), with S the
    Kaplan-Meier survival from any event, d_k the events of type k and n the rows at
    risk. When no other event type occurs this is 1 - Kaplan-Meier, computed as such.
    Returns columns ``time`` (every distinct observed time) and ``cif``.
    """
    return aalen_johansen(durations, events, event_of_interest)[0]


def aalen_johansen(
    durations: ArrayLike, events: ArrayLike, event_of_interest: Any = 1
) -> tuple[pd.DataFrame, float]:
    """:func:`cumulative_incidence` and :func:`unresolved_mass` together, from one sort."""
    d = _durations(durations)
    e = np.asarray(events)
    if e.shape != d.shape:
        raise ValueError("durations and events must have the same length")
    if len(d) == 0:
        return pd.DataFrame({"time": np.empty(0), "cif": np.empty(0)}), 0.0
    any_event = ~_censored(e)
    interest = np.asarray(e == event_of_interest, dtype=bool) & any_event
    g = _group(d, any_event)
    surv = _survival(g)
    if not (any_event & ~interest).any():
        cif = 1.0 - surv  # nothing competes: the product form is exact and cheaper
    else:
        d_k = np.bincount(g.inverse, weights=interest.astype(float), minlength=len(g.times))
        before = np.concatenate(([1.0], surv[:-1]))  # S(t-): survival just before each time
        cif = np.cumsum(before * d_k / g.at_risk)
    return pd.DataFrame({"time": g.times, "cif": cif}), float(surv[-1])


def unresolved_mass(durations: ArrayLike, events: ArrayLike) -> float:
    """The share of rows whose outcome the data leave open: S(t_max) of any event.

    It is the Kaplan-Meier estimate of still having no outcome after the largest
    observed time, i.e. the mass that rows censored at the end could still carry to
    any event type; 1 - the sum of all cumulative incidences at t_max. 0 when every
    row ended (or the last rows all had events); the ``censored_mass`` for
    :func:`percentile` and :func:`restricted_mean`.
    """
    d = _durations(durations)
    if len(d) == 0:
        return 0.0
    g = _group(d, ~_censored(events))
    return float(_survival(g)[-1])


def _curve(frame: pd.DataFrame) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(times, F) of a cumulative incidence frame, or of a Kaplan-Meier one as F = 1 - S."""
    times = frame["time"].to_numpy(dtype=float)
    if "cif" in frame.columns:
        return times, frame["cif"].to_numpy(dtype=float)
    if "survival" in frame.columns:
        return times, 1.0 - frame["survival"].to_numpy(dtype=float)
    raise ValueError("expected a frame with columns time and cif (or survival)")


def percentile(cif_frame: pd.DataFrame, q: float, censored_mass: float = 0.0) -> tuple[float, bool]:
    """The time at which the cumulative incidence first reaches ``q``; and whether censored.

    ``q`` is a share of all rows (0 < q <= 1), not of those with the event: with 5 %
    bounced, at most 95 % are ever delivered. ``censored_mass`` is the share whose
    outcome is still open at the largest observed time (:func:`unresolved_mass`).
    Returns

    - ``(t, False)``: F reaches q at t (an observed time), like numpy's
      ``method="inverted_cdf"`` when nothing is censored;
    - ``(t_max, True)``: F stays below q over the data, but the censored mass could
      still carry it past q: the percentile lies beyond t_max, the largest observed
      time, and prints as "> t_max";
    - ``(nan, False)``: not reached: q exceeds F(t_max) + censored_mass, the most the
      rows could ever reach.

    A frame of ``time``, ``survival`` (Kaplan-Meier) is read as F = 1 - S.
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"q must be in (0, 1], not {q}")
    times, f = _curve(cif_frame)
    if len(times) == 0:
        return float("nan"), False
    reached = f >= q - _EPS
    if reached.any():
        return float(times[int(np.argmax(reached))]), False
    if f[-1] + censored_mass >= q - _EPS:
        return float(times[-1]), True
    return float("nan"), False


class RestrictedMean(NamedTuple):
    """A restricted mean: its value, the horizon it is restricted to, whether partial.

    ``partial`` is true when mass still open at the largest observed time (before the
    horizon) is left out: those rows might have their event in between, so the value
    is the restricted mean of what was observed.
    """

    value: float
    horizon: float
    partial: bool


def restricted_mean(
    frame: pd.DataFrame, horizon: float, censored_mass: float = 0.0, *, given_event: bool = False
) -> RestrictedMean:
    """The restricted mean time to the event up to ``horizon``, from a curve F.

    F is the cumulative incidence (``cif``) or 1 - Kaplan-Meier (``survival``).

    - ``given_event=False``: the integral of 1 - F(t) over [0, horizon], i.e.
      E[min(T, horizon)] with T = infinity for rows that never have the event (for
      Kaplan-Meier this is the restricted mean survival time, the area under S; for
      competing risks it is the restricted mean of the improper sub-distribution, so a
      bounced row counts as the whole horizon).
    - ``given_event=True``: the mean time of the rows that have the event by the
      horizon: the integral of 1 - F(t) / F(horizon) over [0, horizon]. Without
      censoring this is exactly the plain mean of the event times up to the horizon;
      with censoring it is that mean estimated from the curve, which counts rows still
      in flight for as long as they were seen. This is what the summary reports.

    Past the largest observed time F is taken as flat; ``partial`` is true when
    ``censored_mass`` > 0 and that time is before the horizon, since those rows could
    still have their event in between. NaN when there is no data (or, given the event,
    no event).
    """
    if not horizon > 0:
        raise ValueError(f"horizon must be positive, not {horizon}")
    times, f = _curve(frame)
    if len(times) == 0:
        return RestrictedMean(float("nan"), float(horizon), bool(censored_mass > 0))
    # F is a right-continuous step function: 0 on [0, t_0), f_j on [t_j, t_j+1).
    knots = np.concatenate(([0.0], np.minimum(times, horizon), [float(horizon)]))
    widths = np.diff(knots)
    values = np.concatenate(([0.0], f))
    partial = bool(censored_mass > 0 and times[-1] < horizon)
    if given_event:
        inside = times <= horizon
        end = float(f[inside][-1]) if inside.any() else 0.0
        if end <= 0:
            return RestrictedMean(float("nan"), float(horizon), partial)
        # Clip: F / F(horizon) is 1 from the last event on; rounding must not make it
        # exceed 1 and subtract area.
        area = float(np.sum(widths * np.clip(1.0 - values / end, 0.0, None)))
    else:
        area = float(np.sum(widths * (1.0 - values)))
    return RestrictedMean(area, float(horizon), partial)


def t_interval(values: ArrayLike, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student t confidence interval ``(mean, low, high)`` of independent values.

    Uses n - 1 degrees of freedom; with fewer than two values the bounds are NaN.
    NaN values are left out (e.g. a replication whose statistic was not reached).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), not {level}")
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan"), float("nan")
    # scipy only for the t quantile: there is no numpy equivalent.
    from scipy.stats import t as student_t

    half = float(student_t.ppf(0.5 + level / 2.0, n - 1)) * float(x.std(ddof=1)) / np.sqrt(n)
    return mean, mean - half, mean + half


def batch_means(series: Sequence[float] | ArrayLike, batches: int = 10, level: float = 0.95) -> tuple[float, float, float]:
    """A t interval for the mean of one long (autocorrelated) run, by batch means.

    The series, in time order, is cut into ``batches`` contiguous batches of equal
    size; their means are treated as independent and given to :func:`t_interval`.
    When the length is not a multiple, the first values are left out (the start of a
    run is the least representative). Returns ``(mean of the batch means, low, high)``.
    """
    if batches < 2:
        raise ValueError("batch means need at least 2 batches")
    x = np.asarray(series, dtype=float).ravel()
    size = len(x) // batches
    if size == 0:
        raise ValueError(f"{len(x)} values cannot make {batches} batches")
    x = x[len(x) - size * batches :]
    return t_interval(x.reshape(batches, size).mean(axis=1), level)
