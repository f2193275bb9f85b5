"""Routing at scale: trees hanging off a core, exact against networkx on any graph."""

from __future__ import annotations

import math
from typing import Any

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.config import parse_scenario
from sim.config.generate import internet
from sim.world import network
from sim.world.network import Network, _peel
from tests.conftest import tiny_data


def reference(data: dict[str, Any]) -> nx.Graph:
    """The graph as routing saw it before trees and core: canonical order, networkx's Dijkstra."""
    g = nx.Graph()
    for n in sorted(data["topology"]["nodes"], key=lambda n: n["id"]):
        g.add_node(n["id"])
    for e in sorted(data["topology"]["edges"], key=lambda e: tuple(sorted((e["a"], e["b"])))):
        g.add_edge(e["a"], e["b"], latency=float(e["latency"]),
                   bandwidth=float(e.get("bandwidth", 125e6)), loss=float(e.get("loss", 0.0)))
    return g


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    """The tiny world with a random graph of routers attached to its router ``r``.

    Latencies come either from a few round values (many equal-latency paths: ties) or
    from a continuum (shortest paths almost surely unique), zero included.
    """
    n = draw(st.integers(1, 9))
    tied = draw(st.booleans())
    lat = st.sampled_from([0.0, 0.001, 0.002, 0.003]) if tied else st.floats(0.0, 0.1)
    names = [f"x{i}" for i in range(n)]
    data = tiny_data()
    edges: list[dict[str, Any]] = []
    pairs = {frozenset((e["a"], e["b"])) for e in data["topology"]["edges"]}

    def join(a: str, b: str) -> None:
        if a != b and frozenset((a, b)) not in pairs:
            pairs.add(frozenset((a, b)))
            edges.append({"a": a, "b": b, "latency": draw(lat),
                          "bandwidth": draw(st.sampled_from([1e6, 5e6, 1e8])),
                          "loss": draw(st.sampled_from([0.0, 0.01, 0.02]))})

    existing = ["home", "r", "mta", "dns", "mx", "store"]
    for i, name in enumerate(names):  # a random tree: every router joins one before it
        join(name, draw(st.sampled_from(existing + names[:i])))
    for _ in range(draw(st.integers(0, 8))):  # and a few cycles
        join(draw(st.sampled_from(existing + names)), draw(st.sampled_from(existing + names)))
    data["topology"]["nodes"] += [{"id": name, "kind": "router"} for name in names]
    data["topology"]["edges"] += edges
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_every_link_is_networkx_shortest_path(data: dict[str, Any]) -> None:
    net = Network(parse_scenario(data))
    ref = reference(data)
    for a in ref:
        paths = nx.single_source_dijkstra_path(ref, a, weight="latency")
        for b in ref:
            link = net.link(a, b)
            # Exactly networkx's length (summed in the same order), and the very path
            # single_source_dijkstra_path kept before: ties broken as they always were.
            assert link.latency == nx.dijkstra_path_length(ref, a, b, weight="latency")
            assert link.hops == tuple(paths[b])
            hops = paths[b]
            keep = math.prod(1.0 - ref.edges[u, v]["loss"] for u, v in zip(hops, hops[1:]))
            assert link.loss == (1.0 - keep if len(hops) > 1 else 0.0)
            assert link.bandwidth == min(
                (ref.edges[u, v]["bandwidth"] for u, v in zip(hops, hops[1:])), default=math.inf
            )


def test_a_tie_is_broken_as_networkx_breaks_it() -> None:
    # Two equal ways from r to x3 (0.001 + 0.002 each), both on the core (a cycle).
    data = tiny_data()
    data["topology"]["nodes"] += [{"id": f"x{i}", "kind": "router"} for i in (1, 2, 3)]
    data["topology"]["edges"] += [
        {"a": "r", "b": "x1", "latency": 0.001}, {"a": "x1", "b": "x3", "latency": 0.002},
        {"a": "r", "b": "x2", "latency": 0.002}, {"a": "x2", "b": "x3", "latency": 0.001},
    ]
    ref = reference(data)
    net = Network(parse_scenario(data))
    for a in ("home", "r", "mx", "x3"):
        for b in ("x3", "x1", "store"):
            want = nx.single_source_dijkstra_path(ref, a, weight="latency")[b]
            assert net.link(a, b).hops == tuple(want)
    # home and mx reach the core's root r at different distances: a core run each, and
    # one from r and one from x3; pairs inside one tree (store-dns) need none.
    assert net.core_runs == 4
    assert net.link("store", "dns").hops == ("store", "mx", "r", "mta", "dns")
    assert net.core_runs == 4


def test_the_generated_internet_is_trees_on_a_core_of_exchange_points() -> None:
    data = internet(domains=30, regions=4, seed=5)
    net = Network(parse_scenario(data))
    _, depth, root = _peel(net.graph)
    core = {v for v in root if root[v] == v}
    assert core == {"ix0", "ix1", "ix2", "ix3"}
    assert depth["d7-edge"] == 1 and depth["d7-mx0"] == 2
    ref = reference(data)
    for a, b in [("d3-mta", "d17-mx0"), ("d17-store", "d17-people"), ("d0-mta", "d29-mx1")]:
        if b in ref:
            assert list(net.link(a, b).hops) == nx.dijkstra_path(ref, a, b, weight="latency")
    # One small Dijkstra per sender's (root, distance to it): over the 4 exchange points.
    assert 1 <= net.core_runs <= 3 and all(len(pred) == 4 for pred in net._core.values())


def test_a_graph_that_is_a_tree_has_one_core_node() -> None:
    net = Network(parse_scenario(tiny_data()))
    _, depth, root = _peel(net.graph)
    assert len(set(root.values())) == 1
    assert net.link("home", "store").hops == ("home", "r", "mx", "store")
    assert net.link("store", "home").hops == ("store", "mx", "r", "home")
    assert max(depth.values()) >= 2


def test_core_runs_kept_are_bounded_and_dropped_ones_come_back_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = internet(domains=12, regions=4, seed=1)
    ref = reference(data)
    monkeypatch.setattr(network, "CORE_ENTRIES", 8)  # two runs of the 4 exchange points
    net = Network(parse_scenario(data))
    senders = [f"d{i}-mta" for i in range(12)]
    for _ in range(2):
        for a in senders:
            assert list(net.link(a, "d5-mx0").hops) == nx.dijkstra_path(ref, a, "d5-mx0", weight="latency")
            net._links.clear()  # forget the pair, so the core run is needed again
            assert net._core_entries <= 8 and len(net._core) <= 2
    _, _, root = _peel(net.graph)
    away = sum(root[a] != root["d5-mx0"] for a in senders)  # others route inside a tree
    assert away >= 3 and net.core_runs == 2 * away  # every run was dropped before it came back
