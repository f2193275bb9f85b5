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
- ``device``: people's devices of one type (``device:``) in a domain (``domain:`` or
  ``domains:``) are lost, a ``share`` of them at the instant ``start``, or each at a
  ``random: {rate: R}`` per year; each is replaced at once by an empty one
  (``sim.mail.device_loss``).

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

__all__ = [
    "Answer", "DeviceFailures", "DeviceFault", "FAULT_KINDS", "Fault", "LinkFault", "NodeFault", "Partition",
    "RandomFaults", "YEAR",
]

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


# A year of device time, as Backblaze's annualized failure rate counts it (drive days / 365).
YEAR = 365 * 86400.0


class DeviceFailures(Strict):
    """Devices failing at random: each device of the type on its own, a Poisson process."""

    rate: Num = Field(gt=0, le=1_000_000, description="failures per device per year (0.03: phones lost or stolen)")


class DeviceFault(Strict):
    """People's devices of one type lost (stolen, broken, wiped) and replaced at once by
    an empty one: at the instant ``start`` a ``share`` of them, or each at random."""

    kind: Literal["device"]
    name: str | None = Field(None, min_length=1, description="a label for the fault (run.json)")
    domain: str | None = Field(None, min_length=1, description="the domain whose people lose devices")
    domains: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="domains whose people lose devices (each on its own)"
    )
    device: str = Field(min_length=1, description="a device type of the domain's retrieval (imap/pop3/webmail in the one-device form)")
    start: Seconds = Field(0, ge=0, le=MAX_TIME, description="scripted: the instant; random: when failures may begin")
    end: Seconds | None = Field(None, ge=0, le=MAX_TIME, description="random: when failures stop (default: the run's end)")
    share: Num | None = Field(
        None, gt=0, le=1, description="scripted: the share of the people with such a device who lose it (none: all)"
    )
    random: DeviceFailures | None = Field(None, description="each device fails at random at a rate; absent: once, at start")

    @model_validator(mode="after")
    def _consistent(self) -> DeviceFault:
        if self.domain is not None and self.domains:
            raise ValueError("give domain or domains, not both")
        if self.domain is None and not self.domains:
            raise ValueError("name the domain whose devices are lost (domain: NAME, or domains: [NAME, ...])")
        if self.random is None and self.end is not None:
            raise ValueError("a scripted device loss is an instant (start): end is for random: failures")
        if self.random is not None and self.share is not None:
            raise ValueError("share is for a scripted loss; with random: every device fails at the rate")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    @property
    def targets(self) -> list[str]:
        """The domains whose people lose devices."""
        return [self.domain] if self.domain is not None else self.domains


Fault = Annotated[Union[NodeFault, LinkFault, Partition, DeviceFault], Field(discriminator="kind")]
FAULT_KINDS = ("node", "link", "partition", "device")
