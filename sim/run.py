"""One run: build the world and the model from a scenario, run to the horizon, collect.

The whole lifecycle of a run lives here and nowhere else: :func:`run` builds a
``simpy.Environment`` over the scenario's network, wires the components that mail flows
through (sources -> MTAs -> resolvers -> MX hosts -> mailbox stores -> devices; built in
the opposite order, so each exists before what hands mail to it), runs until
``duration + drain`` and returns :class:`Results`.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import simpy

from ._version import __version__
from .devices import Readers
from .dns import Resolver, Zone
from .mailbox import Mailbox
from .mta import MTA
from .mx import MX
from .records import STATUSES, MessageLog
from .rng import Streams
from .scenario import (
    MailboxNode,
    MTANode,
    MXNode,
    ResolverNode,
    Scenario,
)
from .smtp import Dialogues
from .topology import Network
from .workload import TrafficSource

__all__ = ["HOPS", "Model", "Results", "Summary", "build", "leg_times", "run", "summarize"]

PROGRESS_STEPS = 100

# (name, from column, to column): the legs of a message's journey, in order.
HOPS = (
    ("delivery", "created", "delivered"),
    ("submission", "created", "submitted"),
    ("relay", "submitted", "accepted"),
    ("local delivery", "accepted", "delivered"),
    ("retrieval", "delivered", "retrieved"),
    ("end to end", "created", "retrieved"),
)


@dataclass
class Model:
    """A built simulation: the environment and its components."""

    scenario: Scenario
    seed: int
    env: simpy.Environment
    network: Network
    log: MessageLog
    resolvers: dict[str, Resolver]
    mtas: dict[str, MTA]
    mx_hosts: dict[str, MX]
    mailboxes: dict[str, Mailbox]
    sources: list[TrafficSource]

    def census(self) -> dict[str, int]:
        """Where the messages in flight are now, counted by the components holding them.

        At any moment the total equals the log's ``in_flight`` count: a check of the
        books that does not rely on the log itself.
        """
        return {
            "mta": sum(m.holding() for m in self.mtas.values()),
            "mx": sum(x.holding() for x in self.mx_hosts.values()),
        }


def build(
    scenario: Scenario, seed: int | None = None, env: simpy.Environment | None = None
) -> Model:
    """Build the model for ``scenario``; ``seed`` overrides the scenario's seed.

    ``env`` lets instrumentation (an event-counting environment, say) stand in for a
    fresh ``simpy.Environment``.
    """
    seed = scenario.seed if seed is None else seed
    env = simpy.Environment() if env is None else env
    streams = Streams(seed)
    network = Network(scenario)
    dialogues = Dialogues(scenario.smtp)
    domains = scenario.domains
    names = [d.name for d in domains]
    index = {n: i for i, n in enumerate(names)}
    log = MessageLog(names)
    horizon = scenario.horizon

    zone = Zone()
    for d in domains:
        zone.add([(r.preference, r.host) for r in d.mx], d.host, d.mx_ttl)

    nodes = scenario.topology.nodes
    resolvers = {
        n.id: Resolver(env, n, zone, streams.sampler(n.lookup, "resolver", n.id, "lookup"))
        for n in nodes
        if isinstance(n, ResolverNode)
    }

    readers: list[Readers | None] = []
    for d in domains:
        if d.retrieval is None or d.users == 0 or d.mailbox is None:
            readers.append(None)
            continue
        readers.append(
            Readers(
                d.retrieval,
                network.path(d.mailbox, d.retrieval.client),
                dialogues,
                streams,
                d.name,
                horizon,
            )
        )
    mailboxes: dict[str, Mailbox] = {}
    for n in nodes:
        if isinstance(n, MailboxNode):
            mine = [r if d.mailbox == n.id else None for d, r in zip(domains, readers)]
            write = streams.sampler(n.write, "mailbox", n.id, "write")
            mailboxes[n.id] = Mailbox(env, n, log, write, mine)
    by_domain = [mailboxes[d.mailbox] if d.mailbox else None for d in domains]

    unknown = [d.unknown_recipient_rate for d in domains]
    discard = [d.discard_rate for d in domains]
    mx_hosts = {
        n.id: MX(
            env,
            n,
            network,
            by_domain,
            unknown,
            discard,
            log,
            dialogues,
            streams,
        )
        for n in nodes
        if isinstance(n, MXNode)
    }
    mtas = {
        n.id: MTA(
            env,
            n,
            network,
            resolvers[n.resolver],
            mx_hosts,
            log,
            dialogues,
            streams,
        )
        for n in nodes
        if isinstance(n, MTANode)
    }

    sources = []
    for spec in scenario.workload:
        if spec.recipients is None:
            rcpts = [i for i, d in enumerate(domains) if d.users > 0]
            weights = [float(domains[i].users) for i in rcpts]
        else:
            rcpts = [index[name] for name in spec.recipients]
            weights = list(spec.recipients.values())
        mta_id = spec.mta or domains[index[spec.domain]].outbound
        assert mta_id is not None  # checked when the scenario was loaded
        sources.append(
            TrafficSource(
                env,
                spec,
                index[spec.domain],
                rcpts,
                weights,
                [domains[i].users for i in rcpts],
                mtas[mta_id],
                network.path(spec.client, mta_id),
                log,
                streams,
                spec.stop_time(scenario.duration),
            )
        )
    return Model(scenario, seed, env, network, log, resolvers, mtas, mx_hosts, mailboxes, sources)


def run(
    scenario: Scenario,
    seed: int | None = None,
    progress: Callable[[float, int], None] | None = None,
) -> Results:
    """Simulate ``scenario`` to its horizon and return the results.

    ``seed`` overrides the scenario's seed; the same scenario and seed always give the
    same results. ``progress(simulated_time, messages_created)`` is called about a
    hundred times along the way (for progress bars); it does not change the results.
    """
    started = time.perf_counter()
    model = build(scenario, seed)
    horizon = scenario.horizon
    if progress is None:
        model.env.run(until=horizon)
    else:
        for step in range(1, PROGRESS_STEPS + 1):
            # The last step stops exactly at the horizon, as an unreported run does.
            until = horizon if step == PROGRESS_STEPS else horizon * step / PROGRESS_STEPS
            model.env.run(until=until)
            progress(model.env.now, len(model.log))
    messages = model.log.to_frame()
    wall = time.perf_counter() - started
    stats = {
        "resolvers": {
            r.id: {"queries": r.queries, "cache_hits": r.hits} for r in model.resolvers.values()
        },
        "mtas": {
            m.id: {"holding_at_end": m.holding(), "bounced": m.bounced}
            for m in model.mtas.values()
        },
        "mx_hosts": {
            x.id: {
                "sessions": x.sessions,
                "refused_busy": x.refused,
                "discarded": x.discarded,
                "holding_at_end": x.holding(),
            }
            for x in model.mx_hosts.values()
        },
        "mailboxes": {b.id: {"stored": b.stored} for b in model.mailboxes.values()},
    }
    return Results(model.scenario, model.seed, messages, wall, stats)


@dataclass
class Summary:
    """Counts by status and timing statistics (seconds) of each leg of the journey."""

    counts: pd.Series | pd.DataFrame
    times: pd.DataFrame

    def __str__(self) -> str:
        return f"{self.counts.to_string()}\n\n{self.times.to_string(float_format='{:.3f}'.format)}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "counts": json.loads(self.counts.to_json()),
            "times": json.loads(self.times.reset_index().to_json(orient="records")),
        }


_LEGS = {name: (start, end) for name, start, end in HOPS}


def leg_times(messages: pd.DataFrame, leg: str = "delivery") -> pd.Series:
    """Seconds each message spent on one leg of its journey (NaN where it did not)."""
    if leg not in _LEGS:
        raise ValueError(f"unknown leg {leg!r}; choose from {', '.join(_LEGS)}")
    start, end = _LEGS[leg]
    return messages[end] - messages[start]


def _leg_stats(messages: pd.DataFrame) -> pd.DataFrame:
    rows = {}
    for name in _LEGS:
        d = leg_times(messages, name).dropna()
        q = d.quantile([0.5, 0.95, 0.99]) if len(d) else pd.Series([np.nan] * 3)
        rows[name] = {
            "count": len(d),
            "mean": d.mean() if len(d) else np.nan,
            "p50": q.iloc[0],
            "p95": q.iloc[1],
            "p99": q.iloc[2],
            "max": d.max() if len(d) else np.nan,
        }
    times = pd.DataFrame.from_dict(rows, orient="index")
    times["count"] = times["count"].astype(int)
    times.index.name = "leg"
    return times


def _counts(messages: pd.DataFrame) -> pd.Series:
    counts = messages["status"].value_counts().reindex(list(STATUSES), fill_value=0)
    return pd.concat([pd.Series({"created": len(messages)}), counts])


def summarize(messages: pd.DataFrame, by: str | None = None) -> Summary:
    """Counts by status and per-leg time statistics of a message table.

    With ``by`` (a column such as 'kind' or 'recipient_domain'), counts has one row per
    group and times is indexed by (group, leg).
    """
    if by is None:
        return Summary(_counts(messages), _leg_stats(messages))
    if by not in messages.columns:
        raise KeyError(f"no column {by!r} to group by")
    groups = [(g, part) for g, part in messages.groupby(by, observed=True, sort=True)]
    counts = pd.DataFrame({g: _counts(part) for g, part in groups}).T
    counts.index.name = by
    times = pd.concat({g: _leg_stats(part) for g, part in groups}, names=[by, "leg"])
    return Summary(counts, times)


PROVENANCE_PACKAGES = ("simpy", "numpy", "networkx", "pandas", "pyarrow", "pydantic")


def _version_of(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass
class Results:
    """What a run produced: the message table, the config and seed that made it."""

    scenario: Scenario
    seed: int
    messages: pd.DataFrame
    wall_time: float
    stats: dict[str, Any] = field(default_factory=dict)
    version: str = __version__

    def summary(self, by: str | None = None) -> Summary:
        """Counts by status and delivery-time statistics per leg, overall or per group.

        ``by`` names a column to group by, e.g. ``"kind"`` or ``"recipient_domain"``.
        """
        return summarize(self.messages, by)

    def metadata(self) -> dict[str, Any]:
        """Everything needed to reproduce the run: config, seed, versions, wall time."""
        config = self.scenario.model_dump(mode="json")
        config["seed"] = self.seed
        return {
            "mailflow_version": self.version,
            "seed": self.seed,
            "scenario": config,
            "wall_time_s": self.wall_time,
            "horizon_s": self.scenario.horizon,
            "python": platform.python_version(),
            # numpy does not promise the same Generator streams across versions, and
            # networkx breaks ties between equal paths: both belong to the provenance.
            "versions": {name: _version_of(name) for name in PROVENANCE_PACKAGES},
            "summary": self.summary().to_dict(),
            "components": self.stats,
        }

    def write(self, out: str | FilePath) -> FilePath:
        """Write ``messages.parquet`` and ``run.json`` into the folder ``out``."""
        folder = FilePath(out)
        folder.mkdir(parents=True, exist_ok=True)
        meta = self.metadata()
        table = pa.Table.from_pandas(self.messages, preserve_index=True)
        provenance = {k: meta[k] for k in ("mailflow_version", "seed", "scenario")}
        extra = {b"mailflow": json.dumps(provenance).encode()}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
        pq.write_table(table, folder / "messages.parquet")
        (folder / "run.json").write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
        return folder
