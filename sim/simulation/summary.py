"""Summaries of a message table: counts by status, and the time of each leg.

A leg is a stretch of a message's journey between two of its timestamps (created ->
delivered is ``delivery``; created -> retrieved is ``end to end``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..core.records import STATUSES

__all__ = ["LEGS", "Summary", "leg_times", "summarize"]

# (name, from column, to column): the legs of a message's journey, in order.
LEGS = (
    ("delivery", "created", "delivered"),
    ("submission", "created", "submitted"),
    ("relay", "submitted", "accepted"),
    ("local delivery", "accepted", "delivered"),
    ("retrieval", "delivered", "retrieved"),
    ("end to end", "created", "retrieved"),
)
_LEGS = {name: (start, end) for name, start, end in LEGS}


@dataclass
class Summary:
    """Counts by status and timing statistics (seconds) of each leg of the journey."""

    counts: pd.Series | pd.DataFrame
    times: pd.DataFrame

    def __str__(self) -> str:
        return f"{self.counts.to_string()}\n\n{self.times.to_string(float_format='{:.3f}'.format)}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "counts": json.loads(self.counts.to_json()),
            "times": json.loads(self.times.reset_index().to_json(orient="records")),
        }


def leg_times(messages: pd.DataFrame, leg: str = "delivery") -> pd.Series:
    """Seconds each message spent on one leg of its journey (NaN where it did not)."""
    if leg not in _LEGS:
        raise ValueError(f"unknown leg {leg!r}; choose from {', '.join(_LEGS)}")
    start, end = _LEGS[leg]
    return messages[end] - messages[start]


def _leg_stats(messages: pd.DataFrame) -> pd.DataFrame:
    rows = {}
    for name in _LEGS:
        d = leg_times(messages, name).dropna()
        q = d.quantile([0.5, 0.95, 0.99]) if len(d) else pd.Series([np.nan] * 3)
        rows[name] = {
            "count": len(d),
            "mean": d.mean() if len(d) else np.nan,
            "p50": q.iloc[0],
            "p95": q.iloc[1],
            "p99": q.iloc[2],
            "max": d.max() if len(d) else np.nan,
        }
    times = pd.DataFrame.from_dict(rows, orient="index")
    times["count"] = times["count"].astype(int)
    times.index.name = "leg"
    return times


def _counts(messages: pd.DataFrame) -> pd.Series:
    counts = messages["status"].value_counts().reindex(list(STATUSES), fill_value=0)
    return pd.concat([pd.Series({"created": len(messages)}), counts])


def summarize(messages: pd.DataFrame, by: str | None = None) -> Summary:
    """Counts by status and per-leg time statistics of a message table.

    With ``by`` (a column such as 'kind' or 'recipient_domain'), counts has one row per
    group and times is indexed by (group, leg).
    """
    if by is None:
        return Summary(_counts(messages), _leg_stats(messages))
    if by not in messages.columns:
        raise KeyError(f"no column {by!r} to group by")
    groups = [(g, part) for g, part in messages.groupby(by, observed=True, sort=True)]
    counts = pd.DataFrame({g: _counts(part) for g, part in groups}).T
    counts.index.name = by
    times = pd.concat({g: _leg_stats(part) for g, part in groups}, names=[by, "leg"])
    return Summary(counts, times)
