"""Sweeps: grid x zip, common random numbers, executors agree, resume, failures, Dask."""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import sim
from sim.experiment import SweepError, SweepSpec, replication_seed
sweep_module = importlib.import_module("sim.experiment.sweep")  # the module: the package exports a function of that name
from tests.conftest import cli, tiny, tiny_data

WORKERS = "topology.nodes[mta].workers"


def random_tiny_data() -> dict[str, Any]:
    """The tiny world with random arrivals, so seeds matter (short: 300 s)."""
    data = tiny_data(duration=300, drain=600)
    data["workload"][0]["interarrival"] = {"dist": "exponential", "mean": 40}
    return data


def random_tiny() -> sim.Scenario:
    return sim.parse_scenario(random_tiny_data())


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal summaries, but for the wall time, which no two runs share."""
    pd.testing.assert_frame_equal(a.drop(columns="wall_s"), b.drop(columns="wall_s"))




def test_grid_times_zip_gives_every_combination() -> None:
    spec = SweepSpec(
        tiny(), grid={WORKERS: [1, 2], "drain": [500, 600, 700]},
        zip={"duration": [100, 200], "topology.nodes[mx].processing": [0.1, 0.2]},
    )
    points = spec.points()
    assert len(points) == 2 * 3 * 2
    assert points[0] == {WORKERS: 1, "drain": 500, "duration": 100, "topology.nodes[mx].processing": 0.1}
    # zipped keys vary together, never crossed
    assert {(p["duration"], p["topology.nodes[mx].processing"]) for p in points} == {(100, 0.1), (200, 0.2)}
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 12


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--grid", "topology.nodes[nope].workers=1,2"], "no element with id or name 'nope'"),
        (["--grid", "topology.nodes[mta].wrkers=1,2"], "unknown key"),
        (["--grid", "topology..workers=1,2"], "malformed key path"),
        (["--grid", "drain"], "expected KEY=V1,V2"),
        (["--grid", "seed=1,2"], "seeds come from --replications and --seed"),
        (["--grid", "drain=[1, 2"], "not valid YAML"),
        (["--grid", "drain=1,,2"], "none empty"),
        (["--zip", "drain=1,2", "--zip", "duration=1,2,3"], "same number of values"),
        (["--grid", "drain=1,2", "--zip", "drain=3,4"], "both --grid and --zip"),
        (["--grid", "drain=5,5"], "same scenario"),
    ],
)
def test_bad_sweeps_are_one_line_and_exit_2(
    args: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(random_tiny_data()))
    code, _, err = cli(["sweep", str(scenario), *args, "--out", str(tmp_path / "o"), "--workers", "0"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("mailflow: ") and expected in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()  # nothing ran, nothing written


def test_replication_r_has_the_same_seed_at_every_point(tmp_path: Path) -> None:
    summary = sim.sweep(random_tiny(), grid={WORKERS: [1, 2, 3]}, replications=3, out=tmp_path / "s", workers=0)
    assert len(summary) == 9 and (summary["status"] == "ok").all()
    seeds = summary.groupby("replication")["seed"].unique()
    assert all(len(s) == 1 for s in seeds)  # common random numbers
    base = random_tiny().seed
    assert [s[0] for s in seeds] == [replication_seed(base, r) for r in range(3)]
    assert len({s[0] for s in seeds}) == 3  # replications are independent
    # the swept value reached the runs, and each run's folder holds that run
    row = summary.iloc[-1]
    res = sim.Results.read(tmp_path / "s" / "runs" / row["run_id"][:12])
    assert res.scenario.topology.nodes[2].workers == 3  # type: ignore[union-attr]
    assert res.seed == row["seed"] and len(res.messages) == row["n_created"]
    meta = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert meta["base_seed"] == base and meta["definition"]["grid"] == {WORKERS: [1, 2, 3]}
    assert pd.read_parquet(tmp_path / "s" / "summary.parquet").columns[0] == WORKERS
    # another base seed gives other seeds
    other = sim.sweep(random_tiny(), replications=2, out=tmp_path / "t", workers=0, seed=99)
    assert list(other["seed"]) == [replication_seed(99, 0), replication_seed(99, 1)]


def test_serial_and_a_local_cluster_give_the_same_summary(tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"grid": {WORKERS: [1, 4]}, "zip": {"drain": [600, 900]}, "replications": 2}
    serial = sim.sweep(random_tiny(), out=tmp_path / "serial", workers=0, **kwargs)
    cluster = sim.sweep(random_tiny(), out=tmp_path / "cluster", workers=2, **kwargs)
    same(serial, cluster)
    assert serial["n_created"].nunique() > 1  # the seeds made a difference to compare
    assert len(list((tmp_path / "cluster" / "runs").iterdir())) == 8  # 2 x 2 points x 2 replications


def _settings() -> dict[str, Any]:
    import dask

    return {key: dask.config.get(key) for key in sweep_module.LOCAL_CLUSTER_CONFIG}


def _in_worker(dask_worker: Any) -> tuple[str | None, bool, float]:
    """What the settings do in a worker: glibc's trim threshold in its environment,
    whether the profiler runs, how often the loop is checked (ms)."""
    import os

    callbacks = dask_worker.periodic_callbacks
    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), "profile" in callbacks, callbacks["tick"].callback_time


# Dask's defaults, which a user's own Dask config might also hold: the test sets them
# in this process so that it can tell the cluster's settings from the caller's.
DASK_DEFAULTS = {
    "distributed.worker.profile.enabled": True,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 65536,
    "distributed.admin.tick.interval": "20ms",
    "distributed.admin.system-monitor.interval": "500ms",
}


def test_the_local_clusters_workers_keep_its_settings_after_a_restart() -> None:
    """The settings reach the worker processes, and a worker started again (after a
    crash or a restart) has them too, not the caller's; the caller's are left alone."""
    import copy

    import dask
    from dask.distributed import Client

    wanted = dict(sweep_module.LOCAL_CLUSTER_CONFIG)
    assert DASK_DEFAULTS.keys() == wanted.keys()
    with dask.config.set(DASK_DEFAULTS):
        before = copy.deepcopy(dask.config.config)
        cluster = sweep_module.local_cluster(2)
        try:
            assert dask.config.config == before
            with Client(cluster) as client:
                for _ in ("started", "restarted"):
                    assert list(client.run(_settings).values()) == [wanted, wanted]
                    assert list(client.run(_in_worker).values()) == [(None, False, 1000)] * 2
                    client.restart()
                tick = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.periodic_callbacks["tick"].callback_time)
                assert tick == 1000  # ms: the scheduler checks its loop once a second too
        finally:
            cluster.close()
        assert dask.config.config == before


def test_a_local_cluster_that_cannot_start_leaves_the_callers_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import copy

    import dask
    import dask.distributed

    def refuse(*args: Any, **kwargs: Any) -> None:
        assert dask.config.get("distributed.admin.tick.interval") == "1s"  # raised inside the settings
        raise OSError("no ports")

    monkeypatch.setattr(dask.distributed, "LocalCluster", refuse)
    before = copy.deepcopy(dask.config.config)
    with pytest.raises(OSError, match="no ports"):
        sweep_module.local_cluster(2)
    assert dask.config.config == before


def test_a_local_cluster_no_client_can_reach_is_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dask.distributed

    closed: list[bool] = []
    started = sweep_module.local_cluster

    def tracked(workers: int) -> Any:
        cluster = started(workers)
        close = cluster.close

        def closing(*args: Any, **kwargs: Any) -> Any:
            closed.append(True)
            return close(*args, **kwargs)

        cluster.close = closing
        return cluster

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("refused")

    monkeypatch.setattr(sweep_module, "local_cluster", tracked)
    monkeypatch.setattr(dask.distributed, "Client", refuse)
    with pytest.raises(SweepError, match=r"^the local cluster: cannot connect \(refused\)$"):
        sim.sweep(random_tiny(), replications=1, out=tmp_path / "s", workers=1)
    assert closed == [True]  # its processes were stopped, not left behind


def test_the_dask_file_in_the_docs_sets_what_the_local_cluster_sets() -> None:
    import dask

    docs = (Path(__file__).resolve().parent.parent / "docs" / "experiments.md").read_text()
    files = [b for b in re.findall(r"```yaml\n(.*?)```", docs, flags=re.S) if b.startswith("# mailflow.yaml")]
    assert len(files) == 1
    given = yaml.safe_load(files[0])
    for key, value in sweep_module.LOCAL_CLUSTER_CONFIG.items():
        assert dask.config.get(key, default="missing", config=given) == value, key
    assert sum(1 for _ in _leaves(given)) == len(sweep_module.LOCAL_CLUSTER_CONFIG)  # and nothing else


def _leaves(tree: dict[str, Any]) -> Iterator[Any]:
    for value in tree.values():
        if isinstance(value, dict):
            yield from _leaves(value)
        else:
            yield value


def test_resume_runs_only_what_is_missing_and_refuses_another_definition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "s"
    first = sim.sweep(random_tiny(), grid={WORKERS: [1, 2]}, replications=2, out=out, workers=0)
    gone = first.loc[1, "run_id"][:12]
    for entry in (out / "runs" / gone).iterdir():
        entry.unlink()
    (out / "runs" / gone).rmdir()
    (out / "summary.parquet").unlink()

    ran: list[int] = []
    real_run = sweep_module.run

    def counting(*args: Any, **kwargs: Any) -> sim.Results:
        ran.append(kwargs["seed"])
        return real_run(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "run", counting)
    with pytest.raises(SweepError, match="pass --resume"):
        sim.sweep(random_tiny(), grid={WORKERS: [1, 2]}, replications=2, out=out, workers=0)
    again = sim.sweep(random_tiny(), grid={WORKERS: [1, 2]}, replications=2, out=out, workers=0, resume=True)
    assert ran == [first.loc[1, "seed"]]
    same(first, again)
    with pytest.raises(SweepError, match="holds another sweep"):
        sim.sweep(random_tiny(), grid={WORKERS: [1, 2]}, replications=3, out=out, workers=0, resume=True)


@pytest.mark.parametrize("streams", [None, "seedsequence-pcg64/0"], ids=["before-0.2.0", "another"])
def test_resume_refuses_a_sweep_drawn_with_other_streams(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], streams: str | None
) -> None:
    """A sweep begun by a mailflow that drew its runs otherwise (before 0.2.0, sweep.json
    had no streams) is not resumed with this one's: its runs would mix two draws of the
    same seeds. Said in one line; the folder is left as it was."""
    out = tmp_path / "s"
    sim.sweep(random_tiny(), grid={WORKERS: [1, 2]}, replications=1, out=out, workers=0)
    marker = out / "sweep.json"
    held = json.loads(marker.read_text())
    if streams is None:
        del held["definition"]["streams"]
    else:
        held["definition"]["streams"] = streams
    held["digest"] = "0" * 64
    marker.write_text(json.dumps(held))
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(SweepError, match=re.escape(
        f"({streams or 'before mailflow 0.2.0'}, these: shake256-pcg64/1); it cannot be resumed")):
        sim.sweep(random_tiny(), grid={WORKERS: [1, 2]}, replications=1, out=out, workers=0, resume=True)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(random_tiny_data()))
    code, _, err = cli(["sweep", str(path), "--grid", f"{WORKERS}=1,2", "--out", str(out), "--resume"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "drawn with other random streams" in err and "--overwrite" in err


def test_run_json_and_sweep_json_say_how_runs_were_drawn(tmp_path: Path) -> None:
    from sim.core.rng import STREAMS

    out = tmp_path / "s"
    frame = sim.sweep(random_tiny(), grid={WORKERS: [1]}, replications=1, out=out, workers=0)
    assert json.loads((out / "sweep.json").read_text())["definition"]["streams"] == STREAMS == "shake256-pcg64/1"
    run_json = json.loads((out / "runs" / frame.loc[0, "run_id"][:12] / "run.json").read_text())
    assert run_json["streams"] == STREAMS


def test_overwrite_replaces_a_sweep_and_deletes_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s"
    sim.sweep(random_tiny(), grid={WORKERS: [1, 2]}, replications=2, out=out, workers=0)
    (out / "notes.txt").write_text("mine")
    old_runs = {p.name for p in (out / "runs").iterdir()}
    with pytest.raises(SweepError, match="give one"):
        sim.sweep(random_tiny(), replications=1, out=out, workers=0, resume=True, overwrite=True)
    second = sim.sweep(random_tiny(), grid={WORKERS: [3]}, replications=1, out=out, workers=0, overwrite=True)
    assert {p.name for p in (out / "runs").iterdir()} == {second.loc[0, "run_id"][:12]} != old_runs
    assert (out / "notes.txt").read_text() == "mine"  # only the sweep's own files go
    assert pd.read_parquet(out / "summary.parquet")[WORKERS].tolist() == [3]
    # The command line says the same, in one line when it refuses.
    args = ["sweep", str(tmp_path / "t.yaml"), "--out", str(out), "--workers", "0", "--replications", "1"]
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(random_tiny_data()))
    code, _, err = cli(args, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--overwrite" in err
    code, _, err = cli([*args, "--overwrite"], capsys)
    assert code == 0, err


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(random_tiny_data()))
    bad = replication_seed(random_tiny().seed, 1)
    real_run = sweep_module.run

    def flaky(sc: sim.Scenario, seed: int | None = None, **kwargs: Any) -> sim.Results:
        if seed == bad and sc.topology.nodes[2].workers == 2:  # type: ignore[union-attr]
            raise RuntimeError("the model broke\nsecond line")
        return real_run(sc, seed=seed, **kwargs)

    monkeypatch.setattr(sweep_module, "run", flaky)
    out = tmp_path / "o"
    code, stdout, err = cli(
        ["sweep", str(scenario), "--grid", f"{WORKERS}=1,2", "--replications", "3", "--out", str(out), "--workers", "0"],
        capsys,
    )
    assert code == 1
    assert "1 of 6 runs failed" in err
    summary = pd.read_parquet(out / "summary.parquet")
    failed = summary[summary["status"] == "failed"]
    assert len(failed) == 1 and failed["error"].iloc[0] == "RuntimeError: the model broke"
    assert failed["delivery_p50"].isna().all() and failed[WORKERS].iloc[0] == 2
    assert (summary["status"] == "ok").sum() == 5
    assert len(list((out / "runs").iterdir())) == 5
    assert "delivery_p50" in stdout  # the table of means still printed
    # resume runs just the failed one (now that it succeeds)
    monkeypatch.setattr(sweep_module, "run", real_run)
    code, _, _ = cli(
        ["sweep", str(scenario), "--grid", f"{WORKERS}=1,2", "--replications", "3", "--out", str(out),
         "--workers", "0", "--resume"],
        capsys,
    )
    assert code == 0 and (pd.read_parquet(out / "summary.parquet")["status"] == "ok").all()


def test_a_sweep_file_is_the_same_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(random_tiny_data()))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(
        {"scenario": "tiny.yaml", "grid": {WORKERS: [1, 2]}, "replications": 2, "seed": 5}
    ))
    code, _, err = cli(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "f"), "--workers", "0"], capsys)
    assert code == 0, err
    sim.sweep(tmp_path / "tiny.yaml", grid={WORKERS: [1, 2]}, replications=2, seed=5, out=tmp_path / "d", workers=0)
    file_summary = pd.read_parquet(tmp_path / "f" / "summary.parquet")
    same(file_summary, pd.read_parquet(tmp_path / "d" / "summary.parquet"))
    assert set(file_summary["seed"]) == {replication_seed(5, 0), replication_seed(5, 1)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for p in processes:
        if p.poll() is None:
            p.terminate()
    for p in processes:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@contextlib.contextmanager
def dask_cluster(tmp_path: Path, workers: int, nanny: bool = True) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A `dask scheduler` and `dask worker` processes on 127.0.0.1, stopped whatever happens."""
    from dask.distributed import Client

    dask = str(Path(sys.executable).parent / "dask")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    started: list[subprocess.Popen[bytes]] = []
    log = open(tmp_path / "dask.log", "wb")  # noqa: SIM115 - closed in finally
    try:
        started.append(subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=log, stderr=log,
        ))
        deadline = time.monotonic() + 30
        while True:  # the scheduler takes a moment to listen
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the scheduler did not start"
                assert started[0].poll() is None, "the scheduler exited"
                time.sleep(0.2)
        for _ in range(workers):
            started.append(subprocess.Popen(
                [dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard",
                 *([] if nanny else ["--no-nanny"])],
                stdout=log, stderr=log,
            ))
        with Client(address, timeout="20s") as client:
            client.wait_for_workers(workers, timeout=60)
        yield address, started[1:]
    finally:
        stop(started)
        log.close()


