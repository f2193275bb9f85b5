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
it is the tree path up to the sender's root, a core path, and the tree path down. Only
the core path needs Dijkstra, on the core alone.

Exact on any graph, ties included: the path is the one networkx's Dijkstra from the
sender keeps (``single_source_dijkstra_path``, as routing did before). Inside a tree
there is only one simple path. On the core, networkx's run from the sender reaches the
root first, at the distance summed along the tree path, and from there it relaxes core
nodes only from core nodes (a tree touches the core at its root alone), in the same
order as a Dijkstra on the core that starts at the root with that distance: the same
sums, the same comparisons, the same order among equal distances. So the core run
starts at the root *at the sender's distance from it* and is cached per (root,
distance); the hosts of a domain, one LAN hop from their edge router, share one.

Faults change the graph a few times a run (``impair``, ``restore``): an edge that is
down leaves the graph routes are found on (a copy of the whole graph less the edges
that are down, in the same order, so routes during the fault are those of the world
without the edge, ties included, and after the repair those of before); extra latency
and loss change the edge's values. Every change drops the cached links and core runs,
bumps ``epoch`` and tells the components that keep something derived from a link
(``watch``); the next look-up peels the graph again, once for a fault's many edges. A
run whose links never change pays nothing for this.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import networkx as nx

from ..config import ClientNode, RouterNode, Scenario
from ..core.component import Context, registers
from .links import Link
from .sharing import SharedEdge

__all__ = ["Endpoint", "Network"]

