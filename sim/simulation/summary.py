"""Summaries of a message table: counts by status, and the time of each leg.

A leg is a stretch of a message's journey between two of its timestamps (created ->
delivered is ``delivery``; created -> retrieved is ``end to end``). Its time is a
time to an event with competing outcomes (:mod:`sim.simulation.stats`): a row whose
leg began completes it, or ends another way first (bounced, lost: competing events),
or is still open when the run stops (censored at ``horizon - start``). The statistics
come from the Aalen-Johansen cumulative incidence of completing the leg, so rows cut
off by the end of the run are counted for as long as they were seen, not dropped.

The headline figures are of people's and applications' mail: DSN rows (bounces and
delay warnings, ``kind`` dsn) are left out unless asked for (``dsn=True``), so bounces
travelling back do not mix into the delivery times of the mail that caused them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..core.records import STATUSES
from .stats import EVENTS, aalen_johansen, percentile, restricted_mean

__all__ = ["FLAGGED", "LEGS", "QUANTILES", "READING_LEGS", "Summary", "by_access", "leg_outcomes", "leg_times", "mail",
           "summarize"]

# (name, from column, to column): the legs of a message's journey, in order.
LEGS = (
    ("delivery", "created", "delivered"),
    ("submission", "created", "submitted"),
    ("relay", "submitted", "accepted"),
    ("local delivery", "accepted", "delivered"),
    ("retrieval", "delivered", "retrieved"),
    ("sync", "delivered", "synced"),  # every device of the recipient has it
    ("end to end", "created", "retrieved"),
)
# With reading modelled (a run with ``read`` times): waiting for a look after the first
# device has it, and the whole way from the sender to a reader. Only rows of domains
# whose people read count, and no row in the junk folder: those are never read and
# would stay open for ever.
READING_LEGS = (
    ("reading", "retrieved", "read"),
    ("to read", "created", "read"),
)
_LEGS = {name: (start, end) for name, start, end in (*LEGS, *READING_LEGS)}
_READING = frozenset(name for name, _, _ in READING_LEGS)
# The percentiles reported, as shares of the rows that began the leg.
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
# The statistics that carry a ``<stat>_censored`` flag.
FLAGGED = ("rmean", *QUANTILES, "max")
_TIMESTAMPS = ("created", "submitted", "accepted", "delivered", "retrieved", "synced", "ended")


@dataclass
class Summary:
    """Counts by status and timing statistics (seconds) of each leg of the journey.

    ``times`` has per leg: ``count`` (rows that completed it), ``censored`` (rows that
    began it and were still open at the end), ``rmean`` (mean time of the rows
    completing it, restricted to ``horizon``), ``p50``, ``p95``, ``p99`` (shares of all
    rows that began it), ``max``, and for each of the last five a boolean
    ``<stat>_censored``: true when rows still open could change it. A flagged
    percentile holds the largest observed time t and means "> t"; a flagged max is the
    largest observed one, which open rows could exceed; a percentile not reached
    (too many rows bounced or were lost) is NaN and unflagged.
    """

    counts: pd.Series | pd.DataFrame
    times: pd.DataFrame
    horizon: float = math.nan
    warmup: float = 0.0
    dsn_rows: int = 0  # DSN rows left out (summarize(..., dsn=False))
    # The retrieval leg split by how the first device read the mail (None: grouped, or
    # a table without the column): see :func:`by_access`.
    access: pd.DataFrame | None = None
    reply_rows: int = 0  # reply rows among the rows counted (reading: people answering mail)

    def __str__(self) -> str:
        text = f"{self.counts.to_string()}\n\n{self.shown_times().to_string()}\n{self.note()}"
        if self.access is not None and len(self.access):
            text += f"\n\nretrieval by the first device's access (rows retrieved in the run):\n{self.access.to_string()}"
        return text

    def shown_times(self, fmt: Callable[[float], str] = "{:.3f}".format) -> pd.DataFrame:
        """``times`` as printed: counts, then each statistic as text with its flag.

        A censored percentile or max prints as "> t"; a restricted mean that open rows
        could change as "~m"; a percentile not reached as "n/r"; no data as "-".
        """
        t = self.times
        # Rows that began the leg but none completed: a percentile is then not
        # reached (or censored), where a leg nobody began has no statistics at all.
        began = (t["count"] + t["censored"]) > 0
        out = pd.DataFrame({"count": t["count"], "censored": t["censored"]}, index=t.index)
        for stat in FLAGGED:
            texts = []
            for value, flagged, any_rows in zip(t[stat], t[f"{stat}_censored"], began, strict=True):
                if value != value:
                    texts.append("n/r" if stat in QUANTILES and any_rows else "-")
                elif flagged:
                    texts.append(f"~{fmt(value)}" if stat == "rmean" else f"> {fmt(value)}")
                else:
                    texts.append(fmt(value))
            out[stat] = texts
        return out

    def note(self) -> str:
        """What the printed times mean: the restriction, "> t", "~" and "n/r"."""
        since = f"messages created from {self.warmup:g} s on; " if self.warmup else ""
        if self.dsn_rows:
            since += f"{self.dsn_rows:,} DSN rows (bounces, delay warnings) left out; "
        if self.reply_rows:
            since += f"{self.reply_rows:,} of the rows are replies (kind reply); "
        return (
            f"{since}rmean: mean of the rows completing the leg, restricted to the horizon "
            f"({self.horizon:g} s), ~ if rows still open at the end could change it; "
            "percentiles are shares of all rows that began the leg, \"> t\" if open rows "
            "could carry them past t, n/r if not reached (bounced or lost)"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "counts": json.loads(self.counts.to_json()),
            "times": json.loads(self.times.reset_index().to_json(orient="records")),
            "horizon": self.horizon,
            "warmup": self.warmup,
            "dsn_rows": self.dsn_rows,
            "access": None if self.access is None else json.loads(self.access.reset_index().to_json(orient="records")),
            "reply_rows": self.reply_rows,
        }


def mail(messages: pd.DataFrame) -> pd.DataFrame:
    """The rows of people's and applications' mail: every row but DSNs (``kind`` dsn).

    A table without a ``kind`` column (or without DSN rows) is returned as it is.
    """
    if "kind" not in messages.columns:
        return messages
    dsn = (messages["kind"] == "dsn").to_numpy(dtype=bool)
    return messages[~dsn] if dsn.any() else messages


def leg_times(messages: pd.DataFrame, leg: str = "delivery") -> pd.Series:
    """Seconds each message spent on one leg of its journey (NaN where it did not)."""
    if leg not in _LEGS:
        raise ValueError(f"unknown leg {leg!r}; choose from {', '.join(_LEGS)}")
    start, end = _LEGS[leg]
    return messages[end] - messages[start]


def leg_outcomes(messages: pd.DataFrame, leg: str, horizon: float) -> pd.DataFrame:
    """Each row that began ``leg``: its time and outcome, as the estimators take them.

    ``event`` is 1 (completed the leg), 2 (bounced), 3 (lost) or 0 (censored: still
    open at the end, neither completed nor otherwise ended); ``duration`` is the time
    to the leg's end, to ``ended`` for a bounce or loss, or ``horizon - start`` when
    censored. Indexed like ``messages``.
    """
    if leg not in _LEGS:
        raise ValueError(f"unknown leg {leg!r}; choose from {', '.join(_LEGS)}")
    s, e = _LEGS[leg]
    # Column by column as numpy arrays: selecting rows of the whole table would copy
    # every column, and comparing the categorical status is cheaper than its strings.
    start_all = messages[s].to_numpy(dtype=float)
    began = ~np.isnan(start_all)
    start = start_all[began]
    end = messages[e].to_numpy(dtype=float)[began]
    ended = messages["ended"].to_numpy(dtype=float)[began]
    bounced = (messages["status"] == "bounced").to_numpy(dtype=bool)[began]
    lost = (messages["status"] == "lost").to_numpy(dtype=bool)[began]
    done = ~np.isnan(end)
    # A delivered row destroyed later is `lost` with its delivered time kept: it did
    # complete every leg up to delivery, and competes only on the later ones.
    other = np.where(bounced, EVENTS["bounced"], np.where(lost, EVENTS["lost"], 0))
    other = np.where(np.isnan(ended), 0, other)  # an end without a time cannot be placed
    event = np.where(done, EVENTS["delivered"], other)
    duration = np.where(done, end - start, np.where(event > 0, ended - start, horizon - start))
    return pd.DataFrame(
        {"duration": np.clip(duration, 0.0, None), "event": event.astype(np.int8)}, index=messages.index[began]
    )


def by_access(messages: pd.DataFrame) -> pd.DataFrame:
    """The retrieval leg (delivered -> retrieved) of the rows retrieved within the run,
    by the ``access`` of the device that first had each (imap, pop3, webmail): ``rows``,
    their ``share`` of those rows, ``mean``, ``p50`` and ``p95`` in seconds. Plain
    statistics of completed rows: a row not retrieved has no first device to group by
    (the censored figures of the whole leg are in the summary's times)."""
    if "access" not in messages.columns or "retrieved" not in messages.columns:
        return pd.DataFrame(columns=["rows", "share", "mean", "p50", "p95"])
    wait = (messages["retrieved"] - messages["delivered"]).astype(float)
    done = wait.notna()
    # (a row with no first device, access empty, counts in the shares' whole but no group)
    by = wait[done].groupby(messages.loc[done, "access"].astype(object), dropna=True)
    table = pd.DataFrame({"rows": by.size(), "mean": by.mean(), "p50": by.quantile(0.5), "p95": by.quantile(0.95)})
    table.insert(1, "share", table["rows"] / int(done.sum()))
    table.index.name = "access"
    return table.sort_index().astype({"rows": int})


def _leg_stats(messages: pd.DataFrame, horizon: float) -> pd.DataFrame:
    rows = {}
    reading = "read" in messages.columns and bool(messages["read"].notna().any())
    readers = messages
    if reading and {"folder", "recipient_domain"} <= set(messages.columns):
        # Only the domains whose people read (some row of theirs was read), and no junk.
        domains = messages.loc[messages["read"].notna(), "recipient_domain"].unique()
        readers = messages[messages["recipient_domain"].isin(domains) & (messages["folder"] != "junk")]
    for name, (_, end) in _LEGS.items():
        if name in _READING and not reading:
            continue  # reading not modelled: the table is as it always was
        if end not in messages.columns:  # a table from before the column existed
            continue
        o = leg_outcomes(readers if name in _READING else messages, name, horizon)
        d, ev = o["duration"].to_numpy(), o["event"].to_numpy()
        cif, open_mass = aalen_johansen(d, ev, EVENTS["delivered"])
        completed = d[ev == EVENTS["delivered"]]
        row: dict[str, Any] = {"count": len(completed), "censored": int((ev == 0).sum())}
        # Any open row could change the mean and the max once it completes (the
        # estimate assumes it behaves like the rows seen for longer); a percentile only
        # when the curve has not reached it and the open mass could carry it there.
        any_open = row["censored"] > 0
        row["rmean"] = restricted_mean(cif, horizon, open_mass, given_event=True).value
        row["rmean_censored"] = any_open
        for stat, q in QUANTILES.items():
            row[stat], row[f"{stat}_censored"] = percentile(cif, q, open_mass)
        # With rows still open, the max is at least the longest any of them has waited:
        # "> t" for the larger of that and the longest completed.
        longest_open = float(d[ev == 0].max()) if any_open else np.nan
        candidates = [x for x in (completed.max() if len(completed) else np.nan, longest_open) if x == x]
        row["max"] = float(max(candidates)) if candidates else np.nan
        row["max_censored"] = any_open
        rows[name] = row
    columns = ["count", "censored", *FLAGGED, *(f"{s}_censored" for s in FLAGGED)]
    times = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=columns)
    times[["count", "censored"]] = times[["count", "censored"]].astype(int)
    times[[f"{s}_censored" for s in FLAGGED]] = times[[f"{s}_censored" for s in FLAGGED]].astype(bool)
    times.index.name = "leg"
    return times


