"""Generated Internets as scenario data (``sim.generate.internet``).

::

    import sim
    data = sim.generate.internet(domains=1000, seed=1)   # plain data, as if read from YAML
    scenario = sim.parse_scenario(data)
    small = sim.generate.compact(domains=1000, seed=1)   # {"name": ..., "generate": {...}}

The world is described in docs/generate.md; the parameters are those of a scenario's
``generate:`` block (:class:`sim.config.generate.GenerateSpec`). Bad parameters raise a
:class:`sim.ScenarioError` naming the key (``generate.domains: ...``).
"""

from __future__ import annotations

from typing import Any

from .config.compact import generate_spec
from .config.generate import GenerateSpec, to_yaml, world

__all__ = ["GenerateSpec", "compact", "internet", "to_yaml"]


def internet(**params: Any) -> dict[str, Any]:
    """Scenario data of the realistic Internet with these ``generate:`` parameters
    (``domains``, ``seed``, ``regions``, ``rate``, ``duration``, ``drain``, ``users``,
    ``transactional_share``, ``campaign_share``); every node written out."""
    return world(generate_spec(params))


def compact(**params: Any) -> dict[str, Any]:
    """The compact form of :func:`internet`: a name and the ``generate:`` block, which
    loading expands (``sim.parse_scenario(sim.generate.compact(...))``)."""
    from .config.generate import compact as block

    return block(generate_spec(params))
