"""One run's whole life, in one place: build, (hook), start, run to the horizon, collect.

:func:`run` builds the model from a scenario (``sim.simulation.build``), lets a hook
change it, starts every component, runs until ``duration + drain`` and returns
:class:`~sim.simulation.results.Results`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..config import Scenario
from .build import Hook, build
from .results import Results

__all__ = ["PROGRESS_STEPS", "run"]

PROGRESS_STEPS = 100


def run(
    scenario: Scenario,
    seed: int | None = None,
    progress: Callable[[float, int], None] | None = None,
    trace: bool = False,
    hook: Hook | None = None,
    sample_every: float | None = None,
) -> Results:
    """Simulate ``scenario`` to its horizon and return the results.

    ``seed`` overrides the scenario's seed; the same scenario and seed always give the
    same results. ``progress(simulated_time, messages_created)`` is called about a
    hundred times along the way (for progress bars); it does not change the results.
    ``trace`` also keeps the attempts table (one row per attempt at one server).
    ``hook(model)`` is called between build and start, to change state through the
    components' own methods (``model.node("mx").set_up(False)``, ``model.at(t, ...)``).
    ``sample_every`` (seconds) also keeps the time series of queue lengths, sessions and
    the like, as time-weighted levels on that grid (``Results.timeseries``,
    ``timeseries.parquet``); it costs no extra event and does not change the results.
    """
    started = time.perf_counter()
    model = build(scenario, seed, trace=trace, sample_every=sample_every)
    if hook is not None:
        hook(model)
    model.start()
    horizon = scenario.horizon
    if progress is None:
        model.env.run(until=horizon)
    else:
        for step in range(1, PROGRESS_STEPS + 1):
            # The last step stops exactly at the horizon, as an unreported run does.
            until = horizon if step == PROGRESS_STEPS else horizon * step / PROGRESS_STEPS
            model.env.run(until=until)
            progress(model.env.now, len(model.recorder))
    results = model.results(hook, release=True)
    results.wall_time = time.perf_counter() - started
    return results
