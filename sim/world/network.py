"""The world: a networkx graph whose edges carry latency, bandwidth and loss.

Traffic between two nodes follows the lowest-latency path. Components ask for the
:class:`~sim.world.links.Link` between two nodes each time they use it
(``network.link(a, b)``); a pair's link is summarised the first time it is used and
cached, so a later change of routes only has to clear the cache.

Routes are found without keeping a path to every node from every sender (which grows
with the square of the world). The Internet of mail is mostly trees hanging off a small
core: a host hangs off its domain's edge router, which hangs off an exchange point.
Peeling leaves repeatedly splits the graph into the *core* (its 2-core: what is left
when no node of degree one remains) and trees, each attached to the core at one *root*.
A simple path between two nodes of one tree is the tree path; between different trees
it is the tree path up to the first root, a core path, and the tree path down. Only the
core path needs Dijkstra, on the core alone, once per core node that routes anything.

Exact on any graph: where a core path is not clearly the only shortest one (another
predecessor within a hair of the same distance, e.g. equal latencies), networkx's
Dijkstra from the sending node decides, as it always did, so ties break as before (the
first path found in the canonical node order). The hop tuple, latency (summed from the
sender, as Dijkstra sums), bottleneck bandwidth and loss are then computed along it.
"""

from __future__ import annotations

import heapq
import networkx as nx

from ..config import ClientNode, RouterNode, Scenario
from ..core.component import Context, registers
from .links import Link

__all__ = ["Endpoint", "Network"]

# Two core paths whose latencies differ by less than this are treated as a tie and left
# to networkx: far above the rounding of a sum of a few hundred floats (~1e-13 relative)
# and far below any latency a scenario can tell apart.
TIE = 1e-9


class _CoreTree:
    """Shortest paths on the core from one core node: predecessors and a tie flag each."""

    __slots__ = ("pred", "unclear")

    def __init__(self, pred: dict[str, str | None], unclear: set[str]) -> None:
        self.pred = pred
        self.unclear = unclear  # core nodes whose path from the source may have a twin

    def path(self, target: str) -> list[str] | None:
        """The core path to ``target`` from the source, or None if it may not be the only one."""
        if target in self.unclear or target not in self.pred:
            return None  # networkx decides (or says that there is no path)
        out = [target]
        pred = self.pred
        step = pred[target]
        while step is not None:
            out.append(step)
            step = pred[step]
        out.reverse()
        return out


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
        self._links: dict[str, dict[str, Link]] = {}  # by source, then destination
        self._parent, self._depth, self._root = _peel(g)
        self._core_trees: dict[str, _CoreTree] = {}
        self.fallbacks = 0  # pairs routed by networkx's Dijkstra (a possible tie)

    def link(self, a: str, b: str) -> Link:
        """The lowest-latency path from a to b, summarised (cached)."""
        known = self._links.get(a)
        if known is None:
            known = self._links[a] = {}
        found = known.get(b)
        if found is None:
            found = known[b] = self._summarise(self.route(a, b))
        return found

    def route(self, a: str, b: str) -> list[str]:
        """The nodes of the lowest-latency path from ``a`` to ``b`` (not cached)."""
        if a == b:
            return [a]
        root, parent = self._root, self._parent
        ra, rb = root[a], root[b]
        if ra == rb:
            return self._tree_path(a, b)
        core = self._core_tree(ra).path(rb)
        if core is None:
            self.fallbacks += 1
            path: list[str] = nx.dijkstra_path(self.graph, a, b, weight="latency")
            return path
        up = [a]
        while up[-1] != ra:
            up.append(parent[up[-1]])
        down = [b]
        while down[-1] != rb:
            down.append(parent[down[-1]])
        down.reverse()
        return up[:-1] + core + down[1:]

    def _tree_path(self, a: str, b: str) -> list[str]:
        """The only simple path between two nodes of one tree: up to where they meet."""
        parent, depth = self._parent, self._depth
        up, down = [a], [b]
        while depth[up[-1]] > depth[down[-1]]:
            up.append(parent[up[-1]])
        while depth[down[-1]] > depth[up[-1]]:
            down.append(parent[down[-1]])
        while up[-1] != down[-1]:
            up.append(parent[up[-1]])
            down.append(parent[down[-1]])
        down.pop()
        down.reverse()
        return up + down

    def _core_tree(self, source: str) -> _CoreTree:
        found = self._core_trees.get(source)
        if found is None:
            found = self._core_trees[source] = _dijkstra_core(self.graph, self._root, source)
        return found

    def _summarise(self, hops: list[str]) -> Link:
        if len(hops) == 1:
            return Link(0.0, float("inf"), 0.0, (hops[0],), self.rto)
        adj = self.graph.adj
        latency = 0.0
        bandwidth = float("inf")
        keep = 1.0
        for u, v in zip(hops, hops[1:]):
            edge = adj[u][v]
            latency += edge["latency"]  # from the sender, in Dijkstra's order of addition
            bandwidth = min(bandwidth, edge["bandwidth"])
            keep *= 1.0 - edge["loss"]
        return Link(latency, bandwidth, 1.0 - keep, tuple(hops), self.rto)


