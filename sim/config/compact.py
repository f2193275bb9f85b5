"""Compact scenarios: a ``generate:`` block and a topology file, expanded on load.

:func:`expand` runs right after a scenario's YAML is read, before ``--set`` and
validation, so everything after it sees an ordinary scenario:

- ``topology: {file: ...}`` is read (:mod:`.topofile`);
- a ``generate:`` block (a :class:`.generate.GenerateSpec`) becomes the world it
  describes (:func:`.generate.world`). The other top-level keys then apply on top:
  ``version``, ``name``, ``description``, ``seed``, ``duration``, ``drain`` and
  ``smtp`` replace the generated ones; ``topology.nodes``, ``domains`` and ``workload``
  elements replace the generated element of the same ``id`` / ``name`` or are added;
  ``topology.edges`` are added.
- ``--set generate.KEY=VALUE`` changes the block before it is expanded; every other
  ``--set`` applies to the expanded scenario (so ``topology.nodes[gmail-mx1]...``
  reaches a generated node).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import ScenarioError
from .generate import GenerateSpec, world
from .topofile import read_topology

__all__ = ["expand", "generate_spec"]

_MERGED = {"domains": "name", "workload": "name"}


def _first_key(override: str) -> str:
    path = override.partition("=")[0].strip()
    return path.replace("[", ".").split(".", 1)[0]


def expand(
    data: Any, overrides: list[str], source: str | None = None, base: Path | None = None
) -> tuple[Any, list[str]]:
    """``data`` with its ``generate:`` block and topology file expanded, and the
    overrides left to apply to it (those of ``generate.*`` are used up here).

    ``source`` names the file in errors; ``base`` is the folder a relative topology
    file is read from (None: the current folder). Raises located ScenarioErrors.
    """
    if not isinstance(data, dict):
        return data, overrides
    topology = data.get("topology")
    if isinstance(topology, dict) and "file" in topology:
        try:
            data = {**data, "topology": read_topology(topology, base)}
        except ScenarioError as exc:
            raise (exc.located(source) if source else exc) from None
    if "generate" not in data:
        return data, overrides
    mine = [o for o in overrides if _first_key(o) == "generate"]
    rest = [o for o in overrides if _first_key(o) != "generate"]
    block = data["generate"]
    if mine:
        from .loading import apply_overrides  # loading imports this module

        where = f"--set (on {source})" if source else "--set"
        try:
            # Only the block is changed, and only a copy of it.
            block = apply_overrides({"generate": copy.deepcopy(block)}, mine)["generate"]
        except ScenarioError as exc:
            raise exc.located(where) from None
        try:
            spec = generate_spec(block)
        except ScenarioError as exc:
            try:
                generate_spec(data["generate"])
            except ScenarioError:
                raise (exc.located(source) if source else exc) from None
            raise exc.located(where) from None
    else:
        try:
            spec = generate_spec(block)
        except ScenarioError as exc:
            raise (exc.located(source) if source else exc) from None
    return merge(world(spec), {k: v for k, v in data.items() if k != "generate"}), rest


def generate_spec(block: Any) -> GenerateSpec:
    """The block's parameters, validated; a problem is a ScenarioError at ``generate.KEY``."""
    if not isinstance(block, dict):
        raise ScenarioError("generate", "a mapping of the generator's parameters (domains, seed, ...)")
    try:
        return GenerateSpec.model_validate(block)
    except ValidationError as exc:
        from .loading import _problem  # one wording for every schema problem

        first = exc.errors()[0]
        path = ".".join(["generate", *(str(p) for p in first["loc"])])
        raise ScenarioError(path, _problem(first)) from None


def merge(generated: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``generated`` with the keys written beside the block applied (see the module)."""
    out = dict(generated)
    for key, value in given.items():
        if key == "topology" and isinstance(value, dict):
            topo = dict(out["topology"])
            for k, v in value.items():
                if k == "nodes" and isinstance(v, list):
                    topo["nodes"] = _by_key(topo["nodes"], v, "id")
                elif k == "edges" and isinstance(v, list):
                    topo["edges"] = topo["edges"] + v
                else:
                    topo[k] = v  # not a list, or an unknown key: validation reports it
            out["topology"] = topo
        elif key in _MERGED and isinstance(value, list):
            out[key] = _by_key(out[key], value, _MERGED[key])
        else:
            out[key] = value  # _REPLACED keys, and any other for validation to judge
    return out


def _by_key(generated: list[Any], given: list[Any], key: str) -> list[Any]:
    """``generated`` with elements of the same ``key`` replaced by ``given``'s, the rest
    of ``given`` appended in order."""
    by = {item.get(key): item for item in given if isinstance(item, dict) and key in item}
    out = [by.pop(item.get(key), item) if isinstance(item, dict) else item for item in generated]
    used = {id(x) for x in out}
    return out + [item for item in given if id(item) not in used]
