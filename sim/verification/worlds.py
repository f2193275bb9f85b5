"""Small worlds whose every delay is known, shared by the verification cases and the
tests (tests/conftest.py builds on :data:`TINY`)."""

from __future__ import annotations

from typing import Any

__all__ = ["TINY", "edge", "node", "one_way"]

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


def node(data: dict[str, Any], node_id: str) -> dict[str, Any]:
    """The topology node ``node_id`` of raw scenario ``data`` (by id, not by position)."""
    for item in data["topology"]["nodes"]:
        if item["id"] == node_id:
            return item
    raise KeyError(node_id)


def edge(data: dict[str, Any], a: str, b: str) -> dict[str, Any]:
    """The edge between nodes ``a`` and ``b`` of raw scenario ``data`` (either way round)."""
    for item in data["topology"]["edges"]:
        if {item["a"], item["b"]} == {a, b}:
            return item
    raise KeyError((a, b))


def one_way(data: dict[str, Any], *path: str) -> tuple[float, float]:
    """The one-way latency along ``path`` (node ids, hop by hop) and its bottleneck
    bandwidth (an edge that sets none has the default of ``sim.config``'s edges)."""
    from ..config.nodes import Edge

    default = float(Edge.model_fields["bandwidth"].default)
    latency, bandwidth = 0.0, float("inf")
    for a, b in zip(path, path[1:]):
        e = edge(data, a, b)
        latency += float(e["latency"])
        bandwidth = min(bandwidth, float(e.get("bandwidth", default)))
    return latency, bandwidth
