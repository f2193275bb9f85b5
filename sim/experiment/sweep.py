"""Sweeps: many runs of one scenario over a grid of parameters, with replications.

A sweep is a scenario, a ``grid`` (every combination of its keys' values), a ``zip``
(keys whose values vary together, one combination per position), fixed ``set``
overrides, a number of replications and a base seed. Each (point, replication) is one
run, executed by :func:`execute` wherever it runs (in this process, a ``LocalCluster``
or a remote Dask scheduler): it simulates, writes its folder under ``DIR/runs`` and
returns one summary row, so the driver never holds any run's messages.

Seeds use common random numbers: replication ``r`` runs with the same seed at every
point, ``SeedSequence(base, spawn_key=(r,))`` reduced to a 32-bit integer, so points
are compared on the same random draws and their differences have less noise.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import platform
import shutil
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .._version import __version__
from ..config import Scenario, ScenarioError, ScenarioWarning, load_scenario, parse_scenario
from ..config.loading import _split_path, apply_overrides
from ..core.records import STATUSES
from ..core.rng import STREAMS
from ..simulation import Results, run
from ..simulation.results import PROVENANCE_PACKAGES, _version_of, run_id
from ..simulation.stats import t_interval
from ..simulation.summary import FLAGGED, LEGS, mail

__all__ = [
    "LOCAL_CLUSTER_CONFIG", "MAIN_METRICS", "METRIC_COLUMNS", "Run", "SweepError", "SweepFile", "SweepSpec",
    "execute", "load_sweep_file", "local_cluster", "parse_axis", "point_table", "replication_seed", "sweep",
]

Progress = Callable[[int, int, int], None]  # (done, failed, total)

_STATS = ("count", "censored", "rmean", "p50", "p95", "p99", "max")


def _leg_name(leg: str) -> str:
    return leg.replace(" ", "_")


# Every metric column, in order, whatever the runs gave: a failed run's row has them
# too (empty), so summary frames always have the same columns and dtypes.
METRIC_COLUMNS: tuple[str, ...] = (
    *(f"{_leg_name(leg)}_{s}" for leg, _, _ in LEGS for s in (*_STATS, *(f"{f}_censored" for f in FLAGGED))),
    "n_created", *(f"n_{s}" for s in STATUSES),
    "bounce_rate", "loss_rate", "deferral_rate", "attempts_mean",
)
# What the end-of-sweep table shows per point: mean and 95% interval over replications.
MAIN_METRICS = ("delivery_rmean", "delivery_p50", "delivery_p95", "end_to_end_p50", "bounce_rate", "deferral_rate")
_TAIL = ("wall_s", "status", "error")
_FLAGS = frozenset(f"{_leg_name(leg)}_{f}_censored" for leg, _, _ in LEGS for f in FLAGGED)
_COUNTS = frozenset(
    [f"{_leg_name(leg)}_{s}" for leg, _, _ in LEGS for s in ("count", "censored")]
    + ["n_created", *(f"n_{s}" for s in STATUSES)]
)


class SweepError(ValueError):
    """A sweep that cannot run as given: a bad key, values, folder or definition. One line."""


def replication_seed(base: int, replication: int) -> int:
    """The seed of replication ``replication``: the same at every point (common random numbers)."""
    state = np.random.SeedSequence(base, spawn_key=(replication,)).generate_state(1, dtype=np.uint32)
    return int(state[0])


def parse_axis(text: str, flag: str = "--grid") -> tuple[str, list[Any]]:
    """``KEY=V1,V2`` (YAML scalars) or ``KEY=[...]`` (a YAML list) -> (key, values)."""
    if "=" not in text:
        raise SweepError(f"{flag} {text}: expected KEY=V1,V2,...")
    key, _, rest = text.partition("=")
    key = key.strip()
    _check_key(key, flag)
    rest = rest.strip()
    try:
        if rest.startswith("["):
            values = yaml.safe_load(rest)
            if not isinstance(values, list):
                raise SweepError(f"{flag} {key}: expected a YAML list")
        else:
            values = [yaml.safe_load(part) if part.strip() else None for part in rest.split(",")]
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0]
        raise SweepError(f"{flag} {key}: values are not valid YAML ({problem})") from None
    if not values or any(v is None for v in values):
        raise SweepError(f"{flag} {key}: give one or more values, none empty")
    return key, values


def _check_key(key: str, flag: str) -> None:
    try:
        _split_path(key)
    except ScenarioError:
        raise SweepError(f"{flag} {key!r}: malformed key path") from None
    if key == "seed":
        # Each replication's seed is derived from the base seed (common random numbers):
        # sweeping the seed itself would fight that. More replications, or --seed.
        raise SweepError(f"{flag} seed: seeds come from --replications and --seed, not from the grid")


@dataclass
class SweepSpec:
    """What a sweep runs: the base scenario (``--set`` applied), the axes, replications, seed."""

    scenario: Scenario
    grid: dict[str, list[Any]] = field(default_factory=dict)
    zip: dict[str, list[Any]] = field(default_factory=dict)
    sets: list[str] = field(default_factory=list)
    replications: int = 1
    seed: int | None = None
    source: str | None = None  # the scenario file, for messages and sweep.json

    @property
    def base_seed(self) -> int:
        """The sweep's base seed: given, or the scenario's."""
        return self.scenario.seed if self.seed is None else self.seed

    def definition(self) -> dict[str, Any]:
        """Plain data that defines the sweep's runs; its digest guards ``--resume``."""
        return {
            "scenario": self.scenario.model_dump(mode="json"),
            "grid": self.grid,
            "zip": self.zip,
            "set": self.sets,
            "replications": self.replications,
            "seed": self.base_seed,
            # Runs drawn with other streams (an older mailflow) are other runs.
            "streams": STREAMS,
        }

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`definition`."""
        text = json.dumps(self.definition(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def points(self) -> list[dict[str, Any]]:
        """Every point: the grid's product, each combined with every zipped position."""
        both = sorted(set(self.grid) & set(self.zip))
        if both:
            raise SweepError(f"{both[0]}: given in both --grid and --zip")
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"{k} has {len(v)}" for k, v in self.zip.items())
            raise SweepError(f"--zip keys need the same number of values ({sizes})")
        zipped = [dict(zip(self.zip, vals, strict=True)) for vals in zip(*self.zip.values(), strict=True)]
        grid_points = [dict(zip(self.grid, vals, strict=True)) for vals in itertools.product(*self.grid.values())]
        return [{**g, **z} for g in grid_points for z in (zipped or [{}])]

    def resolve(self) -> list[tuple[dict[str, Any], Scenario]]:
        """Each point with its validated scenario; a bad key or value raises :class:`SweepError`."""
        if self.replications < 1:
            raise SweepError(f"--replications {self.replications}: give at least 1")
        for flag, axis in (("--grid", self.grid), ("--zip", self.zip)):
            for key, values in axis.items():
                _check_key(key, flag)
                if not values:
                    raise SweepError(f"{flag} {key}: give one or more values")
        base = self.scenario.model_dump(mode="json")
        resolved: list[tuple[dict[str, Any], Scenario]] = []
        seen: dict[str, dict[str, Any]] = {}
        for point in self.points():
            # JSON is YAML: the values go through the --set grammar exactly as typed ones do.
            overrides = [f"{k}={json.dumps(v)}" for k, v in point.items()]
            try:
                data = apply_overrides(copy.deepcopy(base), overrides)
                with warnings.catch_warnings():
                    # The base scenario's warnings were shown; one per point is noise.
                    warnings.simplefilter("ignore", ScenarioWarning)
                    sc = parse_scenario(data)
            except ScenarioError as exc:
                raise SweepError(f"point {_point_text(point)}: {exc}") from None
            ident = run_id(sc, None)
            if ident in seen:
                raise SweepError(
                    f"points {_point_text(seen[ident])} and {_point_text(point)} are the same scenario; "
                    "remove the repeated value"
                )
            seen[ident] = point
            resolved.append((point, sc))
        return resolved


