"""Nothing is lost: every message ends delivered, bounced, lost (with a reason) or in flight."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import load_scenario, run
from sim import build
from sim.simulation.build import Model
from sim.config import parse_scenario
from tests.conftest import node, tiny_data


def check_books(m: pd.DataFrame, faults: bool = False) -> None:
    # Every retry follows a deferral (or, under faults, the sending MTA's own crash, which
    # leaves the rows in its active queue).
    if not faults:
        assert (m["attempts"] <= m["deferrals"] + 1).all()
    # Every ending has a time, and only endings have one; what is in flight says where.
    assert (m["ended"].notna() == (m["status"] != "in_flight")).all()
    assert (m["where"].notna() == (m["status"] == "in_flight")).all()
    assert (m["ended"].dropna() >= m.loc[m["ended"].notna(), "created"]).all()
    delivered = m[m["status"] == "delivered"]
    assert delivered["delivered"].notna().all()
    assert (delivered["delivered"] == delivered["ended"]).all()
    # Timestamps never run backwards along the path (a duplicate's are its first copy's).
    for a, b in [("created", "submitted"), ("submitted", "accepted"), ("accepted", "delivered"),
                 ("delivered", "retrieved")]:
        both = m[[a, b]].dropna()
        assert (both[b] >= both[a]).all(), (a, b)
    # Only delivered messages reach a mailbox (and those a store's lost disk destroyed
    # later); every ending but delivery has a reason.
    reason = m["reason"].astype(str)
    on_device = (m["status"] == "lost") & (reason == "device lost")
    destroyed = (m["status"] == "lost") & reason.str.startswith("disk lost at ") | on_device
    assert m.loc[(m["status"] != "delivered") & ~destroyed, "delivered"].isna().all()
    # A row lost with a device had been downloaded to it first, and keeps that time.
    assert (m.loc[on_device, "retrieved"] <= m.loc[on_device, "ended"]).all()
    assert ((m["copies"] > 0) == m["delivered"].notna()).all()
    # The last hop's columns agree: a first device's access exactly when some device had
    # it; every device (synced) and a look (read) only after the first device; none of
    # them for a row whose store lost it before any device had it.
    if "access" in m:
        assert (m["access"].notna() == m["retrieved"].notna()).all()
        assert m.loc[m["synced"].notna(), "retrieved"].notna().all()
        assert (m["synced"].dropna() >= m.loc[m["synced"].notna(), "retrieved"]).all()
        assert (m["read"].dropna() >= m.loc[m["read"].notna(), "retrieved"]).all()
        on_disk = reason.str.startswith("disk lost at ")
        assert m.loc[on_disk, ["retrieved", "synced", "read", "access"]].isna().all().all()
    ended_badly = m[m["status"].isin(["bounced", "lost"])]
    assert ended_badly["reason"].notna().all()
    assert m.loc[m["status"].isin(["delivered", "in_flight"]), "reason"].isna().all()
    bounced = m[m["status"] == "bounced"]
    assert bounced["final_reply"].str.match(r"^([45]\d\d )?[45]\.\d+\.\d+ ").all()
    # A row has a folder (inbox or junk) exactly when it was delivered.
    assert (m["folder"].notna() == m["delivered"].notna()).all()
    check_dsns(m, faults)
    check_replies(m)


def balanced(data: dict[str, Any], instants: list[float]) -> Model:
    """Run ``data`` to its horizon, checking at each instant (fractions of the horizon)
    and at the end that the books balance against the components: every message in
    flight is held by an MTA, a relay or an MX (queued, parked, deferred, in a session
    or being scanned); then the books of every row."""
    model = build(parse_scenario(data))
    horizon = model.scenario.horizon
    for t in sorted(instants) + [1.0]:
        if t * horizon > model.env.now:
            model.run(until=t * horizon)
        assert sum(model.census().values()) == model.recorder.in_flight()
    check_books(model.recorder.messages(), bool(data.get("faults")))
    return model


def check_replies(m: pd.DataFrame) -> None:
    """Reply rows (reading): each answers a read row of people's mail, after its read,
    back to its sender domain, written by its recipient."""
    replies = m[m["kind"] == "reply"]
    if replies.empty:
        return
    parents = m.loc[replies["parent_id"].astype(int)]
    assert parents["kind"].isin(["person", "reply"]).all()
    assert (replies["created"].to_numpy() >= parents["read"].to_numpy()).all()
    assert (replies["recipient_domain"].to_numpy() == parents["sender_domain"].to_numpy()).all()
    assert (replies["sender_domain"].to_numpy() == parents["recipient_domain"].to_numpy()).all()
    assert (replies["sender_person"].to_numpy() == parents["recipient_person"].to_numpy()).all()


def check_dsns(m: pd.DataFrame, faults: bool = False) -> None:
    """DSN rows (bounces are mail): each about one row that is not a DSN, back to its
    sender; a failure DSN made when its parent bounced, at most one of each action."""
    dsn = m[m["kind"] == "dsn"]
    assert (m["parent_id"].notna() == m["kind"].isin(["dsn", "reply"])).all()
    assert (m["action"].notna() == (m["kind"] == "dsn")).all()
    if dsn.empty:
        return
    parents = m.loc[dsn["parent_id"].astype(int)]
    assert (parents["kind"] != "dsn").all()  # never a DSN about a DSN
    assert (parents["sender_domain"].to_numpy() == dsn["recipient_domain"].to_numpy()).all()
    assert not dsn.duplicated(["parent_id", "action"]).any()
    failed = (dsn["action"] == "failed").to_numpy()
    if not faults:  # (under faults a copy of a duplicate bounces on its own: its DSN is sent)
        assert (parents["status"].to_numpy()[failed] == "bounced").all()
        assert (parents["ended"].to_numpy()[failed] == dsn["created"].to_numpy()[failed]).all()
    assert (dsn["created"].to_numpy() >= parents["created"].to_numpy()).all()


def test_default_scenario_books_balance() -> None:
    res = run(load_scenario())
    m = res.messages
    check_books(m)
    counts = m["status"].value_counts()
    # Each ending is also counted by the component that caused it.
    stats = res.stats
    senders = ("mta", "relay", "esp")  # every kind that sends on, and bounces, mail
    # A DSN an MTA processes itself (the ESP's bounce processing) ends delivered there.
    processed = sum(x["bounces_processed"] for k in senders for x in stats[k].values())
    assert processed > 0  # the ESP's campaign bounced some, and processed their DSNs
    assert counts["delivered"] == sum(b["stored"] for b in stats["mailbox"].values()) + processed
    assert counts["lost"] == sum(x["discarded"] for x in stats["mx"].values()) > 0
    assert counts["bounced"] == sum(x["bounced"] for k in senders for x in stats[k].values()) > 0
    holding = [x["holding_at_end"] for kind in (*senders, "mx") for x in stats[kind].values()]
    assert counts["in_flight"] == sum(holding)
    assert len(m) > 3000


def test_messages_cut_off_by_the_horizon_are_in_flight() -> None:
    # The MX's content scans outlast the run and there is no drain: every message is
    # somewhere on its way (queued, mid-session or accepted and waiting) at the end.
    data = tiny_data(duration=1000, drain=0)
    data["workload"][0]["interarrival"] = 10.0
    node(data, "mx")["processing"] = 1000.0
    m = run(parse_scenario(data)).messages
    check_books(m)
    assert len(m) == 99
    assert (m["status"] == "in_flight").all()
    assert set(m["where"]) == {"mx"}  # accepted there, waiting for a scanner
    assert m["accepted"].notna().all() and m["delivered"].isna().all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(0.05, 3.0),
    workers=st.integers(1, 6),
    dest_limit=st.integers(1, 6),
    max_connections=st.integers(1, 4),
    unknown=st.floats(0, 0.3),
    discard=st.floats(0, 0.3),
    size_limit=st.integers(2_000, 200_000),
    duration=st.floats(50, 800),
    drain=st.floats(0, 800),
    loss=st.floats(0, 0.05),
    outage=st.one_of(st.none(), st.tuples(st.floats(0, 600), st.floats(1, 600))),
    instants=st.lists(st.floats(0, 1), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
    recipients=st.sampled_from([1.0, 2.5]),
    warn=st.sampled_from([0, 30]),
    recipient_limit=st.integers(1, 3),
    tls=st.booleans(),
    answer=st.sampled_from(["none", "refuse"]),
    backup=st.booleans(),
    esp=st.booleans(),
    content=st.sampled_from([None, "before_queue", "after_queue"]),
)
def test_books_balance_for_any_world(
    rate: float,
    workers: int,
    dest_limit: int,
    max_connections: int,
    unknown: float,
    discard: float,
    size_limit: int,
    duration: float,
    drain: float,
    loss: float,
    outage: tuple[float, float] | None,
    instants: list[float],
    seed: int,
    recipients: float,
    warn: int,
    recipient_limit: int,
    tls: bool,
    answer: str,
    backup: bool,
    esp: bool,
    content: str | None,
) -> None:
    data = tiny_data(duration=duration, drain=drain, seed=seed)
    # Without TLS the connection cache reuses sessions (envelopes parked or queued for
    # the destination go over an open one); small recipient limits split messages.
    data["smtp"] = {"tls": tls}
    src = data["workload"][0]
    src.pop("interarrival")
    src["rate"] = rate
    src["size"] = {"dist": "lognormal", "median": 20_000, "sigma": 1.0}
    src["recipients_per_message"] = recipients  # cc: rows that share one submission
    # A destination limit below the worker count parks messages; an outage times
    # sessions out and defers them; loss stretches every dialogue.
    node(data, "mta").update(workers=workers, message_size_limit=size_limit, queue_run_delay=60,
                    destination_concurrency_limit=dest_limit, delay_warning_time=warn,
                    default_destination_recipient_limit=recipient_limit)
    node(data, "mx").update(max_connections=max_connections, processing={"dist": "exponential", "mean": 0.5})
    if outage is not None:
        node(data, "mx")["outages"] = [{"start": outage[0], "end": outage[0] + outage[1]}]
        node(data, "mx")["answer"] = answer
        # Then the resolver is down as long (the stub's timeouts defer mail at lookup;
        # it comes back with an empty cache), and its cache holds one answer.
        end = outage[0] + outage[1]
        node(data, "dns").update(outages=[{"start": end, "end": end + outage[1]}], cache_size=1)
    if esp:
        # The sender an ESP: API requests over a small account rate get 429s and are
        # retried by the client; a campaign is released slowly (rows wait their slot).
        node(data, "mta").update(kind="esp", api_rate=0.5, send_rate=2.0, max_msg_rate=3600)
        data["workload"].append({"name": "news", "kind": "marketing", "client": "home",
                                 "domain": "example.org", "batches": [{"at": 10, "count": 20}]})
    if backup:
        # A backup MX relay that holds what it accepts while mx is down or full.
        data["topology"]["nodes"].append(
            {"id": "backup", "kind": "relay", "resolver": "dns", "workers": workers,
             "max_connections": max_connections, "queue_run_delay": 60}
        )
        data["topology"]["edges"].append({"a": "r", "b": "backup", "latency": 0.004})
        data["domains"][0]["mx"].append({"host": "backup", "preference": 20})
    if content is not None:
        # Content checks and a slow server: sessions that scan and look records up,
        # spam refused with its DSN, junked or discarded, DMARC refusals.
        action = "reject" if content == "before_queue" else "discard"
        node(data, "mx").update(
            content_filter=content, authentication=True, resolver="dns", greet_pause=0.3, reply_delay=0.05,
            spam_filter={"detection_rate": 0.7, "false_positive_rate": 0.1, "action": action},
        )
        data["domains"][0].update(dmarc="reject", auth_failure_rate=0.1, txt_ttl=30)
        data["workload"].append({"name": "spam", "kind": "spam", "client": "home",
                                 "domain": "example.org", "rate": rate / 2})
    for edge in data["topology"]["edges"]:
        edge["loss"] = loss
    data["domains"][0].update(unknown_recipient_rate=unknown, discard_rate=discard, users=50)
    model = balanced(data, instants)
    m = model.recorder.messages()
    sent = m[m["kind"] != "dsn"]  # DSNs are made by the MTA, later too
    assert np.all(sent["created"] < duration)
    assert len(sent) == sum(s.created for s in model.sources)
    assert len(m) - len(sent) == sum(x.notices for x in model.ctx.nodes.values() if hasattr(x, "notices"))
    # A message's rows were made together: its first row's id, time and size.
    first = m.loc[m["message_id"]]
    assert (first.index.to_numpy() <= m.index.to_numpy()).all()
    assert (first["created"].to_numpy() == m["created"].to_numpy()).all()
    assert (first["size"].to_numpy() == m["size"].to_numpy()).all()


def test_a_message_cannot_end_twice() -> None:
    from sim.core.records import BOUNCED, DELIVERED, Recorder

    rec = Recorder(["a.example"])
    mid = rec.created(0.0, 0, 0, 0, 0, 100.0)
    rec.ended(mid, DELIVERED, 1.0)
    with pytest.raises(RuntimeError, match="ended twice"):
        rec.ended(mid, BOUNCED, 2.0, "unknown recipient")


def test_default_scenario_exercises_every_hop() -> None:
    res = run(load_scenario())
    m = res.messages
    # Fallback to a backup MX, deferral and retry, bounces and losses all happen.
    assert (m["mx_host"] == "outlook-mx2").sum() > 0  # the primary was busy
    # The primary was down: the backup MX (a relay) took mail and delivered it to the
    # primary later, so the last server to take it is the primary.
    assert res.stats["relay"]["isp-backup-mx"]["relayed"] > 0
    assert (m["mx_host"] == "isp-backup-mx").sum() == 0
    retried = m[m["attempts"] > 1]
    assert len(retried) > 0 and (retried["status"] != "in_flight").all()
    assert (retried["status"] == "delivered").mean() > 0.9
    assert set(m["reason"]) >= {"unknown recipient", "discarded by content filter"}
    assert m["retrieved"].notna().mean() > 0.9
    assert set(m["kind"]) == {"person", "transactional", "marketing", "dsn"}
    # Bounces are mail: each bounce of an accepted row made a DSN; shop.example sends
    # through the ESP, whose bounce processing takes its DSNs at once.
    dsn = m[m["kind"] == "dsn"]
    assert len(dsn) == sum(x["dsn"] for k in ("mta", "relay", "esp") for x in res.stats[k].values())
    shop = dsn[dsn["recipient_domain"] == "shop.example"]
    assert len(shop) == res.stats["esp"]["esp-mta"]["bounces_processed"] > 0
    assert (shop["status"] == "delivered").all() and (shop["delivered"] == shop["created"]).all()
    assert (dsn["status"] == "delivered").sum() > 0


def test_rows_beyond_the_room_made_are_kept_and_a_released_table_is_read_once() -> None:
    from sim.core.records import Recorder

    rec = Recorder(["a.example"], rows=8000)  # room for 8,000; then a quarter more at a time
    n = 10_007
    for i in range(n):
        mid = rec.created(float(i), 0, 0, i, 0, 100.0 + i)
        rec.delivered(mid, i + 0.5)
    assert rec._messages.capacity == 12_500  # 8,000 -> 10,000 -> 12,500: 1.25x, not 2x
    kept = rec.messages()
    released = rec.messages(release=True)
    pd.testing.assert_frame_equal(released, kept)
    assert len(released) == n and released["size"].iloc[-1] == 100.0 + n - 1
    assert (released["delivered"] - released["created"] == 0.5).all()
    assert len(rec._messages.arrays["size"]) == 0  # freed, not pinned by the frame
    with pytest.raises(RuntimeError, match="handed over to a DataFrame already"):
        rec.messages()


# -- under faults --------------------------------------------------------------------
# Each fault maker draws one entry of ``faults:`` for a world whose nodes are ``nodes``
# (kind by id) lasting ``duration``; the property test draws faults from every maker.
# Another kind of fault is one more maker in FAULT_MAKERS.

DISKS = ("mta", "esp", "relay", "mx", "mailbox")


@st.composite
def node_fault(draw: st.DrawFn, nodes: dict[str, str], duration: float) -> dict[str, Any]:
    """A node fault of any kind at any server: scripted or random, a crash or a planned
    stop, silent or refusing (or the node's own way), its disk kept or lost."""
    target = draw(st.sampled_from(sorted(i for i, kind in nodes.items() if kind not in ("client", "router"))))
    fault: dict[str, Any] = {"kind": "node", "node": target, "crash": draw(st.booleans())}
    answer = draw(st.sampled_from([None, "none", "refuse"]))
    if answer is not None:
        fault["answer"] = answer
    if nodes[target] in DISKS and draw(st.booleans()):
        fault["disk"] = "lost"
    return _when(draw, fault, duration)


def _when(draw: st.DrawFn, fault: dict[str, Any], duration: float) -> dict[str, Any]:
    """Scripted (start to end) or random (exponential up and down times)."""
    start = draw(st.floats(0, duration))
    if draw(st.booleans()):
        fault.update(start=start, end=start + draw(st.floats(0.01, 300)))
    else:
        fault.update(start=start, random={
            "between": {"dist": "exponential", "mean": draw(st.floats(5, 300))},
            "repair": {"dist": "exponential", "mean": draw(st.floats(0.5, 120))},
        })
    return fault


@st.composite
def link_fault(draw: st.DrawFn, nodes: dict[str, str], duration: float, edges: list[tuple[str, str]]) -> dict[str, Any]:
    """A link fault on any edge: down, or slower and lossier while it lasts."""
    a, b = draw(st.sampled_from(edges))
    fault: dict[str, Any] = {"kind": "link", "a": a, "b": b}
    if draw(st.booleans()):
        fault.update(latency=draw(st.floats(0, 2)), loss=draw(st.sampled_from([0.0, 0.1])) or 0.05)
    return _when(draw, fault, duration)


@st.composite
def partition(draw: st.DrawFn, nodes: dict[str, str], duration: float, edges: list[tuple[str, str]]) -> dict[str, Any]:
    """Some of the world cut off from the rest (never all of it)."""
    ids = sorted(nodes)
    side = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=len(ids) - 1, unique=True))
    return _when(draw, {"kind": "partition", "nodes": side}, duration)


