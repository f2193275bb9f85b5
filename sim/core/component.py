"""How components plug in: one context for every factory, a registry of node kinds.

A node kind of the topology (``mta``, ``mx``, ...) registers the class that simulates
it with :func:`registers`, naming its schema type (``@registers(MXNode)``); the build
makes one component per node through that class,
handing it the run's :class:`Context` and the node's validated spec. A component finds
its neighbours by id through the context (``ctx.node(id)``) when it starts, never
through arguments wired by hand, so a new kind is one class and one registration.

Every component has the same small life: it is made (``__init__``: no processes, no
neighbours), then every component is made, then a hook may change state (tests, the
fault schedule), then ``start()`` finds neighbours and starts its processes. After the
run, ``holding()`` says how many messages it still holds (the census) and ``stats()``
gives its counters for ``run.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, get_args, runtime_checkable

import simpy

from .timers import Timers

if TYPE_CHECKING:
    from ..config import Scenario
    from ..mail.domains import Directory
    from ..mail.smtp import Dialogues
    from ..world.network import Network
    from .records import Recorder
    from .rng import Streams
    from .sessions import Sessions

__all__ = ["Component", "Context", "Kind", "REGISTRY", "kind_of", "registers"]


@runtime_checkable
class Component(Protocol):
    """What every simulated node is to the run."""

    id: str

    def start(self) -> None:
        """Find neighbours by id and start the processes (called once, before the run)."""

    def holding(self) -> int:
        """Messages this component holds now (queued, in a session, being worked on)."""

    def stats(self) -> dict[str, float]:
        """Counters for run.json (empty when there is nothing to count)."""


T = TypeVar("T")


@dataclass
class Context:
    """What a factory gets: the run's shared machinery, and the components by id."""

    env: simpy.Environment
    scenario: Scenario
    network: Network
    recorder: Recorder
    streams: Streams
    dialogues: Dialogues
    domains: Directory
    nodes: dict[str, Component] = field(default_factory=dict)
    # Open sessions, kept only when some fault can cut them (sim.core.sessions).
    sessions: Sessions | None = None
    # Arrival processes' waits, off SimPy's schedule but for the next (sim.core.timers).
    timers: Timers = field(init=False)

    def __post_init__(self) -> None:
        self.timers = Timers(self.env)

    @property
    def horizon(self) -> float:
        """When the run stops."""
        return self.scenario.horizon

    def node(self, node_id: str, kind: type[T]) -> T:
        """The component ``node_id``, which must be a ``kind`` (references were checked)."""
        found = self.nodes[node_id]
        if not isinstance(found, kind):
            raise TypeError(f"{node_id!r} is a {type(found).__name__}, not a {kind.__name__}")
        return found


Factory = Callable[[Context, Any], Component]


@dataclass(frozen=True)
class Kind:
    """A node kind: its schema (the validated spec's type) and the factory that simulates it."""

    name: str
    schema: type
    factory: Factory


REGISTRY: dict[str, Kind] = {}


def kind_of(schema: type) -> str:
    """The ``kind`` tag of a node schema (its ``kind: Literal[...]`` field)."""
    field = schema.model_fields["kind"]  # type: ignore[attr-defined]
    (tag,) = get_args(field.annotation)
    return str(tag)


def registers(*schemas: type) -> Callable[[type[T]], type[T]]:
    """Class decorator: the class simulates topology nodes of these schema types."""

    def mark(cls: type[T]) -> type[T]:
        for schema in schemas:
            name = kind_of(schema)
            if name in REGISTRY:
                raise ValueError(f"node kind {name!r} is registered twice")
            REGISTRY[name] = Kind(name, schema, cls)  # type: ignore[arg-type]
        return cls

    return mark
