"""The topology: nodes of each kind and the links between them.

Each node kind is one model with a ``kind`` tag; ``NODE_TYPES`` lists them, and the
simulation registers a component factory for each (``sim.core.component``)."""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator, BeforeValidator, Field, SerializationInfo, SerializerFunctionWrapHandler,
    field_validator, model_serializer, model_validator,
)

from .base import MAX_TIME, MAX_WORKERS, Int, NodeId, Num, Strict
from .distributions import TimeConstant, TimeDistribution, TimeLogNormal
from .presets import MX_PRESETS, PRESETS, RETRY_SHAPES, with_preset
from .schedules import RetrySpec
from .units import Bytes, Seconds


__all__ = [
    "AuthoritativeNode", "ClientNode", "Edge", "EspNode", "Greylisting", "MTANode", "MXNode", "MailboxNode",
    "NODE_KINDS", "NODE_TYPES", "Node", "MAX_LATENCY", "NodeBase", "Outage", "RateLimits", "RelayNode",
    "Reputation", "ResolverNode", "RouterNode", "SpamFilter", "Topology", "parse_feedback", "sending_ips",
]


MAX_LATENCY = 10.0  # seconds, one way per link
MAX_SIZE = 10**15  # bytes, like message sizes (sim.mail.senders.MAX_SIZE)
MAX_COUNT = 10**9  # counts a scenario may set (recipients per envelope, reuses): finite
MAX_IPS = 65_536  # sending IPs of one node (a /16)
MAX_HOPS = 250  # the attempts table keeps a hop in one byte
MAX_NAMESERVERS = 3  # glibc's MAXNS: nameserver lines read from resolv.conf

# DNS lookup time at a resolver that misses its cache: log-normal fitted to the measured
# mean 152 ms and 90th percentile 275 ms (Brandhorst & Pras; docs/sources.md, DNS lookup time).
DNS_LOOKUP = TimeLogNormal(dist="lognormal", median=0.1265, sigma=0.606)
# Receiving-side content scan (rspamd + ClamAV on 50 KB): p50 78 ms, p95 200 ms
# (docs/sources.md, content scan time), log-normal through both points.
CONTENT_SCAN = TimeLogNormal(dist="lognormal", median=0.078, sigma=0.572)
# An authoritative server's time to answer one query from memory (docs/sources.md,
# authoritative name servers: an assumption well above NSD's and Knot's microseconds).
AUTH_ANSWER = TimeConstant(dist="constant", value=0.0001)


_FEEDBACK = re.compile(
    r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:/\s*(concurrency|sqrt_concurrency|\d+(?:\.\d*)?|\.\d+)\s*)?$"
)


def sending_ips(node: str, ips: int | list[str]) -> tuple[str, ...] | None:
    """A node's sending IPs by name (the ``client`` a receiver sees): ``ips`` names
    them, or counts them (``node#1``, ``node#2``, ...); None for a single IP, which is
    the node itself. The MTA sends from these; the description checks names against
    them (a receiver's reputation ``history``)."""
    if isinstance(ips, int):
        return None if ips == 1 else tuple(f"{node}#{k}" for k in range(1, ips + 1))
    return tuple(ips)


def parse_feedback(text: str) -> tuple[float, str]:
    """A Postfix feedback value as ``(base, index)``: ``1/concurrency`` is ``(1.0,
    "concurrency")``, ``1/sqrt_concurrency`` ``(1.0, "sqrt_concurrency")``, a number
    or a fraction (``1/8``) ``(0.125, "")``; postconf(5), qmgr_feedback.c."""
    match = _FEEDBACK.match(text)
    if match is None:
        raise ValueError(
            "not a feedback value: write a number in (0, 1], a fraction like 1/8, "
            "N/concurrency or N/sqrt_concurrency"
        )
    number, divisor = match.groups()
    base = float(number)
    index = divisor if divisor in ("concurrency", "sqrt_concurrency") else ""
    if divisor and not index:
        if float(divisor) == 0:
            raise ValueError("the feedback divides by zero")
        base /= float(divisor)
    if not 0 < base <= 1:
        raise ValueError("the feedback must be above 0 and at most 1")
    return base, index


