"""Scenario files: what a run simulates, validated before anything is built.

The description layer. A scenario is a YAML mapping validated by the pydantic models
below; :func:`load_scenario` reads one, applies ``--set key.path=value`` overrides and
checks the cross references (an MX host that is not in the topology, a disconnected
graph, ...). Every problem surfaces as one :class:`ScenarioError` naming the file, the
key path and what is wrong, so the CLI can print one line and exit 2.

Defaults come from ``shared/reference/email-facts.md``; each says where it comes from.
Times are seconds, sizes bytes, bandwidths bytes per second.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import networkx as nx
import yaml
from pydantic_core import ErrorDetails
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "Constant",
    "Distribution",
    "Domain",
    "Edge",
    "Exponential",
    "LogNormal",
    "Scenario",
    "ScenarioError",
    "Source",
    "Uniform",
    "apply_overrides",
    "default_scenario_path",
    "load_scenario",
    "parse_scenario",
]

TOPOLOGIES = Path(__file__).resolve().parent.parent / "topologies"


class ScenarioError(ValueError):
    """A problem with a scenario: where it is (file, key path) and what is wrong."""

    def __init__(self, path: str, problem: str, source: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}{self.problem}"

    def located(self, source: str) -> ScenarioError:
        """The same error, attributed to a file (or to the ``--set`` option)."""
        return ScenarioError(self.path, self.problem, source)


def _no_bool(value: Any) -> Any:
    # YAML reads yes/no/on/off as booleans and pydantic's lax mode would turn them into
    # 1 and 0: a typo would become a silent parameter.
    if isinstance(value, bool):
        raise ValueError("Input should be a number, not a boolean")
    return value


Num = Annotated[float, BeforeValidator(_no_bool)]
Int = Annotated[int, BeforeValidator(_no_bool)]

# Limits that keep a run finite: each worker is a process, each message a row.
MAX_WORKERS = 100_000
MAX_TIME = 1e9  # seconds (about 32 years)
MAX_MESSAGES = 1_000_000_000
MAX_USERS = 2**32 - 1
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class Strict(BaseModel):
    """Base of every scenario model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --------------------------------------------------------------------------------------
# Distributions (service times, inter-arrival times, sizes)
# --------------------------------------------------------------------------------------


class Constant(Strict):
    """Always the same value."""

    dist: Literal["constant"] = "constant"
    value: Num = Field(ge=0, le=1e15)

    @property
    def mean(self) -> float:
        return self.value

    def capped_mean(self, cap: float) -> float:
        """E[min(X, cap)]."""
        return min(self.value, cap)


class Exponential(Strict):
    """Exponential with the given mean (memoryless; Poisson inter-arrivals)."""

    dist: Literal["exponential"]
    mean: Num = Field(gt=0, le=1e15)

    def capped_mean(self, cap: float) -> float:
        """E[min(X, cap)]."""
        return self.mean * -math.expm1(-cap / self.mean)


class LogNormal(Strict):
    """Log-normal given by its median and the sigma of the underlying normal."""

    dist: Literal["lognormal"]
    median: Num = Field(gt=0, le=1e15)
    sigma: Num = Field(ge=0, le=10)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)

    def capped_mean(self, cap: float) -> float:
        """E[min(X, cap)]: the mean is ruled by a far tail, this by what happens in a run."""
        if self.sigma == 0:
            return min(self.median, cap)
        mu, s = math.log(self.median), self.sigma
        z = (math.log(cap) - mu) / s
        below = self.mean * _phi(z - s)
        return below + cap * (1.0 - _phi(z))


class Uniform(Strict):
    """Uniform on [low, high]."""

    dist: Literal["uniform"]
    low: Num = Field(ge=0, le=1e15)
    high: Num = Field(ge=0, le=1e15)

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) is below low ({self.low})")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def capped_mean(self, cap: float) -> float:
        """E[min(X, cap)]."""
        lo, hi = self.low, self.high
        if cap >= hi:
            return self.mean
        if cap <= lo or hi == lo:
            return min(lo, cap)
        inside = (cap - lo) / (hi - lo)  # P(X < cap)
        return inside * (lo + cap) / 2 + (1 - inside) * cap


