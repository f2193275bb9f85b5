"""Cross-reference checks: what pydantic's per-field validation cannot see."""

from __future__ import annotations

import math
from typing import Any

import networkx as nx

from .base import MAX_MESSAGES
from .domains import Domain
from .errors import ScenarioError, key_text
from .faults import DeviceFault, LinkFault, NodeFault
from .nodes import MTANode, MXNode, RelayNode, sending_ips
from .scenario import Scenario


__all__ = ["check_references"]

# Node kinds said with "an" (a vowel sound: "an mx", "an mta", "an esp", "an authoritative").
_AN = frozenset({"mx", "mta", "esp", "authoritative"})


def _a(kind: str) -> str:
    """``kind`` with its indefinite article."""
    return f"{'an' if kind.split()[0] in _AN else 'a'} {kind}"


def check_references(sc: Scenario) -> None:
    """Raise ScenarioError for the first reference that points nowhere or is unusable."""
    kinds: dict[str, str] = {}
    for i, node in enumerate(sc.topology.nodes):
        if node.id in kinds:
            raise ScenarioError(f"topology.nodes[{i}].id", f"duplicate node id {node.id!r}")
        kinds[node.id] = node.kind

    def need(path: str, node_id: str, kind: str, *others: str) -> None:
        if node_id not in kinds:
            raise ScenarioError(path, f"{node_id!r} is not a node of the topology")
        if kinds[node_id] != kind and kinds[node_id] not in others:
            wanted = " or ".join((kind, *others))
            raise ScenarioError(path, f"{node_id!r} is {_a(kinds[node_id])} node, not {_a(wanted)} node")

    def servers(path: str, ns: list[str]) -> None:
        # Name servers are authoritative nodes, each listed once.
        for j, server in enumerate(ns):
            need(f"{path}[{j}]", server, "authoritative")
            if server in ns[:j]:
                raise ScenarioError(f"{path}[{j}]", f"{server!r} is listed twice")

    for i, node in enumerate(sc.topology.nodes):
        if isinstance(node, (MXNode, RelayNode)):  # an MX host's address records
            servers(f"topology.nodes[{i}].ns", node.ns)
        if isinstance(node, MTANode):  # relays and ESPs too
            if node.resolvers is None:
                need(f"topology.nodes[{i}].resolver", node.nameservers[0], "resolver")
            for j, server in enumerate(node.resolvers or ()):
                need(f"topology.nodes[{i}].resolvers[{j}]", server, "resolver")
            if node.relayhost is not None:
                need(f"topology.nodes[{i}].relayhost", node.relayhost, "relay")
                if node.relayhost == node.id:
                    raise ScenarioError(
                        f"topology.nodes[{i}].relayhost", f"{node.id!r} names itself as its relayhost"
                    )
        elif isinstance(node, MXNode) and node.resolver is not None:
            need(f"topology.nodes[{i}].resolver", node.resolver, "resolver")
    _check_histories(sc)
    links: set[frozenset[str]] = set()
    for i, edge in enumerate(sc.topology.edges):
        for end in ("a", "b"):
            if getattr(edge, end) not in kinds:
                raise ScenarioError(
                    f"topology.edges[{i}].{end}",
                    f"{getattr(edge, end)!r} is not a node of the topology",
                )
        if edge.a == edge.b:
            raise ScenarioError(f"topology.edges[{i}]", f"edge joins {edge.a!r} to itself")
        link = frozenset((edge.a, edge.b))
        if link in links:
            raise ScenarioError(
                f"topology.edges[{i}]", f"a second edge between {edge.a!r} and {edge.b!r}"
            )
        links.add(link)
    _check_faults(sc, kinds, links)

    graph = nx.Graph()
    graph.add_nodes_from(kinds)
    graph.add_edges_from((e.a, e.b) for e in sc.topology.edges)
    if not nx.is_connected(graph):
        parts = sorted(nx.connected_components(graph), key=len, reverse=True)
        stray = sorted(parts[1])
        raise ScenarioError(
            "topology.edges",
            f"the graph is disconnected: {', '.join(map(repr, stray[:3]))}"
            f"{' and others' if len(stray) > 3 else ''} cannot reach {sorted(parts[0])[0]!r}",
        )

    names: dict[str, Domain] = {}
    for i, dom in enumerate(sc.domains):
        p = f"domains[{i}]"
        if dom.name in names:
            raise ScenarioError(f"{p}.name", f"duplicate domain {dom.name!r}")
        names[dom.name] = dom
        if dom.outbound is not None:
            need(f"{p}.outbound", dom.outbound, "mta", "esp")
        for j, rec in enumerate(dom.mx):
            need(f"{p}.mx[{j}].host", rec.host, "mx", "relay")
            if any(r.host == rec.host for r in dom.mx[:j]):
                raise ScenarioError(f"{p}.mx[{j}].host", f"{rec.host!r} is listed twice")
        for k, change in enumerate(dom.mx_changes):
            for j, rec in enumerate(change.mx):
                need(f"{p}.mx_changes[{k}].mx[{j}].host", rec.host, "mx", "relay")
                if any(r.host == rec.host for r in change.mx[:j]):
                    raise ScenarioError(f"{p}.mx_changes[{k}].mx[{j}].host", f"{rec.host!r} is listed twice")
        if dom.host is not None:
            need(f"{p}.host", dom.host, "mx")
        servers(f"{p}.ns", dom.ns)
        if dom.mailbox is not None:
            need(f"{p}.mailbox", dom.mailbox, "mailbox")
        elif dom.quota is not None:
            raise ScenarioError(f"{p}.quota", f"domain {dom.name!r} has a quota but no mailbox to count it in")
        if dom.retrieval is not None:
            need(f"{p}.retrieval.client", dom.retrieval.client, "client")
        if dom.users > 0:
            if not dom.receives:
                raise ScenarioError(
                    p, f"domain {dom.name!r} has users but no MX records and no host"
                )
            if dom.mailbox is None:
                raise ScenarioError(f"{p}.mailbox", f"domain {dom.name!r} has users but no mailbox")

    someone_receives = any(d.users > 0 for d in sc.domains)  # once, not once per source
    sources: set[str] = set()
    expected = 0.0
    for i, src in enumerate(sc.workload):
        p = f"workload[{i}]"
        if src.name in sources:
            raise ScenarioError(f"{p}.name", f"duplicate source name {src.name!r}")
        sources.add(src.name)
        expected += src.expected_messages(sc.duration)
        if expected > MAX_MESSAGES:
            raise ScenarioError(
                p,
                f"the sources would create about {expected:.3g} messages; "
                f"the limit is {MAX_MESSAGES:.0e}",
            )
        need(f"{p}.client", src.client, "client")
        if src.domain not in names:
            raise ScenarioError(f"{p}.domain", f"{src.domain!r} is not a domain of the scenario")
        if src.local_share > 0 and names[src.domain].users == 0:
            raise ScenarioError(
                f"{p}.local_share", f"domain {src.domain!r} has no users to write to locally"
            )
        if src.mta is not None:
            need(f"{p}.mta", src.mta, "mta", "esp")
        elif names[src.domain].outbound is None:
            raise ScenarioError(
                f"{p}.mta", f"no MTA: give one here or an outbound MTA for {src.domain!r}"
            )
        if src.recipients is None:
            if not someone_receives:
                raise ScenarioError(f"{p}.recipients", "no domain has users to receive mail")
            continue
        if not src.recipients:
            raise ScenarioError(f"{p}.recipients", "no recipient domains")
        for name, weight in src.recipients.items():
            rp = f"{p}.recipients[{key_text(name)}]"
            if name not in names:
                raise ScenarioError(rp, f"{name!r} is not a domain of the scenario")
            dom = names[name]
            if dom.undeliverable:  # mail sent there on purpose, to bounce (a typo, a null MX, NODATA)
                pass
            elif dom.users == 0:
                raise ScenarioError(rp, f"domain {name!r} has no users to receive mail")
            if not (weight >= 0 and math.isfinite(weight)):
                raise ScenarioError(rp, f"weight must be a finite number >= 0, got {weight}")
        total = sum(src.recipients.values())
        if not 0 < total < math.inf:
            raise ScenarioError(
                f"{p}.recipients", "recipient weights must add up to a finite number above zero"
            )


