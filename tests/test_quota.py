"""Store capacity: mailbox quotas and store sizes (sim/mail/quota.py, docs/quotas.md).

The tiny world (tests/conftest.py) sends one 10,000-byte message every 100 s from t=100
(duration 350: three messages, at 100, 200 and 300) to its one person. Its MTA retries
a deferred message 600 s after the failed attempt's QUIT, at that time exactly
(``intervals: [600]``, ``queue_run_delay: 0``). Times, from tests/test_greylisting.py:

- a message made at c is queued at c + 0.388 (submission);
- an attempt starts with the MX look-up: 0.202 s when the answer is not cached (the
  TTL is 150 s), 0.002 s (the resolver's round trip) when it is; the MX answers RCPT
  at the session's start S (the rule's ``now``);
- one MTA <-> MX round trip is 0.032 s: a refusal at RCPT comes 7 round trips after S
  (S + 0.224; a 5xx bounces the row then), QUIT one more (a 4xx defers it at S + 0.256);
- an accepted attempt: 8 round trips and 10,000 B at 5 MB/s, 250 at S + 0.258; the
  store has it 0.05 (scan) + 5 x 0.001 + 0.0001 (LMTP) + 0.01 (write) = 0.0651 s later.

Message 0: S = 100.388 + 0.202 = 100.59, stored at 100.59 + 0.258 + 0.0651 = 100.9131.
"""

from __future__ import annotations

from typing import Any

import pytest

from sim import run
from sim.config import ScenarioError, parse_scenario
from sim.simulation.build import build
from tests.conftest import assert_key_error, node, tiny_data
from tests.test_accounting import check_books

REFUSE = 0.224  # S -> the RCPT refusal
DEFER = 0.256  # S -> a 4xx row deferred (after QUIT)
ACCEPT = 0.258  # S -> 250 to "."
STORE = 0.0651  # 250 -> in the mailbox
POP3 = 9 * 0.071 + 10_000 / 1e6  # a POP3 fetch over store -> home (RTT 0.071, 1 MB/s)


def world(quota: dict[str, Any] | None = None, drain: float = 3000, **store: Any) -> dict[str, Any]:
    """The tiny world with a quota on example.org (and keys on its store), retrying
    600 s after each failure."""
    data = tiny_data(duration=350, drain=drain)
    if quota is not None:
        data["domains"][0]["quota"] = quota
    node(data, "store").update(store)
    node(data, "mta").update(retry={"intervals": [600], "give_up": 40_000}, queue_run_delay=0)
    return data


def pop3(data: dict[str, Any]) -> dict[str, Any]:
    """Everyone reads with one POP3 desktop that polls every 600 s from 0 and deletes
    what it downloads (no copy left on the server)."""
    data["domains"][0]["retrieval"] = {
        "client": "home",
        "devices": [{"name": "desktop", "share": 1, "access": "pop3", "leave_on_server": False, "phase": 0}],
    }
    return data


def tries(result: Any, row: int) -> Any:
    """The MTA -> MX attempts of one row."""
    a = result.attempts
    return a[(a["id"] == row) & (a["hop"] == 1)]


# A mailbox that starts at 95 % of 100,000 B with 10 % grace: message 0 (105,000 <=
# 110,000) still fits and fills it (full from 100.9131, when it is stored); nothing
# fits after.
FULL_AFTER_FIRST = {"storage": 100_000, "initial": 0.95}


