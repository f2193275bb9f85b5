"""Generated worlds: synthetic Internets of mail as plain scenario data.

Two generators, both returning a dict as if read from YAML (so it goes through the
same validation as a file and can be saved with ``yaml.safe_dump``), all randomness
from ``seed``:

- :func:`world` (``sim.generate.internet``, ``mailflow generate``, a scenario's
  ``generate:`` block): a realistic Internet. The three big providers hold the measured
  shares of people (Gmail 39 %, Microsoft 35 %, Yahoo 18 %), each on its own domains
  sharing its MX hosts, resolver and store; a Zipf tail of other domains: regional ISPs,
  companies hosted at an ISP or on a big provider's infrastructure, and companies with
  their own server (some with a backup MX at their ISP: a relay that holds their mail
  while their server is away); ESPs (``esp`` nodes on the ESP presets) sending
  transactional mail by API and scheduled campaigns for client domains; the providers'
  outbound MTAs on their measured presets; regions on a sphere with latencies
  from great-circle distances (:mod:`.regions`). Every node carries its ``region``.
  docs/generate.md describes it; docs/sources.md cites its figures.
- :func:`internet`: the older uniform mesh (every domain with its own five nodes and one
  to three MX hosts), kept under its name because the benchmarks and tests that pin
  figures use it.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from pydantic import Field, model_validator

from .base import MAX_TIME, MAX_USERS, MAX_WORKERS, MIN_RATE, Int, Num, Strict
from .regions import REGION_RADIUS_KM, REGIONS, Region, great_circle_km, one_way_latency
from .units import Seconds

__all__ = ["GenerateSpec", "PROVIDERS", "Provider", "compact", "internet", "to_yaml", "world"]


class GenerateSpec(Strict):
    """The parameters of a generated Internet: a scenario's ``generate:`` block."""

    domains: Int = Field(20, ge=1, le=1_000_000, description="mail domains in all")
    seed: Int = Field(0, ge=0, description="the world's seed (and the run's, unless `seed:` says otherwise)")
    regions: Int = Field(4, ge=1, le=len(REGIONS), description="regions, the first of the table")
    rate: Num = Field(10.0, gt=0, le=1e6, description="messages/s in total, all kinds")
    duration: Seconds = Field(3600, ge=0.001, le=MAX_TIME, description="how long the sources send")
    drain: Seconds = Field(1800, ge=0, le=MAX_TIME, description="simulated time after the sources stop")
    users: Int | None = Field(None, ge=1, le=MAX_USERS, description="people in all; default 1000 a domain")
    transactional_share: Num = Field(
        0.2, ge=0, le=1, description="share of legitimate messages sent by ESPs for applications"
    )
    campaign_share: Num = Field(0.1, ge=0, le=1, description="share of legitimate messages sent in ESP campaigns")
    spam_share: Num = Field(0.45, ge=0, lt=1, description="share of all messages that are spam")

    @model_validator(mode="after")
    def _consistent(self) -> GenerateSpec:
        if self.transactional_share + self.campaign_share > 1:
            raise ValueError("transactional_share + campaign_share must be at most 1 (shares of legitimate mail)")
        if self.users is not None and self.users < USERS_PER_DOMAIN_MIN * self.domains:
            raise ValueError(
                f"users must be at least {USERS_PER_DOMAIN_MIN} per domain "
                f"({USERS_PER_DOMAIN_MIN * self.domains:,} for {self.domains:,} domains), "
                f"so every domain of the tail has someone (got {self.users:,})"
            )
        if self.people_total > MAX_USERS:
            raise ValueError(f"{self.people_total:,} users in all is more than {MAX_USERS:,}")
        return self

    @property
    def people_total(self) -> int:
        """People in the whole world."""
        return self.users if self.users is not None else USERS_PER_DOMAIN * self.domains


class Provider(NamedTuple):
    """A big mailbox provider: its share of people and the domains that share its hosts."""

    org: str
    share: float
    domains: tuple[tuple[str, float], ...]  # (name, share of the provider's people)
    mx_preferences: tuple[int, ...]  # one MX host per entry
    mx_ttl: int


