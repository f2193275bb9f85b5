"""Every scored ``mailflow verify`` case has a deliberately broken model that fails it
(issue 12: "each case has a test that a deliberately broken model fails it").

A broken-model test applies one break (with ``monkeypatch``) and is decorated with
:func:`breaks`, naming the cases that break must fail. The decorator first measures
those cases on the unbroken model (the control, on the same sample: ``sizes`` sets it,
as the queueing tests shrink their worlds), then runs the test's body (the break) and
measures them again. Each named case must pass the control and fail the break; a case
named in ``control_may_fail`` (the full set's heavy loads, shrunk: a sample too small
for the unbroken model to pass surely) may fail its control, and the break must then
move its figure at least five tolerances from the reference and five times as far as
the control's own error. A broken figure must be a number (not a run that measured
nothing) unless its case is named in ``allow_nan``.

The decorator records the cases in :data:`BROKEN`, which ``tests/test_verify_breaks.py``
checks against every scored case of the full set: a new case without a break of its
own fails that test.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import pytest

from sim.verification import Case, cases, forget

__all__ = ["BROKEN", "SIGNAL", "breaks", "key", "the_case"]

# "group: case name" -> the broken-model tests that fail it
BROKEN: dict[str, list[str]] = {}
SIGNAL = 5.0  # how far a break must move a figure whose control does not pass (see above)


def key(c: Case) -> str:
    """The case's key in :data:`BROKEN`."""
    return f"{c.group}: {c.name}"


def the_case(group: str, name: str) -> Case:
    """The case of ``group`` (quick or full set) named exactly ``name``."""
    found = [c for c in cases(groups=[group]) if c.name == name]
    assert len(found) == 1, f"no single case {group}: {name!r}"
    return found[0]


def breaks(
    group: str, *names: str, seed: int = 1, sizes: Callable[[pytest.MonkeyPatch], None] | None = None,
    control_may_fail: tuple[str, ...] = (), allow_nan: tuple[str, ...] = (),
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorate a test (taking ``monkeypatch``) whose body breaks the model: each case
    of ``group`` named in ``names``, measured on the quick footing (``measure(True,
    seed)``) after ``sizes`` set the sample, passes on the model as it is (but those in
    ``control_may_fail``: see the module's docstring) and fails once the body has run."""
    if not names:
        raise ValueError("breaks() names no case")
    strays = (set(control_may_fail) | set(allow_nan)) - set(names)
    if strays:
        raise ValueError(f"breaks(): not among the named cases: {sorted(strays)}")

    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        if "monkeypatch" not in inspect.signature(test).parameters:
            raise TypeError(f"{test.__name__}: a broken-model test takes monkeypatch")
        for name in names:
            BROKEN.setdefault(f"{group}: {name}", []).append(f"{test.__module__}.{test.__name__}")

        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> None:
            monkeypatch: pytest.MonkeyPatch = kwargs["monkeypatch"]
            if sizes is not None:
                sizes(monkeypatch)
            chosen = [the_case(group, name) for name in names]
            forget()
            control = [c.measure(True, seed) for c in chosen]
            for c, m in zip(chosen, control):
                assert m.n > 0 and math.isfinite(m.value), f"the control measured nothing: {key(c)} ({m})"
                if c.name not in control_may_fail:
                    assert c.judge(m), f"the unbroken model fails {key(c)} on this sample ({m})"
            forget()  # the break must run afresh, not read the control's runs
            test(*args, **kwargs)
            try:
                for c, before in zip(chosen, control):
                    m = c.measure(True, seed)
                    if c.name not in allow_nan:
                        assert m.n > 0 and math.isfinite(m.value), f"the broken model measured nothing: {key(c)} ({m})"
                    assert c.judge(m) is False, f"the broken model passes {key(c)} ({m})"
                    if c.name not in control_may_fail:
                        continue
                    moved, noise = abs(m.value - c.reference), abs(before.value - c.reference)
                    assert moved >= SIGNAL * max(c.allowed(), noise), (
                        f"{key(c)}: the unbroken model fails this sample ({before.value}) and the break "
                        f"moves the figure too little ({m.value}; reference {c.reference})"
                    )
            finally:
                forget()

        return run

    return decorate