def test_a_full_mailbox_defers_then_bounces_with_a_dsn() -> None:
    """full_tempfail_for 1000 s, the mailbox full from F = 100.9131.

    Message 1 (c=200; the look-up at 100.388 is cached until 250.59): S = 200.388 +
    0.002 = 200.39, full for 99.48 s: 452 4.2.2, deferred at 200.646. Retry at
    800.646, look-up 0.202: S = 800.848, full for 699.93: 452 again. Retry at
    800.848 + 0.256 + 600 + 0.202: S = 1401.306, full for 1300.39 >= 1000: 552 5.2.2 at
    1401.53, bounced (reason mailbox full) and its DSN made then.
    Message 2 (c=300, not cached): S = 300.59 (452); retry S = 900.846 + 0.002 (the
    look-up at 800.646 is cached) = 900.848 (452, full for 799.93); retry S = 900.848 +
    0.256 + 600 + 0.002 (message 1's look-up at 1401.104, cached) = 1501.106 (552: full
    for 1400.19), bounced at 1501.33.
    The DSNs go back to the sender, the same person (one user), whose mailbox is full:
    552 at once, bounced, and no DSN about a DSN.
    """
    result = run(parse_scenario(world({**FULL_AFTER_FIRST, "full_tempfail_for": 1000})), trace=True)
    check_books(result.messages)
    rows = result.messages
    assert rows.loc[0, "status"] == "delivered"
    assert rows.loc[0, "delivered"] == pytest.approx(100.9131, abs=1e-9)
    for row, starts in ((1, [200.39, 800.848, 1401.306]), (2, [300.59, 900.848, 1501.106])):
        t = tries(result, row)
        assert list(t["start"]) == pytest.approx(starts, abs=1e-9)
        assert list(t["reply"]) == [452, 452, 552]
        assert list(t["enhanced"]) == ["4.2.2", "4.2.2", "5.2.2"]
        assert list(t["outcome"]) == ["deferred", "deferred", "bounced"]
        assert rows.loc[row, "status"] == "bounced"
        assert rows.loc[row, "reason"] == "mailbox full"
        assert rows.loc[row, "ended"] == pytest.approx(starts[-1] + REFUSE, abs=1e-9)
        assert rows.loc[row, "final_reply"].startswith("552 5.2.2 Quota exceeded")
    dsns = rows[rows["kind"] == "dsn"]
    assert sorted(dsns["parent_id"]) == [1, 2]
    assert set(dsns["status"]) == {"bounced"} and set(dsns["reason"]) == {"mailbox full"}
    assert len(rows) == 5  # no DSN about a DSN
    stats = result.stats["mailbox"]["store"]
    assert stats["refused_quota_temporary"] == 4 and stats["refused_quota_permanent"] == 4
    assert stats["occupancy"] == stats["peak_occupancy"] == 105_000 and stats["full_mailboxes"] == 1


def test_full_tempfail_for_zero_bounces_at_once_and_null_never() -> None:
    """0 (Dovecot's default, Yahoo): message 1's first refusal is 552 at S = 200.39.
    null (Gmail): 452 at every attempt; the row is still deferred at the end."""
    result = run(parse_scenario(world(FULL_AFTER_FIRST)), trace=True)  # full_tempfail_for: 0 by default
    assert list(tries(result, 1)["reply"]) == [552]
    assert result.messages.loc[1, "ended"] == pytest.approx(200.39 + REFUSE, abs=1e-9)
    result = run(parse_scenario(world({**FULL_AFTER_FIRST, "full_tempfail_for": None})), trace=True)
    assert set(tries(result, 1)["reply"]) == {452}
    assert len(tries(result, 1)) == 6  # S = 200.39, then every 600.458 s (or 600.258 cached) to 3350
    assert result.messages.loc[1, "status"] == "in_flight"
    check_books(result.messages)


def test_pop3_deletion_frees_space_for_the_deferred_message() -> None:
    """POP3 that deletes, polling at 0, 600, 1200, ...: message 0 (stored 100.9131)
    is downloaded at 600 + POP3 = 600.649 and leaves the server then (95,000 B: under
    the quota). Message 1: 452 at S = 200.39 (full); at its retry S = 800.848 it fits:
    stored at 800.848 + 0.258 + 0.0651 = 801.1711 (full again), downloaded at 1200.649.
    Message 2: 452 at 300.59 and at 900.848 (full since 801.1711), then at S =
    1501.306 (after the free at 1200.649) accepted: stored at 1501.6291."""
    data = pop3(world({**FULL_AFTER_FIRST, "full_tempfail_for": None}))
    result = run(parse_scenario(data), trace=True, sample_every=100)
    check_books(result.messages)
    rows = result.messages
    assert list(rows["status"]) == ["delivered"] * 3
    assert list(rows["delivered"]) == pytest.approx([100.9131, 801.1711, 1501.6291], abs=1e-9)
    assert list(rows["retrieved"]) == pytest.approx([600 + POP3, 1200 + POP3, 1800 + POP3], abs=1e-9)
    assert list(tries(result, 1)["reply"]) == [452, 250]
    assert list(tries(result, 2)["reply"]) == [452, 452, 250]
    stats = result.stats["mailbox"]["store"]
    assert stats["occupancy"] == 95_000 and stats["peak_occupancy"] == 105_000
    assert stats["full_mailboxes"] == 0 and stats["refused_quota_temporary"] == 3
    # The levels change at the free's own time, found lazily: over [600, 700) the store
    # held 105,000 B for 0.649 s and 95,000 B after.
    ts = result.timeseries
    occupancy = ts[(ts["component"] == "store") & (ts["metric"] == "occupancy")].set_index("time")
    full = ts[(ts["component"] == "store") & (ts["metric"] == "full_mailboxes")].set_index("time")
    assert occupancy.loc[100.0, "value"] == 95_000 and occupancy.loc[200.0, "value"] == 105_000
    assert occupancy.loc[700.0, "mean"] == pytest.approx((105_000 * POP3 + 95_000 * (100 - POP3)) / 100, abs=1e-6)
    assert occupancy.loc[700.0, "value"] == 95_000 and full.loc[700.0, "value"] == 0
    assert full.loc[700.0, "mean"] == pytest.approx(POP3 / 100, abs=1e-9)
    # The free at 1800.649 comes after the last store: only the end of the run applies it.
    assert occupancy["value"].iloc[-1] == 95_000 and full["value"].iloc[-1] == 0