def _counts(messages: pd.DataFrame) -> pd.Series:
    counts = messages["status"].value_counts().reindex(list(STATUSES), fill_value=0)
    return pd.concat([pd.Series({"created": len(messages)}), counts])


def _horizon(messages: pd.DataFrame) -> float:
    """The latest time in the table: a lower bound of the run's horizon, for lack of it."""
    present = [c for c in _TIMESTAMPS if c in messages.columns]
    latest = messages[present].max().max() if present and len(messages) else np.nan
    return float(latest) if latest == latest and latest > 0 else 1.0


def summarize(
    messages: pd.DataFrame,
    by: str | None = None,
    *,
    horizon: float | None = None,
    warmup: float = 0.0,
    dsn: bool = False,
) -> Summary:
    """Counts by status and per-leg time statistics of a message table.

    ``horizon`` is when the run stopped (``Results.summary`` passes the scenario's):
    rows still open are censored there and means are restricted to it. Without it the
    latest time in the table stands in, which censors open rows a little early.
    ``warmup`` leaves out the messages created before it (seconds), e.g. while queues
    fill. With ``by`` (a column such as 'kind' or 'recipient_domain'), counts has one
    row per group and times is indexed by (group, leg). DSN rows are left out unless
    ``dsn`` (:func:`mail`); how many were is ``dsn_rows``.
    """
    if warmup < 0:
        raise ValueError(f"warmup must not be negative, not {warmup}")
    h = _horizon(messages) if horizon is None else float(horizon)
    if warmup:
        messages = messages[messages["created"] >= warmup]
    left_out = 0
    if not dsn:
        kept = mail(messages)
        left_out, messages = len(messages) - len(kept), kept
    replies = int((messages["kind"] == "reply").sum()) if "kind" in messages.columns else 0
    if by is None:
        access = by_access(messages) if "access" in messages.columns else None
        return Summary(_counts(messages), _leg_stats(messages, h), h, warmup, left_out, access, replies)
    if by not in messages.columns:
        raise KeyError(f"no column {by!r} to group by")
    groups = [(g, part) for g, part in messages.groupby(by, observed=True, sort=True)]
    counts = pd.DataFrame({g: _counts(part) for g, part in groups}).T
    counts.index.name = by
    times = pd.concat({g: _leg_stats(part, h) for g, part in groups}, names=[by, "leg"])
    return Summary(counts, times, h, warmup, left_out, reply_rows=replies)
