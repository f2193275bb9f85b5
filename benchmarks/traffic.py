"""What the traffic capabilities cost per row, on the generated 50-domain Internet.

One simulated day of ``sim.config.generate.internet(domains=50)`` with the rate set for
about N rows (default 100,000), people's sources changed per mode; every mode draws the
old log-normal sizes so that only the capability differs:

- ``flat``: as before daily profiles (the baseline);
- ``profile``: people on the ``office`` profile;
- ``cc``: 1.66 recipients per message (the rate divided by 1.66: the same rows);
- ``contacts``: 20 regular correspondents per person;
- ``all``: office profile, 1.66 recipients, 20 contacts, a local share of 0.2.

Each mode runs in a fresh interpreter, one after the other (never run alongside another
benchmark); CPU seconds are the process's, so other load on the machine inflates them
less than wall time.

    .venv/bin/python benchmarks/traffic.py                 # all modes, 100k rows
    .venv/bin/python benchmarks/traffic.py 20000 flat cc   # some modes

Figures are recorded in docs/performance.md.
"""

from __future__ import annotations

import subprocess
import sys

MODES = ("flat", "profile", "cc", "contacts", "all")

CHILD = r"""
import resource, sys, time
import sim
from sim.config import parse_scenario
from sim.config.generate import internet

n, mode = int(sys.argv[1]), sys.argv[2]
data = internet(domains=50, rate=n / 86400.0)
data = data if isinstance(data, dict) else data.model_dump(exclude_unset=True)
data["duration"] = 86400.0
for s in data["workload"]:
    s["size"] = {"dist": "lognormal", "median": 4096, "sigma": 2.1}
    if s["kind"] != "person":
        continue
    if mode in ("profile", "all"):
        s["profile"] = "office"
    if mode in ("cc", "all"):
        s.update(recipients_per_message=1.66, rate=s["rate"] / 1.66)
    if mode in ("contacts", "all"):
        s["contacts"] = 20
    if mode == "all":
        s["local_share"] = 0.2
sc = parse_scenario(data)
wall, cpu = time.perf_counter(), time.process_time()
rows = len(sim.run(sc, seed=1).messages)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"| {mode} | {rows} | {wall:.2f} | {cpu:.2f} | {cpu / rows * 1e6:.1f} | {peak:.0f} |")
"""


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv and argv[0].isdigit() else 100_000
    modes = [a for a in argv if not a.isdigit()] or list(MODES)
    unknown = set(modes) - set(MODES)
    if unknown:
        sys.exit(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
    print("| mode | rows | wall s | CPU s | CPU µs / row | peak MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode in modes:
        subprocess.run([sys.executable, "-c", CHILD, str(n), mode], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