def test_a_full_store_answers_452_4_3_1_to_everyone() -> None:
    """A 25,000-byte store, no quota: messages 0 and 1 fit (20,000 B); message 2 (S =
    300.59) would bring it to 30,000: 452 4.3.1, deferred; so is every retry (IMAP
    keeps the copies)."""
    result = run(parse_scenario(world(size=25_000)), trace=True)
    check_books(result.messages)
    assert list(result.messages["status"]) == ["delivered", "delivered", "in_flight"]
    t = tries(result, 2)
    assert t["start"].iloc[0] == pytest.approx(300.59, abs=1e-9)
    assert set(t["reply"]) == {452} and set(t["enhanced"]) == {"4.3.1"}
    assert result.messages.loc[2, "final_reply"] == "452 4.3.1 Insufficient system storage"
    stats = result.stats["mailbox"]["store"]
    assert stats["occupancy"] == 20_000 and stats["refused_store_full"] == len(t)


def test_grace_lets_the_last_message_in_but_not_past_it() -> None:
    """storage 25,000, no initial content: 0 and 1 fit (20,000); 2 would make 30,000:
    over the 10 % grace (27,500), refused though the mailbox is under its quota (full
    for 0 s: 552 with full_tempfail_for 0). With quota_grace 0.2 (30,000) it fits."""
    result = run(parse_scenario(world({"storage": 25_000})), trace=True)
    assert list(result.messages["status"][:3]) == ["delivered", "delivered", "bounced"]
    result = run(parse_scenario(world({"storage": 25_000, "quota_grace": 0.2})), trace=True)
    assert list(result.messages["status"]) == ["delivered"] * 3
    assert result.stats["mailbox"]["store"]["full_mailboxes"] == 1


def mixed_world() -> dict[str, Any]:
    """Two domains on one store: example.org reads by POP3 and deletes, example.net by
    IMAP (keeps everything); small quotas and a store size, so refusals happen."""
    data = pop3(world({"storage": 60_000, "initial": 0.2, "full_tempfail_for": 2000}, drain=6000, size=900_000))
    data["duration"] = 3000
    data["domains"][0]["users"] = 5
    second = {**data["domains"][0], "name": "example.net", "users": 7, "quota": {"storage": 80_000, "initial": 0.5}}
    second["retrieval"] = {"client": "home", "imap": {"share": 1, "poll_interval": 300}}
    data["domains"].append(second)
    data["workload"][0].update(interarrival=20, size={"dist": "lognormal", "median": 8000, "sigma": 1.0},
                               recipients={"example.org": 1, "example.net": 1})
    return data


