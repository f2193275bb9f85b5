"""Printing one message's journey (``mailflow trace``) and two runs or sweeps side by
side (``mailflow compare``). The data comes from :mod:`sim.simulation.journey`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from ..simulation import Results
from ..simulation.journey import (
    ABSENT, compare_counts, compare_sweeps, compare_times, journey, message_row, scenario_config,
    scenario_differences,
)

__all__ = ["MAX_DIFFERENCES", "print_comparison", "print_journey", "print_sweep_comparison"]

# At most this many differing scenario keys are listed; the rest are counted.
MAX_DIFFERENCES = 20
_TIMES = ("created", "submitted", "accepted", "delivered", "retrieved", "synced", "read")


def _t(x: Any) -> str:
    """A time or duration in seconds to the millisecond; "-" when not set."""
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{float(x):,.3f}"


def _present(x: Any) -> bool:
    return not (x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)))


def _reply(reply: Any, enhanced: Any) -> str:
    code = str(int(reply)) if _present(reply) else "-"
    return f"{code} {enhanced}" if _present(enhanced) and str(enhanced) else code


def message_line(results: Results, id: int) -> str:
    """One message's row as one line: kind (a DSN's action and parent), domains, size,
    status, reason, times."""
    row = message_row(results, id)
    reason = f" ({row['reason']})" if _present(row.get("reason")) and str(row["reason"]) else ""
    # A column a table from before it existed lacks is left out, not shown as "-".
    times = ", ".join(f"{name} {_t(row.get(name))}" for name in _TIMES if name in row)
    status = str(row["status"])
    if status in ("bounced", "lost"):  # a delivered row lost later keeps its delivered time
        times += f", ended {_t(row.get('ended'))}"
    kind = str(row["kind"])
    if _present(row.get("parent_id")):
        if kind == "reply":
            kind += f" (to message {int(row['parent_id'])})"
        else:
            kind += f" ({row['action']}, about message {int(row['parent_id'])})"
    if status == "in_flight" and _present(row.get("where")):
        status += f" at {row['where']}"  # who holds it at the end (an outbox: the client)
    copies = int(row["copies"]) if _present(row.get("copies")) else 1
    extra = f", {copies} copies (a duplicate)" if copies > 1 else ""
    return (
        f"message {id}: {kind} {row['sender_domain']} → {row['recipient_domain']}, "
        f"{int(row['size']):,} B, {status}{reason}{extra}, attempts {int(row['attempts'])}; {times}"
    )


def print_journey(results: Results, id: int, console: Console) -> None:
    """Print message row ``id``'s line, then its attempts in order as a table (or, for
    a run made without ``--trace``, one line saying to re-run with it)."""
    console.print(message_line(results, id))
    if results.attempts is None:
        console.print("no attempts table in this run: re-run it with --trace for the journey")
        return
    steps = journey(results, id)
    if steps.empty:
        console.print("no attempts recorded for this message")
        return
    table = Table(title="attempts", title_justify="left")
    for name in ("hop", "attempt", "host", "src → dst", "start", "end", "duration", "reply"):
        table.add_column(name, justify="right" if name not in ("src → dst", "reply") else "left")
    table.add_column("outcome")
    for step in steps.itertuples(index=False):
        table.add_row(
            str(step.hop), str(step.attempt), str(step.host_order), f"{step.src} → {step.dst}",
            _t(step.start), _t(step.end), _t(step.duration), _reply(step.reply, step.enhanced),
            str(step.outcome),
        )
    console.print(table)


def _shown(shown: pd.DataFrame, leg: Any, stat: Any) -> str:
    return str(shown.loc[leg, stat]) if leg in shown.index else "-"


def _signed(value: float, fmt: Callable[[float], str]) -> str:
    if value != value:
        return "-"
    text = fmt(value)
    if text.strip("+-0.,") == "":  # rounds to zero: no sign
        return text.lstrip("+-")
    return f"+{text}" if value > 0 else text


def _ratio(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"


def print_comparison(
    a: Results, b: Results, names: tuple[str, str], console: Console, fmt: Callable[[float], str]
) -> None:
    """Print two runs side by side: counts by status with shares, each leg's statistics
    with B - A and B / A, and the scenario keys that differ."""
    sa, sb = a.summary(), b.summary()
    console.print(f"A: {names[0]} ({a.scenario.name}, seed {a.seed}, run {a.run_id[:8]})")
    console.print(f"B: {names[1]} ({b.scenario.name}, seed {b.seed}, run {b.run_id[:8]})")
    counts = Table(title="messages", title_justify="left")
    counts.add_column("status")
    for col in ("A", "share", "B", "share", "B − A", "B / A"):
        counts.add_column(col, justify="right")
    for status, row in compare_counts(sa, sb).iterrows():
        share = (lambda s: "" if status == "created" or s != s else f"{s:.2%}")
        counts.add_row(
            str(status), f"{int(row['a']):,}", share(row["a_share"]), f"{int(row['b']):,}",
            share(row["b_share"]), _signed(float(row["diff"]), lambda v: f"{v:,.0f}"),
            _ratio(float(row["ratio"])),
        )
    console.print(counts)

    times = Table(title="times (seconds)", title_justify="left")
    times.add_column("leg", no_wrap=True)
    times.add_column("stat")
    for col in ("A", "B", "B − A", "B / A"):
        times.add_column(col, justify="right")
    # A and B as print_summary shows them ("> t", "~m", "n/r", "-").
    shown_a, shown_b = sa.shown_times(fmt), sb.shown_times(fmt)
    previous = None
    for key, row in compare_times(sa, sb).iterrows():
        assert isinstance(key, tuple)
        leg, stat = key
        flagged = bool(row["a_censored"] or row["b_censored"])
        diff = _signed(float(row["diff"]), fmt)
        times.add_row(
            str(leg) if leg != previous else "", str(stat),
            _shown(shown_a, leg, stat), _shown(shown_b, leg, stat),
            f"~{diff}" if flagged and diff != "-" else diff,
            _ratio(float(row["ratio"])),
        )
        previous = leg
    console.print(times)
    console.print(
        "> t: censored (rows still open could carry it past t), ~: censored mean or a "
        "difference involving a censored value; n/r or -: not reached or no data",
        style="dim",
    )
    _print_differences(scenario_differences(scenario_config(a), scenario_config(b)), console)


def _value(v: Any) -> str:
    text = repr(v) if v is ABSENT else str(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _print_differences(diffs: list[tuple[str, Any, Any]], console: Console) -> None:
    if not diffs:
        console.print("scenarios: no differences")
        return
    console.print(f"scenarios: {len(diffs)} {'keys differ' if len(diffs) != 1 else 'key differs'} (A → B)")
    for path, va, vb in diffs[:MAX_DIFFERENCES]:
        console.print(f"  {path}: {_value(va)} → {_value(vb)}")
    if len(diffs) > MAX_DIFFERENCES:
        console.print(f"  … and {len(diffs) - MAX_DIFFERENCES} more")


def print_sweep_comparison(
    a: pd.DataFrame, b: pd.DataFrame, names: tuple[str, str], console: Console
) -> None:
    """Print two sweeps' per-point means (over replications) side by side, metric by
    metric, with B - A and B / A."""
    frame = compare_sweeps(a, b)
    console.print(f"A: {names[0]} ({len(a)} runs)")
    console.print(f"B: {names[1]} ({len(b)} runs)")
    table = Table(title="per-point means", title_justify="left")
    table.add_column(", ".join(str(n) for n in frame.index.names[:-1]) or "point")
    table.add_column("metric")
    for col in ("A", "B", "B − A", "B / A"):
        table.add_column(col, justify="right")
    fmt = (lambda v: "-" if v != v else f"{v:,.4g}")
    # ~ as in the sweep's own table: some replication's value could still move.
    marked = (lambda v, flag: ("~" if flag and v == v else "") + fmt(v))
    previous = None
    for key, row in frame.iterrows():
        *point, metric = key if isinstance(key, tuple) else (key,)
        label = ", ".join(str(p) for p in point)
        flagged = bool(row["a_censored"] or row["b_censored"])
        diff = _signed(float(row["diff"]), fmt)
        table.add_row(
            label if label != previous else "", str(metric),
            marked(float(row["a"]), bool(row["a_censored"])), marked(float(row["b"]), bool(row["b_censored"])),
            f"~{diff}" if flagged and diff != "-" else diff, _ratio(float(row["ratio"])),
        )
        previous = label
    console.print(table)
    console.print(
        "~: censored in some replication (rows still open could move it), or a difference "
        "involving such a mean; -: no data",
        style="dim",
    )
