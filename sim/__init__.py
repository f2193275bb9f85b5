"""mailflow: a discrete-event simulator of the Internet's email infrastructure.

Notebook use::

    import sim
    scenario = sim.load_scenario("topologies/default.yaml")
    results = sim.run(scenario, seed=1)
    results.messages        # one row per message (pandas DataFrame)
    print(results.summary())
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mailflow")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

from .run import Results, Summary, run  # noqa: E402
from .scenario import Scenario, ScenarioError, load_scenario  # noqa: E402

__all__ = ["Results", "Scenario", "ScenarioError", "Summary", "__version__", "load_scenario", "run"]