def _feedback_text(value: object) -> str:
    """A feedback value checked, kept as its text (a number read from YAML too)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("Input should be a feedback value such as 1/concurrency")
    parse_feedback(str(value))
    return str(value).strip()


FeedbackText = Annotated[str, BeforeValidator(_feedback_text)]


class NodeBase(Strict):
    """What every node kind has besides its ``id``: an optional ``region`` label."""

    # A plain label (a generated world's region name, say "eu-central"): nothing in the
    # model reads it; it lets results be grouped by where a node is.
    region: str | None = Field(None, min_length=1, description="where the node is; a label only")


class ClientNode(NodeBase):
    """Where people's devices or an automated sender attach to the network."""

    kind: Literal["client"]
    id: NodeId


class RouterNode(NodeBase):
    """A transit point (an exchange, a backbone) that only carries traffic."""

    kind: Literal["router"]
    id: NodeId


class MTANode(NodeBase):
    """An outbound (submission and relay) mail server, shaped after Postfix 3.x."""

    kind: Literal["mta"]
    id: NodeId
    # The stub resolver (glibc's, resolv.conf(5)). ``resolver`` is
    # the one-server form of ``resolvers`` (give one of them); a dump keeps the form given.
    resolver: NodeId | None = Field(None, description="the caching resolver this MTA asks for MX records")
    resolvers: list[NodeId] | None = Field(
        None, description="resolv.conf nameserver lines: resolvers asked in order (at most 3)"
    )
    resolver_timeout: Int = Field(
        5, ge=1, le=30, description="resolv.conf options timeout: seconds the first round waits for a server"
    )
    resolver_attempts: Int = Field(
        2, ge=1, le=5, description="resolv.conf options attempts: rounds over the servers"
    )
    # Postfix default_process_limit is 100 for both smtpd and smtp(8) agents.
    smtpd_workers: Int = Field(100, gt=0, le=MAX_WORKERS, description="concurrent submission sessions")
    workers: Int = Field(100, gt=0, le=MAX_WORKERS, description="concurrent outbound delivery sessions")
    message_size_limit: Bytes = Field(10_240_000, gt=0, le=MAX_SIZE, description="Postfix default")
    # 0: no scan grid, each deferred envelope is taken at its own due time.
    queue_run_delay: Seconds = Field(300, ge=0, le=MAX_TIME, description="Postfix: deferred-queue scan")
    minimal_backoff_time: Seconds = Field(300, ge=0, le=MAX_TIME, description="Postfix")
    maximal_backoff_time: Seconds = Field(4000, ge=0, le=MAX_TIME, description="Postfix")
    maximal_queue_lifetime: Seconds = Field(5 * 86400, gt=0, le=MAX_TIME, description="Postfix: 5 d")
    smtp_connect_timeout: Seconds = Field(30, gt=0, le=MAX_TIME, description="Postfix")
    # Postfix's per-destination scheduler (SCHEDULER_README;
    # sim/mail/concurrency.py). Postfix's names without their "default_" prefix (one transport).
    destination_concurrency_limit: Int = Field(
        20, gt=0, le=MAX_WORKERS, description="Postfix default_destination_concurrency_limit"
    )
    initial_destination_concurrency: Int = Field(
        5, gt=0, le=MAX_WORKERS, description="Postfix initial_destination_concurrency"
    )
    destination_concurrency_positive_feedback: FeedbackText = Field(
        "1/concurrency", description="Postfix default_destination_concurrency_positive_feedback"
    )
    destination_concurrency_negative_feedback: FeedbackText = Field(
        "1/concurrency", description="Postfix default_destination_concurrency_negative_feedback"
    )
    destination_concurrency_failed_cohort_limit: Int = Field(
        1, ge=0, le=MAX_WORKERS,
        description="Postfix default_destination_concurrency_failed_cohort_limit (0: never dead)",
    )
    destination_rate_delay: Seconds = Field(
        0, ge=0, le=MAX_TIME, description="Postfix default_destination_rate_delay (0: off)"
    )
    # Recipients per delivery and the connection cache (postconf(5)).
    default_destination_recipient_limit: Int = Field(
        50, gt=0, le=MAX_COUNT, description="Postfix: recipients per envelope (per delivery)"
    )
    smtp_connection_cache_on_demand: bool = Field(
        True, description="Postfix: reuse a session for the next envelope waiting for its destination"
    )
    smtp_connection_reuse_time_limit: Seconds = Field(
        300, gt=0, le=MAX_TIME, description="Postfix: no reuse of a session open this long"
    )
    smtp_connection_reuse_count_limit: Int = Field(
        0, ge=0, le=MAX_COUNT, description="Postfix: reuses of one session at most (0: no limit)"
    )
    smtp_tls_connection_reuse: bool = Field(
        False, description="Postfix 3.4+: reuse TLS sessions too (off: with TLS, no reuse)"
    )
    # Bounces are mail (sim/mail/dsn.py): delay notices.
    delay_warning_time: Seconds = Field(
        0, ge=0, le=MAX_TIME, description="Postfix: a delay notice to the sender after this long queued; 0 = off"
    )
    # Retry schedules and presets (sim/config/presets.py).
    preset: str | None = Field(None, description="a real MTA's defaults, applied under the node's keys")
    retry: RetrySpec | None = Field(None, description="a retry schedule; absent: Postfix's backoff")

    @model_validator(mode="before")
    @classmethod
    def _preset_first(cls, data: object) -> object:
        # The preset's keys go under the node's own (and --set's, already in them).
        return with_preset(data) if isinstance(data, dict) else data

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str | None) -> str | None:
        if name is not None and name not in PRESETS:
            raise ValueError(f"unknown preset (known: {', '.join(PRESETS)})")
        return name

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        # A node on a preset is dumped with the keys it sets differently from its preset
        # only: the dump means the same under that preset, and a preset changed later
        # (--set or --grid on a dumped scenario, as sweeps do) takes effect instead of
        # losing to values it had itself supplied. context={"resolved": True} dumps
        # every key (mailflow show).
        data = handler(self)
        for key in ("resolver", "resolvers"):  # the one of the two not given
            if data.get(key, ()) is None:
                del data[key]
        if self.preset is None or (info.context or {}).get("resolved"):
            return data
        fixed = ("kind", "id", "resolver", "resolvers", "preset")
        ref = _preset_dump(self.preset, info.mode)
        out = {}
        for key, value in data.items():
            base = ref.get(key)
            if key in fixed or base != value:
                if isinstance(value, dict) and isinstance(base, dict):
                    # retry: the keys that differ from the preset's, merged back under
                    # it on loading (so a new preset still takes effect); but when the
                    # shape differs the block replaces the preset's whole on loading,
                    # so it is written whole (keys equal to the
                    # preset's were lost, and a sweep ran another schedule).
                    diff = {k: v for k, v in value.items() if base.get(k) != v}
                    if any(k in RETRY_SHAPES for k in diff):
                        diff = {k: v for k, v in value.items() if v is not None}
                    value = diff
                out[key] = value
        return out
    # How long the client waits for a slow server's greeting and
    # EHLO reply (a tar-pit) before it gives the session up.
    smtp_helo_timeout: Seconds = Field(
        300, gt=0, le=MAX_TIME, description="Postfix: wait for the greeting and the EHLO reply"
    )
    # A delivery transaction's own time (issue 12): drawn once per transaction and spent
    # between the final "." and the server's reply, on top of the link's time (round
    # trips and the body over the bandwidth). Real sessions vary for reasons the link
    # does not model (the receiver's queue-file fsync, its before-reply checks, TCP's
    # slow start); absent: the link alone sets the time, as before.
    session_time: TimeDistribution | None = Field(
        None, description="a delivery transaction's time beyond its link time (none: link time only)"
    )
    # Sending IPs and the smart host.
    ips: int | list[str] = Field(
        1, description="sending IPs: a count, or their names; sessions use them in turn"
    )
    relayhost: NodeId | None = Field(
        None, description="Postfix relayhost ([host] form): a relay node that takes all mail"
    )
    # Overload (issue 10): the queue manager's and the queue file system's limits (postconf(5)).
    qmgr_message_active_limit: Int = Field(
        20_000, gt=0, le=MAX_COUNT,
        description="Postfix: messages (here: envelopes) in the active queue at most; more wait in incoming",
    )
    queue_minfree: Bytes = Field(
        0, ge=0, le=MAX_SIZE, description="Postfix: free queue space below which MAIL FROM gets 452 4.3.1"
    )
    queue_file_system_size: Bytes | None = Field(
        None, gt=0, le=MAX_SIZE, description="bytes the queue file system holds; none: no limit"
    )

    @field_validator("ips", mode="before")
    @classmethod
    def _ips(cls, ips: Any) -> int | list[str]:
        # One check with one plain message, instead of pydantic's per-branch union errors.
        if isinstance(ips, int) and not isinstance(ips, bool):
            if not 1 <= ips <= MAX_IPS:
                raise ValueError(f"a count of sending IPs must be 1 to {MAX_IPS}")
            return ips
        if isinstance(ips, list):
            if not 1 <= len(ips) <= MAX_IPS:
                raise ValueError(f"give 1 to {MAX_IPS} sending IPs, got {len(ips)}")
            seen: set[str] = set()
            for ip in ips:
                if not isinstance(ip, str) or not ip:
                    raise ValueError(f"a sending IP is a non-empty name, got {ip!r}")
                if ip in seen:
                    raise ValueError(f"{ip!r} is listed twice")
                seen.add(ip)
            return ips
        raise ValueError("give a count or a list of names")

    @model_validator(mode="after")
    def _one_resolver_key(self) -> MTANode:
        if (self.resolver is None) == (self.resolvers is None):
            raise ValueError(
                "give resolver (one resolver) or resolvers (a list of up to 3), not both"
                if self.resolver is not None else "give resolver (a resolver node) or resolvers (a list)"
            )
        if self.resolvers is not None:
            if not 1 <= len(self.resolvers) <= MAX_NAMESERVERS:
                raise ValueError(f"resolvers lists 1 to {MAX_NAMESERVERS} resolvers (glibc's MAXNS)")
            if len(set(self.resolvers)) < len(self.resolvers):
                raise ValueError("a resolver is listed twice in resolvers")
        return self

    @property
    def nameservers(self) -> list[str]:
        """The resolvers asked, in order (``resolvers``, or ``resolver`` alone)."""
        return self.resolvers if self.resolvers is not None else [self.resolver]  # type: ignore[list-item]

    @model_validator(mode="after")
    def _backoff_ordered(self) -> MTANode:
        if self.maximal_backoff_time < self.minimal_backoff_time:
            raise ValueError("maximal_backoff_time is below minimal_backoff_time")
        if self.retry is not None:
            # A retry schedule (the node's or its preset's) decides the gaps and when to
            # give up: Postfix's own keys would be silently ignored.
            for key, fix in (("maximal_queue_lifetime", "retry.give_up"),
                             ("maximal_backoff_time", "retry.intervals or retry.max_interval")):
                if getattr(self, key) != MTANode.model_fields[key].default:
                    raise ValueError(
                        f"{key} is not read with a retry schedule "
                        f"({'preset ' + self.preset if self.preset else 'the retry block'}): set {fix}"
                    )
        return self

    @model_validator(mode="after")
    def _concurrency_ordered(self) -> MTANode:
        # Postfix caps the initial window at the limit (qmgr_queue_create): a node that
        # lowers the limit alone needs no second key; one that sets both must agree.
        if (
            "initial_destination_concurrency" in self.model_fields_set
            and self.initial_destination_concurrency > self.destination_concurrency_limit
        ):
            raise ValueError(
                f"initial_destination_concurrency ({self.initial_destination_concurrency}) is "
                f"above destination_concurrency_limit ({self.destination_concurrency_limit})"
            )
        return self

    @model_validator(mode="after")
    def _queue_can_take_mail(self) -> MTANode:
        # Postfix refuses MAIL FROM while the free space is at or below the larger of
        # queue_minfree and 1.5 x message_size_limit: a smaller file system takes nothing.
        size = self.queue_file_system_size
        floor = max(self.queue_minfree, 1.5 * self.message_size_limit)
        if size is not None and size <= floor:
            raise ValueError(
                f"queue_file_system_size ({size:g} bytes) must be above max(queue_minfree, "
                f"1.5 x message_size_limit) = {floor:g} bytes, or the queue never takes a message"
            )
        return self


