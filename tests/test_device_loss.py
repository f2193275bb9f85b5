"""Device faults: mail that lived only on a lost device is lost; nothing else is.

The worlds are the tiny one (``tests/conftest.py``): one person whose mail is written
every 100 s from t = 100 (the source's interarrival is a constant 100 s), delivered
within a second. Their store-to-device path has a one-way latency of 0.0355 s (store
-mx 0.0005, mx-r 0.015, r-home 0.02), so a round trip is 0.071 s, and a 10 kB message
takes 0.01 s at 1 MB/s. With TLS a POP3 session is 2 + 1 + 6 = 9 round trips and an
IMAP one 2 + 1 + 4 = 7 (``sim.mail.smtp.Dialogues``): a POP3 download ends 0.649 s
after its check starts, an IMAP one 0.507 s after.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from sim import run
from sim.config import parse_scenario
from sim.config.faults import YEAR
from sim.mail.device_loss import DEVICE_LOST, Plan
from sim.simulation.build import build
from tests.conftest import assert_key_error, cli, tiny_data

POP3_SESSION = 9 * 0.071 + 0.01
IMAP_SESSION = 7 * 0.071 + 0.01


def world(desktop: dict[str, Any], phone: dict[str, Any] | None = None, faults: list[dict[str, Any]] | None = None,
          duration: float = 1000, users: int = 1) -> dict[str, Any]:
    """The tiny world whose people have a POP3 desktop polling every 200 s from 0 (the
    given keys change it) and an IMAP phone polling every 600 s from 0."""
    data = tiny_data(duration=duration, drain=2000)
    data["domains"][0]["users"] = users
    devices = [{"name": "desktop", "share": 1, "access": "pop3", "poll_interval": 200, "phase": 0} | desktop,
               {"name": "phone", "share": 1, "access": "imap", "poll_interval": 600, "phase": 0} | (phone or {})]
    data["domains"][0]["retrieval"] = {"client": "home", "devices": devices}
    data["faults"] = faults or []
    return data


def loss(device: str = "desktop", **keys: Any) -> dict[str, Any]:
    return {"kind": "device", "domain": "example.org", "device": device} | keys


def test_pop3_without_a_copy_loses_what_the_lost_device_alone_held() -> None:
    """The desktop takes each message off the server at its first poll after delivery
    (200, 400, 600 ... s), before the phone's poll (600, 1200 ... s) sees it. The desktop
    is lost at 500 s: the rows delivered at ~100.9 s (downloaded at 200 + 0.649), ~200.7
    and ~300.9 s (both at 400 + 0.649) existed only on it and are lost at 500 s exactly,
    delivered and retrieved times kept. The row delivered at ~400.7 s was still on the
    server at 500 s: the phone takes it at 600 + 0.507 and the desktop's replacement at
    600 + 0.649 (and deletes it); nothing after the loss is lost."""
    r = run(parse_scenario(world({"leave_on_server": False}, faults=[loss(start=500)])))
    m = r.messages
    lost = m[m["status"] == "lost"]
    assert list(lost.index) == [0, 1, 2]
    assert (lost["reason"] == DEVICE_LOST).all()
    assert lost["ended"].tolist() == [500.0, 500.0, 500.0]
    assert lost["retrieved"].to_numpy() == pytest.approx([200 + POP3_SESSION, 400 + POP3_SESSION, 400 + POP3_SESSION],
                                                         abs=1e-9)
    assert lost["delivered"].notna().all() and (lost["access"] == "pop3").all()
    kept = m[m["status"] != "lost"]
    assert (kept["status"] == "delivered").all() and len(kept) == 6
    assert kept.loc[3, "retrieved"] == pytest.approx(600 + IMAP_SESSION, abs=1e-9)
    assert kept.loc[3, "access"] == "imap"
    assert r.stats["fault"] == {"fault 0: example.org/desktop": {"failures": 1, "rows_lost": 3}}
    assert r.stats["device_loss"] == {
        "imap": {"devices_lost": 0, "rows_lost": 0},
        "pop3": {"devices_lost": 1, "rows_lost": 3},
        "webmail": {"devices_lost": 0, "rows_lost": 0},
    }


def test_a_message_downloaded_after_the_loss_is_not_lost() -> None:
    """Lost at 150 s, before the first download (200 + 0.649): the replacement takes
    every message; nothing is lost."""
    m = run(parse_scenario(world({"leave_on_server": False}, faults=[loss(start=150)]))).messages
    assert (m["status"] == "delivered").all()


@pytest.mark.parametrize("desktop, device", [
    ({"leave_on_server": True}, "desktop"),                      # a copy kept 14 days: past the run
    ({"leave_on_server": True, "delete_after": None}, "desktop"),  # kept for ever
    ({"access": "imap"}, "desktop"),
    ({"access": "webmail"}, "desktop"),
    ({"leave_on_server": False}, "phone"),                       # the phone (IMAP) held nothing alone
], ids=["leave-a-copy", "never-delete", "imap", "webmail", "imap-phone"])
def test_what_the_server_keeps_is_never_lost(desktop: dict[str, Any], device: str) -> None:
    """Every device lost at 500 s and again at random (~40 times each over the run): a
    message the server still has survives; the run is otherwise unchanged (the fault's
    draws come from its own streams)."""
    faults = [loss(device, start=500), loss(device, random={"rate": 5e5})]
    with_faults = run(parse_scenario(world(desktop, faults=faults)))
    without = run(parse_scenario(world(desktop)))
    assert (with_faults.messages["status"] == "delivered").all()
    assert with_faults.messages.equals(without.messages)
    assert with_faults.stats["fault"]["fault 1: example.org/" + device]["failures"] > 10
    assert with_faults.stats["fault"]["fault 0: example.org/" + device] == {"failures": 1, "rows_lost": 0}


def test_leave_a_copy_loses_only_after_delete_after() -> None:
    """A copy left on the server 300 s: the desktop downloads the row delivered at
    ~100.9 s at 200.649 and deletes the server's copy at its first poll at or after
    200.649 + 300, at 600 s. Lost at 700 s, after that: the row is lost at 700. The row
    delivered at ~200.7 s (downloaded at 400.649) is on the server until 800 s: the
    replacement takes it again at its poll at 800 and keeps it. Lost at 500 s instead,
    before any server copy went: nothing is lost (the replacement re-downloads at 600)."""
    late = run(parse_scenario(world({"delete_after": 300}, faults=[loss(start=700)]))).messages
    assert list(late.index[late["status"] == "lost"]) == [0]
    assert late.loc[0, "ended"] == 700.0
    early = run(parse_scenario(world({"delete_after": 300}, faults=[loss(start=500)]))).messages
    assert (early["status"] == "delivered").all()


def test_lost_when_the_server_copy_goes_after_the_device() -> None:
    """Lost at 500 s while the server keeps the rows delivered at ~100.9 s until 600 and
    at ~200.7 and ~300.9 s until 800 (delete_after 300 after downloads at 200.649 and
    400.649), and the replacement polls at 600: it takes them all again. Two desktops
    lost, at 500 and 550: the second one's replacement polls at 600 too; still nothing
    lost. With the replacement's first poll after the server's copy went (poll every
    1000 s from 0: download at 1000.649, server copy gone at the poll at 2000; lost at
    1500 s, the replacement polls at 2000, when the copy goes, and takes it), kept too;
    lost at 2500 s instead, the row is lost at 2500."""
    data = world({"delete_after": 300}, faults=[loss(start=500), loss(start=550)])
    assert (run(parse_scenario(data)).messages["status"] == "delivered").all()
    slow = {"delete_after": 300, "poll_interval": 1000}
    m = run(parse_scenario(world(slow, faults=[loss(start=1500)]))).messages
    assert (m["status"] == "delivered").all()
    m = run(parse_scenario(world(slow, faults=[loss(start=2500)]))).messages
    lost = m[m["status"] == "lost"]
    # Delivered before 1000 s: downloaded at 1000.649, server copy gone at 2000.
    assert set(lost.index) == set(m.index[m["delivered"] < 1000])
    assert (lost["ended"] == 2500.0).all()


def test_a_share_of_people_lose_their_device() -> None:
    """share 0.25 of 4000 people: about a quarter of the desktops (binomial, 4 standard
    deviations: 1000 +- 110), and the rows lost are exactly those of hit people."""
    data = world({"leave_on_server": False}, faults=[loss(start=900, share=0.25)], duration=2000, users=4000)
    data["workload"][0]["interarrival"] = 0.5
    r = run(parse_scenario(data))
    devices = r.stats["fault"]["fault 0: example.org/desktop"]["failures"]
    assert abs(devices - 1000) < 4 * math.sqrt(4000 * 0.25 * 0.75)
    m = r.messages
    lost = m[m["status"] == "lost"]
    assert (lost["ended"] == 900.0).all() and (lost["retrieved"] <= 900).all()
    hit = set(m.loc[lost.index, "recipient_person"])
    downloaded = m[(m["retrieved"] <= 900) & m["recipient_person"].isin(hit)]
    assert set(downloaded.index) == set(lost.index)  # every row a hit person had downloaded
    spared = m[(m["retrieved"] <= 900) & ~m["recipient_person"].isin(hit)]
    assert len(spared) > 0.6 * (len(spared) + len(downloaded))


def test_random_failures_are_poisson() -> None:
    """At 3 failures per device per year, over a year, 20,000 devices fail 3 times on
    average with variance 3 (Poisson); stated tolerance 4 standard errors of the mean
    (4 * sqrt(3 / 20000) = 0.049) and 0.3 on the variance (its standard error is
    ~sqrt(2 * 9 / 20000 + 3 / 20000) = 0.032)."""
    plan = Plan(0, "x", 12345, 0.0, YEAR, 1.0, 3 / YEAR)
    counts = np.array([plan.count(p, 0) for p in range(20_000)])
    assert abs(counts.mean() - 3) < 4 * math.sqrt(3 / 20_000)
    assert abs(counts.var() - 3) < 0.3
    # The first failure is exponential with mean 1/3 year: P(before 0.1 y) = 1 - e^-0.3.
    first = np.array([plan.after(p, 0, 0.0) for p in range(20_000)])
    assert abs(np.mean(first < 0.1 * YEAR) - (1 - math.exp(-0.3))) < 4 * math.sqrt(0.26 * 0.74 / 20_000)
    # Each (device type, k-th gap) of the same people draws on its own: no two of the
    # first draws of three types are correlated (4 standard errors: 4 / sqrt(20000)).
    draws = {(k, j): np.array([plan._u(p, k, j) for p in range(20_000)]) for k in range(3) for j in range(3)}
    keys = sorted(draws)
    for a in range(len(keys)):
        for b in range(a + 1, len(keys)):
            assert abs(np.corrcoef(draws[keys[a]], draws[keys[b]])[0, 1]) < 4 / math.sqrt(20_000), (keys[a], keys[b])


def test_random_failures_in_a_run_match_the_rate() -> None:
    """Phones of 5,000 people at 2,000 failures a year over the run's 3,000 s (1,000 s of
    traffic, 2,000 of drain): 5000 * 2000 * 3000 / 31,536,000 = 951 expected; 4 standard
    deviations of a Poisson count (123)."""
    data = world({"leave_on_server": False}, faults=[loss("phone", random={"rate": 2000})], users=5000)
    r = run(parse_scenario(data))
    expected = 5000 * 2000 * 3000 / YEAR
    assert abs(r.stats["fault"]["fault 0: example.org/phone"]["failures"] - expected) < 4 * math.sqrt(expected)
    assert r.stats["device_loss"]["imap"]["rows_lost"] == 0


def test_random_desktop_failures_lose_rows_downloaded_before_them() -> None:
    """POP3 desktops failing at random: every lost row was retrieved before it was lost
    and lost within the run, and the same seed gives the same run."""
    data = world({"leave_on_server": False}, faults=[loss(random={"rate": 20_000}, start=100, end=2500)], users=300)
    data["workload"][0]["interarrival"] = 1.0
    a, b = run(parse_scenario(data)), run(parse_scenario(data))
    m = a.messages
    lost = m[m["status"] == "lost"]
    assert len(lost) > 20
    assert (lost["reason"] == DEVICE_LOST).all()
    assert (lost["retrieved"] <= lost["ended"]).all() and (lost["ended"] < 2500).all() and (lost["ended"] >= 100).all()
    assert a.messages.equals(b.messages) and a.stats == b.stats
    assert a.stats["device_loss"]["pop3"]["rows_lost"] == len(lost)
    other = run(parse_scenario(data), seed=99).messages
    assert not other["status"].equals(m["status"])


def test_a_run_without_device_faults_has_no_hook() -> None:
    """Nothing is added to the readers unless a device fault names the domain."""
    model = build(parse_scenario(world({"leave_on_server": False})))
    readers = model.ctx.domains["example.org"].readers
    assert readers is not None and readers.hooks == []
    model = build(parse_scenario(world({"leave_on_server": False}, faults=[loss(start=5)])))
    assert len(model.ctx.domains["example.org"].readers.hooks) == 1  # type: ignore[union-attr]


def test_the_older_one_device_form_names_devices_by_protocol() -> None:
    """``device: pop3`` in a domain written with imap/pop3/webmail shares."""
    data = tiny_data(duration=1000, drain=2000)
    data["domains"][0]["retrieval"] = {"client": "home", "pop3": {"share": 1, "poll_interval": 200, "phase": 0}}
    data["faults"] = [loss("pop3", start=500)]
    r = run(parse_scenario(data))
    assert (r.messages["status"] == "delivered").all()  # its POP3 leaves a copy 14 days
    assert r.stats["fault"]["fault 0: example.org/pop3"] == {"failures": 1, "rows_lost": 0}


BAD = [
    (loss("tablet", start=5), "faults[0].device", "domain 'example.org' has no device type 'tablet' (it has desktop, phone)"),
    (loss(start=5) | {"domain": "nope.org"}, "faults[0].domain", "'nope.org' is not a domain of the scenario"),
    (loss(start=5) | {"domain": None, "domains": ["example.org", "example.org"]}, "faults[0].domains[1]",
     "'example.org' is listed twice"),
    (loss(start=5) | {"domains": ["example.org"]}, "faults[0]", "give domain or domains, not both"),
    ({"kind": "device", "device": "desktop"}, "faults[0]",
     "name the domain whose devices are lost (domain: NAME, or domains: [NAME, ...])"),
    (loss(start=5, end=10), "faults[0]", "a scripted device loss is an instant (start): end is for random: failures"),
    (loss(share=0.5, random={"rate": 0.03}), "faults[0]",
     "share is for a scripted loss; with random: every device fails at the rate"),
    (loss(random={"rate": 0}), "faults[0].random.rate", "Input should be greater than 0"),
    (loss(share=1.5), "faults[0].share", "Input should be less than or equal to 1"),
]


@pytest.mark.parametrize("fault, key, problem", BAD, ids=[p for _, _, p in BAD])
def test_a_bad_device_fault_is_one_line(
    fault: dict[str, Any], key: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = world({"leave_on_server": False}, faults=[fault])
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    assert_key_error(["validate", str(path)], capsys, path, key, problem)


def test_a_domain_without_devices_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = world({"leave_on_server": False}, faults=[loss(start=5)])
    data["domains"].append({"name": "quiet.org", "users": 0})
    data["faults"][0]["domain"] = "quiet.org"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    assert_key_error(["validate", str(path)], capsys, path, "faults[0].domain",
                     "domain 'quiet.org' has no devices to lose (it needs users and a retrieval)")


def test_mailflow_run_says_what_went_with_the_devices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The summary's line, from the hand-computed run above (three rows lost with the
    one POP3 desktop); and run.json keeps the counters."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(world({"leave_on_server": False}, faults=[loss(start=500)])))
    code, out, _ = cli(["run", str(path), "--out", str(tmp_path / "out")], capsys)
    assert code == 0
    assert ("lost with devices: 3 rows; devices lost by access: imap 0 (0 rows), pop3 1 (3 rows), "
            "webmail 0 (0 rows)") in out
    meta = json.loads((tmp_path / "out" / "run.json").read_text())
    assert meta["components"]["device_loss"]["pop3"] == {"devices_lost": 1, "rows_lost": 3}
    assert meta["components"]["fault"]["fault 0: example.org/desktop"] == {"failures": 1, "rows_lost": 3}


def test_show_of_the_ready_scenario_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    """``mailflow show`` prints device faults with every key filled in (``share: null``
    beside ``random:``), and the faults it prints load as the same faults."""
    path = Path(__file__).resolve().parent.parent / "topologies" / "pop3-vs-imap.yaml"
    code, out, _ = cli(["show", str(path)], capsys)
    assert code == 0
    data = yaml.safe_load(path.read_text())
    written = parse_scenario(data).faults
    data["faults"] = yaml.safe_load(out)["faults"]
    shown = parse_scenario(data)
    assert shown.faults == written
    assert [f.share for f in shown.faults] == [None, None, 0.1]


def test_a_store_disk_and_a_device_lose_each_their_own_rows() -> None:
    """The store loses its disk at 450 s: the row delivered at ~400.7 s was not yet
    downloaded (the desktop's next poll is at 600) and is lost with the disk; the rows
    the desktop had downloaded (at 200.649 and 400.649) are not, but go with the
    desktop at 500 s. No row ends twice."""
    store = {"kind": "node", "node": "store", "start": 450, "end": 460, "disk": "lost"}
    m = run(parse_scenario(world({"leave_on_server": False}, faults=[store, loss(start=500)]))).messages
    assert m.loc[[0, 1, 2], "reason"].tolist() == [DEVICE_LOST] * 3
    assert m.loc[[0, 1, 2], "ended"].tolist() == [500.0] * 3
    assert m.loc[3, "reason"] == "disk lost at store" and m.loc[3, "ended"] == 450.0
    assert math.isnan(m.loc[3, "retrieved"])
    assert (m.loc[4:, "status"] == "delivered").all()
    # The desktop lost at 700 s instead: the row the disk took at 450 s would have been
    # downloaded at 600.649 and lost at 700 with it; it stays lost with the disk. The
    # row delivered at ~500.9 s (downloaded at 600.649) goes with the desktop.
    m = run(parse_scenario(world({"leave_on_server": False}, faults=[store, loss(start=700)]))).messages
    assert m.loc[3, "reason"] == "disk lost at store" and m.loc[3, "ended"] == 450.0
    assert m.loc[[0, 1, 2, 4], "reason"].tolist() == [DEVICE_LOST] * 4
    assert (m.loc[[0, 1, 2, 4], "ended"] == 700.0).all()
    assert (m.loc[5:, "status"] == "delivered").all()


def test_a_replacement_looking_at_the_instant_of_removal_finds_nothing() -> None:
    """The desktop (POP3 without a copy, every 400 s from 0) removes message 0 at
    400.649; the phone (POP3 keeping a copy for ever, every 200 s from 0.649) had it at
    201.298 and is lost at 300: its replacement next looks at 400.649, the instant of
    the removal, and finds nothing (the rule of Readers.copies). So only the desktop
    held it, and it is lost with the desktop at 500."""
    data = world({"leave_on_server": False, "poll_interval": 400},
                 faults=[loss("phone", start=300), loss("desktop", start=500)])
    data["domains"][0]["retrieval"]["devices"][1] = {
        "name": "phone", "share": 1, "access": "pop3", "poll_interval": 200, "phase": 0.649, "delete_after": None}
    m = run(parse_scenario(data)).messages
    row = m.loc[0]
    assert (row["status"], row["reason"], row["ended"]) == ("lost", "device lost", 500.0)


def test_rows_read_counts_only_looks_that_happened_before_a_loss() -> None:
    """A row lost with its device before the look planned for it is not read: the
    reading figures in run.json count the same rows as the read column."""
    data = world({"leave_on_server": False}, phone={"share": 0}, faults=[loss(start=500)])
    # A look every 29 min on average: one falls in the 99.4 s between the desktop's
    # download at 400.6 s and its loss at 500 s with a chance of about 6 % (1 - e^(-50 x
    # 99.4 / 86,400)), so the rows downloaded then are lost unread at almost any seed.
    data["domains"][0]["retrieval"]["reading"] = {"looks_per_day": 50, "reply_share": 0, "profile": "flat"}
    result = run(parse_scenario(data))
    m = result.messages
    undone = ((m["reason"] == "device lost") & m["read"].isna()).sum()
    assert undone > 0  # some look came after the loss
    assert result.stats["reading"]["example.org"]["read"] == m["read"].notna().sum()


def test_trace_says_when_a_row_went_with_its_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Row 0 of the hand-computed run (POP3 desktop without a copy, lost at 500): its
    journey's line has its retrieval and its end, and says why."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(world({"leave_on_server": False}, faults=[loss(start=500)])))
    assert cli(["run", str(path), "--out", str(tmp_path / "out"), "--trace"], capsys)[0] == 0
    code, out, _ = cli(["trace", str(tmp_path / "out"), "--id", "0"], capsys)
    header = out.splitlines()[0]
    assert code == 0 and "lost (device lost)" in header
    assert "retrieved 200.649" in header and header.endswith("ended 500.000")