# Shares of people by mailbox provider: Gmail 39 %, Microsoft 35 %, Yahoo 18 %, every
# other provider below 1 % (D. Lange, 2018, 2.3 M addresses; docs/sources.md). MX
# records: gmail.com has five at 5/10/20/30/40 with TTL 3600 s, yahoo.com three at equal
# preference 1 with TTL 1800 s (observed); Microsoft's two hosts at one preference and
# the split of a provider's people over its domains are assumptions.
PROVIDERS: tuple[Provider, ...] = (
    Provider("gmail", 0.39, (("gmail.com", 0.9), ("googlemail.com", 0.1)), (5, 10, 20, 30, 40), 3600),
    Provider(
        "outlook", 0.35,
        (("outlook.com", 0.4), ("hotmail.com", 0.4), ("live.com", 0.15), ("msn.com", 0.05)),
        (5, 5), 3600,
    ),
    Provider("yahoo", 0.18, (("yahoo.com", 0.8), ("aol.com", 0.15), ("ymail.com", 0.05)), (1, 1, 1), 1800),
)
ALL_PROVIDER_DOMAINS = 20  # from this many domains on, every provider domain is listed
USERS_PER_DOMAIN = 1000  # default people per domain (assumption)
USERS_PER_DOMAIN_MIN = 20  # the tail's 8 % must still give each tail domain a person
ZIPF_EXPONENT = 1.0  # people over the tail's domains by rank (assumption: Zipf's law)
# How the tail's company domains are hosted: on Google Workspace, on Microsoft 365, at
# their ISP, on their own server (assumption), and how many own servers have a backup
# MX at their ISP (assumption).
HOSTING = (("gmail", 0.3), ("outlook", 0.3), ("isp", 0.3), ("own", 0.1))
BACKUP_MX_SHARE = 0.3
ISP_EVERY = 200  # one regional ISP per this many tail domains, at least one per region
ESP_EVERY = 1000  # one ESP per this many domains, one to MAX_ESPS
MAX_ESPS = 5
ESP_CLIENT_SHARE = 0.05  # company domains that send through an ESP (assumption)
# Each ESP behaves as one of the real ones (their retry presets, docs/sources.md), in
# turn; it sends from several IPs and releases campaigns at a set rate, both set per
# account in reality (assumptions: as the default scenario's ESP).
ESP_PRESETS = ("sendgrid", "mailgun", "sparkpost", "ses")
ESP_IPS = 4
ESP_SEND_RATE = 300  # messages/s
CAMPAIGN_HOURS = (9, 17)  # UTC; marketing sends peak at 09:00 and 17:00 UTC
# People's traffic (docs/sources.md, Workload): the office day in their own time zone,
# 1.66 recipients a message on average, most of them among regular correspondents, and
# a share at their own organisation for company domains (assumptions but the 1.66).
PERSON_PROFILE = "office"
RECIPIENTS_PER_MESSAGE = 1.66
CONTACTS = 20
COMPANY_LOCAL_SHARE = 0.3
# Access network of a region's people and the LAN inside an organisation (assumptions).
ACCESS_LATENCY = 0.010
ACCESS_BANDWIDTH = 2.5e6
LAN_LATENCY = 0.0003
# Capacity by Little's law: sessions in progress = rate x time per session, with
# headroom; a session (TLS handshake, a few round trips, a scan) takes about 2 s and a
# content scan about 0.1 s (docs/sources.md, content scan time). Assumptions.
SESSION_S = 2.0
SCAN_S = 0.1
HEADROOM = 4.0
# An MX worker scans, then hands the message to the store by LMTP: 6 round trips
# (sim.mail.smtp.Dialogues.lmtp), across an ocean when a provider's MX host is in
# another region than its store.
LMTP_ROUND_TRIPS = 6
# Mail to people who do not exist (550 5.1.1), as the default scenario and the older
# generator have it (assumption; docs/sources.md, Domains).
UNKNOWN_RECIPIENT_RATE = 0.005
# An MX host takes at least Postfix's default_process_limit of sessions (100, the
# schema's default); a big provider's, on top of its steady share, every ESP's campaign
# at Postfix's default_destination_concurrency_limit (20) at once (docs/sources.md).
MX_SESSIONS_MIN = 100
CAMPAIGN_SESSIONS = 20