def _point_text(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in point.items()) or "(the scenario)"


@dataclass
class SweepFile:
    """What a sweep file says; a key it leaves out is None (or empty)."""

    scenario: Path | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)
    zip: dict[str, list[Any]] = field(default_factory=dict)
    sets: list[str] = field(default_factory=list)
    replications: int | None = None
    seed: int | None = None


def load_sweep_file(path: str | Path) -> SweepFile:
    """A sweep file's keys (scenario, grid, zip, set, replications, seed), checked.

    ``scenario`` is resolved against the sweep file's folder. Raises :class:`SweepError`.
    """
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"{file}: cannot read ({exc.__class__.__name__})") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"{file}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise SweepError(f"{file}: a sweep file is a mapping")
    unknown = sorted(set(data) - {"scenario", "grid", "zip", "set", "replications", "seed"})
    if unknown:
        raise SweepError(f"{file}: unknown key {unknown[0]!r} (scenario, grid, zip, set, replications, seed)")
    out = SweepFile()
    if data.get("scenario") is not None:
        scenario = Path(str(data["scenario"]))
        # Relative to the sweep file, so the pair can be moved or run from anywhere.
        out.scenario = scenario if scenario.is_absolute() else file.parent / scenario
    for axis in ("grid", "zip"):
        value = data.get(axis) or {}
        if not isinstance(value, dict) or not all(isinstance(v, list) and v for v in value.values()):
            raise SweepError(f"{file}: {axis} maps key paths to non-empty lists of values")
        for key in value:
            _check_key(str(key), f"{file}: {axis}")
        setattr(out, axis, {str(k): v for k, v in value.items()})
    sets = data.get("set") or {}
    if isinstance(sets, dict):
        out.sets = [f"{k}={json.dumps(v)}" for k, v in sets.items()]
    elif isinstance(sets, list) and all(isinstance(s, str) for s in sets):
        out.sets = list(sets)
    else:
        raise SweepError(f"{file}: set is a mapping of key paths to values (or a list of KEY=VALUE)")
    for key in ("replications", "seed"):
        if key in data and data[key] is not None:
            if not isinstance(data[key], int) or isinstance(data[key], bool) or data[key] < 0:
                raise SweepError(f"{file}: {key} must be a whole number >= 0")
            setattr(out, key, data[key])
    return out


