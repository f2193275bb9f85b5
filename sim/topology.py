"""The world: a networkx graph whose edges carry latency, bandwidth and loss.

Traffic between two nodes follows the lowest-latency path. A path is summarised once
(one-way latency, bottleneck bandwidth, end-to-end loss) and cached: one Dijkstra per
source node, computed the first time that node sends anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from .scenario import Scenario

__all__ = ["Network", "Path"]


@dataclass(frozen=True, slots=True)
class Path:
    """What traffic between two nodes sees on the lowest-latency path."""

    latency: float  # one-way, seconds
    bandwidth: float  # bottleneck, bytes/s
    loss: float  # probability that a packet is lost somewhere on the path
    hops: tuple[str, ...]

    @property
    def rtt(self) -> float:
        """Round-trip time."""
        return 2.0 * self.latency


class Network:
    """The scenario's graph with cached path summaries."""

    def __init__(self, scenario: Scenario) -> None:
        g = nx.Graph()
        # Nodes and edges go in in a canonical order, not the file's: among paths of equal
        # latency Dijkstra keeps the first it finds, and that must not depend on how the
        # file happens to list the links.
        for node in sorted(scenario.topology.nodes, key=lambda n: n.id):
            g.add_node(node.id, kind=node.kind)
        for e in sorted(scenario.topology.edges, key=lambda e: tuple(sorted((e.a, e.b)))):
            g.add_edge(e.a, e.b, latency=e.latency, bandwidth=e.bandwidth, loss=e.loss)
        self.graph = g
        self._routes: dict[str, dict[str, list[str]]] = {}
        self._paths: dict[tuple[str, str], Path] = {}

    def path(self, a: str, b: str) -> Path:
        """The lowest-latency path from a to b, summarised (cached)."""
        key = (a, b)
        found = self._paths.get(key)
        if found is not None:
            return found
        if a == b:
            found = Path(0.0, float("inf"), 0.0, (a,))
        else:
            routes = self._routes.get(a)
            if routes is None:
                routes = nx.single_source_dijkstra_path(self.graph, a, weight="latency")
                self._routes[a] = routes
            hops = routes[b]
            latency = 0.0
            bandwidth = float("inf")
            keep = 1.0
            for u, v in zip(hops, hops[1:]):
                edge = self.graph.edges[u, v]
                latency += edge["latency"]
                bandwidth = min(bandwidth, edge["bandwidth"])
                keep *= 1.0 - edge["loss"]
            found = Path(latency, bandwidth, 1.0 - keep, tuple(hops))
        self._paths[key] = found
        return found
