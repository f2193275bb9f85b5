"""What a run will cost, estimated before it starts: messages and memory.

A scenario that validates must run. The message log keeps one row per message and the
results become a DataFrame at the end, so memory grows with the number of messages; a
scenario asking for more than the machine can hold is refused when it is validated,
with the estimate in the error, instead of dying with a MemoryError an hour later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import ScenarioError, ScenarioWarning
from .scenario import Scenario


__all__ = [
    "BYTES_PER_MESSAGE", "BYTES_PER_TRACED_MESSAGE", "Estimate", "check_budget", "estimate", "idle_warnings", "memory_limit",
    "physical_memory",
]

# Peak memory a run needs per message, the DataFrame at the end included. Measured with
# benchmarks/throughput.py (docs/performance.md, 2026-11-29): over 1M messages of the
# generated 50-domain Internet, peak RSS less the imports was 190 bytes a message (the
# world's build and random buffers included); peak RSS grew by about 104 bytes a
# message from 100k to 1M. The recorder makes room for the expected messages at once,
# and `sim.run` frees each column as the DataFrame takes its copy, so the log is not
# held twice at the end. Rounded up: 200.
BYTES_PER_MESSAGE = 200
# With --trace the attempts table adds about three rows a message (submission, relay,
# LMTP; more with retries): peak RSS grew by 282 bytes a message from 50k to 300k
# traced messages; with the same fixed share as above, about 370. Rounded up: 400.
BYTES_PER_TRACED_MESSAGE = 400


@dataclass(frozen=True)
class Estimate:
    """About how many messages a run creates and how many bytes of memory it needs."""

    messages: float
    memory: float


def estimate(scenario: Scenario, trace: bool = False) -> Estimate:
    """Messages the sources are expected to create, and the memory the run will need
    (more with ``trace``: the attempts table)."""
    messages = sum(src.expected_messages(scenario.duration) for src in scenario.workload)
    return Estimate(messages, messages * (BYTES_PER_TRACED_MESSAGE if trace else BYTES_PER_MESSAGE))


def physical_memory() -> int | None:
    """This machine's RAM in bytes, or None where it cannot be read."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        if pages > 0 and size > 0:
            return int(pages * size)
    except (AttributeError, ValueError, OSError):  # not POSIX, or the name is unknown
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024  # the file says kB and means KiB
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_limit() -> int | None:
    """The memory a run may use by default: half of this machine's RAM (None: unknown)."""
    ram = physical_memory()
    return ram // 2 if ram is not None else None


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.3g} GB"


def check_budget(
    scenario: Scenario, max_memory: int | None = None, trace: bool = False
) -> Estimate:
    """Raise ScenarioError if the run would need more memory than it may use.

    ``max_memory`` is in bytes; None means :func:`memory_limit` (half of this machine's
    RAM), and no check at all where the RAM cannot be read. Returns the estimate.
    """
    est = estimate(scenario, trace)
    limit = memory_limit() if max_memory is None else max_memory
    if limit is not None and est.memory > limit:
        what = "half of this machine's RAM" if max_memory is None else "max_memory"
        raise ScenarioError(
            "workload",
            f"the sources would create about {est.messages:.3g} messages, needing about "
            f"{_gb(est.memory)} of memory "
            f"({BYTES_PER_TRACED_MESSAGE if trace else BYTES_PER_MESSAGE} bytes a message"
            f"{' with --trace' if trace else ''}), more than "
            f"the {_gb(limit)} a run may use ({what}); --force (force=True) runs it anyway",
        )
    return est


def idle_warnings(scenario: Scenario) -> list[ScenarioWarning]:
    """Warnings for sources that cannot send and for a run expected to create nothing."""
    found: list[ScenarioWarning] = []
    duration = scenario.duration
    for i, src in enumerate(scenario.workload):
        if src.start >= duration:
            found.append(ScenarioWarning(
                f"workload[{i}].start",
                f"the source starts at {src.start:g} s, but the sources stop at "
                f"{duration:g} s (duration): it sends nothing",
            ))
        elif src.batches is not None and src.expected_messages(duration) == 0:
            found.append(ScenarioWarning(
                f"workload[{i}].batches",
                f"no batch is between start ({src.start:g} s) and stop "
                f"({src.stop_time(duration):g} s): the source sends nothing",
            ))
    total = estimate(scenario).messages
    if total == 0:
        found.append(ScenarioWarning("workload", "the scenario creates no messages"))
    elif total < 1:
        found.append(ScenarioWarning(
            "workload", f"the sources would create about {total:.3g} messages: probably none"
        ))
    return found
