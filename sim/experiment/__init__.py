"""Experiments above one run: sweeps over parameters with replications, run on Dask,
into a results store (``sweep.json``, ``runs/``, ``summary.parquet``)."""

from .sweep import (
    MAIN_METRICS,
    SweepError,
    SweepFile,
    SweepSpec,
    execute,
    load_sweep_file,
    parse_axis,
    point_table,
    replication_seed,
    run_spec,
    sweep,
)

__all__ = [
    "MAIN_METRICS",
    "SweepError",
    "SweepFile",
    "SweepSpec",
    "execute",
    "load_sweep_file",
    "parse_axis",
    "point_table",
    "replication_seed",
    "run_spec",
    "sweep",
]
