"""Speed-up of a sweep on 2 local Dask workers against the same runs in one process.

A sweep of 32 runs (4 points x 8 replications) of a generated Internet
(sim.config.generate.internet: 20 domains, 50 messages/s, DURATION seconds, written to a
temporary YAML file) runs serially (``workers=0``) and on a 2-worker local cluster
(``workers=2``: ``sim.experiment.sweep.local_cluster``), each in a fresh interpreter
and into its own temporary folder. The 2-worker time includes importing Dask and
starting and closing the cluster: it is what a user waits for. The cluster's start-up
alone (importing Dask, the same local cluster up with 2 workers, closed) is timed in a
third fresh interpreter, mailflow imported before the clock. The two summaries must be identical but for ``wall_s``.

    .venv/bin/python benchmarks/sweep_speedup.py              # 2 rounds of short runs (serial, 2 workers, start-up)
    .venv/bin/python benchmarks/sweep_speedup.py 1 1200       # one round of runs 4x as long (about 2.9 s each)

The fixed costs (importing Dask, starting the workers, each worker importing mailflow)
are about 2 s whatever the runs, so the speed-up grows with the length of a run.

Figures are recorded in docs/performance.md ("Sweeps", and its latest subsection, "After
the event-loop fix").
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOMAINS = 20
RATE = 50.0
DURATION = 300.0  # default: about 15k messages, 0.8 s a run (build, run, write) on the development machine
GRID = {"drain": [600, 900, 1200, 1500]}
REPLICATIONS = 8
WORKERS = 2


def write_scenario(path: Path, duration: float) -> None:
    import yaml

    from sim.config.generate import internet

    path.write_text(yaml.safe_dump(internet(domains=DOMAINS, rate=RATE, duration=duration)), encoding="utf-8")


def one(scenario: str, out: str, workers: int) -> dict[str, float]:
    """Time one sweep in this process (``import sim`` done before the clock starts)."""
    import resource

    import sim

    def cpu() -> float:  # this process and its reaped descendants (the cluster's workers)
        return sum(u.ru_utime + u.ru_stime for u in
                   (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))

    cpu0 = cpu()
    start = time.perf_counter()
    summary = sim.sweep(scenario, grid=GRID, replications=REPLICATIONS, out=out, workers=workers)
    wall = time.perf_counter() - start
    used = cpu() - cpu0
    ok = summary["status"] == "ok"
    return {"wall_s": wall, "cpu_s": used, "runs": len(summary), "ok": int(ok.sum()),
            "run_wall_sum_s": float(summary["wall_s"].sum()),
            "messages": float(summary["n_created"].astype(float).mean())}


def startup(workers: int) -> dict[str, float]:
    """Import Dask, start the same LocalCluster as sim.sweep, wait for its workers, close it."""
    import importlib

    local_cluster = importlib.import_module("sim.experiment.sweep").local_cluster  # mailflow: not timed

    start = time.perf_counter()
    from dask.distributed import Client

    imported = time.perf_counter()
    cluster = local_cluster(workers)
    client = Client(cluster)
    client.wait_for_workers(workers)
    up = time.perf_counter()
    client.close()
    cluster.close()
    closed = time.perf_counter()
    return {"import_s": imported - start, "up_s": up - start, "close_s": closed - up, "total_s": closed - start}


def child(*args: str) -> dict[str, float]:
    """Run this script with ``args`` in a fresh interpreter; return the JSON it printed."""
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def same_summaries(a: Path, b: Path) -> bool:
    import pandas as pd

    x = pd.read_parquet(a / "summary.parquet").drop(columns="wall_s")
    y = pd.read_parquet(b / "summary.parquet").drop(columns="wall_s")
    try:
        pd.testing.assert_frame_equal(x, y, check_exact=True)
    except AssertionError:
        return False
    return True


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--one":
        print(json.dumps(one(argv[1], argv[2], int(argv[3]))))
        return
    if argv and argv[0] == "--startup":
        print(json.dumps(startup(int(argv[1]))))
        return
    rounds = int(argv[0]) if argv else 2
    duration = float(argv[1]) if len(argv) > 1 else DURATION
    import dask

    print(f"python {platform.python_version()}, dask {dask.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs; {len(GRID['drain'])} points x {REPLICATIONS} replications, "
          f"internet(domains={DOMAINS}, rate={RATE:g}, duration={duration:g})")
    print(f"{'round':>5} {'load':>5} {'serial s':>9} {'2 workers s':>12} {'speed-up':>9} "
          f"{'start-up s':>11} {'w/o start-up':>13} {'run s (sum)':>12} {'identical':>10}")
    with tempfile.TemporaryDirectory(prefix="sweep-speedup-") as tmp:
        scenario = Path(tmp) / "scenario.yaml"
        write_scenario(scenario, duration)
        for r in range(1, rounds + 1):
            load = os.getloadavg()[0]
            serial_out, parallel_out = Path(tmp) / f"serial-{r}", Path(tmp) / f"parallel-{r}"
            s = child("--one", str(scenario), str(serial_out), "0")
            p = child("--one", str(scenario), str(parallel_out), str(WORKERS))
            up = child("--startup", str(WORKERS))
            same = same_summaries(serial_out, parallel_out) and s["ok"] == s["runs"] == p["ok"] == 32
            print(f"{r:>5} {load:>5.2f} {s['wall_s']:>9.2f} {p['wall_s']:>12.2f} "
                  f"{s['wall_s'] / p['wall_s']:>8.2f}x {up['total_s']:>11.2f} "
                  f"{s['wall_s'] / (p['wall_s'] - up['total_s']):>12.2f}x "
                  f"{s['run_wall_sum_s']:>12.2f} {'yes' if same else 'NO':>10}", flush=True)
            print(f"      start-up: import {up['import_s']:.2f} s, 2 workers up at {up['up_s']:.2f} s, "
                  f"close {up['close_s']:.2f} s; 2-worker runs sum {p['run_wall_sum_s']:.2f} s; "
                  f"CPU s serial {s['cpu_s']:.1f}, 2 workers {p['cpu_s']:.1f} "
                  f"(cores obtained {s['cpu_s'] / s['wall_s']:.2f} and {p['cpu_s'] / p['wall_s']:.2f}); "
                  f"{s['messages']:,.0f} messages a run", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
