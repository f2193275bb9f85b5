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
"""

from ._version import __version__
from .config import Scenario, ScenarioError, load_scenario, parse_scenario
from . import generate
from .experiment import sweep
from .simulation import Results, Summary, build, run

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