@dataclass
class Run:
    """One task: a point's scenario and one replication, and where its folder goes."""

    point: dict[str, Any]
    replication: int
    seed: int
    scenario: Scenario
    folder: str
    existing: bool = False  # resume: the folder is there, read it instead of running


def _row(results: Results) -> dict[str, Any]:
    """One run's metrics, from the summary (censored statistics) and the message table."""
    summary = results.summary()
    row: dict[str, Any] = {}
    times = summary.times
    for leg, _, _ in LEGS:
        for col in times.columns:
            value: Any = times.at[leg, col]
            row[f"{_leg_name(leg)}_{col}"] = bool(value) if col.endswith("_censored") else float(value)
    counts = summary.counts
    assert isinstance(counts, pd.Series)
    for status, n in counts.items():
        row[f"n_{status}"] = int(n)
    created = int(counts.get("created", 0))
    messages = mail(results.messages)  # as the summary: DSN rows left out
    row["bounce_rate"] = row.get("n_bounced", 0) / created if created else math.nan
    row["loss_rate"] = row.get("n_lost", 0) / created if created else math.nan
    attempts = messages["attempts"].astype(float) if len(messages) else pd.Series(dtype=float)
    deferrals = messages["deferrals"].to_numpy()
    row["deferral_rate"] = float((deferrals > 0).mean()) if len(deferrals) else math.nan
    row["attempts_mean"] = float(attempts.mean()) if len(attempts) else math.nan
    return row