# Core-node entries kept in cached core runs (predecessor maps) before the oldest runs
# are dropped: bounds memory on a world whose core is large (~100 bytes an entry).
CORE_ENTRIES = 2_000_000


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
            if e.shared:  # only marked edges carry it: _summarise looks for the key
                g.adj[e.a][e.b]["shared"] = SharedEdge(e.a, e.b, e.bandwidth)
        self.graph = g  # every edge, with its values as they are now (faults included)
        self.rto = scenario.smtp.rto
        self._links: dict[str, dict[str, Link]] = {}  # by source, then destination
        self._routing = g  # the graph routes are found on: g less the edges that are down
        self._core: dict[tuple[str, float], dict[str, str | None]] = {}  # predecessors
        self._core_entries = 0
        self.core_runs = 0  # Dijkstras run on the core (a measure of routing work)
        self._split()
        # Faults on edges (sorted ends) by reason: (down, extra latency, extra loss), and
        # each impaired edge's own latency and loss, put back when its last fault ends.
        self._faults: dict[tuple[str, str], dict[str, tuple[bool, float, float]]] = {}
        self._own: dict[tuple[str, str], tuple[float, float]] = {}
        self.epoch = 0  # changes of the graph so far
        self._stale = False  # faults changed since the graph was last peeled
        self.reroutes = 0  # times the graph was peeled again after faults changed
        self._watchers: list[Callable[[], None]] = []

    def _split(self) -> None:
        """Peel the routing graph into core and trees, and list the core's own links."""
        g = self._routing
        self._parent, self._depth, self._root = _peel(g)
        root = self._root
        # The core's own links, in the graph's order (which breaks ties): an exchange
        # point has thousands of tree neighbours that a core run must not walk through.
        self._core_adj = {
            v: [(u, edge["latency"]) for u, edge in g.adj[v].items() if root[u] == u]
            for v in g
            if root[v] == v
        }

    def link(self, a: str, b: str) -> Link:
        """The lowest-latency path from a to b, summarised (cached)."""
        known = self._links.get(a)
        if known is None:
            known = self._links[a] = {}
        found = known.get(b)
        if found is None:
            try:
                hops = self.route(a, b)
            except nx.NetworkXNoPath:  # cut off: nothing crosses (see sim.world.links)
                found = Link(math.inf, 0.0, 0.0, (a, b), self.rto, up=False)
            else:
                found = self._summarise(hops)
            known[b] = found
        return found

    def route(self, a: str, b: str) -> list[str]:
        """The nodes of the lowest-latency path from ``a`` to ``b`` (not cached)."""
        if a == b:
            return [a]
        if self._stale:
            self._reroute()
        root, parent, adj = self._root, self._parent, self._routing.adj
        ra, rb = root[a], root[b]
        if ra == rb:
            return self._tree_path(a, b)
        up = [a]
        reach = 0.0  # the distance networkx's run from ``a`` has at the root
        while up[-1] != ra:
            v = up[-1]
            p = parent[v]
            reach += adj[v][p]["latency"]
            up.append(p)
        pred = self._core_from(ra, reach)
        if rb not in pred:
            raise nx.NetworkXNoPath(f"Node {b} not reachable from {a}")
        core = [rb]
        step = pred[rb]
        while step is not None:
            core.append(step)
            step = pred[step]
        core.reverse()
        down = [b]
        while down[-1] != rb:
            down.append(parent[down[-1]])
        down.reverse()
        return up[:-1] + core + down[1:]

    def impair(self, a: str, b: str, reason: str, *, down: bool, latency: float = 0.0, loss: float = 0.0) -> None:
        """A fault (``reason``) takes the edge a-b down, or adds ``latency`` (one way)
        and ``loss`` to it. Faults on one edge add up; routes are found again, so
        traffic takes a detour where the graph has one, and where none is left
        ``link()`` says so (``Link.up`` false)."""
        key = self._edge(a, b)
        if key not in self._own:
            edge = self.graph.adj[a][b]
            self._own[key] = (edge["latency"], edge["loss"])
        self._faults.setdefault(key, {})[reason] = (down, latency, loss)
        self._changed(key)

    def restore(self, a: str, b: str, reason: str) -> None:
        """The fault ``reason`` on the edge a-b is over."""
        key = self._edge(a, b)
        faults = self._faults.get(key)
        if faults is None or faults.pop(reason, None) is None:
            raise KeyError(f"no fault {reason!r} on the edge {a}~{b}")
        self._changed(key)

    def watch(self, changed: Callable[[], None]) -> None:
        """Call ``changed`` after every change of the graph: a component that keeps
        something derived from a link drops it, to look it up again when it needs it.
        ``changed`` must not look links up itself (one fault changes many edges in
        turn; routes are found again once, at the next look-up)."""
        self._watchers.append(changed)

    def _edge(self, a: str, b: str) -> tuple[str, str]:
        if not self.graph.has_edge(a, b):
            raise KeyError(f"no edge {a}~{b} in the topology")
        return (a, b) if a < b else (b, a)

    def _changed(self, key: tuple[str, str]) -> None:
        """The faults on the edge ``key`` changed: its values, then every route."""
        faults = self._faults[key]
        edge = self.graph.adj[key[0]][key[1]]
        latency, loss = self._own[key]
        keep = 1.0 - loss
        for _, more, lost in faults.values():  # latencies add up; losses are independent
            latency += more
            keep *= 1.0 - lost
        edge["latency"] = latency
        edge["loss"] = loss if keep == 1.0 - loss else 1.0 - keep
        if not faults:  # its own values exactly, as before the first fault
            del self._faults[key], self._own[key]
        # Routes are found again at the next look-up, not here: a partition changes
        # thousands of edges one by one, and the graph is peeled once for them all.
        self._stale = True
        self._links.clear()
        self._core.clear()
        self._core_entries = 0
        self.epoch += 1
        for changed in self._watchers:
            changed()

    def _reroute(self) -> None:
        """Peel the graph less the edges that are down (after a change of faults)."""
        self._stale = False
        self.reroutes += 1
        down = {k for k, f in self._faults.items() if any(d for d, _, _ in f.values())}
        g = self.graph
        if down:
            # A copy less the edges that are down: removing keeps the order of the rest
            # (ties are broken by adjacency order), which re-adding a repaired edge to
            # the graph would not.
            routing = g.copy()
            routing.remove_edges_from(down)
            self._routing = routing
        else:
            self._routing = g
        self._split()

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

    def _core_from(self, root: str, reach: float) -> dict[str, str | None]:
        key = (root, reach)
        found = self._core.get(key)
        if found is None:
            found = _dijkstra_core(self._core_adj, root, reach)
            self.core_runs += 1
            self._core_entries += len(found)
            while self._core and self._core_entries > CORE_ENTRIES:
                oldest = next(iter(self._core))
                self._core_entries -= len(self._core.pop(oldest))
            self._core[key] = found
        return found

    def _summarise(self, hops: list[str]) -> Link:
        if len(hops) == 1:
            return Link(0.0, float("inf"), 0.0, (hops[0],), self.rto)
        adj = self._routing.adj
        latency = 0.0
        bandwidth = unshared = float("inf")
        keep = 1.0
        shared: list[SharedEdge] = []
        for u, v in zip(hops, hops[1:]):
            edge = adj[u][v]
            latency += edge["latency"]  # from the sender, in Dijkstra's order of addition
            bandwidth = min(bandwidth, edge["bandwidth"])
            keep *= 1.0 - edge["loss"]
            split = edge.get("shared")
            if split is None:
                unshared = min(unshared, edge["bandwidth"])
            else:
                shared.append(split)
        if shared:
            return Link(latency, bandwidth, 1.0 - keep, tuple(hops), self.rto, shared=tuple(shared), unshared=unshared)
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


def _dijkstra_core(
    core_adj: dict[str, list[tuple[str, float]]], source: str, reach: float
) -> dict[str, str | None]:
    """Each core node's predecessor on its shortest path from ``source``, reached at
    distance ``reach``: networkx's Dijkstra (``_dijkstra_multisource``) step for step,
    over the core's links only (a strictly shorter distance replaces a path; among
    equal distances the node pushed first is popped first)."""
    done: set[str] = set()
    pred: dict[str, str | None] = {source: None}
    seen: dict[str, float] = {source: reach}
    heap: list[tuple[float, int, str]] = [(reach, 0, source)]
    count = 1
    while heap:
        d, _, v = heapq.heappop(heap)
        if v in done:
            continue
        done.add(v)
        for u, latency in core_adj[v]:
            if u in done:
                continue
            du = d + latency
            if u not in seen or du < seen[u]:
                seen[u] = du
                pred[u] = v
                heapq.heappush(heap, (du, count, u))
                count += 1
    return pred


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
