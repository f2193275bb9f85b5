"""Build one run's world: the context, the domains, one component per node, the senders.

Components are made from the registry (``sim.core.component``): each node kind's class
gets the run's context and its node's spec, and finds its neighbours by id when it
starts. The built :class:`Model` can be changed by a hook before it starts (tests and,
later, the fault schedule do this through the components' own methods).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import simpy

# Importing the model registers each node kind's component class.
from .. import mail as _mail  # noqa: F401
from ..config import Scenario
from ..config.faults import DeviceFault
from ..config.budget import estimate
from ..config.yamlfile import paused_gc
from ..core.component import REGISTRY, Component, Context
from ..core.monitors import Monitors
from ..core.records import Recorder
from ..core.rng import Streams
from ..core.sessions import Sessions
from ..mail.device_loss import DeviceLosses
from ..mail.devices import Readers
from ..mail.domains import Directory
from ..mail.quota import Capacity
from ..mail.reading import Reading, attach as attach_reading
from ..mail.senders import TrafficSource
from ..mail.smtp import Dialogues
from ..world.faults import FaultSchedule, cuts_sessions
from ..world.network import Network
from .results import Results, describe_hook

__all__ = ["Hook", "Model", "build"]


@dataclass
class Model:
    """A built simulation: the context, the components by id, the traffic sources."""

    scenario: Scenario
    seed: int
    ctx: Context
    sources: list[TrafficSource]
    started: bool = field(default=False)
    wall: float = 0.0  # seconds spent in run()
    monitors: Monitors | None = None  # time-series levels, when the run samples them
    faults: FaultSchedule | None = None  # the scenario's faults, when it has some
    reading: list[Reading] = field(default_factory=list)  # domains whose people read (and reply)
    devices: DeviceLosses | None = None  # its device faults, when it has some

    @property
    def env(self) -> simpy.Environment:
        """The SimPy environment."""
        return self.ctx.env

    @property
    def recorder(self) -> Recorder:
        """The run's recorder."""
        return self.ctx.recorder

    @property
    def nodes(self) -> dict[str, Component]:
        """Components by node id."""
        return self.ctx.nodes

    def node(self, node_id: str) -> Any:
        """The component simulating node ``node_id``."""
        return self.ctx.nodes[node_id]

    def at(self, t: float, action: Callable[[], object]) -> None:
        """Call ``action()`` at simulated time ``t`` (e.g. ``model.node("mx").set_up``)."""

        def later() -> Any:
            yield self.env.timeout(max(0.0, t - self.env.now))
            action()

        self.env.process(later())

    def start(self) -> None:
        """Start every component's processes and every source (once)."""
        if self.started:
            return
        self.started = True
        with paused_gc():  # starting a big world makes as many objects as building it
            for component in self.ctx.nodes.values():
                component.start()
            self.ctx.domains.start(self.env)  # the zones' MX changes
            for source in self.sources:
                source.start()
            if self.faults is not None:
                self.faults.start()

    def run(self, until: float | None = None) -> None:
        """Start if not started, then run to ``until`` (default: the horizon)."""
        self.start()
        began = time.perf_counter()
        # The built world (every node, domain, stream and queue) lives as long as the
        # run: frozen out of the cyclic collector's view, a full collection scans only
        # what the run itself makes. In a 10,000-domain world the collector otherwise
        # rescanned millions of objects (docs/performance.md). Unfrozen after, so a
        # model dropped later is collected as usual.
        gc.freeze()
        try:
            self.env.run(until=self.scenario.horizon if until is None else until)
        finally:
            gc.unfreeze()
        self.wall += time.perf_counter() - began

    def results(self, hook: Hook | None = None, release: bool = False) -> Results:
        """The results of a model run to its horizon (``model.run()``), as ``sim.run``
        returns them. Name the ``hook`` that changed the model, if one did, so that the
        results carry it and get their own run id. ``release`` frees the recorder's
        columns as the tables are made (``sim.run`` does: its model is not kept); the
        recorder's tables cannot be read again."""
        if self.env.now < self.scenario.horizon:
            raise RuntimeError(
                f"the model is at t={self.env.now:g} s; run it to its horizon "
                f"({self.scenario.horizon:g} s) with model.run() first"
            )
        return Results(
            self.scenario,
            self.seed,
            self.recorder.messages(release),
            self.wall,
            self.stats(),
            attempts=self.recorder.attempts(release),
            hook=None if hook is None else describe_hook(hook),
            timeseries=self.timeseries(),
        )

    def timeseries(self) -> pd.DataFrame | None:
        """The sampled levels up to now (``timeseries.parquet``), or None when not sampled.

        Every grid interval that has ended by now is closed; at the horizon, all are.
        """
        if self.monitors is None:
            return None
        self.monitors.close(self.env.now)
        return self.monitors.frame()

    def census(self) -> dict[str, int]:
        """Messages in flight now, counted by the kinds of component holding them.

        At any moment the total equals the recorder's in-flight count: a check of the
        books that does not rely on the recorder itself.
        """
        counts: dict[str, int] = {}
        for node in self.scenario.topology.nodes:
            held = self.ctx.nodes[node.id].holding()
            counts[node.kind] = counts.get(node.kind, 0) + held
        outboxes = sum(source.holding() for source in self.sources)  # failed submissions
        outboxes += sum(r.replies.holding() for r in self.reading if r.replies is not None)
        if outboxes:
            counts["client"] = counts.get("client", 0) + outboxes
        return counts

    def stats(self) -> dict[str, dict[str, dict[str, float]]]:
        """Each component's counters, by node kind and id (kinds with none left out),
        under ``domain`` the counters of domains' own greylisting tables, under ``fault``
        the faults' and under ``device_loss`` the devices and rows lost by access method."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for node in self.scenario.topology.nodes:
            counters = self.ctx.nodes[node.id].stats()
            if counters:
                out.setdefault(node.kind, {})[node.id] = counters
        if self.ctx.domains.greylisting:  # the domains' own greylisting tables
            out["domain"] = {d.name: d.greylist.stats() for d in self.ctx.domains if d.greylist is not None}
        if self.faults is not None:  # per fault and target: failures, time down
            out["fault"] = self.faults.stats()
        if self.reading:  # per domain whose people read: rows read, replies made
            out["reading"] = {r.domain: r.stats() for r in self.reading}
        if self.devices is not None:  # device faults: what was lost, by access method
            out["device_loss"] = self.devices.by_access()
        return out


Hook = Callable[[Model], object]


# At most this many rows made room for at start (about 1 GB of columns); beyond it the
# columns grow as rows come.
MAX_ROOM = 10_000_000


def _room(scenario: Scenario) -> int:
    """Rows to make room for at once: the expected messages and six standard deviations
    (Poisson), so that a run seldom grows its columns, capped (a runaway estimate)."""
    expected = estimate(scenario).messages
    return int(min(expected + 6.0 * expected**0.5, MAX_ROOM))


def build(
    scenario: Scenario,
    seed: int | None = None,
    env: simpy.Environment | None = None,
    trace: bool = False,
    sample_every: float | None = None,
) -> Model:
    """Build the model for ``scenario``; ``seed`` overrides the scenario's seed.

    ``env`` lets instrumentation (an event-counting environment, say) stand in for a
    fresh ``simpy.Environment``; ``trace`` keeps the attempts table; ``sample_every``
    (seconds) follows queue lengths, sessions and the like as time-weighted levels
    sampled on that grid (``sim.core.monitors``; no extra events). Nothing runs until
    :meth:`Model.start`.
    """
    with paused_gc():  # a big world is millions of objects that all live on
        return _build(scenario, scenario.seed if seed is None else seed, env, trace, sample_every)


def _build(
    scenario: Scenario,
    seed: int,
    env: simpy.Environment | None,
    trace: bool,
    sample_every: float | None,
) -> Model:
    domains = Directory(scenario.domains)
    ctx = Context(
        env=simpy.Environment() if env is None else env,
        scenario=scenario,
        network=Network(scenario),
        recorder=Recorder(
            domains.names, [n.id for n in scenario.topology.nodes], trace=trace, rows=_room(scenario)
        ),
        streams=Streams(seed),
        dialogues=Dialogues(scenario.smtp),
        domains=domains,
    )
    if cuts_sessions(scenario.faults):  # before the components, which may keep it
        ctx.sessions = Sessions(ctx.env)
    for node in scenario.topology.nodes:
        kind = REGISTRY[node.kind]
        assert isinstance(node, kind.schema)  # the schema validated it as this kind
        ctx.nodes[node.id] = kind.factory(ctx, node)
    for domain in domains:
        spec = domain.spec
        if spec.mailbox is not None:
            domain.mailbox = ctx.nodes[spec.mailbox]
            if spec.retrieval is not None and spec.users > 0:
                domain.readers = Readers(ctx, spec.retrieval, spec.name, spec.mailbox)
    # What follows a stored message plugs into its domain's readers as hooks
    # (sim.mail.devices.Readers.hooks): reading and replies, quotas, device loss.
    # Quotas and store sizes, or a run sampling time series (each store's occupancy over
    # time): nothing made, no cost, otherwise.
    if Capacity.wanted(ctx) or sample_every is not None:
        Capacity.build(ctx, every_store=sample_every is not None)
    reading = [r for r in (attach_reading(ctx, d) for d in domains) if r is not None]  # where reading: is
    sources = [TrafficSource(ctx, spec) for spec in scenario.workload]
    monitors = None
    if sample_every is not None:
        monitors = Monitors(sample_every, scenario.horizon)
        for node in scenario.topology.nodes:
            monitor = getattr(ctx.nodes[node.id], "monitor", None)
            if monitor is not None:
                monitor(monitors)
    # Device faults hook into the readers (sim.mail.device_loss), made above; a run
    # without them adds nothing.
    devices = None
    if any(isinstance(f, DeviceFault) for f in scenario.faults):
        labels = [FaultSchedule.label(i, f) for i, f in enumerate(scenario.faults)]
        devices = DeviceLosses(ctx, scenario.faults, labels)
    faults = None
    if scenario.faults:
        faults = FaultSchedule(ctx, scenario.faults, None if devices is None else devices.stats)
    return Model(scenario, seed, ctx, sources, monitors=monitors, faults=faults, devices=devices, reading=reading)
