"""`mailflow --help` and `import sim` stay light: the model and its libraries load on use.

Timing is for benchmarks (docs/performance.md); this checks the cause of a slow start:
what a fresh interpreter has imported.
"""

from __future__ import annotations

import json
import subprocess
import sys

# Not pydantic: typer itself (0.2x) coerces options with it once a command is built
# (and pydantic then reads its plugins' metadata, so a command's help loads
# importlib.metadata too; importing the CLI must not: the package's version read at
# import time was a third of the CLI's start).
HEAVY = ("pandas", "simpy", "networkx", "pyarrow", "numpy", "dask", "matplotlib", "scipy")

PROBE = """
import json, sys
{code}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def imported_after(code: str) -> list[str]:
    """The heavy libraries a fresh interpreter has imported after running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code, heavy=HEAVY)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_importing_the_cli_imports_no_heavy_library() -> None:
    assert imported_after("import sim.faces.cli") == []
    probe = "import sys, sim.faces.cli\nassert 'importlib.metadata' not in sys.modules"
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_help_imports_no_heavy_library() -> None:
    code = (
        "from sim.faces.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "try:\n    main(['run', '--help'])\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
    )
    assert imported_after(code) == []


def test_import_sim_is_light_and_its_names_load_on_use() -> None:
    assert imported_after("import sim") == []
    # The public API is there on first use, and the layers are reachable as attributes.
    code = (
        "import sim\n"
        "assert callable(sim.run) and callable(sim.load_scenario) and callable(sim.sweep)\n"
        "assert sim.Scenario.__name__ == 'Scenario' and sim.config.default_scenario_path().is_file()\n"
        "assert set(sim.__all__) <= set(dir(sim))\n"
    )
    assert "simpy" in imported_after(code)


def test_an_unknown_attribute_of_sim_is_an_attribute_error() -> None:
    import sim

    try:
        sim.nope  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert str(exc) == "module 'sim' has no attribute 'nope'"
    else:
        raise AssertionError("sim.nope did not raise")
