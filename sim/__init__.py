"""mailflow: a discrete-event simulator of the Internet's email infrastructure.

Notebook use::

    import sim
    scenario = sim.load_scenario("topologies/default.yaml")
    results = sim.run(scenario, seed=1)
    results.messages        # one row per message (pandas DataFrame)
    print(results.summary())
"""

from ._version import __version__
from .run import Results, Summary, run
from .scenario import Scenario, ScenarioError, load_scenario, parse_scenario

__all__ = [
    "Results",
    "Scenario",
    "ScenarioError",
    "Summary",
    "__version__",
    "load_scenario",
    "parse_scenario",
    "run",
]
