"""Plots of delivery statistics (matplotlib), for notebooks and reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..simulation import Results, leg_times

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["leg_times", "plot_cdf"]

def plot_cdf(
    results: Results | pd.DataFrame,
    leg: str = "delivery",
    by: str | None = None,
    ax: Axes | None = None,
    log: bool = True,
) -> Axes:
    """Empirical CDF of one leg's times, one line per group of ``by`` (e.g. 'kind')."""
    import matplotlib.pyplot as plt

    messages = results.messages if isinstance(results, Results) else results
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
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
