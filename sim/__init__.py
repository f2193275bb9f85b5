"""mailflow: a discrete-event simulator of the Internet's email infrastructure.

Notebook use::

    import sim
    scenario = sim.load_scenario()  # the default scenario; or a path
    results = sim.run(scenario, seed=1)
    results.messages        # one row per message (pandas DataFrame)
    print(results.summary())

The package is laid out in layers, each a folder: ``config`` (what a run simulates),
``core`` (bookkeeping), ``world`` (the network), ``mail`` (the model, in the message's
order), ``simulation`` (one run), ``experiment`` (many runs) and ``faces`` (CLI, plots).

The names below are imported when first used (module ``__getattr__``), so that
``import sim`` and ``mailflow --help`` do not pay for pandas, SimPy and the model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._version import __version__
    from .config import Scenario, ScenarioError, load_scenario, parse_scenario
    from .experiment.sweep import sweep
    from .simulation import Results, Summary, run
    from .simulation.build import build

# Public name -> the module that defines it.
_LAZY = {
    "__version__": "sim._version",  # importlib.metadata alone is a third of the CLI's start
    "Scenario": "sim.config",
    "ScenarioError": "sim.config",
    "load_scenario": "sim.config",
    "parse_scenario": "sim.config",
    "sweep": "sim.experiment",
    "Results": "sim.simulation",
    "Summary": "sim.simulation",
    "build": "sim.simulation",
    "run": "sim.simulation",
}
# Folders reachable as attributes after a bare ``import sim`` (``sim.config.…``), and
# the plots module (``sim.plots``).
_MODULES = {
    "config": "sim.config",
    "core": "sim.core",
    "world": "sim.world",
    "mail": "sim.mail",
    "simulation": "sim.simulation",
    "experiment": "sim.experiment",
    "faces": "sim.faces",
    "plots": "sim.faces.plots",
    "generate": "sim.generate",  # synthetic Internets
}

__all__ = [
    "Results",
    "Scenario",
    "ScenarioError",
    "Summary",
    "__version__",
    "build",
    "generate",
    "load_scenario",
    "parse_scenario",
    "run",
    "sweep",
]


def __getattr__(name: str) -> Any:
    """Import a public name or a layer on first use, then keep it as an attribute."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _MODULES:
        try:
            value = importlib.import_module(_MODULES[name])
        except ModuleNotFoundError as exc:
            if exc.name != _MODULES[name]:
                raise  # the module is there and something it imports is missing
            raise AttributeError(f"module 'sim' has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_MODULES})
