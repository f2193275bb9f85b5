"""Throughput and memory of a whole run, against the bare-SimPy floor.

For each size (default 10k, 100k and 1M messages) a fresh Python process builds a
generated Internet (sim.config.generate.internet: 50 domains, 200 messages/s), runs it and
reports wall time (build + run + DataFrame), messages per wall second and peak RSS.
The floor is a bare SimPy loop of ``env.timeout`` doing as many events as the model
scheduled (counted in a separate, untimed run at 100k and scaled), timed the same way.

    .venv/bin/python benchmarks/throughput.py            # 10k, 100k, 1M
    .venv/bin/python benchmarks/throughput.py 10000      # one size

Figures are recorded in docs/performance.md.
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from typing import Any

import simpy

RATE = 200.0
DOMAINS = 50


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
    start = time.perf_counter()
    res = sim.run(sc)
    wall = time.perf_counter() - start
    n = len(res.messages)
    return {
        "messages": n,
        "wall_s": wall,
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
    """Wall seconds for a bare SimPy process doing ``events`` timeouts."""
    env = simpy.Environment()

    def loop() -> Any:
        for _ in range(events):
            yield env.timeout(1.0)

    env.process(loop())
    start = time.perf_counter()
    env.run()
    return time.perf_counter() - start


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
          f"{platform.machine()}; model schedules {per_msg:.1f} events per message")
    print(f"{'messages':>10} {'wall s':>8} {'msg/s':>9} {'peak MB':>8} {'imports MB':>10} "
          f"{'floor s':>8} {'x floor':>8}")
    for size in sizes:
        r = json.loads(child("--one", str(size)))
        bare = floor(int(per_msg * r["messages"]))
        print(f"{r['messages']:>10,} {r['wall_s']:>8.2f} {r['messages_per_s']:>9,.0f} "
              f"{r['peak_rss_mb']:>8.0f} {r['import_rss_mb']:>10.0f} "
              f"{bare:>8.2f} {r['wall_s'] / bare:>8.1f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