# Node kinds a node fault may take down (clients and routers are places, not servers:
# cut them off with a link fault or a partition).
FAULTY = ("mta", "relay", "esp", "mx", "resolver", "authoritative", "mailbox")
# Kinds with a queue or a store a fault's disk: lost can lose.
DISKS = ("mta", "relay", "esp", "mx", "mailbox")


def _check_faults(sc: Scenario, kinds: dict[str, str], links: set[frozenset[str]]) -> None:
    """Every node, edge and region a fault names exists and can fail that way (a fault
    may start after the run's end: it then never happens)."""
    regions = {node.region for node in sc.topology.nodes if node.region is not None}
    named: set[str] = set()
    for i, fault in enumerate(sc.faults):
        p = f"faults[{i}]"
        if fault.name is not None:
            if fault.name in named:  # it labels the fault's counters in run.json
                raise ScenarioError(f"{p}.name", f"duplicate fault name {fault.name!r}")
            named.add(fault.name)
        if isinstance(fault, NodeFault):
            key = "node" if fault.node is not None else "nodes"
            for j, node_id in enumerate(fault.targets):
                at = f"{p}.{key}" if fault.node is not None else f"{p}.nodes[{j}]"
                if node_id not in kinds:
                    raise ScenarioError(at, f"{node_id!r} is not a node of the topology")
                kind = kinds[node_id]
                if kind not in FAULTY:
                    raise ScenarioError(
                        at, f"{node_id!r} is {_a(kind)} node: it cannot fail by itself "
                        "(cut it off with a link fault or a partition)"
                    )
                if fault.disk == "lost" and kind not in DISKS:
                    raise ScenarioError(f"{p}.disk", f"{node_id!r} is {_a(kind)} node: it has no queue or store to lose")
                if node_id in fault.targets[:j]:
                    raise ScenarioError(at, f"{node_id!r} is listed twice")
        elif isinstance(fault, LinkFault):
            for end in ("a", "b"):
                node_id = getattr(fault, end)
                if node_id not in kinds:
                    raise ScenarioError(f"{p}.{end}", f"{node_id!r} is not a node of the topology")
            if frozenset((fault.a, fault.b)) not in links:
                raise ScenarioError(p, f"no edge between {fault.a!r} and {fault.b!r} in topology.edges")
        elif isinstance(fault, DeviceFault):
            _check_device_fault(sc, p, fault)
        else:
            if fault.region is not None and fault.region not in regions:
                known = ", ".join(sorted(regions)[:5]) or "none"
                raise ScenarioError(f"{p}.region", f"no node is in region {fault.region!r} (regions: {known})")
            for j, node_id in enumerate(fault.nodes):
                if node_id not in kinds:
                    raise ScenarioError(f"{p}.nodes[{j}]", f"{node_id!r} is not a node of the topology")
            side = set(fault.nodes) if fault.region is None else {
                n.id for n in sc.topology.nodes if n.region == fault.region
            }
            if len(side) == len(kinds):
                raise ScenarioError(p, "the side cut off is the whole world: nothing is left on the other side")