def _phi(z: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _number_is_constant(value: Any) -> Any:
    # A bare number is the common case for a fixed delay; spare users the mapping.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    return value


AnyDistribution = Annotated[
    Union[Constant, Exponential, LogNormal, Uniform], Field(discriminator="dist")
]
Distribution = Annotated[AnyDistribution, BeforeValidator(_number_is_constant)]

# DNS lookup time at a resolver that misses its cache: log-normal fitted to the measured
# mean 152 ms and 90th percentile 275 ms (Brandhorst & Pras; email-facts.md section 3).
DNS_LOOKUP = LogNormal(dist="lognormal", median=0.1265, sigma=0.606)
# Receiving-side content scan (rspamd + ClamAV on 50 KB): p50 78 ms, p95 200 ms
# (email-facts.md section 5), log-normal through both points.
CONTENT_SCAN = LogNormal(dist="lognormal", median=0.078, sigma=0.572)
# Message sizes: 49% < 4 KB and 90.5% < 64 KB (2002 list CDF) give median ~4 KB and
# sigma ~2.1, mean ~37 KB, near the ~30 KB quoted average (email-facts.md section 2).
MESSAGE_SIZE = LogNormal(dist="lognormal", median=4096, sigma=2.1)


# --------------------------------------------------------------------------------------
# Topology: nodes and edges
# --------------------------------------------------------------------------------------

NodeId = Annotated[str, Field(min_length=1)]


class ClientNode(Strict):
    """Where people's devices or an automated sender attach to the network."""

    kind: Literal["client"]
    id: NodeId


class RouterNode(Strict):
    """A transit point (an exchange, a backbone) that only carries traffic."""

    kind: Literal["router"]
    id: NodeId


class MTANode(Strict):
    """An outbound (submission and relay) mail server, shaped after Postfix 3.x."""

    kind: Literal["mta"]
    id: NodeId
    resolver: NodeId = Field(description="the caching resolver this MTA asks for MX records")
    # Postfix default_process_limit is 100 for both smtpd and smtp(8) agents.
    smtpd_workers: Int = Field(100, gt=0, le=MAX_WORKERS, description="concurrent submission sessions")
    workers: Int = Field(100, gt=0, le=MAX_WORKERS, description="concurrent outbound delivery sessions")
    message_size_limit: Int = Field(10_240_000, gt=0, description="Postfix default")
    queue_run_delay: Num = Field(300, ge=1, description="Postfix: deferred-queue scan")
    minimal_backoff_time: Num = Field(300, ge=0, description="Postfix")
    maximal_backoff_time: Num = Field(4000, ge=0, description="Postfix")
    maximal_queue_lifetime: Num = Field(5 * 86400, gt=0, description="Postfix: 5 d")
    smtp_connect_timeout: Num = Field(30, gt=0, description="Postfix")
    destination_concurrency_limit: Int = Field(
        20, gt=0, le=MAX_WORKERS, description="Postfix default_destination_concurrency_limit"
    )

    @model_validator(mode="after")
    def _backoff_ordered(self) -> MTANode:
        if self.maximal_backoff_time < self.minimal_backoff_time:
            raise ValueError("maximal_backoff_time is below minimal_backoff_time")
        return self


class ResolverNode(Strict):
    """A caching DNS resolver shared by the MTAs that name it."""

    kind: Literal["resolver"]
    id: NodeId
    lookup: Distribution = Field(
        default=DNS_LOOKUP, description="time to resolve a name missing from the cache"
    )
    cache: bool = True
    max_ttl: Num = Field(86400, ge=0, description="Unbound cache-max-ttl")


class Outage(Strict):
    """A time when a host does not answer at all."""

    start: Num = Field(ge=0)
    end: Num = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Outage:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


class MXNode(Strict):
    """An inbound mail server of one or more domains."""

    kind: Literal["mx"]
    id: NodeId
    max_connections: Int = Field(100, gt=0, description="Postfix default_process_limit")
    workers: Int = Field(
        20, gt=0, le=MAX_WORKERS, description="concurrent content scans and local deliveries"
    )
    processing: Distribution = Field(default=CONTENT_SCAN, description="content scan time")
    outages: list[Outage] = Field(default_factory=list, description="when the host is down")

    @model_validator(mode="after")
    def _outages_apart(self) -> MXNode:
        spans = sorted((o.start, o.end) for o in self.outages)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            if start < end:
                raise ValueError(f"outages overlap (one starts at {start} before {end})")
        return self


class MailboxNode(Strict):
    """A mailbox store: where accepted mail waits for the recipient's devices."""

    kind: Literal["mailbox"]
    id: NodeId
    concurrency: Int = Field(32, gt=0, le=MAX_WORKERS, description="concurrent mailbox writes")
    write: Distribution = Field(default=Constant(value=0.005), description="one write")


Node = Annotated[
    Union[ClientNode, RouterNode, MTANode, ResolverNode, MXNode, MailboxNode],
    Field(discriminator="kind"),
]
NODE_KINDS = ("client", "router", "mta", "resolver", "mx", "mailbox")


class Edge(Strict):
    """A network link. Traffic between two nodes follows the lowest-latency path."""

    a: NodeId
    b: NodeId
    latency: Num = Field(ge=0, description="one-way, seconds")
    bandwidth: Num = Field(125_000_000, gt=0, description="bytes/s (default 1 Gbit/s)")
    loss: Num = Field(0.0, ge=0, lt=1, description="packet loss probability")


class Topology(Strict):
    nodes: list[Node] = Field(min_length=1)
    edges: list[Edge] = Field(default_factory=list)


# --------------------------------------------------------------------------------------
# Domains: who owns which MX hosts and mailbox stores, and how their people read mail
# --------------------------------------------------------------------------------------


class MXRecord(Strict):
    host: NodeId
    preference: Int = Field(ge=0, le=65535)


class Device(Strict):
    """A share of a domain's people who read mail with one protocol."""

    share: Num = Field(ge=0)
    poll_interval: Num = Field(600, ge=1, description="Thunderbird checks every 10 min")
    phase: Num | None = Field(
        None, ge=0, description="seconds into the cycle of every device's checks; default random"
    )

    @model_validator(mode="after")
    def _phase_in_cycle(self) -> Device:
        if self.phase is not None and self.phase >= self.poll_interval:
            raise ValueError(f"phase ({self.phase}) must be below poll_interval")
        return self


class Retrieval(Strict):
    """How a domain's people read their mail (shares are normalised).

    With no protocol given, the shares are IMAP 0.5, POP3 0.1 and webmail 0.4; once any
    protocol is given, the ones left out have share 0.
    """

    @model_validator(mode="before")
    @classmethod
    def _left_out_means_unused(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(p in data for p in ("imap", "pop3", "webmail")):
            data = dict(data)
            for protocol in ("imap", "pop3", "webmail"):
                data.setdefault(protocol, {"share": 0})
        return data

    client: NodeId = Field(description="client node where their devices attach")
    imap: Device = Field(default_factory=lambda: Device(share=0.5))
    pop3: Device = Field(default_factory=lambda: Device(share=0.1))
    webmail: Device = Field(default_factory=lambda: Device(share=0.4))

    @model_validator(mode="after")
    def _some_share(self) -> Retrieval:
        if self.imap.share + self.pop3.share + self.webmail.share <= 0:
            raise ValueError("imap, pop3 and webmail shares are all zero")
        return self


class Domain(Strict):
    name: Annotated[str, Field(min_length=1)]
    users: Int = Field(0, ge=0, le=MAX_USERS, description="people with a mailbox here")
    outbound: NodeId | None = Field(None, description="MTA its senders submit to")
    mx: list[MXRecord] = Field(default_factory=list)
    host: NodeId | None = Field(None, description="A record used as implicit MX (RFC 5321 5.1)")
    mx_ttl: Num = Field(3600, ge=0, description="gmail.com MX TTL")
    mailbox: NodeId | None = None
    unknown_recipient_rate: Num = Field(0.0, ge=0, le=1)
    discard_rate: Num = Field(0.0, ge=0, le=1, description="accepted, silently dropped")
    retrieval: Retrieval | None = None

    @property
    def receives(self) -> bool:
        """Whether the domain can receive mail at all (MX records or an A record)."""
        return bool(self.mx) or self.host is not None


# --------------------------------------------------------------------------------------
# Workload: traffic sources
# --------------------------------------------------------------------------------------


class Batch(Strict):
    at: Num = Field(ge=0, description="when the batch is injected")
    count: Int = Field(gt=0, le=MAX_MESSAGES)


class Source(Strict):
    """One traffic source: many senders' streams merged into one arrival process."""

    name: Annotated[str, Field(min_length=1)]
    kind: Literal["person", "transactional", "marketing"]
    client: NodeId = Field(description="client node the messages are submitted from")
    domain: str = Field(description="sender domain")
    mta: NodeId | None = Field(None, description="submission MTA; default the domain's outbound")
    rate: Num | None = Field(None, gt=0, description="Poisson arrivals, messages/s")
    # Not Distribution | None: an optional union around the before-validator would try
    # every member and report the wrong key; _constant_gap turns numbers into constants.
    interarrival: AnyDistribution | None = None
    batches: list[Batch] | None = Field(None, min_length=1)
    start: Num = Field(0, ge=0)
    stop: Num | None = Field(None, ge=0, description="default: the scenario's duration")
    recipients: dict[str, Num] | None = Field(
        None, description="recipient domain -> weight; default all domains by users"
    )
    size: Distribution = Field(default=MESSAGE_SIZE)

    @field_validator("interarrival", mode="before")
    @classmethod
    def _constant_gap(cls, value: Any) -> Any:
        return _number_is_constant(value)

    @model_validator(mode="after")
    def _one_arrival_process(self) -> Source:
        given = [k for k in ("rate", "interarrival", "batches") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of rate, interarrival or batches"
                + (f" (got {', '.join(given)})" if given else "")
            )
        gap = self.interarrival
        if gap is not None and gap.capped_mean(1.0) <= 0:
            raise ValueError("interarrival times must not all be zero")
        if self.stop is not None and self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be after start ({self.start})")
        return self

    def stop_time(self, duration: float) -> float:
        """When this source stops sending in a run whose sources send for ``duration``."""
        return min(self.stop if self.stop is not None else duration, duration)

    def expected_messages(self, duration: float) -> float:
        """About how many messages this source creates in a run of ``duration``."""
        if self.batches is not None:
            return float(sum(b.count for b in self.batches))
        window = max(0.0, self.stop_time(duration) - self.start)
        if self.rate is not None:
            return self.rate * window
        assert self.interarrival is not None
        if window <= 0:
            return 0.0
        # A renewal process makes about window / E[gap] arrivals; capping the gap at the
        # window keeps a heavy tail from hiding a flood of tiny gaps.
        gap = self.interarrival.capped_mean(window)
        return window / gap if gap > 0 else math.inf


class SMTPSettings(Strict):
    """What an SMTP dialogue costs in round trips (email-facts.md section 2)."""

    tls: bool = True
    tls_round_trips: Int = Field(1, ge=1, le=2, description="1 for TLS 1.3, 2 for TLS 1.2")
    pipelining: bool = True
    rto: Num = Field(1.0, gt=0, description="retransmission timeout (RFC 6298 minimum)")


class Scenario(Strict):
    """A whole simulated world and what happens in it."""

    name: str = Field("scenario", pattern=SAFE_NAME, description="also names the results folder")
    description: str = ""
    seed: Int = Field(0, ge=0)
    duration: Num = Field(3600, ge=0.001, le=MAX_TIME, description="how long the sources send")
    drain: Num = Field(0, ge=0, le=MAX_TIME, description="simulated time after the sources stop")
    smtp: SMTPSettings = Field(default_factory=SMTPSettings)
    topology: Topology
    domains: list[Domain] = Field(min_length=1)
    workload: list[Source] = Field(min_length=1)

    @property
    def horizon(self) -> float:
        """When the simulation stops: the sources' duration plus the drain time."""
        return self.duration + self.drain



# --------------------------------------------------------------------------------------
# Cross-reference checks: what pydantic's per-field validation cannot see
# --------------------------------------------------------------------------------------


def check_references(sc: Scenario) -> None:
    """Raise ScenarioError for the first reference that points nowhere or is unusable."""
    kinds: dict[str, str] = {}
    for i, node in enumerate(sc.topology.nodes):
        if node.id in kinds:
            raise ScenarioError(f"topology.nodes[{i}].id", f"duplicate node id {node.id!r}")
        kinds[node.id] = node.kind

    def need(path: str, node_id: str, kind: str) -> None:
        if node_id not in kinds:
            raise ScenarioError(path, f"{node_id!r} is not a node of the topology")
        if kinds[node_id] != kind:
            raise ScenarioError(path, f"{node_id!r} is a {kinds[node_id]} node, not a {kind}")

    for i, node in enumerate(sc.topology.nodes):
        if isinstance(node, MTANode):
            need(f"topology.nodes[{i}].resolver", node.resolver, "resolver")
    links: set[frozenset[str]] = set()
    for i, edge in enumerate(sc.topology.edges):
        for end in ("a", "b"):
            if getattr(edge, end) not in kinds:
                raise ScenarioError(
                    f"topology.edges[{i}].{end}",
                    f"{getattr(edge, end)!r} is not a node of the topology",
                )
        if edge.a == edge.b:
            raise ScenarioError(f"topology.edges[{i}]", f"edge joins {edge.a!r} to itself")
        link = frozenset((edge.a, edge.b))
        if link in links:
            raise ScenarioError(
                f"topology.edges[{i}]", f"a second edge between {edge.a!r} and {edge.b!r}"
            )
        links.add(link)

    graph = nx.Graph()
    graph.add_nodes_from(kinds)
    graph.add_edges_from((e.a, e.b) for e in sc.topology.edges)
    if not nx.is_connected(graph):
        parts = sorted(nx.connected_components(graph), key=len, reverse=True)
        stray = sorted(parts[1])
        raise ScenarioError(
            "topology.edges",
            f"the graph is disconnected: {', '.join(map(repr, stray[:3]))}"
            f"{' and others' if len(stray) > 3 else ''} cannot reach {sorted(parts[0])[0]!r}",
        )

    names: dict[str, Domain] = {}
    for i, dom in enumerate(sc.domains):
        p = f"domains[{i}]"
        if dom.name in names:
            raise ScenarioError(f"{p}.name", f"duplicate domain {dom.name!r}")
        names[dom.name] = dom
        if dom.outbound is not None:
            need(f"{p}.outbound", dom.outbound, "mta")
        for j, rec in enumerate(dom.mx):
            need(f"{p}.mx[{j}].host", rec.host, "mx")
            if any(r.host == rec.host for r in dom.mx[:j]):
                raise ScenarioError(f"{p}.mx[{j}].host", f"{rec.host!r} is listed twice")
        if dom.host is not None:
            need(f"{p}.host", dom.host, "mx")
        if dom.mailbox is not None:
            need(f"{p}.mailbox", dom.mailbox, "mailbox")
        if dom.retrieval is not None:
            need(f"{p}.retrieval.client", dom.retrieval.client, "client")
        if dom.users > 0:
            if not dom.receives:
                raise ScenarioError(
                    p, f"domain {dom.name!r} has users but no MX records and no host"
                )
            if dom.mailbox is None:
                raise ScenarioError(f"{p}.mailbox", f"domain {dom.name!r} has users but no mailbox")

    sources: set[str] = set()
    expected = 0.0
    for i, src in enumerate(sc.workload):
        p = f"workload[{i}]"
        if src.name in sources:
            raise ScenarioError(f"{p}.name", f"duplicate source name {src.name!r}")
        sources.add(src.name)
        expected += src.expected_messages(sc.duration)
        if expected > MAX_MESSAGES:
            raise ScenarioError(
                p,
                f"the sources would create about {expected:.3g} messages; "
                f"the limit is {MAX_MESSAGES:.0e}",
            )
        need(f"{p}.client", src.client, "client")
        if src.domain not in names:
            raise ScenarioError(f"{p}.domain", f"{src.domain!r} is not a domain of the scenario")
        if src.mta is not None:
            need(f"{p}.mta", src.mta, "mta")
        elif names[src.domain].outbound is None:
            raise ScenarioError(
                f"{p}.mta", f"no MTA: give one here or an outbound MTA for {src.domain!r}"
            )
        if src.recipients is None:
            if not any(d.users > 0 for d in sc.domains):
                raise ScenarioError(f"{p}.recipients", "no domain has users to receive mail")
            continue
        if not src.recipients:
            raise ScenarioError(f"{p}.recipients", "no recipient domains")
        for name, weight in src.recipients.items():
            rp = f"{p}.recipients[{_key(name)}]"
            if name not in names:
                raise ScenarioError(rp, f"{name!r} is not a domain of the scenario")
            dom = names[name]
            if not dom.receives:
                raise ScenarioError(rp, f"domain {name!r} has no MX records and no host")
            if dom.users == 0:
                raise ScenarioError(rp, f"domain {name!r} has no users to receive mail")
            if not (weight >= 0 and math.isfinite(weight)):
                raise ScenarioError(rp, f"weight must be a finite number >= 0, got {weight}")
        total = sum(src.recipients.values())
        if not 0 < total < math.inf:
            raise ScenarioError(
                f"{p}.recipients", "recipient weights must add up to a finite number above zero"
            )


# --------------------------------------------------------------------------------------
# Loading, overrides and error messages
# --------------------------------------------------------------------------------------

_WORDS = {
    "extra_forbidden": "unknown key",
    "missing": "missing required key",
}


_TAGS = {"kind": NODE_KINDS, "dist": ("constant", "exponential", "lognormal", "uniform")}


def _key(item: Any) -> str:
    text = str(item)
    # A key with a newline or other control character must not break the one-line error.
    return text if text.isprintable() else repr(text)


def _is_tag(cur: Any, item: Any) -> bool:
    """Whether ``item`` is the tag a discriminated union put into an error location."""
    if not isinstance(cur, dict) or not isinstance(item, str):
        return False
    return any(item in tags and cur.get(field) == item for field, tags in _TAGS.items())


def _path_of(loc: tuple[Any, ...], data: Any) -> str:
    """Render a pydantic error location as a key path, dropping union tags.

    Discriminated unions put the tag ('mta', 'lognormal') into the location; walking the
    input alongside tells real keys from tags.
    """
    parts: list[str] = []
    cur = data
    tag_seen: object = None  # the mapping whose union tag was already skipped
    for item in loc:
        if isinstance(item, int) and isinstance(cur, list) and 0 <= item < len(cur):
            parts.append(f"[{item}]")
            cur = cur[item]
        elif cur is not tag_seen and _is_tag(cur, item):
            tag_seen = cur  # a key of the same name further on is a real key
            continue
        elif isinstance(item, str) and parts and ("." in item or "[" in item):
            parts.append(f"[{_key(item)}]")  # a domain name: as --set would select it
            cur = cur.get(item) if isinstance(cur, dict) else None
        else:
            parts.append(f".{_key(item)}" if parts else _key(item))
            cur = cur.get(item) if isinstance(cur, dict) else None
    return "".join(parts)


def _problem(err: ErrorDetails) -> str:
    kind = err["type"]
    if kind in _WORDS:
        return _WORDS[kind]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if kind.startswith(("union_tag", "literal")) or "input" not in err:
        return msg
    value = err["input"]
    if isinstance(value, (dict, list)):
        return msg
    return f"{msg} (got {value!r})"


def parse_scenario(data: Any) -> Scenario:
    """Validate a scenario given as plain data (e.g. parsed YAML) and check references."""
    if not isinstance(data, dict):
        raise ScenarioError("", "a scenario must be a mapping of keys to values")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise ScenarioError(_path_of(first["loc"], data), _problem(first) + more) from None
    check_references(scenario)
    return scenario


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges; its keys may be overridden on purpose
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a key that is a list or mapping", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def _yaml(text: str, what: str) -> Any:
    """Parse YAML; any problem becomes a one-line ScenarioError."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None and what == "file" else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ScenarioError(where, f"invalid YAML: {problem}") from None
    except RecursionError:
        raise ScenarioError("", "invalid YAML: nested too deeply") from None
    except (ValueError, TypeError) as exc:  # e.g. an integer of more than 4300 digits
        raise ScenarioError("", f"invalid YAML: {str(exc).splitlines()[0]}") from None


_TOKEN = re.compile(r"\[([^\]]*)\]|([^.\[\]]+)")


def _split_path(path: str) -> list[str | int]:
    """``topology.nodes[gmail-mta].workers`` -> ['topology', 'nodes', 'gmail-mta', 'workers']."""
    out: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(path):
        gap = path[pos : m.start()]
        if gap not in ("", "."):
            raise ScenarioError(path, "malformed key path")
        pos = m.end()
        if m.group(1) is not None:
            sel = m.group(1)
            out.append(int(sel) if re.fullmatch(r"-?[0-9]+", sel) else sel)
        else:
            out.append(m.group(2))
    if not out or path[pos:] not in ("",):
        raise ScenarioError(path, "malformed key path")
    return out


def _select(seq: list[Any], sel: str | int, where: str) -> int:
    if isinstance(sel, int):
        if not -len(seq) <= sel < len(seq):
            raise ScenarioError(where, f"index {sel} is out of range (length {len(seq)})")
        return sel
    for i, item in enumerate(seq):
        if isinstance(item, dict) and sel in (item.get("id"), item.get("name")):
            return i
    raise ScenarioError(where, f"no element with id or name {sel!r}")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (value parsed as YAML) to raw scenario data.

    List elements are chosen by index (``workload[0]``) or by id/name
    (``topology.nodes[gmail-mta]``). Errors are ScenarioErrors naming the override.
    """
    for item in overrides:
        if "=" not in item:
            raise ScenarioError(item, "expected key.path=value")
        path, _, text = item.partition("=")
        path = path.strip()
        try:
            value = _yaml(text, "value")
        except ScenarioError as exc:
            raise ScenarioError(path, f"value is not valid {exc.problem.removeprefix('invalid ')}") from None
        keys = _split_path(path)
        cur: Any = data
        for depth, key in enumerate(keys):
            last = depth == len(keys) - 1
            where = path
            if isinstance(cur, list):
                idx = _select(cur, key, where)
                if last:
                    cur[idx] = value
                else:
                    cur = cur[idx]
            elif isinstance(cur, dict):
                key = str(key)
                if last:
                    cur[key] = value
                else:
                    if cur.get(key) is None:
                        cur[key] = {}
                    cur = cur[key]
            else:
                raise ScenarioError(where, f"cannot set {key!r} inside a {type(cur).__name__}")
    return data


def default_scenario_path() -> Path:
    """Where the default scenario lives (``topologies/default.yaml``)."""
    return TOPOLOGIES / "default.yaml"


def load_scenario(path: str | Path | None = None, overrides: list[str] | None = None) -> Scenario:
    """Read, override and validate a scenario file; no path means the default scenario.

    Overrides (``key.path=value``) are applied before validation, so they can also mend
    a file. Raises ScenarioError (a ValueError) naming the file (or ``--set``), the key
    path and the problem.
    """
    file = Path(path) if path is not None else default_scenario_path()
    source = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("", "no such file", source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError("", f"cannot read: {exc.__class__.__name__}", source) from None
    try:
        data = _yaml(text, "file")
    except ScenarioError as exc:
        raise exc.located(source) from None
    if not overrides:
        try:
            return parse_scenario(data)
        except ScenarioError as exc:
            raise exc.located(source) from None
    if not isinstance(data, dict):
        raise ScenarioError("", "a scenario must be a mapping of keys to values", source)
    where = f"--set (on {source})"
    try:
        merged = apply_overrides(copy.deepcopy(data), overrides)
    except ScenarioError as exc:
        raise exc.located(where) from None
    try:
        return parse_scenario(merged)
    except ScenarioError as exc:
        # Blame the file when the overrides left the faulty key as the file has it (and
        # the file is faulty on its own); otherwise the overrides brought the fault in.
        try:
            parse_scenario(data)
        except ScenarioError:
            if _value_at(data, exc.path) == _value_at(merged, exc.path):
                raise exc.located(source) from None
        raise exc.located(where) from None


_MISSING = object()


def _value_at(data: Any, path: str) -> Any:
    """The value at a key path in raw data, or a marker if the path leads nowhere."""
    try:
        keys = _split_path(path) if path else []
    except ScenarioError:
        return _MISSING
    cur = data
    for key in keys:
        if isinstance(cur, list) and isinstance(key, int) and -len(cur) <= key < len(cur):
            cur = cur[key]
        elif isinstance(cur, dict) and key in cur:
            cur = cur[key]
        else:
            return _MISSING
    return cur