def execute(task: Run) -> dict[str, Any]:
    """Run one task (or read its folder back on resume) and return its summary row.

    The same function runs in every executor. It never raises for a run's own failure:
    the row then says ``status="failed"`` and ``error``, and the sweep goes on.
    """
    started = time.perf_counter()
    head = {**task.point, "replication": task.replication, "seed": task.seed,
            "run_id": run_id(task.scenario, task.seed)}
    try:
        if task.existing:
            results = Results.read(task.folder)
            wall = results.wall_time
        else:
            results = run(task.scenario, seed=task.seed)
            results.write(task.folder)
            wall = time.perf_counter() - started
        return {**head, **_row(results), "wall_s": wall, "status": "ok", "error": ""}
    except Exception as exc:  # a failed run is a result too: recorded, not fatal
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return {**head, "wall_s": time.perf_counter() - started, "status": "failed", "error": error}


def _frame(rows: list[dict[str, Any]], params: Sequence[str]) -> pd.DataFrame:
    """Rows in a frame with fixed columns and dtypes, however many runs failed."""
    columns = [*params, "replication", "seed", "run_id", *METRIC_COLUMNS, *_TAIL]
    frame = pd.DataFrame(rows, columns=columns)
    for col in METRIC_COLUMNS:
        if col in _FLAGS:
            frame[col] = frame[col].astype("boolean")
        elif col in _COUNTS:
            frame[col] = frame[col].astype("Int64")  # nullable: a failed run has none
        else:
            frame[col] = frame[col].astype(float)
    frame["replication"] = frame["replication"].astype("int64")
    frame["seed"] = frame["seed"].astype("int64")
    frame["wall_s"] = frame["wall_s"].astype(float)
    for name in ("run_id", "status", "error"):
        frame[name] = frame[name].astype(object)
    for name in params:
        values = list(frame[name])
        kinds = {type(v) for v in values}
        # Parquet columns hold one type: structured or mixed values are kept as JSON text.
        if not (kinds <= {int, float} or len(kinds) == 1) or kinds & {dict, list}:
            frame[name] = [json.dumps(v) for v in values]
    return frame


