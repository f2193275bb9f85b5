"""Faults: what goes wrong in a run, scripted (from ``start`` to ``end``) or at random.

A scenario's ``faults:`` list holds entries of three kinds:

- ``node``: one node (``node:``) or several (``nodes:``) are down. A down server does
  not answer or refuses (``answer``); ``crash: true`` (the default) cuts the sessions in
  progress, ``crash: false`` lets them finish (a planned shutdown); ``disk: lost`` loses
  the node's queue or store when the fault starts.
- ``link``: an edge of the topology (``a``, ``b``) is down, or carries ``latency`` more
  (one way) or ``loss`` more packet loss.
- ``partition``: every edge between a set of nodes (``nodes:``, or every node of a
  ``region:``) and the rest of the world is down.

Scripted faults happen once, from ``start`` to ``end``. A fault with ``random:`` happens
again and again between ``start`` and ``end`` (default: the whole run): up for a time
drawn from ``between``, then down for a time drawn from ``repair``; with ``nodes:``,
each node fails on its own.

A node's ``outages:`` are scripted faults with ``crash: false`` (they were written before
faults existed, and keep their meaning: the host stops answering; sessions it had
already opened finish).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from .base import MAX_TIME, NodeId, Num, Strict
from .distributions import Constant, TimeDistribution, Uniform
from .units import Seconds

__all__ = ["Answer", "FAULT_KINDS", "Fault", "LinkFault", "NodeFault", "Partition", "RandomFaults"]

Answer = Literal["none", "refuse"]


class RandomFaults(Strict):
    """Failures at random: up for a ``between`` draw, then down for a ``repair`` draw."""

    between: TimeDistribution = Field(description="time from a repair (or the window's start) to the next failure")
    repair: TimeDistribution = Field(description="time from a failure to its repair")

    @model_validator(mode="after")
    def _time_passes(self) -> RandomFaults:
        # Both always 0 would fail and repair the node forever without the clock moving.
        if _always_zero(self.between) and _always_zero(self.repair):
            raise ValueError(
                "between and repair are both always 0: the node would fail and be repaired forever at one instant"
            )
        return self


def _always_zero(dist: Constant | Uniform | object) -> bool:
    """Whether a time distribution draws only 0 (exponential and log-normal never do)."""
    if isinstance(dist, Constant):
        return dist.value == 0
    return isinstance(dist, Uniform) and dist.high == 0


class _FaultBase(Strict):
    name: str | None = Field(None, min_length=1, description="a label for the fault (run.json, reasons)")
    start: Seconds = Field(0, ge=0, le=MAX_TIME, description="when it starts; random: when failures may begin")
    end: Seconds | None = Field(
        None, ge=0, le=MAX_TIME, description="when it ends; random: when failures stop beginning (default: the run's end)"
    )
    random: RandomFaults | None = Field(None, description="fail again and again at random; absent: once, start to end")

    @model_validator(mode="after")
    def _window(self) -> _FaultBase:
        if self.end is None and self.random is None:
            raise ValueError("a scripted fault needs an end (or give random: to fail at random)")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


class NodeFault(_FaultBase):
    """One node or several down: no answer or refusals; sessions cut; its disk lost."""

    kind: Literal["node"]
    node: NodeId | None = Field(None, description="the node that fails")
    nodes: list[NodeId] = Field(default_factory=list, description="nodes that fail (each on its own when random)")
    answer: Answer | None = Field(
        None, description="while down: none (clients time out) or refuse (at once); default: the node's own"
    )
    crash: bool = Field(True, description="cut the sessions in progress; false: let them finish")
    disk: Literal["kept", "lost"] = Field("kept", description="lost: the node's queue or store is gone at the start")

    @model_validator(mode="after")
    def _one_list(self) -> NodeFault:
        if self.node is not None and self.nodes:
            raise ValueError("give node or nodes, not both")
        if self.node is None and not self.nodes:
            raise ValueError("name the node that fails (node: ID, or nodes: [ID, ...])")
        return self

    @property
    def targets(self) -> list[str]:
        """The nodes that fail."""
        return [self.node] if self.node is not None else self.nodes


class LinkFault(_FaultBase):
    """An edge down, slower or lossier."""

    kind: Literal["link"]
    a: NodeId
    b: NodeId
    down: bool | None = Field(None, description="carries nothing (the default when neither latency nor loss is given)")
    latency: Seconds = Field(0, ge=0, le=10, description="extra one-way latency")
    loss: Num = Field(0, ge=0, lt=1, description="extra packet loss probability")

    @model_validator(mode="after")
    def _effect(self) -> LinkFault:
        slower = self.latency > 0 or self.loss > 0
        if self.down is None:
            self.down = not slower
        elif self.down and slower:
            raise ValueError("a link that is down carries nothing: give down, or latency/loss, not both")
        elif not self.down and not slower:
            raise ValueError("down: false needs latency or loss (the fault must change something)")
        return self


class Partition(_FaultBase):
    """A set of nodes cut off from the rest: every edge across the cut is down."""

    kind: Literal["partition"]
    nodes: list[NodeId] = Field(default_factory=list, description="the side cut off")
    region: str | None = Field(None, min_length=1, description="the side cut off: every node of this region")

    @model_validator(mode="after")
    def _one_side(self) -> Partition:
        if bool(self.nodes) == (self.region is not None):
            raise ValueError("give the side cut off as nodes: [ID, ...] or region: NAME (one of them)")
        return self


Fault = Annotated[Union[NodeFault, LinkFault, Partition], Field(discriminator="kind")]
FAULT_KINDS = ("node", "link", "partition")
