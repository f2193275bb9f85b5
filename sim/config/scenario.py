"""The whole scenario: settings, topology, domains and workload."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from .base import MAX_TIME, SAFE_NAME, Int, Strict
from .domains import Domain
from .faults import Fault
from .nodes import Topology
from .units import Seconds
from .workload import Source


__all__ = ["LAYOUT_VERSION", "SMTPSettings", "Scenario"]

# The layout of scenario files; a file may say which it was written for (`version:`).
# Bump it, and say in sim.config.loading what changed, when a key is renamed or removed.
LAYOUT_VERSION: Final = 1


class SMTPSettings(Strict):
    """What an SMTP dialogue costs in round trips (docs/sources.md, round trips per dialogue)."""

    tls: bool = True
    tls_round_trips: Int = Field(1, ge=1, le=2, description="1 for TLS 1.3, 2 for TLS 1.2")
    pipelining: bool = True
    # RFC 6298 2.5: a maximum may be placed on the RTO provided it is at least 60 s.
    rto: Seconds = Field(1.0, gt=0, le=60, description="retransmission timeout (RFC 6298 minimum)")


class Scenario(Strict):
    """A whole simulated world and what happens in it."""

    version: Literal[1] = Field(LAYOUT_VERSION, description="layout of the scenario file")
    name: str = Field("scenario", pattern=SAFE_NAME, description="also names the results folder")
    description: str = ""
    seed: Int = Field(0, ge=0)
    duration: Seconds = Field(3600, ge=0.001, le=MAX_TIME, description="how long the sources send")
    drain: Seconds = Field(0, ge=0, le=MAX_TIME, description="simulated time after the sources stop")
    smtp: SMTPSettings = Field(default_factory=SMTPSettings)
    topology: Topology
    domains: list[Domain] = Field(min_length=1)
    workload: list[Source] = Field(min_length=1)
    faults: list[Fault] = Field(default_factory=list, description="what goes wrong: nodes, links, partitions (sim.config.faults)")

    @property
    def horizon(self) -> float:
        """When the simulation stops: the sources' duration plus the drain time."""
        return self.duration + self.drain
