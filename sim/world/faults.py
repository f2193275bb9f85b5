"""The fault schedule: a scenario's ``faults:`` played out over the run.

Each entry of ``faults:`` (``sim.config.faults``) becomes one process per node it takes
down (random faults fail each node on its own) or one per link fault and partition.
A node fault calls the component's ``fail`` and ``repair`` (``sim.core.faults.Fails``)
and, for a crash, cuts the sessions at the node (``sim.core.sessions``); a link fault
or a partition impairs edges of the network (``Network.impair``, ``Network.restore``)
and cuts the sessions left with no path. Random times come from the streams
``("fault", index, node or "link", "between" | "repair")``, so a fault added to a
scenario changes no other draw.

Every failure and repair is logged (``FaultSchedule.log``): what failed, when, until
when; the run's counters (``run.json``) summarise it per fault and target.

Device faults (``kind: device``) take no process: they are played by the hit domains'
readers as each message is stored (``sim.mail.device_loss``, made by the build); their
counters (devices and rows lost), handed in as ``device_stats``, join the others here.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

import simpy

from ..config.faults import DeviceFault, Fault, LinkFault, NodeFault, Partition
from ..core.component import Context
from ..core.faults import Cut, Failure, Fails
from ..core.sessions import Sessions

__all__ = ["FaultSchedule", "cuts_sessions"]


def cuts_sessions(faults: Sequence[Fault]) -> bool:
    """Whether any of ``faults`` can cut a session in progress (a crash, a link down, a
    partition): the run then keeps its open sessions (``ctx.sessions``)."""
    return any(
        (isinstance(f, NodeFault) and f.crash) or (isinstance(f, LinkFault) and f.down) or isinstance(f, Partition)
        for f in faults
    )


class FaultSchedule:
    """Plays a scenario's faults: one process per failing target, none without faults
    (and none for device faults: ``devices``)."""

    def __init__(
        self,
        ctx: Context,
        faults: Sequence[Fault],
        device_stats: Callable[[int], dict[str, dict[str, float]]] | None = None,
    ) -> None:
        self.ctx = ctx
        self.env = ctx.env
        self.faults = list(faults)
        # (label, target, down at, up at or None while still down)
        self.log: list[list[Any]] = []
        # A device fault's counters by its index (sim.mail.device_loss plays them).
        self.device_stats = device_stats

    @staticmethod
    def label(index: int, fault: Fault) -> str:
        """A fault's name in the log and in reasons: its ``name``, else ``fault N``."""
        return fault.name or f"fault {index}"

    @staticmethod
    def targets(fault: Fault) -> list[str]:
        """What ``fault`` takes down, as the log and run.json name it: each node of a
        node fault, ``A~B`` for a link, the region (or the nodes) of a partition."""
        if isinstance(fault, NodeFault):
            return fault.targets
        if isinstance(fault, LinkFault):
            return [f"{fault.a}~{fault.b}"]
        if isinstance(fault, DeviceFault):
            return [f"{domain}/{fault.device}" for domain in fault.targets]
        return [fault.region or ",".join(fault.nodes)]

    def start(self) -> None:
        """Start a process for each failing target (called after every component started)."""
        horizon = self.ctx.horizon
        for i, fault in enumerate(self.faults):
            if fault.start >= horizon or isinstance(fault, DeviceFault):
                continue  # after the run: never happens; a device fault needs no process
            if isinstance(fault, NodeFault):
                for node in fault.targets:
                    self.env.process(self._node(i, fault, node))
            else:
                self.env.process(self._link(i, fault))

    # -- when ------------------------------------------------------------------------

    def _spans(self, index: int, fault: NodeFault | LinkFault | Partition, target: str) -> Generator[tuple[float, float], None, None]:
        """The fault's (down, up) times at ``target``: one span when scripted; at
        random, an up time drawn from ``between``, a down time from ``repair``, again
        until the window (``start`` to ``end``, default the run's end) is over."""
        if fault.random is None:
            assert fault.end is not None  # validated: a scripted fault has an end
            yield fault.start, fault.end
            return
        streams = self.ctx.streams
        between = streams.sampler(fault.random.between, "fault", str(index), target, "between")
        repair = streams.sampler(fault.random.repair, "fault", str(index), target, "repair")
        end = self.ctx.horizon if fault.end is None else min(fault.end, self.ctx.horizon)
        t = fault.start + between()
        while t < end:
            up = t + repair()
            yield t, up
            t = up + between()

    def _wait(self, t: float) -> simpy.Timeout:
        return self.env.timeout(max(0.0, t - self.env.now))

    # -- what ------------------------------------------------------------------------

    def _node(self, index: int, fault: NodeFault, node: str) -> Generator[simpy.Event, Any, None]:
        component = self.ctx.nodes[node]
        assert isinstance(component, Fails), f"{node}: {type(component).__name__} cannot fail"
        label = self.label(index, fault)
        failure = Failure(f"fault {index}", fault.answer, fault.crash, fault.disk == "lost")
        sessions = self.ctx.sessions
        for down, up in self._spans(index, fault, node):
            yield self._wait(down)
            entry = [label, node, self.env.now, None]
            self.log.append(entry)
            component.fail(failure)
            if failure.crash and sessions is not None:
                sessions.at(node)
            yield self._wait(up)
            component.repair(failure)
            entry[3] = self.env.now

    def _link(self, index: int, fault: LinkFault | Partition) -> Generator[simpy.Event, Any, None]:
        network = self.ctx.network
        label = self.label(index, fault)
        reason = f"fault {index}"
        (target,) = self.targets(fault)
        if isinstance(fault, LinkFault):
            edges = [(fault.a, fault.b)]
            down, latency, loss = bool(fault.down), fault.latency, fault.loss
        else:
            side = self._side(fault)
            edges = [(a, b) for a, b in network.graph.edges if (a in side) != (b in side)]
            down, latency, loss = True, 0.0, 0.0
        for start, end in self._spans(index, fault, target):
            yield self._wait(start)
            entry = [label, target, self.env.now, None]
            self.log.append(entry)
            for a, b in edges:
                network.impair(a, b, reason, down=down, latency=latency, loss=loss)
            if down:
                self._cut_unreachable(edges[0][0])
            yield self._wait(end)
            for a, b in edges:
                network.restore(a, b, reason)
            entry[3] = self.env.now

    def _side(self, fault: Partition) -> set[str]:
        if fault.region is None:
            return set(fault.nodes)
        return {n.id for n in self.ctx.scenario.topology.nodes if n.region == fault.region}

    def _cut_unreachable(self, where: str) -> None:
        """Cut the sessions whose two ends no path joins any more."""
        sessions: Sessions | None = self.ctx.sessions
        if sessions is None:
            return
        network = self.ctx.network
        sessions.cut(lambda a, b: not network.link(a, b).up, Cut("link", where))

    def stats(self) -> dict[str, dict[str, float]]:
        """Per fault and target, in the order of ``faults:``: failures, and seconds down
        within the run (a fault that never happened, one starting after the run's end
        or a random one that drew no failure in time, shows as 0 and 0); for a device
        fault, per domain, devices lost (``failures``) and rows lost (``rows_lost``)."""
        out: dict[str, dict[str, float]] = {}
        for i, fault in enumerate(self.faults):
            if isinstance(fault, DeviceFault):
                assert self.device_stats is not None, "device faults are played by sim.mail.device_loss"
                out.update(self.device_stats(i))
                continue
            for target in self.targets(fault):
                out[f"{self.label(i, fault)}: {target}"] = {"failures": 0, "downtime": 0.0}
        now = self.env.now
        for label, target, down, up in self.log:
            row = out[f"{label}: {target}"]
            row["failures"] += 1
            row["downtime"] += (now if up is None else min(up, now)) - down
        return out
