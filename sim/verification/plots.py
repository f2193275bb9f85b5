"""The plots of ``mailflow verify --out DIR``: per group, each case's simulated value
against its reference (PNG and SVG, ``verify-<group>``).

Cases of one group have different units and tolerances, so a scored case is drawn as
its error in units of its tolerance, (simulated - reference) / tolerance: a dot with
its 95 % interval, the reference at 0 and the tolerance as the band from -1 to 1 (a
case with tolerance 0 sits at 0 when exact, else at the edge). Errors beyond 3
tolerances are drawn at the edge, as a failure. Comparisons with reality have no
tolerance and span orders of magnitude: a panel of their own, simulated / published
figure on a log axis; a comparison whose value is 0 (a loss the world has no cause for)
has no place on it and is an open marker at the panel's floor, labelled with its value.
matplotlib's Figure without pyplot (no GUI, no global state).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["draw", "figure"]


EDGE = 3.0  # errors beyond this many tolerances are drawn at the edge


def _in_tolerances(rows: pd.DataFrame) -> tuple[list[float], list[float], list[float]]:
    """Each scored row's error and 95 % interval in units of its tolerance, clipped."""
    xs, lows, highs = [], [], []
    for sim, low, high, ref, tol in zip(rows["simulated"], rows["ci_low"], rows["ci_high"], rows["reference"],
                                        rows["tolerance"]):
        if tol > 0:
            x, lo, hi = ((v - ref) / tol for v in (sim, low, high))
        else:  # exact to the last digit: at 0, or off the scale
            x = 0.0 if sim == ref else math.copysign(EDGE, sim - ref)
            lo = hi = x
        x = x if x == x else EDGE  # no value: a failure
        xs.append(max(-EDGE, min(EDGE, x)))
        lows.append(max(-EDGE, min(EDGE, lo if lo == lo else x)))
        highs.append(max(-EDGE, min(EDGE, hi if hi == hi else x)))
    return xs, lows, highs


def _ratios(rows: pd.DataFrame) -> tuple[list[float], list[float], list[float], list[int], float]:
    """Each comparison's simulated / published figure and its interval, the rows whose
    value is 0 or below (they and their interval's ends sit at the floor) and the floor:
    a decade below the smallest positive figure, so a 0 is drawn apart from any value."""
    ref = rows["reference"]
    x = list(rows["simulated"] / ref)
    low = list((rows["ci_low"] / ref).fillna(rows["simulated"] / ref))
    high = list((rows["ci_high"] / ref).fillna(rows["simulated"] / ref))
    positive = [v for v in x + low + high if 0 < v < math.inf]
    floor = 10.0 ** (math.floor(math.log10(min(positive + [1.0]))) - 1)
    zeros = [i for i, v in enumerate(x) if v <= 0]  # NaN (no value) is not <= 0: drawn as a cross
    return ([max(v, floor) if v == v else v for v in x], [max(v, floor) if v == v else v for v in low],
            [max(v, floor) if v == v else v for v in high], zeros, floor)


def figure(group: str, rows: pd.DataFrame) -> Figure | None:
    """The figure of one group's rows of the table (None when nothing can be drawn)."""
    from matplotlib.figure import Figure

    scored = rows[rows["result"] != "compare"].reset_index(drop=True)
    compared = rows[(rows["result"] == "compare") & (rows["reference"].abs() > 0)].reset_index(drop=True)
    panels = [p for p in (scored, compared) if len(p)]
    if not panels:
        return None
    fig = Figure(figsize=(8.0, 0.9 + 0.36 * sum(len(p) for p in panels) + 0.6 * (len(panels) - 1)))
    axes = fig.subplots(len(panels), 1, squeeze=False,
                        gridspec_kw={"height_ratios": [max(1, len(p)) for p in panels]})[:, 0]
    for ax, part in zip(axes, panels):
        n = len(part)
        y = list(range(n))[::-1]
        if part is scored:
            x, low, high = _in_tolerances(part)
            zeros: list[int] = []
            floor = 0.0  # a scored panel is linear: a 0 has its place
            ax.axvspan(-1, 1, color="tab:green", alpha=0.2, linewidth=0)
            ax.axvline(0.0, color="black", linewidth=0.8, linestyle="--")
            ax.set_xlim(-EDGE - 0.2, EDGE + 0.2)
            ax.set_xlabel("(simulated - reference) / tolerance (green: passes; bars: 95 % interval)")
        else:
            x, low, high, zeros, floor = _ratios(part)
            ax.set_xscale("log")
            ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
            ax.set_xlabel("simulated / published figure (log scale; not scored)")
        colors = ["tab:red" if r == "FAIL" else "tab:blue" for r in part["result"]]
        ax.errorbar(x, y, xerr=[[max(0.0, a - b) for a, b in zip(x, low)],
                                [max(0.0, b - a) for a, b in zip(x, high)]],
                    fmt="none", ecolor="black", elinewidth=1, capsize=3)
        # A case with no value (it raised, or measured nothing) is a red cross at the
        # right edge of a scored panel, at 1 on a comparison's log axis; not a dot.
        missing = [not (v == v) for v in part["simulated"]]
        zero = set(zeros)
        seen = [i for i, m in enumerate(missing) if not m and i not in zero]
        ax.scatter([x[i] for i in seen], [y[i] for i in seen], c=[colors[i] for i in seen], zorder=3, s=25)
        if zero:  # a value of 0 has no place on a log axis: a marker at the floor, labelled
            ax.scatter([floor] * len(zero), [y[i] for i in sorted(zero)], facecolors="white", edgecolors="tab:blue",
                       marker="<", zorder=3, s=40)
            for i in sorted(zero):
                ax.annotate(f"{part['simulated'].iloc[i]:.3g}", (floor, y[i]), xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
            ax.set_xlim(left=floor / 2)
        lost = [i for i, m in enumerate(missing) if m]
        if lost:
            at = EDGE if part is scored else 1.0
            ax.scatter([at] * len(lost), [y[i] for i in lost], c="tab:red", marker="x", zorder=3, s=40,
                       label="no value (the case raised)")
            ax.legend(loc="lower left", fontsize=7)
        ax.set_yticks(y, [f"{c} ({u})" for c, u in zip(part["case"], part["unit"])], fontsize=7)
    axes[0].set_title(f"mailflow verify: {group}")
    return fig


def draw(frame: pd.DataFrame, out: Path) -> list[Path]:
    """Draw one figure per group of ``frame`` (the table of
    :func:`sim.verification.table`) into ``out``; the files written."""
    written: list[Path] = []
    for group, rows in frame.groupby("group", sort=False):
        fig = figure(str(group), rows)
        if fig is None:
            continue
        for path in (out / f"verify-{group}.png", out / f"verify-{group}.svg"):
            fig.savefig(path, dpi=120, bbox_inches="tight")
            written.append(path)
    return written
