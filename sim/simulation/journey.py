"""One message's journey, and two runs side by side: the data behind ``mailflow trace``
and ``mailflow compare`` (the printing lives in :mod:`sim.faces.trace`).

:func:`message_row` and :func:`journey` read one row of a run and its attempts in order;
:func:`compare_counts`, :func:`compare_times` and :func:`scenario_differences` set two
runs' summaries and scenarios side by side; :func:`sweep_points` and
:func:`compare_sweeps` do the same for two sweeps' ``summary.parquet``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from .results import Results
from .summary import FLAGGED, Summary

__all__ = [
    "ABSENT", "JOURNEY_ORDER", "compare_counts", "compare_sweeps", "compare_times", "journey",
    "message_row", "scenario_config", "scenario_differences", "sweep_censoring", "sweep_points",
]

# The order of one message's attempts: hop by hop, each attempt's hosts in turn.
JOURNEY_ORDER = ["hop", "attempt", "host_order", "start"]


def message_row(results: Results, id: int) -> pd.Series:
    """The messages-table row ``id`` of a run (its columns, named by ``id``).

    Raises ``KeyError`` with a readable message when the run has no such row.
    """
    messages = results.messages
    if id not in messages.index:
        span = f"0 to {len(messages) - 1}" if len(messages) else "none"
        raise KeyError(f"no message row {id} (this run's ids: {span})")
    row = messages.loc[id]
    assert isinstance(row, pd.Series)  # the index is unique
    return row


def journey(results: Results, id: int) -> pd.DataFrame:
    """The attempts of message row ``id`` in order (hop, attempt, host order), each with
    its ``duration`` (end - start) and the message's own columns joined on ``id``.

    Raises ``KeyError`` for an id that is not a row, ``ValueError`` for a run made
    without ``trace`` (no attempts table).
    """
    row = message_row(results, id)
    if results.attempts is None:
        raise ValueError("this run has no attempts table; re-run it with --trace (trace=True)")
    a = results.attempts
    mine = a[a["id"] == id].sort_values(JOURNEY_ORDER, kind="mergesort").reset_index(drop=True)
    mine.insert(list(mine.columns).index("end") + 1, "duration", mine["end"] - mine["start"])
    for name, value in row.items():
        if name not in mine.columns:
            mine[name] = value
    return mine


def compare_counts(a: Summary, b: Summary) -> pd.DataFrame:
    """Counts by status of two runs: ``a``, ``a_share``, ``b``, ``b_share``, ``diff``
    (b - a) and ``ratio`` (b / a, NaN when a is 0); indexed by status, ``created`` first."""
    ca, cb = a.counts, b.counts
    assert isinstance(ca, pd.Series) and isinstance(cb, pd.Series)  # not grouped
    index = list(dict.fromkeys([*ca.index, *cb.index]))
    ca, cb = ca.reindex(index, fill_value=0).astype(int), cb.reindex(index, fill_value=0).astype(int)
    total_a, total_b = int(ca.get("created", 0)), int(cb.get("created", 0))
    frame = pd.DataFrame(
        {
            "a": ca,
            "a_share": ca / total_a if total_a else math.nan,
            "b": cb,
            "b_share": cb / total_b if total_b else math.nan,
        }
    )
    frame["diff"] = frame["b"] - frame["a"]
    frame["ratio"] = (frame["b"] / frame["a"].where(frame["a"] != 0)).astype(float)
    frame.index.name = "status"
    return frame


def compare_times(a: Summary, b: Summary) -> pd.DataFrame:
    """Each leg's statistics (rmean, p50, p95, p99, max) of two runs, indexed by
    (leg, stat): ``a``, ``a_censored``, ``b``, ``b_censored``, ``diff`` (b - a) and
    ``ratio`` (b / a). A censored value is a lower bound ("> t"), and so may be the
    difference: the flags say which side is."""
    rows = []
    legs = list(dict.fromkeys([*a.times.index, *b.times.index]))
    for leg in legs:
        for stat in FLAGGED:
            va, fa = _stat(a.times, leg, stat)
            vb, fb = _stat(b.times, leg, stat)
            rows.append(
                {
                    "leg": leg, "stat": stat, "a": va, "a_censored": fa, "b": vb, "b_censored": fb,
                    "diff": vb - va, "ratio": vb / va if va else math.nan,
                }
            )
    return pd.DataFrame(rows).set_index(["leg", "stat"])


def _stat(times: pd.DataFrame, leg: str, stat: str) -> tuple[float, bool]:
    if leg not in times.index:
        return math.nan, False
    row = times.loc[leg]
    value: Any = row[stat]
    return float(value), bool(row[f"{stat}_censored"])


class _Absent:
    """A key one scenario has and the other lacks."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()


def scenario_config(results: Results) -> dict[str, Any]:
    """A run's resolved scenario as plain data with its seed: run.json's ``scenario``."""
    config = results.scenario.model_dump(mode="json")
    config["seed"] = results.seed
    return config


