"""Description: what a run simulates, validated before anything is built.

Rooms: ``base`` (strict models, limits), ``units`` (``90s``, ``10MB``), ``distributions``, the schema by subject
(``nodes``, ``domains``, ``workload``, ``scenario``), ``references`` (cross-reference
checks), ``budget`` (messages and memory a run needs, sources that send nothing),
``loading`` (YAML, ``--set`` overrides, one-line errors), ``errors`` and
``generate`` (synthetic worlds as plain data). Nothing here knows about the simulation.
"""

from .distributions import Constant, Distribution, Exponential, LogNormal, Uniform
from .domains import Device, DeviceType, Domain, MXChange, MXRecord, Retrieval
from .errors import ScenarioError, ScenarioWarning
from .loading import apply_overrides, default_scenario_path, load_scenario, parse_scenario
from .nodes import (
    AuthoritativeNode,
    ClientNode,
    Edge,
    EspNode,
    MailboxNode,
    MTANode,
    MXNode,
    Node,
    Outage,
    RelayNode,
    ResolverNode,
    RouterNode,
    Topology,
)
from .scenario import Scenario, SMTPSettings
from .workload import Batch, Source

__all__ = [
    "AuthoritativeNode",
    "Batch",
    "ClientNode",
    "EspNode",
    "Constant",
    "Device",
    "DeviceType",
    "Distribution",
    "Domain",
    "Edge",
    "Exponential",
    "LogNormal",
    "MTANode",
    "MXNode",
    "MXChange",
    "MXRecord",
    "MailboxNode",
    "Node",
    "Outage",
    "RelayNode",
    "ResolverNode",
    "Retrieval",
    "RouterNode",
    "SMTPSettings",
    "Scenario",
    "ScenarioError",
    "ScenarioWarning",
    "Source",
    "Topology",
    "Uniform",
    "apply_overrides",
    "default_scenario_path",
    "load_scenario",
    "parse_scenario",
]