def _capacity(rate: float, each: float, least: int) -> int:
    """Workers for ``rate`` jobs/s of ``each`` seconds, with headroom, at least ``least``."""
    return int(min(MAX_WORKERS, max(least, math.ceil(HEADROOM * rate * each))))


def _apportion(total: int, weights: np.ndarray, floor: int = 0) -> np.ndarray:
    """``total`` split over ``weights`` in integers (largest remainder), each >= ``floor``."""
    n = len(weights)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rest = total - floor * n
    exact = rest * weights / weights.sum()
    out = np.floor(exact).astype(np.int64)
    short = int(rest - out.sum())
    if short:
        # Stable order: ties go to the lower index, so the result is the same everywhere.
        order = np.argsort(-(exact - out), kind="stable")[:short]
        out[order] += 1
    return out + floor


def _r6(x: float) -> float:
    """Seconds to the microsecond, so the written YAML stays short."""
    return round(float(x), 6)


def _rate(x: float) -> float:
    """A rate to 9 significant figures, never below the schema's minimum."""
    return max(MIN_RATE, float(f"{x:.9g}"))


class _Builder:
    """Collects nodes, edges, domains and sources, each node with its region."""

    def __init__(self, regions: tuple[Region, ...], rng: np.random.Generator) -> None:
        self.regions = regions
        self.rng = rng
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []
        self.domains: list[dict[str, Any]] = []
        self.workload: list[dict[str, Any]] = []

    def node(self, id: str, kind: str, region: Region, **keys: Any) -> str:
        """Add a node in ``region``; its id back."""
        self.nodes.append({"id": id, "kind": kind, "region": region.name, **keys})
        return id

    def edge(self, a: str, b: str, latency: float, **keys: Any) -> None:
        """Add a link, its latency to the microsecond."""
        self.edges.append({"a": a, "b": b, "latency": _r6(latency), **keys})

    def site(self, org: str, region: Region) -> str:
        """An organisation's edge router in ``region``, joined to the region's exchange."""
        edge = self.node(f"{org}-edge-{region.name}" if org in _MULTI else f"{org}-edge", "router", region)
        km = float(self.rng.uniform(0.0, REGION_RADIUS_KM))
        self.edge(edge, ix(region), one_way_latency(km))
        return edge

    def host(self, edge: str, id: str, kind: str, region: Region, **keys: Any) -> str:
        """A server on an organisation's LAN."""
        self.node(id, kind, region, **keys)
        self.edge(id, edge, LAN_LATENCY)
        return id


_MULTI = {p.org for p in PROVIDERS}  # organisations with a site in several regions


def ix(region: Region) -> str:
    """The id of a region's exchange point."""
    return f"ix-{region.name}"


def people(region: Region) -> str:
    """The id of the client node where a region's people attach."""
    return f"people-{region.name}"


# --- traffic and per-domain settings: one small function each, so new keys (a daily
# profile, a time zone from the region's utc_offset, cc, contacts, sizes, kind: spam)
# are wired in here and nowhere else.


def person_source(
    domain: str, region: Region, rate: float, suffix: str = "", local_share: float = 0.0,
    own_clock: bool = False,
) -> dict[str, Any]:
    """People of ``domain`` in ``region`` writing ``rate`` messages (not rows) a second in
    all, on the office day; ``own_clock``: in ``region``'s time zone rather than their
    domain's (a big provider's people live everywhere)."""
    source: dict[str, Any] = {
        "name": f"people-{domain}{suffix}",
        "kind": "person",
        "client": people(region),
        "domain": domain,
        "rate": _rate(rate),
        "profile": PERSON_PROFILE,
        "recipients_per_message": RECIPIENTS_PER_MESSAGE,
        "contacts": CONTACTS,
    }
    if own_clock:
        source["utc_offset"] = region.utc_offset
    if local_share:
        source["local_share"] = local_share
    return source


