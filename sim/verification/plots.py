"""The plots of ``mailflow verify --out DIR``: per group, each case's simulated value
against its reference (PNG and SVG, ``verify-<group>``).

Cases of one group have different units, so each is drawn as the ratio simulated /
reference: a dot with its 95 % interval, the reference at 1 and the tolerance as a
band around it. Reality rows have no tolerance and span orders of magnitude: a log
axis. matplotlib's Figure without pyplot (no GUI backend, no global state).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

__all__ = ["draw"]


def draw(frame: pd.DataFrame, out: Path) -> list[Path]:
    """Draw one figure per group of ``frame`` (the table of
    :func:`sim.verification.table`) into ``out``; the files written."""
    from matplotlib.figure import Figure

    written: list[Path] = []
    for group, rows in frame.groupby("group", sort=False):
        rows = rows[rows["reference"].abs() > 0].reset_index(drop=True)
        if rows.empty:
            continue
        n = len(rows)
        fig = Figure(figsize=(8.0, 0.9 + 0.42 * n))
        ax = fig.add_subplot()
        ref = rows["reference"].abs()
        ratio = rows["simulated"] / rows["reference"]
        low = (rows["ci_low"] / rows["reference"]).fillna(ratio)
        high = (rows["ci_high"] / rows["reference"]).fillna(ratio)
        y = list(range(n))[::-1]
        reality = bool((rows["result"] == "compare").all())
        for i, (result, tolerance) in enumerate(zip(rows["result"], rows["tolerance"])):
            if result != "compare" and not math.isnan(tolerance):
                band = tolerance / float(ref.iloc[i])
                ax.fill_betweenx([y[i] - 0.3, y[i] + 0.3], 1 - band, 1 + band, color="tab:green", alpha=0.25,
                                 linewidth=0)
        colors = ["tab:red" if r == "FAIL" else "tab:blue" for r in rows["result"]]
        ax.errorbar(ratio, y, xerr=[(ratio - low).clip(lower=0), (high - ratio).clip(lower=0)], fmt="none",
                    ecolor="black", elinewidth=1, capsize=3)
        ax.scatter(ratio, y, c=colors, zorder=3, s=25)
        ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_yticks(y, [f"{c} ({u})" for c, u in zip(rows["case"], rows["unit"])], fontsize=8)
        if reality:
            ax.set_xscale("log")
            ax.set_xlabel("simulated / published figure (log scale; not scored)")
        else:
            ax.ticklabel_format(axis="x", useOffset=False)  # exact cases: ratios like 1 ± 1e-5, written out
            ax.set_xlabel("simulated / reference (green: tolerance; bars: 95 % interval)")
        ax.set_title(f"mailflow verify: {group}")
        for path in (out / f"verify-{group}.png", out / f"verify-{group}.svg"):
            fig.savefig(path, dpi=120, bbox_inches="tight")
            written.append(path)
    return written
