"""``mailflow verify``: the model checked against queueing theory, documented
schedules and formulas, and measured reality (docs/verification.md).

Cases live in modules by subject (``queueing``, ``retry``, ``concurrency``, ``dns``,
``smtp``, ``reality``), each registering its cases (``sim.verification.case.case``)
when imported; :func:`run_cases` runs them and :func:`table` lays the outcomes out.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Iterable

import pandas as pd

from .case import CASES, Case, Measured, Outcome, case, measured_from

__all__ = ["CASES", "Case", "GROUPS", "Measured", "Outcome", "case", "cases", "forget", "measured_from", "run_cases", "table"]

# The subjects, in the order the table shows them; each is a module of this package.
GROUPS = ("queueing", "retry", "concurrency", "dns", "smtp", "reality")


def cases(quick: bool = False, groups: Iterable[str] | None = None) -> list[Case]:
    """The registered cases (of ``groups``; with ``quick``, only the quick ones), in
    the order of :data:`GROUPS`."""
    wanted = tuple(GROUPS if groups is None else groups)
    for group in wanted:
        if group not in GROUPS:
            raise ValueError(f"no group {group!r} (groups: {', '.join(GROUPS)})")
        importlib.import_module(f"{__name__}.{group}")  # a group whose module is missing is an error
    chosen = [c for c in CASES if c.group in wanted and (c.quick or not quick)]
    return sorted(chosen, key=lambda c: GROUPS.index(c.group))


def forget() -> None:
    """Drop the runs the groups keep for their cases (their ``lru_cache`` functions and
    ``clear()``): the next measure runs afresh, as a model changed since must."""
    for group in GROUPS:
        module = sys.modules.get(f"{__name__}.{group}")
        if module is None:
            continue
        for obj in vars(module).values():
            if getattr(obj, "__module__", None) == module.__name__ and hasattr(obj, "cache_clear"):
                obj.cache_clear()
        clear = getattr(module, "clear", None)
        if callable(clear):
            clear()


def run_cases(
    quick: bool = False, seed: int = 1, groups: Iterable[str] | None = None,
    done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run every case (``done`` is called after each); a case that raises fails with
    its error, and the others still run."""
    out = []
    for c in cases(quick, groups):
        start = time.perf_counter()
        try:
            m = c.measure(quick, seed)
            error = ""
        except Exception as err:  # noqa: BLE001 - a broken case fails, the rest still run
            m, error = Measured(float("nan"), float("nan"), float("nan"), 0), f"{type(err).__name__}: {err}"
        passed = c.judge(m) if not error else False
        outcome = Outcome(c, m, passed, time.perf_counter() - start, error)
        out.append(outcome)
        if done is not None:
            done(outcome)
    return out


def table(outcomes: list[Outcome]) -> pd.DataFrame:
    """One row per case: group, case, reference and source, simulated value with its
    95 % interval, tolerance, result (pass, FAIL, or compare for reality)."""
    rows = []
    for o in outcomes:
        c, m = o.case, o.measured
        rows.append({
            "group": c.group,
            "case": c.name,
            "unit": c.unit,
            "reference": c.reference,
            "source": c.source,
            "simulated": m.value,
            "ci_low": m.low,
            "ci_high": m.high,
            "n": m.n,
            "tolerance": c.allowed() if c.scored else float("nan"),
            "result": "compare" if o.passed is None else "pass" if o.passed else "FAIL",
            "error": o.error,
            "note": c.note,
            "wall_s": o.wall_s,
        })
    columns = ["group", "case", "unit", "reference", "source", "simulated", "ci_low", "ci_high", "n", "tolerance",
               "result", "error", "note", "wall_s"]
    return pd.DataFrame(rows, columns=columns)  # the columns even when no case ran