def point_table(summary: pd.DataFrame, params: Sequence[str], metrics: Sequence[str] = MAIN_METRICS) -> pd.DataFrame:
    """Per point: ``n`` ok runs and, per metric, ``<metric>`` mean with ``_low`` / ``_high``
    (95% Student t interval over the replications), ``_valid`` (replications where the
    statistic has a value: a percentile out of reach has none, and the mean is over the
    others) and ``_censored`` (a replication's value could still move: see
    docs/results.md, Statistics)."""
    ok = summary[summary["status"] == "ok"]
    groups = ok.groupby(list(params), sort=False, dropna=False) if params else [((), ok)]
    rows = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(params, key, strict=True))
        row["n"] = len(group)
        for metric in metrics:
            values = group[metric].to_numpy(dtype=float)
            mean, low, high = t_interval(values)
            # Every metric is a time, a count or a rate: none below zero, whatever a
            # t interval of few replications says.
            low = max(low, 0.0) if low == low else low
            row[metric], row[f"{metric}_low"], row[f"{metric}_high"] = mean, low, high
            row[f"{metric}_valid"] = int((~pd.isna(values)).sum())
            flag = f"{metric}_censored"
            row[flag] = bool(group[flag].astype(bool).any()) if flag in group else False
        rows.append(row)
    return pd.DataFrame(rows)


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _prepare(out: Path, spec: SweepSpec, resume: bool, overwrite: bool = False) -> bool:
    """Check ``out`` for this sweep and write ``sweep.json`` (refusing a changed definition).

    ``overwrite`` first removes a sweep's own files (``sweep.json``, ``summary.parquet``,
    ``runs/``) from ``out``; nothing else is ever deleted. Returns whether the folder was
    new (so a sweep that cannot start can remove it)."""
    marker = out / "sweep.json"
    digest = spec.digest()
    replaced = overwrite and marker.exists()
    if replaced:
        shutil.rmtree(out / "runs", ignore_errors=True)
        (out / "summary.parquet").unlink(missing_ok=True)
        marker.unlink()
    if marker.exists():
        if not resume:
            raise SweepError(
                f"{out}: holds a sweep already; pass --resume (resume=True) to continue it, "
                "--overwrite (overwrite=True) to replace it, or choose another folder"
            )
        try:
            held = json.loads(marker.read_text(encoding="utf-8"))
            previous, streams = held.get("digest"), (held.get("definition") or {}).get("streams")
        except (OSError, ValueError, AttributeError):
            previous = streams = None
        if previous != digest:
            if previous is not None and streams != STREAMS:
                raise SweepError(
                    f"{out}: holds a sweep whose runs were drawn with other random streams "
                    f"({streams or 'before mailflow 0.2.0'}, these: {STREAMS}); it cannot be resumed "
                    "with this mailflow: --overwrite (overwrite=True) to run it again, or choose another folder"
                )
            raise SweepError(
                f"{out}: holds another sweep (definition {str(previous)[:8]}, this one {digest[:8]}); "
                "--resume needs the same scenario, grid, zip, set, replications and seed"
            )
        return False
    if not replaced and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SweepError(f"{out}: exists and is not an empty folder or a sweep; choose another folder")
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"{out}: cannot create ({exc.strerror or exc})") from None
    meta = {
        "digest": digest,
        "definition": spec.definition(),
        "source": spec.source,
        "base_seed": spec.base_seed,
        "mailflow_version": __version__,
        "python": platform.python_version(),
        "versions": {name: _version_of(name) for name in (*PROVENANCE_PACKAGES, "dask", "distributed")},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    def write(path: Path) -> None:
        path.write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n", encoding="utf-8")

    _write_atomic(marker, write)
    return True


# Settings of the local cluster's scheduler, nannies and workers, each measured on this
# project's runs (docs/performance.md, "Sweeps" and "After the event-loop fix"):
# - Dask's statistical profiler samples every worker's stack 100 times a second: about
#   5% of a run's CPU, for a profile nobody reads without the dashboard.
# - Dask has glibc give freed memory back to the system at 64 KiB
#   (MALLOC_TRIM_THRESHOLD_): a run allocates and frees without pause, and the trimming
#   made it about 7% slower (2.87 against 2.69 s a run). Unset, the worker's allocator
#   behaves as in a plain process.
# - Every Dask server wakes its event loop every 20 ms to check that it is not blocked;
#   in a worker each wake-up takes the GIL from the run. Once a second, runs of 3 s were
#   0.8-2.5% slower in a worker than alone (7-9% before); the check still warns of a loop
#   blocked for 3 s. The system monitor (the dashboard's figures) samples every 5 s
#   instead of every 0.5 s. The memory monitor keeps its 0.1 s, so a worker past its
#   memory limit is stopped as soon as by default.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}


def local_cluster(workers: int) -> Any:
    """A Dask ``LocalCluster`` of ``workers`` single-threaded worker processes on
    127.0.0.1, with :data:`LOCAL_CLUSTER_CONFIG`; the caller closes it."""
    import dask
    from dask.distributed import LocalCluster

    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        # The nannies are handed a copy of the settings: they start a worker again (after
        # a crash or a restart) from their own config, and without the copy that config
        # shares the nested settings that leaving this block puts back to Dask's defaults.
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True,
            host="127.0.0.1", dashboard_address=None, config=copy.deepcopy(dask.config.config),
        )


