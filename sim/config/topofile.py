"""Topologies read from a file: GraphML or networkx node-link JSON.

``topology: {file: net.graphml}`` in a scenario names the file (relative to the
scenario's folder); its nodes and edges become ``topology.nodes`` and
``topology.edges`` (any written beside ``file`` are added after them) and are then
validated like any other. A node's attributes are its keys (``kind`` and the kind's
own); an edge's are ``latency``, ``bandwidth``, ``loss`` and ``shared``. A text
attribute that starts with ``{`` or ``[`` is read as YAML (a distribution, a list of
outages).
docs/scenario.md, "Topology from a file", documents it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .errors import ScenarioError

__all__ = ["FORMATS", "read_topology"]

FORMATS = {".graphml": "GraphML", ".xml": "GraphML", ".json": "node-link JSON"}
# Attributes that identify an element in the file's format, not keys of the scenario.
_FORMAT_KEYS = {"id", "key", "source", "target"}


def read_topology(topology: dict[str, Any], base: Path | None) -> dict[str, Any]:
    """``topology`` with its ``file`` read: nodes and edges from the file, then its own."""
    name = topology["file"]
    if not isinstance(name, str) or not name.strip():
        raise ScenarioError("topology.file", f"give the path of a .graphml or .json file (got {name!r})")
    path = Path(name)
    if not path.is_absolute() and base is not None:
        path = base / path
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ScenarioError(
            "topology.file", f"{name!r}: unknown format; use .graphml (GraphML) or .json (node-link JSON)"
        )
    try:
        nodes, edges = _graphml(path) if kind == "GraphML" else _node_link(path)
    except FileNotFoundError:
        raise ScenarioError("topology.file", f"{name!r}: no such file") from None
    except OSError as exc:
        raise ScenarioError("topology.file", f"{name!r}: cannot read: {exc.strerror or exc}") from None
    except _Bad as exc:
        raise ScenarioError("topology.file", f"{name!r}: {exc}") from None
    out = {k: v for k, v in topology.items() if k not in ("file", "nodes", "edges")}
    own_nodes = topology.get("nodes") or []
    own_edges = topology.get("edges") or []
    # Not lists: left for validation to report under topology.nodes / topology.edges.
    out["nodes"] = nodes + own_nodes if isinstance(own_nodes, list) else own_nodes
    out["edges"] = edges + own_edges if isinstance(own_edges, list) else own_edges
    return out


class _Bad(Exception):
    """A file that is not what its name says, or an attribute that cannot be read."""


def _value(value: Any, where: str) -> Any:
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            raise _Bad(f"{where}: not valid YAML: {value[:40]!r}") from None
    return value


def _attrs(data: dict[str, Any], where: str) -> dict[str, Any]:
    return {str(k): _value(v, f"{where} {k}") for k, v in data.items() if k not in _FORMAT_KEYS}


def _graphml(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    import networkx as nx  # only when a scenario names a GraphML file

    try:
        graph = nx.read_graphml(path)
    except (nx.NetworkXError, ValueError, KeyError, SyntaxError) as exc:
        # ElementTree's ParseError is a SyntaxError; networkx raises the others.
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _Bad(f"not a GraphML file: {first}") from None
    nodes = [{"id": str(n), **_attrs(d, f"node {n!r}")} for n, d in graph.nodes(data=True)]
    edges = [
        {"a": str(a), "b": str(b), **_attrs(d, f"edge {a!r}-{b!r}")} for a, b, d in graph.edges(data=True)
    ]
    return nodes, edges


def _node_link(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _Bad(f"not a JSON file: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise _Bad("not node-link JSON: no list of 'nodes'")
    # networkx writes "links" (before 3.4's edges="edges"); both are read.
    links = data.get("links", data.get("edges", []))
    if not isinstance(links, list):
        raise _Bad("not node-link JSON: 'links' is not a list")
    nodes: list[dict[str, Any]] = []
    for i, n in enumerate(data["nodes"]):
        if not isinstance(n, dict) or "id" not in n:
            raise _Bad(f"nodes[{i}] has no 'id'")
        nodes.append({"id": str(n["id"]), **_attrs(n, f"node {n['id']!r}")})
    edges: list[dict[str, Any]] = []
    for i, e in enumerate(links):
        if not isinstance(e, dict) or "source" not in e or "target" not in e:
            raise _Bad(f"links[{i}] needs 'source' and 'target'")
        edges.append({"a": str(e["source"]), "b": str(e["target"]), **_attrs(e, f"links[{i}]")})
    return nodes, edges