def transactional_source(domain: str, esp: str, rate: float) -> dict[str, Any]:
    """An application of ``domain`` sending through an ESP (receipts, resets, alerts)."""
    return {
        "name": f"app-{domain}",
        "kind": "transactional",
        "client": f"{esp}-app",
        "domain": domain,
        "mta": f"{esp}-mta",
        "rate": _rate(rate),
        "profile": "transactional",
        "size": {"dist": "lognormal", "median": 8000, "sigma": 0.8},
    }


def campaign_source(domain: str, esp: str, times: list[float], count: int) -> dict[str, Any]:
    """Campaigns of ``count`` recipients each, released by an ESP at ``times``."""
    return {
        "name": f"campaigns-{esp}",
        "kind": "marketing",
        "client": f"{esp}-app",
        "domain": domain,
        "mta": f"{esp}-mta",
        "batches": [{"at": _r6(t), "count": count} for t in times],
        "size": {"dist": "lognormal", "median": 60000, "sigma": 0.4},
    }


def domain_entry(
    name: str, users: int, region: Region, outbound: str, mx: list[tuple[str, int]], mailbox: str,
    mx_ttl: int = 3600,
) -> dict[str, Any]:
    """A domain whose people are in ``region`` (its ``utc_offset`` is their time zone)."""
    entry: dict[str, Any] = {
        "name": name,
        "users": int(users),
        "outbound": outbound,
        "mx": [{"host": h, "preference": p} for h, p in mx],
        "mailbox": mailbox,
        "unknown_recipient_rate": UNKNOWN_RECIPIENT_RATE,
    }
    if mx_ttl != 3600:
        entry["mx_ttl"] = mx_ttl
    entry["retrieval"] = {"client": people(region)}
    if region.utc_offset:
        entry["utc_offset"] = region.utc_offset
    return entry


