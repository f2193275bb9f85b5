"""What a big world costs to read, check and build: the scale targets of issue 7.

For each size N (default 100, 1,000 and 10,000 domains) the generated Internet
(``sim.config.generate.internet(domains=N)``) is written out as YAML once, then a fresh
Python process reads it back and reports, stage by stage:

- *yaml MB*: the size of the written file;
- *parse s*: YAML text to plain data (the loader ``sim.load_scenario`` uses: libyaml's
  C parser when PyYAML has it);
- *validate s*: plain data to a checked ``Scenario`` (pydantic, cross-references, budget);
- *build s*: ``sim.build`` (network, recorder, domains, one component per node, sources);
  *sources s* is the part of it spent making the traffic sources (``TrafficSource``);
- *start s*: ``Model.start`` (each component's processes: today one SimPy process per
  configured worker, the idle-capacity cost the hot-path work removes);
- *peak MB* after each stage (the process's peak RSS) and after ``import sim``;
- with ``--simulate M``: a run of about M messages on the same world, with *route s* the
  part of it spent finding routes (``Network.link`` misses), and CPU microseconds per
  message, build excluded.

Targets (issue 7): 10,000 domains parse + validate + build in under 20 s and 1 GB;
100,000 domains in under 5 minutes.

    .venv/bin/python benchmarks/scale.py                    # 100, 1000, 10000
    .venv/bin/python benchmarks/scale.py 30000 --simulate 100000
    .venv/bin/python benchmarks/scale.py 10000 --no-sources  # the build without sources
    .venv/bin/python benchmarks/scale.py 100000 --no-sources --no-start

Figures are recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

RATE = 200.0  # messages/s over the whole world, as in benchmarks/throughput.py


def _peak_mb() -> float:
    """This process's peak RSS in MB. VmHWM, not ru_maxrss: Linux carries ru_maxrss
    over an exec, so a child would inherit the peak of the parent that wrote the file."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write(domains: int, path: str, messages: int) -> float:
    """Write the generated world of ``domains`` domains to ``path``; its size in MB."""
    import yaml

    from sim.config.generate import internet

    duration = max(messages, 1) / RATE
    data = internet(domains=domains, rate=RATE, duration=duration, drain=600.0)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    with open(path, "w", encoding="utf-8") as f:
        yaml.dump(data, f, Dumper=dumper, sort_keys=False)
    return os.path.getsize(path) / 1e6


class _NoSource:
    """Stands in for a traffic source with --no-sources: makes and sends nothing."""

    def __init__(self, *args: Any) -> None:
        pass

    def start(self) -> None:
        pass


def one(path: str, simulate: bool, sources: bool = True, start: bool = True) -> dict[str, Any]:
    """Read, validate, build and start the world in ``path`` in this process."""
    import sim
    from sim.config.loading import parse_scenario
    from sim.config.yamlfile import read_yaml
    from sim.mail import senders
    from sim.world.network import Network

    out: dict[str, Any] = {"import_mb": _peak_mb()}
    cpu = time.process_time
    t = cpu()
    with open(path, encoding="utf-8") as f:
        text = f.read()
    data = read_yaml(text, "file")
    del text
    out["parse_s"], out["parse_mb"] = cpu() - t, _peak_mb()
    t = cpu()
    scenario = parse_scenario(data, force=True)
    del data
    out["validate_s"], out["validate_mb"] = cpu() - t, _peak_mb()
    making = [0.0]
    made = senders.TrafficSource.__init__

    def source(self: Any, *args: Any, **kwargs: Any) -> None:
        began = cpu()
        made(self, *args, **kwargs)
        making[0] += cpu() - began

    senders.TrafficSource.__init__ = source  # type: ignore[method-assign]
    if not sources:
        # The module (sim.simulation.build is also the name of the function in it).
        sys.modules["sim.simulation.build"].TrafficSource = _NoSource
    t = cpu()
    model = sim.build(scenario)
    out["build_s"], out["build_mb"] = cpu() - t, _peak_mb()
    out["sources_s"] = making[0]
    senders.TrafficSource.__init__ = made  # type: ignore[method-assign]
    out["start_s"], out["start_mb"] = 0.0, out["build_mb"]
    if start or simulate:
        t = cpu()
        model.start()
        out["start_s"], out["start_mb"] = cpu() - t, _peak_mb()
    if simulate:
        spent = [0.0]
        link = Network.link

        def timed(self: Network, a: str, b: str) -> Any:
            began = time.perf_counter()
            try:
                return link(self, a, b)
            finally:
                spent[0] += time.perf_counter() - began

        Network.link = timed  # type: ignore[method-assign]
        t = cpu()
        model.run()
        run_s = cpu() - t
        n = len(model.recorder)
        out.update(
            messages=n,
            run_s=run_s,
            route_s=spent[0],
            us_per_message=1e6 * run_s / max(n, 1),
            run_mb=_peak_mb(),
        )
    return out


def main() -> None:
    """Measure each size in its own interpreter and print a table (and JSON lines)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100, 1000, 10_000])
    parser.add_argument("--simulate", type=int, default=0, metavar="M",
                        help="also run about M messages (default: build only)")
    parser.add_argument("--no-sources", action="store_true",
                        help="build no traffic sources (what the rest of the build costs)")
    parser.add_argument("--no-start", action="store_true",
                        help="do not start the components (no worker processes)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one(args.child, args.simulate > 0, not args.no_sources, not args.no_start)))
        return
    print(f"# {platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    cols = ["domains", "yaml_mb", "parse_s", "validate_s", "build_s", "sources_s", "start_s",
            "build_mb", "peak_mb"]
    if args.simulate:
        cols += ["messages", "run_s", "route_s", "us_per_message", "run_mb"]
    print(" | ".join(cols))
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = os.path.join(tmp, f"internet-{n}.yaml")
            size = write(n, path, args.simulate)
            cmd = [sys.executable, __file__, "--child", path, "--simulate", str(args.simulate)]
            cmd += ["--no-sources"] if args.no_sources else []
            cmd += ["--no-start"] if args.no_start else []
            child = subprocess.run(cmd, check=True, capture_output=True, text=True)
            row = json.loads(child.stdout.strip().splitlines()[-1])
            row.update(domains=n, yaml_mb=size, peak_mb=row["start_mb"])
            print(" | ".join(
                f"{row[c]:,.2f}" if isinstance(row[c], float) else f"{row[c]:,}" for c in cols
            ))
            print(json.dumps(row), file=sys.stderr)
            os.remove(path)


if __name__ == "__main__":
    main()