def test_occupancy_is_what_was_stored_less_what_was_freed() -> None:
    """The store's bytes at the end = the mailboxes' initial content (5 x 12,000 +
    7 x 40,000) + every row stored there - the POP3 rows downloaded (and so deleted) by
    the horizon; each mailbox's the same for its own rows."""
    data = mixed_world()
    model = build(parse_scenario(data), sample_every=500)
    model.run()
    result = model.results()
    rows = result.messages
    check_books(rows)
    stored = rows[rows["status"] == "delivered"]
    gone = stored[(stored["recipient_domain"] == "example.org") & stored["retrieved"].notna()]
    assert len(gone) > 0 and (rows["status"] != "delivered").any()  # both rules were at work
    expected = 5 * 12_000 + 7 * 40_000 + stored["size"].sum() - gone["size"].sum()
    stats = result.stats["mailbox"]["store"]
    assert stats["occupancy"] == expected
    capacity = model.node("store").capacity
    for quota, domain, users, start in zip(capacity.quotas, ("example.org", "example.net"), (5, 7), (12_000, 40_000)):
        for person in range(users):
            mine = stored[(stored["recipient_domain"] == domain) & (stored["recipient_person"] == person)]
            freed = mine[mine["retrieved"].notna()] if domain == "example.org" else mine[:0]
            assert quota.used(person) == start + mine["size"].sum() - freed["size"].sum()
        assert quota.full == sum(quota.used(p) >= quota.limit for p in range(users))
    ts = result.timeseries
    level = ts[(ts["component"] == "store") & (ts["metric"] == "occupancy")]
    assert level["value"].iloc[-1] == expected and level["max"].max() == stats["peak_occupancy"]


def test_capacity_that_never_fills_changes_nothing() -> None:
    """A quota and a store size too big to matter: the same rows as without them (the
    rule and the hooks draw nothing and move no event); without either, nothing is made."""
    plain = parse_scenario(mixed_world() | {"domains": [dict(d, quota=None) for d in mixed_world()["domains"]]})
    data = mixed_world()
    node(data, "store")["size"] = 10**12
    for d in data["domains"]:
        d["quota"] = {"storage": 10**11}
    roomy = parse_scenario(data)
    node_spec = next(n for n in plain.topology.nodes if n.id == "store")
    plain = plain.model_copy(update={"topology": plain.topology.model_copy(update={"nodes": [
        n.model_copy(update={"size": None}) if n is node_spec else n for n in plain.topology.nodes]})})
    a, b = run(plain, trace=True), run(roomy, trace=True)
    assert a.messages.equals(b.messages) and a.attempts.equals(b.attempts)
    model = build(plain)
    assert model.node("store").capacity is None
    assert not any(d.readers.hooks for d in model.ctx.domains if d.readers is not None)
    assert not any(type(p).__name__ == "RoomCheck" for p in model.node("mx").chain.policies)