@cache
def _preset_dump(name: str, mode: str) -> dict[str, Any]:
    """Every key of an MTA node that has only ``preset: name``."""
    alone = MTANode(kind="mta", id="-", resolver="-", preset=name)
    return alone.model_dump(mode=mode, context={"resolved": True})


Answer = Literal["none", "refuse"]


class Outage(Strict):
    """A time when a host is down: it does not answer at all, or refuses connections."""

    start: Seconds = Field(ge=0, le=MAX_TIME)
    end: Seconds = Field(ge=0, le=MAX_TIME)
    answer: Answer | None = Field(
        None, description="none: no answer (connect timeout); refuse: TCP reset; default: the host's"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Outage:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


# The address records (A/AAAA) of a host that is an MX (MXNode,
# RelayNode): the servers of the zone its name is in, and their TTL.
def _zone_servers() -> Any:
    return Field(
        default_factory=list,
        description="authoritative servers of the zone its name is in; empty: the naming domain's",
    )


def _a_ttl() -> Any:
    return Field(300, ge=0, le=MAX_TIME, description="TTL of its address records (Gmail's MX hosts)")


class Greylisting(Strict):
    """postgrey's greylisting on an MX (its option names, without the dashes)."""

    delay: Seconds = Field(300, ge=0, le=MAX_TIME, description="a new triplet passes this long after it was first seen")
    retry_window: Seconds = Field(
        172_800, gt=0, le=MAX_TIME, description="a first retry later than this is greylisted as new"
    )
    max_age: Seconds = Field(3_024_000, gt=0, le=MAX_TIME, description="a triplet not seen this long is forgotten")
    auto_whitelist_clients: Int = Field(
        5, ge=0, le=MAX_COUNT, description="a client passing this often (hours apart) is whitelisted; 0: never"
    )


class SpamFilter(Strict):
    """What an MX's spam filter catches and does with it (docs/model.md, content checks)."""

    detection_rate: Num = Field(0.999, ge=0, le=1, description="share of spam caught")
    false_positive_rate: Num = Field(0.0005, ge=0, le=1, description="share of other mail caught")
    action: Literal["reject", "junk", "discard"] | None = Field(
        None, description="what caught mail gets; none: reject before queue, junk after queue"
    )


class Reputation(Strict):
    """IP warming: a sending IP's message limit per window grows with what this server
    accepted from it: ``min(ceiling, base + growth * accepted)`` (sim/mail/throttle.py)."""

    base: Num = Field(ge=0, le=1e12, description="messages per window from an IP with no history")
    growth: Num = Field(ge=0, le=1e6, description="the limit grows by this per message accepted from the IP")
    ceiling: Num = Field(ge=0, le=1e12, description="the limit of a warm IP")
    history: dict[str, Annotated[Num, Field(ge=0, le=1e15)]] = Field(
        default_factory=dict, description="messages accepted before the run, per sending IP (a warm IP)"
    )


class RateLimits(Strict):
    """A receiver's limits per sending IP (Postfix anvil's names; Exim's for messages per
    connection) and per sending domain, and how its refusals are worded. 0: a rule off."""

    reply: Literal["postfix", "gmail", "yahoo", "outlook"] = Field(
        "postfix", description="whose codes and texts the refusals carry (and the message rules' phase)"
    )
    anvil_rate_time_unit: Seconds = Field(60, gt=0, le=MAX_TIME, description="Postfix: the window of the rate limits")
    smtpd_client_connection_count_limit: Int = Field(
        50, ge=0, le=MAX_COUNT, description="Postfix: sessions open at once per client"
    )
    smtpd_client_connection_rate_limit: Int = Field(
        0, ge=0, le=MAX_COUNT, description="Postfix: connection attempts per client per window"
    )
    smtpd_client_message_rate_limit: Int = Field(
        0, ge=0, le=MAX_COUNT, description="Postfix: MAIL requests per client per window"
    )
    smtpd_client_recipient_rate_limit: Int = Field(
        0, ge=0, le=MAX_COUNT, description="Postfix: RCPT requests per client per window"
    )
    smtp_accept_max_per_connection: Int = Field(
        0, ge=0, le=MAX_COUNT, description="Exim: messages (MAIL) per connection"
    )
    sender_domain_message_rate_limit: Int = Field(
        0, ge=0, le=MAX_COUNT, description="MAIL requests per sender domain per window"
    )
    reputation: Reputation | None = Field(None, description="IP warming; absent: off")


class MXNode(NodeBase):
    """An inbound mail server of one or more domains."""

    kind: Literal["mx"]
    id: NodeId
    max_connections: Int = Field(100, gt=0, description="Postfix default_process_limit")
    workers: Int = Field(
        20, gt=0, le=MAX_WORKERS, description="concurrent content scans and local deliveries"
    )
    message_size_limit: Bytes = Field(
        10_240_000, gt=0, le=MAX_SIZE, description="Postfix default; larger messages get 552 at MAIL FROM"
    )
    processing: TimeDistribution = Field(default=CONTENT_SCAN, description="content scan time")
    outages: list[Outage] = Field(default_factory=list, description="when the host is down")
    answer: Answer = Field(
        "none", description="how the host answers while down: none (connect timeout) or refuse"
    )
    greylisting: Greylisting | None = Field(None, description="postgrey's greylisting; absent: off")
    # Content checks and tar-pitting (sim/mail/content.py).
    resolver: NodeId | None = Field(None, description="the resolver the MX's SPF/DKIM/DMARC queries go through")
    authentication: bool = Field(False, description="SPF at MAIL FROM, DKIM and DMARC after DATA")
    content_filter: Literal["after_queue", "before_queue"] = Field(
        "after_queue", description="where the scan runs: after acceptance, or in the session before the reply to '.'"
    )
    spam_filter: SpamFilter | None = Field(None, description="the scan's verdicts; absent: nothing is caught")
    greet_pause: Seconds = Field(0, ge=0, le=MAX_TIME, description="delay before the 220 greeting")
    reply_delay: Seconds = Field(0, ge=0, le=MAX_TIME, description="delay before each reply after the greeting")
    # Its address records.
    ns: list[NodeId] = _zone_servers()
    a_ttl: Seconds = _a_ttl()
    # Receiver presets (sim/config/presets.py, MX_PRESETS) and
    # rate limits per sending IP and domain (sim/mail/throttle.py).
    preset: str | None = Field(None, description="a big receiver's limits (gmail, outlook, yahoo), under the node's keys")
    rate_limits: RateLimits | None = Field(None, description="limits per sending IP and domain; absent: off")

    @model_validator(mode="before")
    @classmethod
    def _preset_first(cls, data: object) -> object:
        return with_preset(data, MX_PRESETS) if isinstance(data, dict) else data

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str | None) -> str | None:
        if name is not None and name not in MX_PRESETS:
            raise ValueError(f"unknown preset (known: {', '.join(MX_PRESETS)})")
        return name

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        # As MTANode's: on a preset, only what differs from it (nested blocks too), so
        # that a preset changed later (--set, --grid) takes effect; every key when resolved.
        data = handler(self)
        if self.preset is None or (info.context or {}).get("resolved"):
            return data
        ref = _mx_preset_dump(self.preset, info.mode)
        return _differs(data, ref, ("kind", "id", "preset"))

    @model_validator(mode="after")
    def _outages_apart(self) -> MXNode:
        _apart(self.outages)
        return self

    @model_validator(mode="after")
    def _content_keys(self) -> MXNode:
        if self.authentication and self.resolver is None:
            raise ValueError("authentication needs a resolver: name the MX's resolver node")
        spam = self.spam_filter
        if spam is not None and self.content_filter == "after_queue" and spam.action == "reject":
            raise ValueError(
                "an after-queue filter cannot reject (the message was accepted already): "
                "use spam_filter.action junk or discard, or content_filter: before_queue"
            )
        if spam is not None and self.content_filter == "before_queue" and spam.action == "discard":
            raise ValueError(
                "a before-queue filter rejects or junks: discard is for content_filter: after_queue"
            )
        return self