def test_a_sweep_on_a_running_dask_scheduler_matches_serial(tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"grid": {WORKERS: [1, 4]}, "replications": 2}
    with dask_cluster(tmp_path, workers=2) as (address, _):
        remote = sim.sweep(random_tiny(), out=tmp_path / "remote", scheduler=address, **kwargs)
    serial = sim.sweep(random_tiny(), out=tmp_path / "serial", workers=0, **kwargs)
    same(remote, serial)
    assert (remote["status"] == "ok").all()


def test_a_worker_killed_mid_sweep_loses_no_run_and_repeats_none(tmp_path: Path) -> None:
    data = random_tiny_data()
    data["duration"] = 3000  # runs long enough that some are under way at the kill
    kwargs: dict[str, Any] = {"grid": {WORKERS: [1, 2, 3]}, "replications": 4}
    killed: list[int] = []
    with dask_cluster(tmp_path, workers=2, nanny=False) as (address, workers):

        def kill_one(done: int, failed: int, total: int) -> None:
            if done == 2 and not killed:
                workers[0].kill()
                killed.append(done)

        remote = sim.sweep(
            sim.parse_scenario(data), out=tmp_path / "remote", scheduler=address, progress=kill_one, **kwargs
        )
    assert killed and workers[0].poll() is not None
    assert len(remote) == 12 and remote["run_id"].is_unique and (remote["status"] == "ok").all()
    assert sorted(p.name for p in (tmp_path / "remote" / "runs").iterdir()) == sorted(r[:12] for r in remote["run_id"])
    serial = sim.sweep(sim.parse_scenario(data), out=tmp_path / "serial", workers=0, **kwargs)
    same(remote, serial)