@pytest.mark.parametrize(
    "where, value, key, problem",
    [
        ("quota", {"storage": 0}, "domains[example.org].quota.storage", "greater than 0"),
        ("quota", {"storage": "1 parsec"}, "domains[example.org].quota.storage", "unknown unit"),
        ("quota", {"quota_grace": True}, "domains[example.org].quota.quota_grace", "not a boolean"),
        ("quota", {"full_tempfail_for": -1}, "domains[example.org].quota.full_tempfail_for", "greater than or equal to 0"),
        ("quota", {"initial": 11}, "domains[example.org].quota.initial", "less than or equal to 10"),
        ("quota", {"storge": 5}, "domains[example.org].quota.storge", "unknown key"),
        ("size", -5, "topology.nodes[store].size", "greater than 0"),
    ],
)
def test_bad_input_is_one_line_naming_the_key(
    where: str, value: Any, key: str, problem: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    data = world()
    if where == "quota":
        data["domains"][0]["quota"] = value
    else:
        node(data, "store")["size"] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert_key_error(["validate", str(path)], capsys, path, key, problem)


def test_a_quota_needs_a_mailbox() -> None:
    data = world({"storage": 1000})
    data["domains"].append({"name": "nomail.example", "quota": {"storage": 1000}})
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    assert str(info.value) == "domains[nomail.example].quota: domain 'nomail.example' has a quota but no mailbox to count it in"


def test_levels_read_mid_run_include_the_frees_due() -> None:
    """As above, read at t = 1900 with no store or RCPT since 1501.6291: message 2's
    free at 1800.649 is in the level all the same (the monitors ask for the frees due
    before they close their intervals)."""
    model = build(parse_scenario(pop3(world({**FULL_AFTER_FIRST, "full_tempfail_for": None}))), sample_every=100)
    model.run(until=1900)
    ts = model.timeseries()
    assert ts is not None
    occupancy = ts[(ts["component"] == "store") & (ts["metric"] == "occupancy")].set_index("time")
    assert occupancy.index[-1] == 1900.0
    assert occupancy.loc[1800.0, "value"] == 105_000 and occupancy.loc[1900.0, "value"] == 95_000
    assert occupancy.loc[1900.0, "mean"] == pytest.approx((105_000 * POP3 + 95_000 * (100 - POP3)) / 100, abs=1e-6)


def test_the_example_of_docs_quotas_runs_as_it_says() -> None:
    """docs/quotas.md's scenario: every reply it names happens, the books balance, the
    store's figures add up."""
    import re
    from pathlib import Path

    import yaml

    page = (Path(__file__).resolve().parent.parent / "docs" / "quotas.md").read_text()
    example = [b for b in re.findall(r"```yaml\n(.*?)```", page, flags=re.S) if "topology:" in b and "workload:" in b]
    assert len(example) == 1
    result = run(parse_scenario(yaml.safe_load(example[0])), trace=True, sample_every=3600)
    rows = result.messages
    check_books(rows)
    replies = set(result.attempts["enhanced"])
    assert {"4.2.2", "5.2.2", "4.3.1", "2.0.0"} <= replies
    bounced = rows[(rows["status"] == "bounced") & (rows["kind"] == "person")]
    assert len(bounced) > 0 and set(bounced["reason"]) == {"mailbox full"}
    assert set(rows.loc[rows["kind"] == "dsn", "parent_id"].astype(int)) == set(bounced.index)
    stats = result.stats["mailbox"]["store"]
    assert 20 * 1_800_000 < stats["occupancy"] <= stats["peak_occupancy"] <= 40_000_000
    assert stats["refused_store_full"] > 0 and stats["refused_quota_permanent"] == len(rows[rows["reason"] == "mailbox full"])
    again = run(parse_scenario(yaml.safe_load(example[0])), trace=True, sample_every=3600)
    assert again.messages.equals(rows) and again.timeseries.equals(result.timeseries)  # same seed, same run


def test_starting_shares_spread_per_person_and_add_up_exactly() -> None:
    """initial 0.2, initial_max 1.4 over 3000 people: each mailbox starts with
    floor(storage x (0.2 + 1.2 u)), u the person's splitmix uniform (the devices' hash,
    sim.mail.devices.person_uniforms, here as the independent scalar reference); the
    store starts with their exact sum (worked out on numpy slices) and with the full
    ones counted; the shares span the range with the mean near 0.8."""
    from sim.mail.devices import person_uniforms

    data = world({"storage": 1_000_000, "initial": 0.2, "initial_max": 1.4})
    data["domains"][0]["users"] = 3000
    model = build(parse_scenario(data), sample_every=100)
    quota = model.node("store").capacity.quotas[0]
    held = [float(int(1_000_000 * (0.2 + 1.2 * person_uniforms(quota.key, p)[0]))) for p in range(3000)]
    assert [quota.initial(p) for p in range(3000)] == held
    assert model.node("store").capacity.used == sum(held) and quota.full == sum(h >= 1_000_000 for h in held)
    assert min(held) >= 200_000 and max(held) < 1_400_000
    assert sum(held) / 3000 == pytest.approx(800_000, rel=0.03)
    assert quota.full / 3000 == pytest.approx(1 / 3, abs=0.03)  # shares >= 1: 0.4 of 1.2
    full = quota.full
    model.run()
    ts = model.timeseries()
    assert ts is not None
    # Nothing is stored before 100.9131: the levels over [0, 100) are the starting ones.
    first = ts[(ts["component"] == "store") & (ts["time"] == 100.0)].set_index("metric")
    assert first.loc["occupancy", "mean"] == sum(held) and first.loc["full_mailboxes", "mean"] == full


def test_initial_max_below_initial_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"initial_max \(0.1\) must be at least initial \(0.5\)"):
        parse_scenario(world({"initial": 0.5, "initial_max": 0.1}))


