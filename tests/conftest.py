"""Shared helpers: a tiny one-domain world whose every delay is known."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sim.config import Scenario, parse_scenario

# One client, one MTA with its resolver, one MX behind a router, one mailbox store.
#   home --0.02 s, 1 MB/s-- r --0.001 s-- mta --0.001 s-- dns
#                           r --0.015 s, 5 MB/s-- mx --0.0005 s-- store
TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 7,
    "duration": 350,
    "drain": 1000,
    "topology": {
        "nodes": [
            {"id": "home", "kind": "client"},
            {"id": "r", "kind": "router"},
            {"id": "mta", "kind": "mta", "resolver": "dns", "workers": 4},
            {"id": "dns", "kind": "resolver", "lookup": 0.2},
            {"id": "mx", "kind": "mx", "processing": 0.05},
            {"id": "store", "kind": "mailbox", "write": 0.01},
        ],
        "edges": [
            {"a": "home", "b": "r", "latency": 0.02, "bandwidth": 1.0e6},
            {"a": "r", "b": "mta", "latency": 0.001, "bandwidth": 1.0e8},
            {"a": "mta", "b": "dns", "latency": 0.001},
            {"a": "r", "b": "mx", "latency": 0.015, "bandwidth": 5.0e6},
            {"a": "mx", "b": "store", "latency": 0.0005, "bandwidth": 1.0e8},
        ],
    },
    "domains": [
        {
            "name": "example.org",
            "users": 1,
            "outbound": "mta",
            "mx": [{"host": "mx", "preference": 10}],
            "mx_ttl": 150,
            "mailbox": "store",
            "retrieval": {
                "client": "home",
                "imap": {"share": 1, "poll_interval": 600, "phase": 0},
                "pop3": {"share": 0},
                "webmail": {"share": 0},
            },
        }
    ],
    "workload": [
        {
            "name": "people",
            "kind": "person",
            "client": "home",
            "domain": "example.org",
            "interarrival": 100,
            "size": 10000,
        }
    ],
}


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


def node(data: dict[str, Any], node_id: str) -> dict[str, Any]:
    """The topology node ``node_id`` of raw scenario data (found by id, not by position)."""
    for item in data["topology"]["nodes"]:
        if item["id"] == node_id:
            return item  # type: ignore[no-any-return]
    raise KeyError(node_id)


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
