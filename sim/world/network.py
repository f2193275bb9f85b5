"""The world: a networkx graph whose edges carry latency, bandwidth and loss.

Traffic between two nodes follows the lowest-latency path. Components ask for the
:class:`~sim.world.links.Link` between two nodes each time they use it
(``network.link(a, b)``); links are summarised once and cached, with one Dijkstra per
source node computed the first time that node sends anything, so a later change of
routes only has to clear the cache.
"""

from __future__ import annotations

import networkx as nx

from ..config import ClientNode, RouterNode, Scenario
from ..core.component import Context, registers
from .links import Link

__all__ = ["Endpoint", "Network"]


class Network:
    """The scenario's graph with cached link summaries."""

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
        self.rto = scenario.smtp.rto
        self._routes: dict[str, dict[str, list[str]]] = {}
        self._links: dict[str, dict[str, Link]] = {}  # by source, then destination

    def link(self, a: str, b: str) -> Link:
        """The lowest-latency path from a to b, summarised (cached)."""
        known = self._links.get(a)
        if known is None:
            known = self._links[a] = {}
        found = known.get(b)
        if found is not None:
            return found
        if a == b:
            found = Link(0.0, float("inf"), 0.0, (a,), self.rto)
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
            found = Link(latency, bandwidth, 1.0 - keep, tuple(hops), self.rto)
        known[b] = found
        return found


@registers(ClientNode, RouterNode)
class Endpoint:
    """A node that only carries traffic or attaches people and programs (client, router)."""

    def __init__(self, ctx: Context, spec: ClientNode | RouterNode) -> None:
        self.id = spec.id

    def start(self) -> None:
        """Nothing to start: traffic through it is costed by its links."""

    def holding(self) -> int:
        """Holds no messages."""
        return 0

    def stats(self) -> dict[str, float]:
        """No counters."""
        return {}