def _check_device_fault(sc: Scenario, p: str, fault: DeviceFault) -> None:
    """Each domain a device fault names exists, has people who read mail, and has the
    device type it names."""
    domains = {d.name: d for d in sc.domains}
    for j, name in enumerate(fault.targets):
        at = f"{p}.domain" if fault.domain is not None else f"{p}.domains[{j}]"
        dom = domains.get(name)
        if dom is None:
            raise ScenarioError(at, f"{name!r} is not a domain of the scenario")
        if name in fault.targets[:j]:
            raise ScenarioError(at, f"{name!r} is listed twice")
        if dom.retrieval is None or dom.users == 0:
            raise ScenarioError(at, f"domain {name!r} has no devices to lose (it needs users and a retrieval)")
        types = [t.name for t in dom.retrieval.device_types()[0]]
        if fault.device not in types:
            raise ScenarioError(
                f"{p}.device", f"domain {name!r} has no device type {fault.device!r} (it has {', '.join(types)})"
            )


def _check_histories(sc: Scenario) -> None:
    """Every IP a ``rate_limits.reputation.history`` names is a sending IP of the
    topology (an MTA's, a relay's or an ESP's), as the receiver sees it."""
    histories = [
        (i, node.rate_limits.reputation.history)
        for i, node in enumerate(sc.topology.nodes)
        if isinstance(node, MXNode) and node.rate_limits is not None
        and node.rate_limits.reputation is not None and node.rate_limits.reputation.history
    ]
    if not histories:
        return
    known = [
        ip for node in sc.topology.nodes if isinstance(node, MTANode)
        for ip in (sending_ips(node.id, node.ips) or (node.id,))
    ]
    names = set(known)
    for i, history in histories:
        for ip in history:
            if ip not in names:
                shown = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "")
                raise ScenarioError(
                    f"topology.nodes[{i}].rate_limits.reputation.history.{key_text(ip)}",
                    f"no sending IP of that name (known: {shown or 'none'})",
                )