def _collect(
    tasks: list[Run], workers: int | None, scheduler: str | None, progress: Progress | None
) -> list[dict[str, Any]]:
    """Run every task on the chosen executor; rows come back in task order."""
    rows: list[dict[str, Any] | None] = [None] * len(tasks)
    done = failed = 0

    def record(i: int, row: dict[str, Any]) -> None:
        nonlocal done, failed
        rows[i] = row
        done += 1
        failed += row["status"] != "ok"
        if progress is not None:
            progress(done, failed, len(tasks))

    if progress is not None:
        progress(0, 0, len(tasks))
    if scheduler is None and workers == 0:
        for i, task in enumerate(tasks):  # in this process: breakpoints and notebooks work
            record(i, execute(task))
        return [r for r in rows if r is not None]

    from dask.distributed import Client, as_completed  # a second or so to import

    cluster: Any = None
    try:
        if scheduler is not None:
            client = Client(scheduler, timeout="10s")
        else:
            cluster = local_cluster(workers or os.cpu_count() or 1)
            client = Client(cluster)
    except BaseException as exc:
        if cluster is not None:  # started, but no client could reach it: stop its processes
            cluster.close()
        if not isinstance(exc, (OSError, TimeoutError, ValueError)):
            raise
        where = f"--scheduler {scheduler}" if scheduler else "the local cluster"
        raise SweepError(f"{where}: cannot connect ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    try:
        # pure=False: a retried or repeated task is run, never served from a cache.
        futures = client.map(execute, tasks, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for future in as_completed(futures):
            i = index[future.key]
            try:
                row = future.result()
            except Exception as exc:  # e.g. KilledWorker: the task's workers kept dying
                task = tasks[i]
                row = {**task.point, "replication": task.replication, "seed": task.seed,
                       "run_id": run_id(task.scenario, task.seed), "wall_s": math.nan,
                       "status": "failed", "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
            record(i, row)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return [r for r in rows if r is not None]


def sweep(
    scenario: str | Path | Scenario | None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    zip: Mapping[str, Sequence[Any]] | None = None,  # noqa: A002 - the sweep's own word
    replications: int = 1,
    out: str | Path = "results/sweep",
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    seed: int | None = None,
    sets: Sequence[str] | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Run a scenario at every point of ``grid`` x ``zip``, ``replications`` times each.

    Writes ``out/sweep.json``, ``out/runs/<run_id[:12]>/`` per run and
    ``out/summary.parquet`` (one row per run), and returns that summary. ``workers=0``
    runs in this process; ``workers=N`` (default: CPU count) on a local Dask cluster;
    ``scheduler`` on an existing Dask scheduler. ``resume`` runs only the runs whose
    folder is missing; ``overwrite`` replaces a sweep already in ``out``. Bad input
    raises :class:`SweepError`; a failing run does not (its row says ``status="failed"``).
    """
    if isinstance(scenario, Scenario):
        base, source = scenario, None
        if sets:
            try:
                base = parse_scenario(apply_overrides(scenario.model_dump(mode="json"), list(sets)))
            except ScenarioError as exc:
                raise SweepError(f"--set: {exc}") from None
    else:
        source = str(scenario) if scenario is not None else None
        try:
            base = load_scenario(scenario, list(sets or []))
        except ScenarioError as exc:
            raise SweepError(str(exc)) from None
    spec = SweepSpec(
        base, {k: list(v) for k, v in (grid or {}).items()}, {k: list(v) for k, v in (zip or {}).items()},
        list(sets or []), replications, seed, source,
    )
    if workers is not None and workers < 0:
        raise SweepError(f"--workers {workers}: give 0 (this process) or more")
    if scheduler is not None and workers:
        raise SweepError("--workers and --scheduler: give one (the scheduler's workers run the sweep)")
    return run_spec(spec, out, workers, scheduler, resume, progress, overwrite)


def run_spec(
    spec: SweepSpec,
    out: str | Path,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Run a :class:`SweepSpec` into ``out`` (see :func:`sweep`) and return the summary."""
    if resume and overwrite:
        raise SweepError("--resume and --overwrite: give one (continue the sweep in --out, or replace it)")
    points = spec.resolve()
    folder = Path(out)
    fresh = _prepare(folder, spec, resume, overwrite)
    params = list(spec.grid) + list(spec.zip)
    tasks: list[Run] = []
    for point, sc in points:
        for r in range(spec.replications):
            s = replication_seed(spec.base_seed, r)
            run_folder = folder / "runs" / run_id(sc, s)[:12]
            # A folder with run.json and messages is a finished run (writes are atomic).
            existing = resume and (run_folder / "run.json").is_file()
            tasks.append(Run(point, r, s, sc, str(run_folder.absolute()), existing))
    try:
        rows = _collect(tasks, workers, scheduler, progress)
    except SweepError:
        if fresh and not any((folder / "runs").iterdir()):
            shutil.rmtree(folder, ignore_errors=True)  # nothing ran: leave no empty sweep behind
        raise
    frame = _frame(rows, params)
    def write(path: Path) -> None:
        frame.to_parquet(path, index=False)

    _write_atomic(folder / "summary.parquet", write)
    return frame