def scenario_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """The keys whose values differ between two scenarios (plain data), as
    ``(key path, a's value, b's value)`` in the order of ``a`` then ``b``.

    Key paths are spelled as ``--set`` takes them: list elements by their id or name
    where it is unique (``topology.nodes[mx].max_connections``), otherwise by position.
    A key one side lacks has :data:`ABSENT` there.
    """
    found: list[tuple[str, Any, Any]] = []
    _diff(a, b, "", found)
    return found


def _join(prefix: str, key: str) -> str:
    if not prefix:
        return key
    return f"{prefix}[{key}]" if "." in key or "[" in key else f"{prefix}.{key}"


def _labels(seq: list[Any]) -> list[str]:
    """Each element's id or name where it selects that element alone, else its position."""
    for field in ("id", "name"):
        values = [item.get(field) if isinstance(item, dict) else None for item in seq]
        if all(isinstance(v, str) and v and "[" not in v and "]" not in v for v in values) and len(
            set(values)
        ) == len(values):
            return [str(v) for v in values]
    return [str(i) for i in range(len(seq))]


def _diff(a: Any, b: Any, path: str, found: list[tuple[str, Any, Any]]) -> None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in dict.fromkeys([*a, *b]):
            _diff(a.get(key, ABSENT), b.get(key, ABSENT), _join(path, str(key)), found)
        return
    if isinstance(a, list) and isinstance(b, list):
        la, lb = _labels(a), _labels(b)
        ia, ib = dict(zip(la, a, strict=True)), dict(zip(lb, b, strict=True))
        if la == lb or set(la) & set(lb) or not (la and lb):
            for label in dict.fromkeys([*la, *lb]):
                _diff(ia.get(label, ABSENT), ib.get(label, ABSENT), f"{path}[{label}]", found)
            return
    if a != b:
        found.append((path, a, b))


def sweep_points(summary: pd.DataFrame) -> pd.DataFrame:
    """A sweep's ``summary.parquet`` as one row per point: the mean over replications of
    every numeric metric, indexed by the swept parameters (the columns before
    ``replication``). Raises ``ValueError`` if the table has no ``replication`` column."""
    if "replication" not in summary.columns:
        raise ValueError("not a sweep summary (no replication column)")
    columns = list(summary.columns)
    params = columns[: columns.index("replication")]
    metrics = [
        c for c in columns[columns.index("replication") + 1 :]
        if c != "seed" and pd.api.types.is_numeric_dtype(summary[c])
        and not pd.api.types.is_bool_dtype(summary[c])
    ]
    if not params:
        return summary[metrics].mean().to_frame().T.rename(index={0: "(all)"})
    keys = params[0] if len(params) == 1 else params
    return summary.groupby(keys, sort=False, dropna=False)[metrics].mean()


def sweep_censoring(summary: pd.DataFrame) -> pd.DataFrame:
    """Per point (indexed as :func:`sweep_points`), per metric with a ``<metric>_censored``
    column: whether the metric was censored in at least one replication, so that the
    point's mean could still move."""
    points = sweep_points(summary)
    flags = [c for c in points.columns if f"{c}_censored" in summary.columns]
    marks = summary[[f"{c}_censored" for c in flags]].fillna(False).astype(bool)
    marks.columns = flags
    names = [n for n in points.index.names if n is not None]
    if not names:
        return marks.any().to_frame().T.rename(index={0: "(all)"})
    # Any: pandas-stubs 3 types index names as Hashable, which groupby does not take.
    key: Any = names[0] if len(names) == 1 else names
    grouped = pd.concat([summary[names], marks], axis=1).groupby(key, sort=False, dropna=False)
    return grouped[flags].any()


def compare_sweeps(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Two sweeps' per-point means side by side, one row per (point, metric) the two
    share: ``a``, ``b``, ``diff`` (b - a), ``ratio`` (b / a), and ``a_censored`` /
    ``b_censored`` (the metric was censored in some replication of that point). The
    points are matched by their swept values; a point only one sweep has is NaN on the
    other side."""
    pa, pb = sweep_points(a), sweep_points(b)
    if list(pa.index.names) != list(pb.index.names):
        raise ValueError(
            "the sweeps vary different keys (A: "
            f"{', '.join(map(str, pa.index.names))}; B: {', '.join(map(str, pb.index.names))}): "
            "their points cannot be matched"
        )
    metrics = [c for c in pa.columns if c in pb.columns]
    la, lb = pa[metrics].stack(future_stack=True), pb[metrics].stack(future_stack=True)
    frame = pd.concat({"a": la, "b": lb}, axis=1)
    frame["diff"] = frame["b"] - frame["a"]
    frame["ratio"] = frame["b"] / frame["a"].where(frame["a"] != 0)
    for side, summary in (("a", a), ("b", b)):
        marks = sweep_censoring(summary).reindex(columns=metrics, fill_value=False)
        stacked = marks.stack(future_stack=True).reindex(frame.index)
        frame[f"{side}_censored"] = stacked.fillna(False).astype(bool)
    return frame
