"""What a run produced, and how it is written: the tables with their provenance."""

from __future__ import annotations

import importlib.metadata
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .._version import __version__
from ..config import Scenario
from .summary import Summary, summarize

__all__ = ["PROVENANCE_PACKAGES", "Results"]

PROVENANCE_PACKAGES = ("simpy", "numpy", "networkx", "pandas", "pyarrow", "pydantic")


def _version_of(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _write_parquet(frame: pd.DataFrame, path: Path, provenance: dict[str, Any], index: bool) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=index)
    extra = {b"mailflow": json.dumps(provenance).encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    pq.write_table(table, path)


@dataclass
class Results:
    """What a run produced: the message table (and attempts, when traced), config and seed."""

    scenario: Scenario
    seed: int
    messages: pd.DataFrame
    wall_time: float
    stats: dict[str, Any] = field(default_factory=dict)
    version: str = __version__
    attempts: pd.DataFrame | None = None

    def summary(self, by: str | None = None) -> Summary:
        """Counts by status and delivery-time statistics per leg, overall or per group.

        ``by`` names a column to group by, e.g. ``"kind"`` or ``"recipient_domain"``.
        """
        return summarize(self.messages, by)

    def metadata(self) -> dict[str, Any]:
        """Everything needed to reproduce the run: config, seed, versions, wall time."""
        config = self.scenario.model_dump(mode="json")
        config["seed"] = self.seed
        return {
            "mailflow_version": self.version,
            "seed": self.seed,
            "scenario": config,
            "wall_time_s": self.wall_time,
            "horizon_s": self.scenario.horizon,
            "python": platform.python_version(),
            # numpy does not promise the same Generator streams across versions, and
            # networkx breaks ties between equal paths: both belong to the provenance.
            "versions": {name: _version_of(name) for name in PROVENANCE_PACKAGES},
            "traced": self.attempts is not None,
            "summary": self.summary().to_dict(),
            "components": self.stats,
        }

    def write(self, out: str | Path) -> Path:
        """Write ``messages.parquet``, ``attempts.parquet`` (if traced) and ``run.json``."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        meta = self.metadata()
        provenance = {k: meta[k] for k in ("mailflow_version", "seed", "scenario")}
        _write_parquet(self.messages, folder / "messages.parquet", provenance, index=True)
        if self.attempts is not None:
            _write_parquet(self.attempts, folder / "attempts.parquet", provenance, index=False)
        (folder / "run.json").write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
        return folder
