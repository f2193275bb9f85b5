"""``mailflow verify --quick`` for every group passes (issue 12: part of make test), and
each scored case's sample is large enough to tell: its 95 % interval is no wider than
its tolerance, so a pass is not luck of the seed."""

from __future__ import annotations

import pytest

from sim.verification import GROUPS, Outcome, run_cases
from tests.conftest import cli


@pytest.fixture(scope="module")
def quick() -> list[Outcome]:
    return run_cases(quick=True, seed=1)


def test_mailflow_verify_quick_passes(quick: list[Outcome]) -> None:
    failed = [(o.case.group, o.case.name, o.measured, o.error) for o in quick if o.passed is False]
    assert not failed
    assert {o.case.group for o in quick} == set(GROUPS)  # every group ran


def test_every_scored_interval_is_within_its_tolerance(quick: list[Outcome]) -> None:
    wide = [(o.case.group, o.case.name, o.measured, o.case.allowed()) for o in quick
            if o.case.scored and (o.measured.high - o.measured.low) / 2 > o.case.allowed()]
    assert not wide


def test_the_command_runs_a_group(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["verify", "--quick", "--only", "dns"], capsys)
    assert code == 0, out + err
    assert "cases pass" in out and "FAIL" not in out and "  dns: " in out
