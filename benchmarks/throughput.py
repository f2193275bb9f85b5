"""Throughput and memory of a whole run, against the bare-SimPy floor.

For each size (default 10k, 100k and 1M messages) a fresh Python process builds a
generated Internet (sim.config.generate.internet: 50 domains, 200 messages/s), runs it and
reports wall and CPU time (build + run + DataFrame), messages per CPU second, peak RSS
and the peak's growth per message over the imports. The floor is a bare SimPy loop of
``env.timeout`` doing 12 timeouts a message, timed in CPU seconds too; the events the
model schedules a message are counted in a separate, untimed run at 100k.
MAILFLOW_BENCH_DOMAINS=1000 runs the 1,000-domain Internet instead of 50 domains.

    .venv/bin/python benchmarks/throughput.py            # 10k, 100k, 1M
    .venv/bin/python benchmarks/throughput.py 10000      # one size

Figures are recorded in docs/performance.md.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

import simpy

RATE = 200.0
DOMAINS = int(os.environ.get("MAILFLOW_BENCH_DOMAINS", "50"))
FLOOR_EVENTS = 12  # timeouts a message in the floor loop (issue 7: the model's count then)


def scenario(messages: int) -> Any:
    from sim.config.generate import internet
    from sim.config import parse_scenario

    return parse_scenario(internet(domains=DOMAINS, rate=RATE, duration=messages / RATE, drain=600))


def one(messages: int) -> dict[str, float]:
    """Time one run of about ``messages`` messages in this process."""
    import sim
    import sim.simulation  # sim imports its layers on use: load them before measuring

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sc = scenario(messages)
    start, cpu = time.perf_counter(), time.process_time()
    res = sim.run(sc)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    n = len(res.messages)
    return {
        "messages": n,
        "wall_s": wall,
        "cpu_s": cpu,
        "messages_per_s": n / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "import_rss_mb": baseline,
    }


def events_per_message(messages: int = 100_000) -> float:
    """How many events the model schedules per message (untimed, counted run)."""
    from sim import build
    from sim.core.counting import CountingEnvironment

    model = build(scenario(messages), env=CountingEnvironment())
    model.run()
    return model.env.scheduled / len(model.recorder)  # type: ignore[attr-defined]


def floor(events: int) -> float:
    """CPU seconds for a bare SimPy process doing ``events`` timeouts."""
    env = simpy.Environment()

    def loop() -> Any:
        for _ in range(events):
            yield env.timeout(1.0)

    env.process(loop())
    start = time.process_time()
    env.run()
    return time.process_time() - start


def child(*args: str) -> str:
    """Run this script with ``args`` in a fresh interpreter; return what it printed."""
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return out.stdout


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--one":
        print(json.dumps(one(int(argv[1]))))
        return
    if argv and argv[0] == "--count":
        print(events_per_message())
        return
    sizes = [int(a) for a in argv] or [10_000, 100_000, 1_000_000]
    # Everything heavy runs in a child: Linux keeps a process's peak RSS across exec, so a
    # child forked from a big parent would report the parent's peak as its own.
    per_msg = float(child("--count"))
    print(f"python {platform.python_version()}, simpy {simpy.__version__}, "
          f"{platform.machine()}; model schedules {per_msg:.2f} events per message")
    # The floor is the issue's: a bare SimPy loop doing FLOOR_EVENTS timeouts a message
    # (the model's count before events were folded), timed in CPU seconds like the run,
    # since the machine is shared and wall time measures the neighbours too.
    print(f"{'messages':>10} {'wall s':>8} {'CPU s':>8} {'msg/CPU s':>10} {'peak MB':>8} "
          f"{'imports MB':>10} {'B/msg':>6} {'floor s':>8} {'x floor':>8}")
    for size in sizes:
        r = json.loads(child("--one", str(size)))
        bare = floor(int(FLOOR_EVENTS * r["messages"]))
        per = (r["peak_rss_mb"] - r["import_rss_mb"]) * 2**20 / r["messages"]
        print(f"{r['messages']:>10,} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f} "
              f"{r['messages'] / r['cpu_s']:>10,.0f} {r['peak_rss_mb']:>8.0f} "
              f"{r['import_rss_mb']:>10.0f} {per:>6.0f} {bare:>8.2f} {r['cpu_s'] / bare:>8.2f}",
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
