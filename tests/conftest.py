"""Shared helpers: a tiny one-domain world whose every delay is known."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sim.config import Scenario, parse_scenario

# The tiny world (one client, one MTA with its resolver, one MX behind a router, one
# mailbox store): sim/verification/worlds.py, where the verification cases use it too;
# ``node`` finds a node of raw scenario data by id (tests import it from here).
from sim.verification.worlds import TINY, node

__all__ = ["assert_key_error", "cli", "node", "tiny", "tiny_data"]


def tiny_data(**changes: Any) -> dict[str, Any]:
    """A deep copy of TINY with top-level keys replaced."""
    data = copy.deepcopy(TINY)
    data.update(changes)
    return data


def tiny(**changes: Any) -> Scenario:
    """The tiny scenario, validated."""
    return parse_scenario(tiny_data(**changes))


@pytest.fixture
def tiny_scenario() -> Scenario:
    return tiny()


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the mailflow command in-process: (exit code, stdout, stderr)."""
    from sim.faces.cli import main

    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 0), captured.out, captured.err


def assert_key_error(
    args: list[str], capsys: pytest.CaptureFixture[str], path: Any, key: str, problem: str
) -> None:
    """``mailflow ARGS`` fails on the scenario at ``path`` as bad input must: exit code
    2, nothing on stdout, one line on stderr naming the file and the key path, with
    ``problem`` in it."""
    code, out, err = cli(args, capsys)
    assert code == 2 and out == "", (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mailflow: {path}: {key}: "), lines[0]
    assert problem in lines[0], lines[0]
