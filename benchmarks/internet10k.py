"""The issue-7 target on the realistic world: a day of mail over 10,000 generated domains.

``topologies/internet-10k.yaml`` (a compact ``generate:`` block: 10,000 domains in ten
regions, about 1,000,000 rows in one simulated day, with spam, ESP campaigns, cc,
contacts and office-hour profiles in local time) is loaded, built and run in a fresh
interpreter, the whole path on as by default. Reported, stage by stage: CPU seconds of
loading (expansion + validation), building, simulating and making the frame; the peak
RSS (``VmHWM``) and the RSS after ``import sim`` and after the build; rows; CPU
microseconds per finished row and bytes of peak RSS above the built world per row (what
the run itself holds: its messages in flight, queues and the message table). ``--count`` also counts the events
(a second run in an event-counting environment).

Targets (issue 7): 1,000,000 messages in under 60 s on one core, peak memory under
1 GB, at most 300 bytes per finished message.

    .venv/bin/python benchmarks/internet10k.py            # the day
    .venv/bin/python benchmarks/internet10k.py --count    # and events per row

Figures are recorded in docs/performance.md ("A day over 10,000 domains").
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

SCENARIO = Path(__file__).resolve().parent.parent / "topologies" / "internet-10k.yaml"


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one() -> dict[str, float]:
    """Load, build and run the day in this process; CPU seconds per stage."""
    import sim
    import sim.simulation  # layers load on first use: not inside the clock

    imports = _rss_mb("VmRSS")
    clock = time.process_time
    t = clock()
    sc = sim.load_scenario(SCENARIO)
    load = clock() - t
    t = clock()
    model = sim.build(sc)
    build = clock() - t
    built = _rss_mb("VmRSS")
    t = clock()
    model.run()
    simulate = clock() - t
    t = clock()
    frame = model.recorder.messages()
    frame_s = clock() - t
    rows = len(frame)
    peak = _rss_mb("VmHWM")
    status = frame["status"].value_counts().to_dict()
    return {
        "rows": rows, "load_s": load, "build_s": build, "simulate_s": simulate, "frame_s": frame_s,
        "import_mb": imports, "built_mb": built, "peak_mb": peak,
        "us_per_row": 1e6 * (simulate + frame_s) / rows,
        "bytes_per_row": (peak - built) * 2**20 / rows,
        **{f"n_{k}": int(v) for k, v in status.items()},
    }


def count() -> float:
    """Events scheduled per row (a counted run)."""
    import sim
    from sim.core.counting import CountingEnvironment

    model = sim.build(sim.load_scenario(SCENARIO), env=CountingEnvironment())
    model.run()
    return model.env.scheduled / len(model.recorder)  # type: ignore[attr-defined]


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print(json.dumps(one()))
        return
    if argv[:1] == ["--child-count"]:
        print(json.dumps(count()))
        return
    out = subprocess.run([sys.executable, __file__, "--child"], check=True, capture_output=True, text=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{r['rows']:,} rows: load {r['load_s']:.1f} s, build {r['build_s']:.1f} s, "
          f"simulate {r['simulate_s']:.1f} s, frame {r['frame_s']:.1f} s (CPU); "
          f"peak {r['peak_mb']:.0f} MB ({r['import_mb']:.0f} after imports, {r['built_mb']:.0f} built); "
          f"{r['us_per_row']:.1f} us and {r['bytes_per_row']:.0f} B a row")
    print({k: v for k, v in r.items() if k.startswith("n_")})
    if "--count" in argv:
        out = subprocess.run([sys.executable, __file__, "--child-count"], check=True, capture_output=True, text=True)
        print(f"events per row: {json.loads(out.stdout.strip().splitlines()[-1]):.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