def _spans_apart(outages: list[Outage]) -> list[Outage]:
    _apart(outages)
    return outages


def _differs(data: dict[str, Any], ref: dict[str, Any], fixed: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keys of ``data`` whose values differ from ``ref``'s, nested mappings by key."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        base = ref.get(key)
        if key in fixed or base != value:
            if isinstance(value, dict) and isinstance(base, dict):
                value = _differs(value, base)
            out[key] = value
    return out


@cache
def _mx_preset_dump(name: str, mode: str) -> dict[str, Any]:
    """Every key of an MX node that has only ``preset: name``."""
    return MXNode(kind="mx", id="-", preset=name).model_dump(mode=mode, context={"resolved": True})


def _apart(outages: list[Outage]) -> None:
    spans = sorted((o.start, o.end) for o in outages)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        if start < end:
            raise ValueError(f"outages overlap (one starts at {start} before {end})")


class ResolverNode(NodeBase):
    """A caching DNS resolver shared by the MTAs that name it."""

    kind: Literal["resolver"]
    id: NodeId
    lookup: TimeDistribution = Field(
        default=DNS_LOOKUP, description="time to resolve a name missing from the cache"
    )
    cache: bool = True
    max_ttl: Seconds = Field(86400, ge=0, le=MAX_TIME, description="Unbound cache-max-ttl")
    max_negative_ttl: Seconds = Field(
        3600, ge=0, le=MAX_TIME, description="Unbound cache-max-negative-ttl"
    )
    # A bounded cache, and outages.
    cache_size: Int = Field(
        0, ge=0, le=MAX_COUNT, description="answers the cache holds at most, least recently used evicted; 0: no limit"
    )
    outages: list[Outage] = Field(default_factory=list, description="when the resolver is down")
    answer: Answer = Field(
        "none", description="how it answers a query while down: none (the stub times out) or refuse (port unreachable)"
    )
    servfail_ttl: Seconds = Field(
        1, ge=0, le=300, description="BIND servfail-ttl: how long a failed resolution is cached; 0: not at all"
    )
    # Walking to authoritative name servers (sim/mail/dns.py).
    unknown_server_time_limit: Seconds = Field(
        0.376, gt=0, le=MAX_TIME, description="Unbound: wait for a name server's answer before the next"
    )
    infra_host_ttl: Seconds = Field(
        900, ge=0, le=MAX_TIME, description="Unbound: a server that timed out is tried last this long"
    )

    @model_validator(mode="after")
    def _resolver_outages(self) -> ResolverNode:
        _apart(self.outages)
        return self


# Relays and ESPs are MTAs (every MTA key, presets included).


class RelayNode(MTANode):
    """A relay (a backup MX, a smart host): an SMTP server that accepts any recipient,
    queues what it accepts and delivers it on as an MTA does. It takes no submissions:
    ``smtpd_workers`` means nothing here (``max_connections`` limits its sessions)."""

    kind: Literal["relay"]  # type: ignore[assignment]
    max_connections: Int = Field(100, gt=0, description="Postfix default_process_limit")
    hopcount_limit: Int = Field(
        50, gt=0, le=MAX_HOPS, description="Postfix: bounce a message that took more hops"
    )
    outages: list[Outage] = Field(default_factory=list, description="when the host is down")
    answer: Answer = Field(
        "none", description="how the host answers while down: none (connect timeout) or refuse"
    )
    # Its address records.
    ns: list[NodeId] = _zone_servers()
    a_ttl: Seconds = _a_ttl()

    @model_validator(mode="after")
    def _relay_keys(self) -> RelayNode:
        _apart(self.outages)
        return self


class EspNode(MTANode):
    """An email service provider: an MTA whose customers submit by HTTP API (no SMTP
    submission: ``smtpd_workers`` means nothing here; ``api_rate`` limits requests)."""

    kind: Literal["esp"]  # type: ignore[assignment]
    api_rate: Num | None = Field(
        None, gt=0, le=1e9, description="API requests/s per account (token bucket); None: no limit"
    )
    api_burst: Int | None = Field(
        None, gt=0, le=10**9, description="the bucket's size; default: one second of api_rate"
    )
    send_rate: Num | None = Field(
        None, gt=0, le=1e9, description="messages/s a campaign is released at; None: at once"
    )
    max_msg_rate: Num | None = Field(
        None, gt=0, le=1e12, description="campaign messages/h per recipient domain (PowerMTA)"
    )

    @model_validator(mode="after")
    def _burst_needs_rate(self) -> EspNode:
        if self.api_burst is not None and self.api_rate is None:
            raise ValueError("api_burst without api_rate: give the rate the bucket refills at")
        return self


class AuthoritativeNode(NodeBase):
    """An authoritative name server (RFC 1035 NS) of the domains
    that name it in ``ns:``; resolvers walk to it over the graph on a cache miss."""

    kind: Literal["authoritative"]
    id: NodeId
    processing: TimeDistribution = Field(default=AUTH_ANSWER, description="time to answer one query")
    outages: Annotated[list[Outage], AfterValidator(_spans_apart)] = Field(
        default_factory=list, description="when the server is down"
    )
    answer: Answer = Field("none", description="while down: none (the resolver times out) or refuse")


class MailboxNode(NodeBase):
    """A mailbox store: where accepted mail waits for the recipient's devices."""

    kind: Literal["mailbox"]
    id: NodeId
    concurrency: Int = Field(32, gt=0, le=MAX_WORKERS, description="concurrent mailbox writes")
    write: TimeDistribution = Field(default=TimeConstant(value=0.005), description="one write")
    # Capacity (issue 11): the store's disk, shared by every mailbox on it (sim.mail.quota).
    size: Bytes | None = Field(
        None, gt=0, le=MAX_SIZE, description="bytes the store holds; full, its MX answers 452 4.3.1; none: no limit"
    )


Node = Annotated[
    Union[ClientNode, RouterNode, MTANode, ResolverNode, MXNode, MailboxNode, RelayNode, EspNode,
          AuthoritativeNode],
    Field(discriminator="kind"),
]
NODE_TYPES = (
    ClientNode, RouterNode, MTANode, ResolverNode, MXNode, MailboxNode, RelayNode, EspNode, AuthoritativeNode,
)
NODE_KINDS = ("client", "router", "mta", "resolver", "mx", "mailbox", "relay", "esp", "authoritative")


def _earthly(latency: float) -> float:
    # A run must be able to finish its messages: a latency of 1e308 s would make every
    # round trip infinite. No link on Earth (or to a geostationary satellite) is slower.
    if latency > MAX_LATENCY:
        raise ValueError(
            f"one-way latency must be at most {MAX_LATENCY:g} s "
            "(a geostationary satellite hop is about 0.3 s)"
        )
    return latency


class Edge(Strict):
    """A network link. Traffic between two nodes follows the lowest-latency path."""

    a: NodeId
    b: NodeId
    latency: Annotated[Seconds, AfterValidator(_earthly)] = Field(ge=0, description="one-way, seconds")
    # At least a byte a second: a message of at most 1e15 bytes then crosses in finite time.
    bandwidth: Num = Field(125_000_000, ge=1, description="bytes/s (default 1 Gbit/s)")
    loss: Num = Field(0.0, ge=0, lt=1, description="packet loss probability")
    shared: bool = Field(
        False,
        description="concurrent transfers split its bandwidth (fluid sharing); false: each has all of it",
    )


class Topology(Strict):
    nodes: list[Node] = Field(min_length=1)
    edges: list[Edge] = Field(default_factory=list)
