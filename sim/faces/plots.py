"""Plots of delivery statistics (matplotlib), for notebooks, reports and ``mailflow plot``.

Each plot is a function taking a DataFrame, :class:`Results` or scenario and an
optional matplotlib ``Axes`` (or ``Figure``), returning what it drew on:

- :func:`cdf`: the delivery-time cumulative incidence (Aalen-Johansen: rows in flight
  are censored, bounces and losses compete), so a curve ends at the delivered share;
- :func:`legs`: p50 / p95 of each leg of the journey, censored ones marked;
- :func:`timeseries`: a panel per metric of ``timeseries.parquet``, outages and scripted faults shaded;
- :func:`sweep`: a metric of a sweep's ``summary.parquet`` against a swept parameter,
  with a Student t confidence band over replications per level of another one;
- :func:`topology`: the scenario's graph, node kinds as colours and shapes.

:func:`render` writes them for a results folder as PNG and SVG (the ``plot`` command).
matplotlib is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..config import Scenario
from ..config.faults import DeviceFault, LinkFault, NodeFault
from ..simulation import Results, leg_times
from ..simulation.stats import EVENTS, aalen_johansen, t_interval
from ..simulation.summary import LEGS, leg_outcomes, summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "KINDS", "PlotError", "cdf", "leg_times", "legs", "outage_windows", "plot_cdf", "render",
    "swept_columns", "sweep", "timeseries", "topology",
]

# Every kind of plot, in the order they are drawn.
KINDS = ("cdf", "legs", "timeseries", "topology", "sweep")
RUN_KINDS = ("cdf", "legs", "timeseries", "topology")
# The legs drawn by legs(): the four stretches of the journey, in order.
JOURNEY = ("submission", "relay", "local delivery", "retrieval")
# Node kinds as (colour, marker) in topology().
NODE_STYLE = {
    "client": ("tab:blue", "o"),
    "router": ("tab:gray", "s"),
    "mta": ("tab:orange", "^"),
    "resolver": ("tab:purple", "D"),
    "mx": ("tab:green", "p"),
    "mailbox": ("tab:brown", "h"),
    "relay": ("tab:olive", "v"),
    "esp": ("tab:red", "*"),
    "authoritative": ("tab:pink", "d"),
}
SMALL_GRAPH = 40  # nodes: below this, topology() labels nodes and edge latencies


class PlotError(ValueError):
    """Input a plot cannot be made from; the message is one line for the user."""


def _messages(results: Results | pd.DataFrame) -> pd.DataFrame:
    return results.messages if isinstance(results, Results) else results


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (7, 4)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize)
    return new


def plot_cdf(
    results: Results | pd.DataFrame,
    leg: str = "delivery",
    by: str | None = None,
    ax: Axes | None = None,
    log: bool = True,
) -> Axes:
    """Empirical CDF of one leg's completed times, one line per group of ``by`` (e.g. 'kind').

    A share of the rows that completed the leg: rows in flight, bounced or lost are
    left out. :func:`cdf` counts them (a share of all rows that began the leg).
    """
    messages = _messages(results)
    ax = _new_axes(ax)
    times = leg_times(messages, leg)
    groups = [("all", times)] if by is None else list(times.groupby(messages[by], observed=True))
    for label, values in groups:
        v = np.sort(values.dropna().to_numpy())
        if len(v) == 0:
            continue
        ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", label=f"{label} ({len(v):,})")
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(f"{leg} time (s)")
    ax.set_ylabel("fraction of messages")
    ax.set_ylim(0, 1.01)
    ax.grid(True, alpha=0.3)
    ax.legend(title=by, fontsize="small")
    return ax


def _groups(messages: pd.DataFrame, by: str | None) -> list[tuple[str, pd.DataFrame]]:
    if by is None:
        return [("all", messages)]
    if by not in messages.columns:
        raise PlotError(f"--by {by}: no such column; choose from {', '.join(map(str, messages.columns))}")
    return [(str(g), part) for g, part in messages.groupby(by, observed=True, sort=True)]


def _horizon(results: Results | pd.DataFrame, horizon: float | None) -> float:
    if horizon is not None:
        return float(horizon)
    if isinstance(results, Results):
        return float(results.scenario.horizon)
    return _latest(results)


def _latest(messages: pd.DataFrame) -> float:
    present = [c for c in ("created", "submitted", "accepted", "delivered", "retrieved", "ended") if c in messages]
    latest = float(messages[present].max().max()) if present else float("nan")
    return latest if latest == latest and latest > 0 else 1.0


def cdf(
    results: Results | pd.DataFrame,
    by: str | None = None,
    leg: str = "delivery",
    horizon: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Delivery-time CDF: the cumulative incidence of completing ``leg``, log time axis.

    One step line per group of ``by`` (a messages column, e.g. 'kind' or
    'recipient_domain'). The curve is the Aalen-Johansen estimate
    (:func:`sim.simulation.stats.cumulative_incidence`): rows still open at the horizon
    are censored and bounces and losses compete, so it ends at the delivered share of
    all rows that began the leg, not at 1. Where rows were still open, a dashed
    segment rises from the curve's end to what it could reach if they all completed.
    ``horizon`` defaults to the scenario's (for a DataFrame: its latest time). Each
    line has ``gid`` ``"cdf:<group>"``, its dashed extension ``"open:<group>"``.
    """
    messages = _messages(results)
    h = _horizon(results, horizon)
    ax = _new_axes(ax)
    drawn = 0
    for label, part in _groups(messages, by):
        o = leg_outcomes(part, leg, h)
        if len(o) == 0:
            continue
        d, ev = o["duration"].to_numpy(), o["event"].to_numpy()
        curve, open_mass = aalen_johansen(d, ev, EVENTS["delivered"])
        t, f = curve["time"].to_numpy(), curve["cif"].to_numpy()
        keep = t > 0  # a log axis has no 0; the first step starts at the first positive time
        t, f = t[keep], f[keep]
        if len(t) == 0:
            continue
        done, n = int((ev == EVENTS["delivered"]).sum()), len(ev)
        open_rows = int((ev == 0).sum())
        text = f"{label}: {done:,} of {n:,} delivered"
        if open_rows:
            text += f", {open_rows:,} in flight"
        (line,) = ax.step(
            np.concatenate(([t[0]], t)), np.concatenate(([0.0], f)), where="post", label=text
        )
        line.set_gid(f"cdf:{label}")
        if open_mass > 0:
            (ext,) = ax.plot(
                [t[-1], t[-1]], [f[-1], min(1.0, f[-1] + open_mass)], linestyle="--",
                color=line.get_color(), alpha=0.7,
            )
            ext.set_gid(f"open:{label}")
        drawn += 1
    ax.set_xscale("log")
    ax.set_xlabel("delivery time (s)" if leg == "delivery" else f"{leg} time (s)")
    ax.set_ylabel("fraction of messages delivered")
    ax.set_ylim(0, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    if drawn:
        title = by or ""
        if any(line.get_gid() and str(line.get_gid()).startswith("open:") for line in ax.lines):
            title = (title + "; " if title else "") + "dashed: could still complete"
        ax.legend(title=title or None, fontsize="small", loc="upper left")
    return ax


def _seconds(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def legs(
    results: Results | pd.DataFrame,
    horizon: float | None = None,
    ax: Axes | None = None,
    legs: Sequence[str] = JOURNEY,
) -> Axes:
    """p50 and p95 of each leg (submission, relay, local delivery, retrieval), as bars.

    The statistics are the summary's censored ones (:func:`sim.simulation.summarize`):
    a bar whose value open rows could still move is hatched and labelled "> t"; a
    percentile not reached (too many bounced or lost) has no bar and reads "n/r".
    Log time axis, bars labelled in seconds.
    """
    messages = _messages(results)
    h = _horizon(results, horizon)
    times = summarize(messages, horizon=h).times
    unknown = [leg for leg in legs if leg not in times.index]
    if unknown:
        raise PlotError(f"unknown leg {unknown[0]!r}; choose from {', '.join(name for name, _, _ in LEGS)}")
    ax = _new_axes(ax, (8, 4.5))
    width = 0.38
    positions = np.arange(len(legs))
    top = 0.0
    low = np.inf
    for i, (stat, colour) in enumerate((("p50", "tab:blue"), ("p95", "tab:orange"))):
        values = times.loc[list(legs), stat].to_numpy(dtype=float)
        flagged = times.loc[list(legs), f"{stat}_censored"].to_numpy(dtype=bool)
        x = positions + (i - 0.5) * width
        heights = np.where(np.isnan(values), 0.0, values)
        bars = ax.bar(x, heights, width, label=stat, color=colour, alpha=0.85)
        for bar, value, cens, began in zip(
            bars, values, flagged, (times.loc[list(legs), "count"] + times.loc[list(legs), "censored"]) > 0,
            strict=True,
        ):
            if cens:
                bar.set_hatch("//")
            if value != value:
                text, y = ("n/r" if began else "-"), None
            else:
                text, y = (f"> {_seconds(value)}" if cens else _seconds(value)), value
                top, low = max(top, value), min(low, value) if value > 0 else low
            ax.annotate(
                text, (bar.get_x() + bar.get_width() / 2, y if y and y > 0 else 1.0),
                ha="center", va="bottom", fontsize="x-small", xytext=(0, 2), textcoords="offset points",
            )
    ax.set_yscale("log")
    if top > 0:
        ax.set_ylim(min(low, 1.0) / 3, top * 4)
    ax.set_xticks(positions, list(legs))
    ax.set_xlabel("leg of the journey")
    ax.set_ylabel("time (s)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(title="hatched: > t (censored)", fontsize="small")
    return ax


def outage_windows(scenario: Scenario) -> dict[str, list[tuple[float, float]]]:
    """When something is down by the scenario's script: its nodes' ``outages:`` and its
    scripted ``faults:`` (a node fault by node, a link fault as ``a~b``, a partition by
    its region or its nodes), ``{what: [(start, end), ...]}``. Random faults are drawn
    during the run and are not here."""
    windows: dict[str, list[tuple[float, float]]] = {}
    for node in scenario.topology.nodes:
        spans = getattr(node, "outages", None)
        if spans:
            windows[node.id] = [(float(o.start), float(o.end)) for o in spans]
    for fault in scenario.faults:
        if fault.random is not None or fault.end is None or isinstance(fault, DeviceFault):
            continue  # a device fault is an instant, or random
        span = (float(fault.start), float(fault.end))
        if isinstance(fault, NodeFault):
            names = fault.targets
        elif isinstance(fault, LinkFault):
            names = [f"{fault.a}~{fault.b}"]
        else:
            names = [fault.region or ",".join(fault.nodes)]
        for name in names:
            windows.setdefault(name, []).append(span)
    return windows


_TS_COLUMNS = ("time", "component", "metric")


def timeseries(
    frame: pd.DataFrame,
    outages: Scenario | dict[str, list[tuple[float, float]]] | None = None,
    fig: Figure | None = None,
) -> Figure:
    """One panel per metric of a ``timeseries.parquet`` table, a line per component.

    ``frame`` has one row per (time, component, metric) and the columns ``value``,
    ``mean`` or ``max``: a panel plots ``value`` where the metric has it, else
    ``mean``, else ``max`` (named in the y label). Outage windows (a scenario's MX
    outages, or ``{node: [(start, end)]}``) are shaded in every panel.
    """
    missing = [c for c in _TS_COLUMNS if c not in frame.columns]
    if missing:
        raise PlotError(f"timeseries: no column {missing[0]!r} (expected time, component, metric, value/mean/max)")
    windows = outage_windows(outages) if isinstance(outages, Scenario) else dict(outages or {})
    metrics = [str(m) for m in pd.unique(frame["metric"].astype(str))]
    if not metrics:
        raise PlotError("timeseries: the table has no rows")
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(8, 2.4 * len(metrics) + 0.6))
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    shades = ["tab:red", "tab:pink", "tab:olive", "tab:cyan"]
    for ax, metric in zip(axes, metrics, strict=True):
        rows = frame[frame["metric"].astype(str) == metric]
        # The time-weighted mean of each interval says what happened between samples; the
        # level at the sample instant alone misses every short burst.
        column = next((c for c in ("mean", "value", "max") if c in rows and rows[c].notna().any()), None)
        if column is None:
            raise PlotError(f"timeseries: metric {metric!r} has no value, mean or max")
        quiet = 0
        for component, part in rows.groupby(rows["component"].astype(str), sort=True):
            part = part.sort_values("time")
            if not part[column].fillna(0).any() and len(rows["component"].unique()) > 1:
                quiet += 1  # always zero: left out of the panel (and its legend)
                continue
            where = "pre" if column != "value" else "post"  # a mean covers the interval before
            ax.step(part["time"], part[column], where=where, label=str(component), linewidth=1.2)
        if quiet:
            ax.plot([], [], " ", label=f"{quiet} more at 0")
        for i, (node, spans) in enumerate(sorted(windows.items())):
            for j, (start, end) in enumerate(spans):
                ax.axvspan(start, end, color=shades[i % len(shades)], alpha=0.15,
                           label=f"{node} down" if j == 0 else None)
        ax.set_ylabel(f"{metric}\n({'time-average' if column == 'mean' else column})", fontsize="small")
        ax.set_title(metric, fontsize="small", loc="left")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small", loc="upper right")
    axes[-1].set_xlabel("simulated time (s)")
    fig.tight_layout()
    return fig


def swept_columns(summary: pd.DataFrame) -> list[str]:
    """The swept parameters of a sweep's ``summary.parquet``: the columns before ``replication``."""
    columns = [str(c) for c in summary.columns]
    if "replication" not in columns:
        raise PlotError("summary.parquet has no 'replication' column; not a mailflow sweep summary")
    return columns[: columns.index("replication")]


def metric_columns(summary: pd.DataFrame) -> list[str]:
    """The metrics of a sweep summary: numeric columns after ``seed`` that are not flags."""
    columns = [str(c) for c in summary.columns]
    after = columns.index("seed") + 1 if "seed" in columns else len(swept_columns(summary)) + 1
    return [
        c for c in columns[after:]
        if not c.endswith("_censored") and pd.api.types.is_numeric_dtype(summary[c])
        and not pd.api.types.is_bool_dtype(summary[c])
    ]


_TIME_STAT = re.compile(r"_(p\d+|rmean|mean|max|min|s)$")


def metric_label(metric: str) -> str:
    """An axis label with the metric's unit: seconds, share, messages or attempts."""
    if _TIME_STAT.search(metric):
        return f"{metric} (s)"
    if metric.endswith("_rate"):
        return f"{metric} (share of messages)"
    if metric.startswith("n_"):
        return f"{metric} (messages)"
    if metric.startswith("attempts"):
        return f"{metric} (attempts per message)"
    return metric


def sweep(
    summary: pd.DataFrame,
    metric: str | None = None,
    x: str | None = None,
    by: str | None = None,
    level: float = 0.95,
    ax: Axes | None = None,
) -> Axes:
    """A sweep's metric against one swept parameter, mean and t interval over replications.

    ``summary`` is shaped like a sweep's ``summary.parquet`` (swept parameters, then
    ``replication``, ``seed``, metrics). ``metric`` defaults to ``delivery_p95`` (or
    the first metric present), ``x`` to the first swept column; ``by`` (another swept
    column) draws one line and one band (a PolyCollection) per level. The band is the
    Student t interval (:func:`sim.simulation.stats.t_interval`) at ``level``; a point
    where ``<metric>_censored`` is true in some replication has a hollow marker (its
    value is a lower bound there).
    """
    swept = swept_columns(summary)
    metrics = metric_columns(summary)
    if metric is None:
        if not metrics:
            raise PlotError("summary.parquet has no metric columns")
        metric = "delivery_p95" if "delivery_p95" in metrics else metrics[0]
    elif metric not in summary.columns:
        raise PlotError(f"--metric {metric}: no such column; choose from {', '.join(metrics)}")
    if x is None:
        if not swept:
            raise PlotError("summary.parquet has no swept parameter columns")
        x = swept[0]
    elif x not in swept:
        raise PlotError(f"--x {x}: not a swept parameter; choose from {', '.join(swept) or 'none'}")
    if by is not None and (by not in swept or by == x):
        others = [c for c in swept if c != x]
        raise PlotError(f"--by {by}: not another swept parameter; choose from {', '.join(others) or 'none'}")
    ax = _new_axes(ax)
    flag = f"{metric}_censored"
    levels = [(None, summary)] if by is None else list(summary.groupby(by, sort=True, dropna=False))
    categorical = not pd.api.types.is_numeric_dtype(summary[x])
    ticks = sorted(pd.unique(summary[x].astype(str))) if categorical else []
    any_hollow = False
    for level_value, part in levels:
        rows = []
        for key, cell in part.groupby(x, sort=True, dropna=False):
            xv: Any = key
            mean, lo, hi = t_interval(cell[metric].to_numpy(dtype=float), level)
            censored = bool(cell[flag].astype(bool).any()) if flag in cell else False
            rows.append((ticks.index(str(xv)) if categorical else float(xv), mean, lo, hi, censored, len(cell)))
        table = pd.DataFrame(rows, columns=["x", "mean", "low", "high", "censored", "n"]).sort_values("x")
        label = "all" if by is None else f"{by} = {level_value!s}"
        label += f" (n={int(table['n'].min())}" + (f"-{int(table['n'].max())})" if table["n"].nunique() > 1 else ")")
        (line,) = ax.plot(table["x"], table["mean"], marker="o", label=label)
        colour = line.get_color()
        hollow = table[table["censored"]]
        if len(hollow):
            ax.plot(hollow["x"], hollow["mean"], linestyle="none", marker="o", color=colour,
                    markerfacecolor="white", markeredgecolor=colour)
        band = ax.fill_between(table["x"], table["low"], table["high"], color=colour, alpha=0.2)
        band.set_gid(f"band:{label}")
        any_hollow = any_hollow or bool(len(hollow))
    if any_hollow:
        # Say what a hollow marker means where it is seen, not only in the docs.
        ax.plot([], [], linestyle="none", marker="o", color="grey", markerfacecolor="white",
                label="hollow: a lower bound (rows still in flight)")
    if categorical:
        ax.set_xticks(range(len(ticks)), ticks)
    ax.set_xlabel(x)
    ax.set_ylabel(metric_label(metric))
    ax.grid(True, alpha=0.3)
    ax.legend(title=f"mean, {level:.0%} t interval", fontsize="small")
    return ax


def topology(scenario: Scenario | Results, ax: Axes | None = None, seed: int = 0) -> Axes:
    """The scenario's network: node kinds as colours and shapes, with a legend.

    With fewer than 40 nodes, nodes are named and edges labelled with their one-way
    latency in milliseconds. The layout is networkx's Kamada-Kawai layout for those,
    the spring layout with ``seed`` for larger graphs.
    """
    import networkx as nx

    sc = scenario.scenario if isinstance(scenario, Results) else scenario
    graph = nx.Graph()
    for node in sc.topology.nodes:
        graph.add_node(node.id, kind=node.kind)
    for edge in sc.topology.edges:
        graph.add_edge(edge.a, edge.b, latency=float(edge.latency))
    ax = _new_axes(ax, (8, 6))
    small = graph.number_of_nodes() < SMALL_GRAPH
    # Kamada-Kawai spreads a small graph evenly; a large one takes the spring layout.
    pos = nx.kamada_kawai_layout(graph, weight=None) if small else nx.spring_layout(graph, seed=seed, weight=None)
    nx.draw_networkx_edges(graph, pos, ax=ax, edge_color="0.6", width=1.0 if small else 0.4)
    for kind, (colour, marker) in NODE_STYLE.items():
        nodes = [n for n, k in graph.nodes(data="kind") if k == kind]
        if not nodes:
            continue
        drawn = nx.draw_networkx_nodes(
            graph, pos, nodelist=nodes, node_color=colour, node_shape=marker, ax=ax,
            node_size=300 if small else 40, label=f"{kind} ({len(nodes)})",
        )
        drawn.set_gid(f"nodes:{kind}")
    if small:
        nx.draw_networkx_labels(graph, pos, ax=ax, font_size=7, verticalalignment="bottom")
        labels = {(a, b): f"{1000 * lat:.3g} ms" for a, b, lat in graph.edges(data="latency")}
        nx.draw_networkx_edge_labels(graph, pos, edge_labels=labels, ax=ax, font_size=6, alpha=0.8)
    ax.set_title(
        f"{sc.name}: {graph.number_of_nodes()} nodes, {graph.number_of_edges()} links"
        + ("; edge labels: one-way latency (ms)" if small else ""),
        fontsize="small",
    )
    ax.legend(title="node kind", fontsize="small", scatterpoints=1, markerscale=0.7 if small else 2)
    ax.set_axis_off()
    return ax


# --- a results folder to files ---------------------------------------------------------


@dataclass
class Rendered:
    """What :func:`render` did: the files written and the notes for the user."""

    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _save(fig: Figure, out: Path, name: str) -> list[Path]:
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    return paths


def render(
    folder: str | Path,
    out: str | Path,
    kinds: Sequence[str] | None = None,
    by: str | None = None,
    metric: str | None = None,
    x: str | None = None,
) -> Rendered:
    """Draw the plots of a run folder or a sweep folder into ``out`` as PNG and SVG.

    A run folder holds ``run.json`` and ``messages.parquet``; its default kinds are
    cdf, legs and topology, and timeseries when it has ``timeseries.parquet``. A sweep
    folder holds ``summary.parquet``; its default kind is sweep. Raises
    :class:`PlotError` (one line) for a folder that is neither, an unknown kind or one
    that does not apply, an unknown ``by``, ``metric`` or ``x``.
    """
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    path = Path(folder)
    unknown = [k for k in kinds or () if k not in KINDS]
    if unknown:
        raise PlotError(f"--kind {unknown[0]}: unknown kind; choose from {', '.join(KINDS)}")
    is_sweep = (path / "summary.parquet").is_file()
    is_run = (path / "run.json").is_file() and (path / "messages.parquet").is_file()
    if not is_sweep and not is_run:
        what = "does not exist" if not path.exists() else "is not a mailflow results folder"
        raise PlotError(f"{path}: {what} (a run has run.json and messages.parquet, a sweep summary.parquet)")
    done = Rendered()
    if is_sweep and not is_run:
        wanted = list(dict.fromkeys(kinds or ["sweep"]))
        if wanted != ["sweep"]:
            other = next(k for k in wanted if k != "sweep")
            raise PlotError(f"--kind {other}: {path} is a sweep folder; only --kind sweep applies")
        try:
            summary = pd.read_parquet(path / "summary.parquet")
        except (OSError, ValueError) as exc:
            raise PlotError(f"{path / 'summary.parquet'}: cannot read it ({exc})") from None
        fig = Figure(figsize=(7, 4.5))
        sweep(summary, metric=metric, x=x, by=by, ax=fig.add_subplot())
        Path(out).mkdir(parents=True, exist_ok=True)
        done.files += _save(fig, Path(out), "sweep")
        return done
    if "sweep" in (kinds or ()):
        raise PlotError(f"--kind sweep: {path} is a run folder, not a sweep (no summary.parquet)")
    for flag, value in (("--metric", metric), ("--x", x)):
        if value is not None:
            raise PlotError(f"{flag} applies to --kind sweep on a sweep folder")
    try:
        results = Results.read(path)
    except (OSError, ValueError) as exc:
        raise PlotError(str(exc).replace("\n", " ")) from None
    if by is not None and by not in results.messages.columns:
        raise PlotError(f"--by {by}: no such column in messages.parquet; choose from "
                        f"{', '.join(map(str, results.messages.columns))}")
    series_file = path / "timeseries.parquet"
    has_series = series_file.is_file()
    if kinds:
        wanted = list(dict.fromkeys(kinds))
        if "timeseries" in wanted and not has_series:
            raise PlotError(f"--kind timeseries: {path} has no timeseries.parquet")
    else:
        wanted = ["cdf", "legs", "topology"]
        if has_series:
            wanted.insert(2, "timeseries")
        else:
            done.notes.append(f"{path} has no timeseries.parquet: no timeseries plot")
    Path(out).mkdir(parents=True, exist_ok=True)
    for kind in wanted:
        if kind == "cdf":
            fig = Figure(figsize=(7, 4.5))
            cdf(results, by=by, ax=fig.add_subplot())
        elif kind == "legs":
            fig = Figure(figsize=(8, 4.5))
            legs(results, ax=fig.add_subplot())
        elif kind == "topology":
            fig = Figure(figsize=(10, 8))
            topology(results, ax=fig.add_subplot())
        else:  # timeseries
            try:
                frame = pd.read_parquet(series_file)
            except (OSError, ValueError) as exc:
                raise PlotError(f"{series_file}: cannot read it ({exc})") from None
            n = max(1, frame["metric"].nunique()) if "metric" in frame else 1
            fig = timeseries(frame, results.scenario, fig=Figure(figsize=(8, 2.4 * n + 0.6)))
        done.files += _save(fig, Path(out), kind)
    return done
