"""What a generated Internet costs to make, write and load, and what its traffic looks like.

For each size (default 1,000, 10,000 and 100,000 domains; 10 regions, seed 1) a fresh
Python process generates the world (sim.generate.internet), writes it compact and
expanded (YAML), loads the compact file (expansion + validation, as `mailflow run`
does) and reports seconds, bytes, counts and peak RSS. ``--run DOMAINS`` instead runs
that world for an hour at 20 messages/s and prints its traffic by kind and by hour.

    .venv/bin/python benchmarks/generate.py                # 1k, 10k, 100k
    .venv/bin/python benchmarks/generate.py 10000          # one size
    .venv/bin/python benchmarks/generate.py --run 1000     # the traffic's shape

Figures are recorded in docs/performance.md and docs/generate.md.
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any


def one(domains: int) -> dict[str, Any]:
    """Generate, write and load one world in this process."""
    import sim
    from sim.config import load_scenario
    from sim.config.generate import GenerateSpec, compact, to_yaml, world

    spec = GenerateSpec(domains=domains, seed=1, regions=10, rate=11.5740741, duration=86400)
    t0 = time.perf_counter()
    data = world(spec)
    t1 = time.perf_counter()
    expanded = to_yaml(data)
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(to_yaml(compact(spec), compact=True))
        t3 = time.perf_counter()
        sc = load_scenario(path)
        t4 = time.perf_counter()
    kinds = Counter(n.kind for n in sc.topology.nodes)
    return {
        "domains": domains,
        "generate_s": round(t1 - t0, 2),
        "write_expanded_s": round(t2 - t1, 2),
        "expanded_bytes": len(expanded.encode()),
        "compact_bytes": path.stat().st_size if path.exists() else len(to_yaml(compact(spec), compact=True)),
        "load_compact_s": round(t4 - t3, 2),
        "nodes": len(sc.topology.nodes),
        "edges": len(sc.topology.edges),
        "sources": len(sc.workload),
        "by_kind": dict(sorted(kinds.items())),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "version": sim.__version__,
    }


def traffic(domains: int) -> None:
    """Run a world for an hour and print its messages by kind and by sender's provider."""
    import sim

    data = sim.generate.internet(domains=domains, seed=1, regions=4, rate=20, duration=3600, drain=1800)
    sc = sim.parse_scenario(data)
    start = time.perf_counter()
    res = sim.run(sc)
    wall = time.perf_counter() - start
    m = res.messages
    print(f"{len(m):,} messages in {wall:.1f} s wall")
    print(m.groupby("kind", observed=True).size().to_string())
    print(res.summary().counts.to_string())


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print(json.dumps(one(int(argv[1]))))
        return
    if argv[:1] == ["--run"]:
        traffic(int(argv[1]) if len(argv) > 1 else 1000)
        return
    sizes = [int(a) for a in argv] or [1000, 10_000, 100_000]
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    for n in sizes:
        got = subprocess.run(
            [sys.executable, __file__, "--child", str(n)], check=True, capture_output=True, text=True
        )
        print(got.stdout.strip())


if __name__ == "__main__":
    main(sys.argv[1:])
