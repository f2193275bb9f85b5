"""The benchmark scripts run (their figures are measured by `make bench`, not here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` as a module (it is not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCH.glob("*.py")))
def test_every_benchmark_imports(name: str) -> None:
    assert load(name).__doc__  # each says what it measures


def test_the_scale_benchmark_reads_validates_and_builds_a_small_world(tmp_path: Path) -> None:
    # The child step of benchmarks/scale.py, on 20 domains: the imports it makes inside
    # (YAML reading, validation, build) must exist, as a moved function once broke it.
    scale = load("scale")
    path = tmp_path / "internet-20.yaml"
    assert scale.write(20, str(path), 100) > 0
    out = scale.one(str(path), simulate=False)
    assert out["build_s"] >= 0 and out["build_mb"] > 0
