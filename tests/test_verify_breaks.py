"""Every scored verify case is failed by at least one deliberately broken model
(tests/verify_breaks.py), so no case is a check that cannot fail."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import tests
from sim.verification import cases
from tests.verify_breaks import BROKEN, key


def test_every_scored_case_has_a_broken_model_that_fails_it() -> None:
    for info in pkgutil.iter_modules(tests.__path__):
        if info.name.startswith("test_verify"):
            importlib.import_module(f"tests.{info.name}")  # registers their breaks
    scored = {key(c) for c in cases() if c.scored}
    missing = sorted(scored - set(BROKEN))
    assert not missing, f"{len(missing)} scored cases without a broken-model test: {missing}"
    unknown = sorted(set(BROKEN) - {key(c) for c in cases()})
    assert not unknown, f"breaks name cases that do not exist: {unknown}"