def _node_maker(nodes: dict[str, str], duration: float, edges: list[tuple[str, str]]) -> st.SearchStrategy[dict[str, Any]]:
    return node_fault(nodes, duration)


# The people of the property test's world read with a POP3 desktop that takes mail off
# the server and an IMAP phone, each polling often: a device fault loses mail.
DEVICES = [
    {"name": "desktop", "share": 0.7, "access": "pop3", "leave_on_server": False, "poll_interval": 60},
    {"name": "phone", "share": 0.8, "access": "imap", "poll_interval": 120},
]


@st.composite
def device_fault(draw: st.DrawFn, nodes: dict[str, str], duration: float, edges: list[tuple[str, str]]) -> dict[str, Any]:
    """The desktops or phones of the world's people lost: a share at an instant, or each
    at random at a rate that makes failures likely within the run."""
    fault: dict[str, Any] = {"kind": "device", "domain": "example.org",
                             "device": draw(st.sampled_from(["desktop", "phone"])),
                             "start": draw(st.floats(0, duration))}
    if draw(st.booleans()):
        fault["share"] = draw(st.floats(0.01, 1))
    else:
        fault["random"] = {"rate": draw(st.floats(1e3, 1e6))}
    return fault


FAULT_MAKERS = [_node_maker, link_fault, partition, device_fault]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    rate=st.floats(0.2, 3.0),
    workers=st.integers(1, 4),
    duration=st.floats(50, 600),
    drain=st.floats(0, 800),
    recipients=st.sampled_from([1.0, 2.5]),
    tls=st.booleans(),
    backup=st.booleans(),
    esp=st.booleans(),
    ns=st.booleans(),
    loss=st.sampled_from([0.0, 0.02]),
    far=st.sampled_from([0.015, 1.5, 3.0]),
    shared=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    instants=st.lists(st.floats(0, 1), min_size=1, max_size=4),
)
def test_books_balance_under_faults_of_every_kind(
    data: st.DataObject, rate: float, workers: int, duration: float, drain: float, recipients: float,
    tls: bool, backup: bool, esp: bool, ns: bool, loss: float, far: float, shared: bool, seed: int,
    instants: list[float],
) -> None:
    """Random small worlds (shared links or not) with random faults of every kind (node
    faults at every kind of server, link faults, partitions, people's devices lost;
    scripted and random): at random instants the
    census (every live copy where it is) equals the recorder's in-flight count; no row
    ends twice (the recorder raises); every extra copy is one a session cut after its
    final "." made."""
    world = tiny_data(duration=duration, drain=drain, seed=seed)
    world["smtp"] = {"tls": tls}  # without TLS sessions are reused
    src = world["workload"][0]
    src.pop("interarrival")
    src.update(rate=rate, recipients_per_message=recipients,
               size={"dist": "lognormal", "median": 200_000, "sigma": 1.0})  # long DATA waits
    node(world, "mta").update(workers=workers, queue_run_delay=60, destination_concurrency_limit=2,
                              default_destination_recipient_limit=2)
    node(world, "mx").update(max_connections=3, processing={"dist": "exponential", "mean": 0.5})
    world["domains"][0].update(unknown_recipient_rate=0.1, users=50)
    world["domains"][0]["retrieval"] = {"client": "home", "devices": DEVICES}
    if esp:
        node(world, "mta").update(kind="esp", api_rate=1.0, send_rate=2.0)
        world["workload"].append({"name": "news", "kind": "marketing", "client": "home",
                                  "domain": "example.org", "batches": [{"at": 10, "count": 20}]})
    if backup:
        world["topology"]["nodes"].append({"id": "backup", "kind": "relay", "resolver": "dns",
                                           "workers": workers, "queue_run_delay": 60})
        world["topology"]["edges"].append({"a": "r", "b": "backup", "latency": 0.004})
        world["domains"][0]["mx"].append({"host": "backup", "preference": 20})
    if ns:
        world["topology"]["nodes"].append({"id": "ns1", "kind": "authoritative"})
        world["topology"]["edges"].append({"a": "r", "b": "ns1", "latency": 0.01})
        world["domains"][0]["ns"] = ["ns1"]
    for edge in world["topology"]["edges"]:
        edge["loss"] = loss
        if edge["b"] == "mx":  # a far MX: the 250 travels long, cuts after "." are common
            edge["latency"] = far
        edge["shared"] = shared
    nodes = {n["id"]: n["kind"] for n in world["topology"]["nodes"]}
    edges = [(e["a"], e["b"]) for e in world["topology"]["edges"]]
    world["faults"] = data.draw(
        st.lists(st.one_of([make(nodes, duration + drain, edges) for make in FAULT_MAKERS]), min_size=1, max_size=5)
    )
    model = balanced(world, instants)
    m = model.recorder.messages()
    extra = (m["copies"].astype(int) - 1).clip(lower=0).sum()
    assert extra <= model.recorder.forks
    assert not model.recorder.spare or (m.loc[list(model.recorder.spare), "status"] != "bounced").all()