def _peel(g: nx.Graph) -> tuple[dict[str, str], dict[str, int], dict[str, str]]:
    """Split ``g`` into its core and the trees hanging off it, in O(nodes + edges).

    Returns each tree node's parent (towards its root), every node's depth below its
    root (0 in the core) and every node's root (a core node is its own root). A graph
    (or component) that is a tree keeps one node as its core.
    """
    adj = g.adj
    degree = {v: len(adj[v]) for v in g}
    parent: dict[str, str] = {}
    leaves = [v for v in g if degree[v] == 1]
    while leaves:
        v = leaves.pop()
        if degree[v] != 1:
            continue  # the last node of a tree: it stays, as the core
        degree[v] = 0
        for u in adj[v]:
            if u not in parent and degree[u] > 0:
                parent[v] = u
                degree[u] -= 1
                if degree[u] == 1:
                    leaves.append(u)
                break
    depth: dict[str, int] = {}
    root: dict[str, str] = {}
    for v in g:
        # Climb to the first node whose root is known (or the core), then fill the way down.
        way = []
        u = v
        while u not in root and u in parent:
            way.append(u)
            u = parent[u]
        if u not in root:
            root[u], depth[u] = u, 0
        r, d = root[u], depth[u]
        for w in reversed(way):
            d += 1
            root[w], depth[w] = r, d
    return parent, depth, root


def _dijkstra_core(g: nx.Graph, root: dict[str, str], source: str) -> _CoreTree:
    """Dijkstra from a core node over core nodes only, marking paths that may have a twin.

    A node is *unclear* when a neighbour other than its predecessor reaches it within
    ``TIE`` of its distance, or when its predecessor is unclear: then another shortest
    path may exist, and which one Dijkstra keeps depends on its order of work.
    """
    adj = g.adj
    dist: dict[str, float] = {}
    pred: dict[str, str | None] = {source: None}
    seen: dict[str, float] = {source: 0.0}
    order: list[str] = []
    heap: list[tuple[float, int, str]] = [(0.0, 0, source)]
    count = 1
    while heap:
        d, _, v = heapq.heappop(heap)
        if v in dist:
            continue
        dist[v] = d
        order.append(v)
        for u, edge in adj[v].items():
            if u in dist or root[u] != u:
                continue  # finished, or a tree node: no core path passes through a tree
            du = d + edge["latency"]
            if du < seen.get(u, float("inf")):
                seen[u] = du
                pred[u] = v
                heapq.heappush(heap, (du, count, u))
                count += 1
    unclear: set[str] = set()
    for v in order:  # predecessors come first: an unclear way makes what follows unclear
        p = pred[v]
        if p is None:
            continue  # the source: reached by the empty path
        if p in unclear:
            unclear.add(v)
            continue
        limit = dist[v] * (1.0 + TIE) + TIE * 1e-3
        for u, edge in adj[v].items():
            if u != p and u in dist and dist[u] + edge["latency"] <= limit:
                unclear.add(v)
                break
    return _CoreTree(pred, unclear)


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