def campaign_times(duration: float) -> list[float]:
    """When campaigns go out: 09:00 and 17:00 UTC of every day in the run (the run's clock
    starts at midnight UTC); a run too short for either gets one campaign half-way."""
    times = [
        day * 86400.0 + hour * 3600.0
        for day in range(int(duration // 86400) + 1)
        for hour in CAMPAIGN_HOURS
        if day * 86400.0 + hour * 3600.0 < duration
    ]
    return times or [duration / 2]


class _Tail(NamedTuple):
    """The plan of the tail: ISPs first (the largest), then company domains."""

    users: np.ndarray  # people per tail domain, by rank
    isps: int  # the first ``isps`` tail domains are ISPs
    hosting: np.ndarray  # per company: index into HOSTING
    isp_of: np.ndarray  # per company: its ISP
    backup: np.ndarray  # per company: an own server with a backup MX at its ISP
    esp_of: np.ndarray  # per company: its ESP, or -1


def _plan_tail(rng: np.random.Generator, n: int, people_: int, regions: int, esps: int) -> _Tail:
    """Draw the tail's shape at once (vectors, not a loop of draws)."""
    isps = min(n, max(regions, math.ceil(n / ISP_EVERY)))
    ranks = np.arange(1, n + 1, dtype=float)
    users = _apportion(people_, ranks**-ZIPF_EXPONENT, floor=1) if n else np.zeros(0, np.int64)
    m = n - isps
    hosting = rng.choice(len(HOSTING), size=m, p=[s for _, s in HOSTING])
    isp_of = rng.integers(isps, size=m) if isps else np.zeros(m, np.int64)
    backup = rng.random(m) < BACKUP_MX_SHARE
    client = rng.random(m) < ESP_CLIENT_SHARE
    if m and esps and not client.any():
        client[0] = True  # a world with companies has at least one ESP client
    esp_of = np.where(client, rng.integers(max(esps, 1), size=m), -1) if esps else np.full(m, -1)
    return _Tail(users, isps, hosting, isp_of, backup, esp_of)


def world(spec: GenerateSpec) -> dict[str, Any]:
    """Scenario data for the realistic Internet that ``spec`` describes (linear time)."""
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(0x6E8,)))
    regions = REGIONS[: spec.regions]
    b = _Builder(regions, rng)
    n, total = spec.domains, spec.people_total
    legitimate = spec.rate * (1.0 - spec.spam_share)
    # Every person writes at the same mean rate (assumption), so rates follow people. A
    # source's rate counts messages; each has 1.66 recipient rows on average.
    per_person = legitimate * (1.0 - spec.transactional_share - spec.campaign_share) / total / RECIPIENTS_PER_MESSAGE

    if n >= ALL_PROVIDER_DOMAINS:
        present = [(p, p.domains) for p in PROVIDERS]
    else:
        present = [(p, p.domains[:1]) for p in PROVIDERS[: min(n, len(PROVIDERS))]]
    tail_n = n - sum(len(d) for _, d in present)
    shares = [p.share for p, _ in present]
    if tail_n:
        shares.append(1.0 - sum(p.share for p in PROVIDERS))
    by_group = _apportion(total, np.array(shares))  # exact to a person; renormalised without a tail
    esps = min(MAX_ESPS, max(1, n // ESP_EVERY)) if tail_n else 0
    plan = _plan_tail(rng, tail_n, int(by_group[-1]) if tail_n else 0, len(regions), esps)

    _backbone(b)
    companies = plan.users[plan.isps :]
    for i, ((p, doms), users) in enumerate(zip(present, by_group)):
        hosted = int(companies[plan.hosting == i].sum()) if tail_n else 0
        _provider(b, p, doms, int(users), hosted, spec, per_person, total)
    _tail(b, plan, spec, per_person, total, [p.org for p, _ in present])
    _esps(b, plan, spec, esps, legitimate)
    _spammers(b, spec.rate * spec.spam_share)
    return {
        "name": f"internet-{n}",
        "description": (
            f"generated: {n} domains, {spec.regions} regions, {spec.rate:g} messages/s, seed {spec.seed}"
        ),
        "seed": spec.seed,
        "duration": spec.duration,
        "drain": spec.drain,
        "topology": {"nodes": b.nodes, "edges": b.edges},
        "domains": b.domains,
        "workload": b.workload,
    }


def _backbone(b: _Builder) -> None:
    """Each region's exchange point and people, the exchanges in a full mesh."""
    for i, r in enumerate(b.regions):
        b.node(ix(r), "router", r)
        b.node(people(r), "client", r)
        b.edge(people(r), ix(r), ACCESS_LATENCY, bandwidth=ACCESS_BANDWIDTH)
        for q in b.regions[:i]:
            b.edge(ix(q), ix(r), one_way_latency(great_circle_km(q, r)))


def _provider(
    b: _Builder, p: Provider, doms: tuple[tuple[str, float], ...], users: int, hosted: int,
    spec: GenerateSpec, per_person: float, total: int,
) -> None:
    """A big provider: MX hosts spread over the regions; one resolver, MTA and store."""
    home = b.regions[0]
    sites = {r.name: b.site(p.org, r) for r in b.regions[: len(p.mx_preferences)]}
    out_rate = per_person * (users + hosted)
    in_rate = spec.rate * (users + hosted) / total
    edge = sites[home.name]
    dns = b.host(edge, f"{p.org}-dns", "resolver", home)
    sessions = _capacity(out_rate, SESSION_S, 10)
    # The provider's outbound MTA retries as measured from the receiving side (its preset).
    mta = b.host(
        edge, f"{p.org}-mta", "mta", home, preset=p.org, resolver=dns, workers=sessions, smtpd_workers=sessions,
    )
    store = b.host(edge, f"{p.org}-store", "mailbox", home, concurrency=_capacity(in_rate, SESSION_S, 32))
    # The lowest preference takes the traffic; equal preferences share it.
    first = [x for x in p.mx_preferences if x == min(p.mx_preferences)]
    per_mx = in_rate / len(first)
    mx: list[tuple[str, int]] = []
    for k, pref in enumerate(p.mx_preferences):
        r = b.regions[k % len(b.regions)]
        # One way to the store at worst: across the regions and both metro areas.
        far = (one_way_latency(great_circle_km(r, home)) if r != home else 0.0) + 2 * one_way_latency(REGION_RADIUS_KM)
        host = b.host(
            sites[r.name], f"{p.org}-mx{k + 1}", "mx", r,
            max_connections=_capacity(per_mx, SESSION_S, MX_SESSIONS_MIN) + MAX_ESPS * CAMPAIGN_SESSIONS,
            workers=_capacity(per_mx, SCAN_S + LMTP_ROUND_TRIPS * 2 * far, 5),
        )
        mx.append((host, pref))
    split = _apportion(users, np.array([w for _, w in doms]))
    for (name, _), u in zip(doms, split):
        b.domains.append(domain_entry(name, int(u), home, mta, mx, store, p.mx_ttl))
        # The provider's people are everywhere: one source per region (equal shares).
        for r in b.regions:
            suffix = f"@{r.name}" if len(b.regions) > 1 else ""
            b.workload.append(
                person_source(name, r, per_person * int(u) / len(b.regions), suffix, own_clock=len(b.regions) > 1)
            )


def _server(b: _Builder, org: str, r: Region, rate_out: float, rate_in: float, resolver: str | None) -> dict[str, str]:
    """An organisation's own mail servers: MTA, MX and store (and a resolver if asked)."""
    edge = b.site(org, r)
    dns = resolver or b.host(edge, f"{org}-dns", "resolver", r)
    sessions = _capacity(rate_out, SESSION_S, 10)
    return {
        "dns": dns,
        "edge": edge,
        "mta": b.host(edge, f"{org}-mta", "mta", r, resolver=dns, workers=sessions, smtpd_workers=sessions),
        "mx": b.host(
            edge, f"{org}-mx1", "mx", r,
            max_connections=_capacity(rate_in, SESSION_S, MX_SESSIONS_MIN), workers=_capacity(rate_in, SCAN_S, 5),
        ),
        "store": b.host(edge, f"{org}-store", "mailbox", r, concurrency=_capacity(rate_in, SESSION_S, 8)),
    }


def _backup(b: _Builder, isp: dict[str, str], org: str, r: Region) -> str:
    """The ISP's backup MX for its customers' own servers: a relay that holds their mail
    while their server does not answer and delivers it when it is back (one per ISP)."""
    if "backup" not in isp:
        isp["backup"] = b.host(
            isp["edge"], f"{org}-backup-mx", "relay", r, resolver=isp["dns"], max_connections=MX_SESSIONS_MIN,
        )
    return isp["backup"]


def _tail(
    b: _Builder, plan: _Tail, spec: GenerateSpec, per_person: float, total: int, providers: list[str],
) -> None:
    """ISPs (own servers, hosting small domains) and company domains."""
    if not len(plan.users):
        return
    regions = b.regions
    isp_region = [regions[j % len(regions)] for j in range(plan.isps)]
    # What each ISP carries: its own people and those of the domains it hosts or backs up.
    hosted_at = np.bincount(plan.isp_of[plan.hosting == 2], weights=plan.users[plan.isps :][plan.hosting == 2],
                            minlength=plan.isps) if plan.isps else np.zeros(0)
    isps = []
    for j in range(plan.isps):
        users = int(plan.users[j]) + float(hosted_at[j])
        isps.append(_server(b, f"isp{j + 1}", isp_region[j], per_person * users, spec.rate * users / total, None))
        name = f"isp{j + 1}.example"
        s = isps[-1]
        b.domains.append(domain_entry(name, int(plan.users[j]), isp_region[j], s["mta"], [(s["mx"], 10)], s["store"]))
        b.workload.append(person_source(name, isp_region[j], per_person * int(plan.users[j])))
    for c, users in enumerate(plan.users[plan.isps :]):
        users = int(users)
        j = int(plan.isp_of[c])
        r = isp_region[j]
        name = f"org{plan.isps + c + 1}.example"
        how = HOSTING[int(plan.hosting[c])][0]
        if how in providers:
            mta, store = f"{how}-mta", f"{how}-store"
            p = next(x for x in PROVIDERS if x.org == how)
            mx = [(f"{how}-mx{k + 1}", pref) for k, pref in enumerate(p.mx_preferences)]
        elif how == "own":
            s = _server(b, f"org{plan.isps + c + 1}", r, per_person * users, spec.rate * users / total, isps[j]["dns"])
            mta, store = s["mta"], s["store"]
            mx = [(s["mx"], 10)] + ([(_backup(b, isps[j], f"isp{j + 1}", r), 20)] if plan.backup[c] else [])
        else:  # at its ISP (and when the provider it would use is not in a tiny world)
            mta, store, mx = isps[j]["mta"], isps[j]["store"], [(isps[j]["mx"], 10)]
        b.domains.append(domain_entry(name, users, r, mta, mx, store))
        b.workload.append(person_source(name, r, per_person * users, local_share=COMPANY_LOCAL_SHARE))


def _esps(b: _Builder, plan: _Tail, spec: GenerateSpec, esps: int, legitimate: float) -> None:
    """ESPs: an application client, a large MTA and a resolver each, sending for their
    client domains' transactional mail (Zipf over clients) and campaigns."""
    clients = [np.flatnonzero(plan.esp_of == e) for e in range(esps)]
    if not any(len(c) for c in clients):
        return
    weights = [1.0 / (k + 1) for k in range(sum(len(c) for c in clients))]
    trans_rate = legitimate * spec.transactional_share
    times = campaign_times(spec.duration)
    active = sum(1 for c in clients if len(c))
    count = max(1, round(legitimate * spec.campaign_share * spec.duration / (active * len(times))))
    scale = trans_rate / sum(weights)
    k = 0
    for e, mine in enumerate(clients):
        if not len(mine):
            continue
        org = f"esp{e + 1}"
        r = b.regions[e % len(b.regions)]
        edge = b.site(org, r)
        b.host(edge, f"{org}-app", "client", r)
        dns = b.host(edge, f"{org}-dns", "resolver", r)
        my_rate = scale * sum(weights[k : k + len(mine)])
        sessions = max(200, _capacity(my_rate, SESSION_S, 10))
        b.host(
            edge, f"{org}-mta", "esp", r, preset=ESP_PRESETS[e % len(ESP_PRESETS)], resolver=dns,
            workers=sessions, ips=ESP_IPS, send_rate=ESP_SEND_RATE,
        )
        names = [f"org{plan.isps + int(c) + 1}.example" for c in mine]
        if trans_rate > 0:
            for name in names:
                b.workload.append(transactional_source(name, org, scale * weights[k]))
                k += 1
        if spec.campaign_share > 0:
            b.workload.append(campaign_source(names[0], org, times, count))


def _spammers(b: _Builder, rate: float) -> None:
    """A botnet's client and a spam MTA in the last region, sending ``rate`` spam
    messages/s to anyone, at any hour (``flat``: spam arrives round the clock)."""
    r = b.regions[-1]
    edge = b.site("spam", r)
    b.host(edge, "spam-bots", "client", r)
    dns = b.host(edge, "spam-dns", "resolver", r)
    sessions = _capacity(rate, SESSION_S, 10)
    b.host(edge, "spam-mta", "mta", r, resolver=dns, workers=sessions, smtpd_workers=sessions)
    if rate > 0:
        b.domains.append({"name": "spam.example", "users": 0, "outbound": "spam-mta"})
        b.workload.append({
            "name": "spam", "kind": "spam", "client": "spam-bots", "domain": "spam.example",
            "rate": _rate(rate),
        })


def compact(spec: GenerateSpec, name: str | None = None) -> dict[str, Any]:
    """The compact scenario of ``spec``: a name and the ``generate:`` block."""
    block = spec.model_dump(exclude_none=True)
    return {"name": name or f"internet-{spec.domains}", "generate": block}


def to_yaml(data: dict[str, Any], compact: bool = False) -> str:
    """Scenario data as YAML: keys in the generator's order; one node, edge, domain or
    source a line, or (``compact``, a short file people read) block style throughout."""
    import yaml  # only when writing

    # libyaml's emitter when present: writing 100,000 domains with the pure-Python one
    # takes tens of seconds. Both emit the same text for these plain values.
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text: str = yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False if compact else None, width=200)
    return text


def internet(
    domains: int = 20,
    rate: float = 50.0,
    duration: float = 3600.0,
    drain: float = 1800.0,
    regions: int = 4,
    seed: int = 0,
) -> dict[str, Any]:
    """Scenario data for ``domains`` domains sending ``rate`` messages/s in total.

    Each domain has its people's client node, an outbound MTA, a resolver, one to three
    MX hosts and a mailbox store, joined to one of ``regions`` exchange points that form
    a full mesh. People send to every domain in proportion to its users.
    """
    if domains < 1 or regions < 1 or rate <= 0:
        raise ValueError("need at least one domain and one region, and a positive rate")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x6E7,)))
    users = np.maximum(1, (20_000 / np.arange(1, domains + 1) ** 1.1).astype(int))
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for r in range(regions):
        nodes.append({"id": f"ix{r}", "kind": "router"})
        for q in range(r):
            edges.append(
                {"a": f"ix{q}", "b": f"ix{r}", "latency": float(rng.uniform(0.01, 0.08))}
            )
    doms: list[dict[str, Any]] = []
    sources: list[dict[str, Any]] = []
    total_users = float(users.sum())
    for i in range(domains):
        d = f"d{i}"
        ix = f"ix{int(rng.integers(regions))}"
        n_mx = int(rng.integers(1, 4))
        nodes += [
            {"id": f"{d}-edge", "kind": "router"},
            {"id": f"{d}-people", "kind": "client"},
            {"id": f"{d}-dns", "kind": "resolver"},
            {"id": f"{d}-mta", "kind": "mta", "resolver": f"{d}-dns", "workers": 50},
            {"id": f"{d}-store", "kind": "mailbox"},
        ]
        nodes += [{"id": f"{d}-mx{k}", "kind": "mx"} for k in range(n_mx)]
        edges += [
            {"a": f"{d}-edge", "b": ix, "latency": float(rng.uniform(0.001, 0.01))},
            {
                "a": f"{d}-people",
                "b": f"{d}-edge",
                "latency": float(rng.uniform(0.005, 0.03)),
                "bandwidth": 2.5e6,
            },
        ]
        for leaf in ["dns", "mta", "store", *(f"mx{k}" for k in range(n_mx))]:
            edges.append({"a": f"{d}-{leaf}", "b": f"{d}-edge", "latency": 0.0003})
        doms.append(
            {
                "name": f"{d}.example",
                "users": int(users[i]),
                "outbound": f"{d}-mta",
                "mx": [{"host": f"{d}-mx{k}", "preference": 10 * (k + 1)} for k in range(n_mx)],
                "mailbox": f"{d}-store",
                "unknown_recipient_rate": 0.005,
                "discard_rate": 0.002,
                "retrieval": {"client": f"{d}-people"},
            }
        )
        sources.append(
            {
                "name": f"{d}-people",
                "kind": "person",
                "client": f"{d}-people",
                "domain": f"{d}.example",
                "rate": float(rate * users[i] / total_users),
            }
        )
    return {
        "name": f"internet-{domains}",
        "description": f"generated: {domains} domains, {rate} messages/s, seed {seed}",
        "seed": seed,
        "duration": duration,
        "drain": drain,
        "topology": {"nodes": nodes, "edges": edges},
        "domains": doms,
        "workload": sources,
    }
