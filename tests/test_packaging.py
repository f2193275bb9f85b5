"""An installed mailflow (not editable) runs from any folder: the default scenario ships inside.

Everything here is offline: the wheel is built with the build backend already in the
environment (``--no-build-isolation``) and installed with ``--no-deps --no-index``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import sim

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = "sim/config/scenarios/default.yaml"


def pip(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
        capture_output=True, text=True, env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the sources, so the checkout gets no build/ folder."""
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(ROOT / "sim", src / "sim", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(dist), str(src))
    (built,) = dist.glob("mailflow-*.whl")
    return built


def test_there_is_one_default_scenario() -> None:
    assert sim.config.default_scenario_path() == ROOT / SHIPPED
    copies = [p for p in ROOT.rglob("default.yaml") if ".venv" not in p.parts and "build" not in p.parts]
    assert copies == [ROOT / SHIPPED]


def test_wheel_ships_the_default_scenario(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read(SHIPPED)
    assert shipped == (ROOT / SHIPPED).read_bytes()


def test_installed_copy_runs_from_another_folder(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    pip("install", "--no-deps", "--target", str(site), str(wheel))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The installed copy comes first on the path; the dependencies come from this
    # environment. Nothing points at the checkout, and the run starts elsewhere.
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import sim; print(sim.__file__); print(sim.config.default_scenario_path())"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    assert all(Path(line).is_relative_to(site) for line in where), where

    proc = subprocess.run(
        [str(site / "bin" / "mailflow"), "run", "--set", "duration=60"],
        cwd=elsewhere, env=env, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    (folder,) = (elsewhere / "results").iterdir()
    assert folder.name.startswith("default-seed1-")
    meta = json.loads((folder / "run.json").read_text())
    assert meta["scenario"]["name"] == "default" and meta["scenario"]["duration"] == 60