def test_every_mx_host_asks_the_same_mailbox() -> None:
    """Two MX hosts (10: mx, 20: mx2, alike): message 1's mailbox is full, so mx answers
    452 4.2.2 at S = 200.39 (try_next); after its QUIT (200.39 + 0.256) the session with
    mx2 starts at 200.646 and gets 452 too: deferred. The quota is the domain's, not a
    host's."""
    data = world({**FULL_AFTER_FIRST, "full_tempfail_for": None}, drain=200)
    data["topology"]["nodes"].append({**node(data, "mx"), "id": "mx2"})
    data["topology"]["edges"].append({"a": "r", "b": "mx2", "latency": 0.015, "bandwidth": 5.0e6})
    data["domains"][0]["mx"].append({"host": "mx2", "preference": 20})
    result = run(parse_scenario(data), trace=True)
    check_books(result.messages)
    t = tries(result, 1)
    assert list(t["dst"]) == ["mx", "mx2"] and list(t["host_order"]) == [1, 2]
    assert list(t["start"]) == pytest.approx([200.39, 200.39 + DEFER], abs=1e-9)
    assert list(t["outcome"]) == ["try_next", "deferred"] and set(t["enhanced"]) == {"4.2.2"}


def test_mail_nobody_reads_counts_and_stays() -> None:
    """A domain whose people have no devices (no retrieval): its mail still counts
    (the store itself reports it) and is never freed: message 0 fills the mailbox,
    1 and 2 bounce at once (full_tempfail_for 0)."""
    data = world(FULL_AFTER_FIRST)
    del data["domains"][0]["retrieval"]
    result = run(parse_scenario(data))
    check_books(result.messages)
    assert list(result.messages["status"][:3]) == ["delivered", "bounced", "bounced"]
    stats = result.stats["mailbox"]["store"]
    assert stats["occupancy"] == 105_000 and stats["full_mailboxes"] == 1


def test_mail_stored_while_the_devices_are_cut_off_counts_at_once() -> None:
    """The people's devices sit on their own client node, cut off from the store from
    0 to 1000 s. Message 0 is stored at 100.9131 all the same and fills the mailbox:
    message 1 is refused at S = 200.39 as when the devices were reachable (a mailbox
    that counted it only once its devices could reach it would have taken it)."""
    data = world({**FULL_AFTER_FIRST, "full_tempfail_for": None})
    data["topology"]["nodes"].append({"id": "phones", "kind": "client"})
    data["topology"]["edges"].append({"a": "phones", "b": "r", "latency": 0.02})
    data["domains"][0]["retrieval"]["client"] = "phones"
    data["faults"] = [{"kind": "link", "a": "phones", "b": "r", "start": 0, "end": 1000}]
    result = run(parse_scenario(data), trace=True)
    check_books(result.messages)
    assert result.messages["delivered"].iloc[0] == pytest.approx(100.9131, abs=1e-9)
    first = tries(result, 1).iloc[0]
    assert (first["reply"], first["enhanced"]) == (452, "4.2.2")
    assert first["start"] == pytest.approx(200.39, abs=1e-9)


def test_a_run_sampling_time_series_follows_every_store_s_occupancy() -> None:
    """No quota and no size: sampling time series still follows each store's bytes
    (``occupancy``), which then equals what was stored (IMAP keeps every copy), and
    the messages are those of a run that does not sample."""
    data = tiny_data(duration=350, drain=1000)
    plain = run(parse_scenario(data))
    sampled = run(parse_scenario(data), sample_every=100)
    assert sampled.messages.equals(plain.messages)
    ts = sampled.timeseries
    level = ts[(ts["component"] == "store") & (ts["metric"] == "occupancy")].set_index("time")["value"]
    # Three 10,000-byte messages stored at about 100.9, 200.9 and 300.9 s.
    assert list(level.loc[[100.0, 200.0, 300.0, 400.0]]) == [0, 10_000, 20_000, 30_000]
    assert sampled.stats["mailbox"]["store"]["occupancy"] == 30_000


def test_mailflow_run_says_what_the_stores_refused(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The run of test_a_full_mailbox_defers_then_bounces_with_a_dsn (full_tempfail_for
    1000 s): 452 4.2.2 to message 1 at 200.39 and 800.848 and to message 2 at 300.59
    and 900.848, then 552 5.2.2 to each and to both their DSNs (to the same full
    mailbox); the summary says so in one line."""
    import yaml

    from tests.conftest import cli

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(world({**FULL_AFTER_FIRST, "full_tempfail_for": 1000})))
    code, out, _ = cli(["run", str(path), "--out", str(tmp_path / "out")], capsys)
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("refused for room"))
    assert line == ("refused for room at the stores: 452 4.2.2 x4, 552 5.2.2 x4; "
                    "mailboxes full at the end: 1 (docs/quotas.md)")