def test_workers_and_scheduler_are_one_or_the_other(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="give one"):
        sim.sweep(random_tiny(), out=tmp_path / "x", workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(SweepError, match="cannot connect"):
        sim.sweep(random_tiny(), out=tmp_path / "x", scheduler=f"tcp://127.0.0.1:{free_port()}")
    assert not (tmp_path / "x").exists()


def test_structured_values_are_a_yaml_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(random_tiny_data()))
    key = "domains[example.org].retrieval.imap"
    grid = f"{key}=[{{share: 1, poll_interval: 60, phase: 0}}, {{share: 1, poll_interval: 400, phase: 0}}]"
    code, _, err = cli(["sweep", str(scenario), "--grid", grid, "--out", str(tmp_path / "o"), "--workers", "0"], capsys)
    assert code == 0, err
    summary = pd.read_parquet(tmp_path / "o" / "summary.parquet")
    assert [json.loads(v)["poll_interval"] for v in summary[key]] == [60, 400]  # kept as JSON text
    # polling every minute retrieves sooner than every 400 s
    assert summary["retrieval_rmean"].iloc[0] < summary["retrieval_rmean"].iloc[1]


def test_point_table_says_how_many_replications_reached_a_statistic() -> None:
    import math

    import pandas as pd

    from sim.experiment.sweep import point_table

    frame = pd.DataFrame({
        "k": [1, 1, 1], "status": ["ok"] * 3,
        "delivery_p95": [10.0, 12.0, math.nan], "delivery_p95_censored": [False, True, False],
    })
    row = point_table(frame, ["k"], ["delivery_p95"]).iloc[0]
    assert row["n"] == 3 and row["delivery_p95_valid"] == 2
    assert row["delivery_p95"] == 11.0 and bool(row["delivery_p95_censored"])
