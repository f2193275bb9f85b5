"""Every scored ``mailflow verify`` case has a deliberately broken model that fails it
(issue 12: "each case has a test that a deliberately broken model fails it").

A broken-model test applies one break (with ``monkeypatch``) and is decorated with
:func:`breaks`, naming the cases that break must fail; the decorator runs those cases
on the broken model after the test's body and asserts that each fails. It also records
them in :data:`BROKEN`, which ``tests/test_verify_breaks.py`` checks against every
scored case of the full set: a new case without a break of its own fails that test.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sim.verification import Case, cases

__all__ = ["BROKEN", "breaks", "key", "the_case"]

# "group: case name" -> the broken-model tests that fail it
BROKEN: dict[str, list[str]] = {}


def key(c: Case) -> str:
    """The case's key in :data:`BROKEN`."""
    return f"{c.group}: {c.name}"


def the_case(group: str, name: str) -> Case:
    """The case of ``group`` (quick or full set) named exactly ``name``."""
    found = [c for c in cases(groups=[group]) if c.name == name]
    assert len(found) == 1, f"no single case {group}: {name!r}"
    return found[0]


def breaks(group: str, *names: str, seed: int = 1) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorate a test that breaks the model: after its body, each case of ``group``
    named in ``names`` is measured on the quick footing (``measure(True, seed)``; a
    full-set case needs its sample set by the test, as the queueing tests shrink their
    worlds) and must fail."""
    if not names:
        raise ValueError("breaks() names no case")

    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        for name in names:
            BROKEN.setdefault(f"{group}: {name}", []).append(f"{test.__module__}.{test.__name__}")

        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> None:
            test(*args, **kwargs)
            for name in names:
                c = the_case(group, name)
                m = c.measure(True, seed)
                assert c.judge(m) is False, f"the broken model passes {group}: {name} ({m})"

        return run

    return decorate
