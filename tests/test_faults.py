"""The fault schedule (sim.world.faults): when faults happen, on which streams, what
run.json says about them, how they add up with a node's own outages, and the one-line
errors of a bad ``faults:`` entry. What a fault does to mail is tested with each kind of
node (crashes, links, submission); the ready scenarios in topologies/ are checked here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import sim
from sim.config import load_scenario, parse_scenario
from sim.config.distributions import TimeExponential, TimeLogNormal
from sim.core.rng import Streams
from sim.simulation.build import Model

from tests.conftest import assert_key_error, cli, node, tiny, tiny_data

ROOT = Path(__file__).resolve().parent.parent
HORIZON = 1350.0  # the tiny world: duration 350 + drain 1000

MX_FAULT: dict[str, Any] = {"kind": "node", "node": "mx"}
_MODEL: dict[int, Model] = {}


def run_with(faults: list[dict[str, Any]], probes: tuple[float, ...] = (), seed: int = 7, **changes: Any) -> tuple[
    sim.Results, Model, list[tuple[float, bool]]
]:
    """The tiny world with ``faults``; the model, and whether the MX was up at each probe
    time (probes fall between events: a fault and a probe never share an instant)."""
    seen: list[tuple[float, bool]] = []

    def hook(model: Model) -> None:
        _MODEL[0] = model
        mx = model.node("mx")
        for t in probes:
            model.at(t, lambda: seen.append((model.env.now, mx.up)))

    res = sim.run(tiny(faults=faults, **changes), seed=seed, hook=hook)
    return res, _MODEL.pop(0), seen


def spans(model: Model) -> list[tuple[str, str, float, float | None]]:
    assert model.faults is not None
    return [(label, target, down, up) for label, target, down, up in model.faults.log]


# --- when: scripted and random spans ------------------------------------------------


def test_random_spans_with_constant_times_are_hand_computed() -> None:
    """Up for ``between`` (100 s) from ``start`` (10 s), then down for ``repair`` (50 s),
    again and again: failures at 10 + 100 = 110, 160 + 100 = 260, 410, ..., 1310 (each
    150 s after the last); the next would be 1460, after the horizon (1350). The last
    failure is still down at the end: its repair (1360) is after the horizon."""
    fault = MX_FAULT | {"start": 10, "random": {"between": 100, "repair": 50}}
    res, model, seen = run_with([fault], probes=(109.5, 110.5, 159.5, 160.5, 1309.5, 1310.5, 1349.5))
    downs = [110.0 + 150.0 * k for k in range(9)]
    expected = [("fault 0", "mx", d, d + 50.0) for d in downs[:-1]] + [("fault 0", "mx", 1310.0, None)]
    assert spans(model) == expected
    assert seen == [(109.5, True), (110.5, False), (159.5, False), (160.5, True), (1309.5, True), (1310.5, False),
                    (1349.5, False)]
    # Eight whole repairs and the last 40 s (1310 to the horizon).
    assert res.stats["fault"] == {"fault 0: mx": {"failures": 9, "downtime": pytest.approx(8 * 50.0 + 40.0, abs=1e-9)}}


def test_random_spans_stop_beginning_at_end() -> None:
    """With ``end: 420``, failures begin at 110, 260 and 410 (before 420); the one that
    began at 410 lasts its whole repair (to 460), after ``end``; none begins at 560."""
    fault = MX_FAULT | {"start": 10, "end": 420, "random": {"between": 100, "repair": 50}}
    res, model, seen = run_with([fault], probes=(455.0, 465.0, 565.0))
    assert spans(model) == [("fault 0", "mx", t, t + 50.0) for t in (110.0, 260.0, 410.0)]
    assert seen == [(455.0, False), (465.0, True), (565.0, True)]
    assert res.stats["fault"]["fault 0: mx"] == {"failures": 3, "downtime": 150.0}


def test_a_scripted_fault_past_the_end_is_down_until_the_end() -> None:
    """A scripted fault from 1000 s to 5000 s is down at the horizon (1350 s): one
    failure, 350 s down within the run, no repair in the log."""
    res, model, _ = run_with([MX_FAULT | {"start": 1000, "end": 5000}])
    assert spans(model) == [("fault 0", "mx", 1000.0, None)]
    assert res.stats["fault"] == {"fault 0: mx": {"failures": 1, "downtime": 350.0}}


@pytest.mark.parametrize("start", [HORIZON, 2000.0])
def test_a_fault_starting_at_or_after_the_horizon_never_happens(start: float) -> None:
    """Nothing is down, nothing is drawn: the messages are those of the run without the
    fault, and run.json lists the fault with no failure."""
    plain = sim.run(tiny(), seed=7)
    random = {"random": {"between": {"dist": "exponential", "mean": 10}, "repair": 5}}
    res, model, _ = run_with([MX_FAULT | {"start": start, "end": start + 100}, MX_FAULT | {"start": start} | random])
    assert spans(model) == []
    assert res.stats["mx"]["mx"]["unanswered"] == 0
    assert res.stats["fault"] == {
        "fault 0: mx": {"failures": 0, "downtime": 0.0},
        "fault 1: mx": {"failures": 0, "downtime": 0.0},
    }
    assert res.messages.equals(plain.messages)


# --- on which streams -----------------------------------------------------------------


EXP = {"between": {"dist": "exponential", "mean": 200}, "repair": {"dist": "lognormal", "median": 30, "sigma": 1}}


def test_random_spans_come_from_the_streams_the_docs_name() -> None:
    """The k-th failure of node N under fault i is up for the k-th draw of stream
    ("fault", i, N, "between") after the last repair, down for the k-th draw of
    ("fault", i, N, "repair"): computed here from the streams themselves."""
    often = {"between": {"dist": "exponential", "mean": 100}, "repair": EXP["repair"]}
    _, model, _ = run_with([MX_FAULT | {"random": often}], seed=11)
    streams = Streams(11)
    between = streams.sampler(TimeExponential(dist="exponential", mean=100), "fault", "0", "mx", "between")
    repair = streams.sampler(TimeLogNormal(dist="lognormal", median=30, sigma=1), "fault", "0", "mx", "repair")
    expected: list[tuple[str, str, float, float | None]] = []
    t = between()
    while t < HORIZON:
        up = t + repair()
        expected.append(("fault 0", "mx", t, up if up <= HORIZON else None))
        t = up + between()
    assert len(expected) >= 3
    assert spans(model) == expected  # the same draws and the same sums: exact


def test_each_node_fails_on_its_own_stream() -> None:
    """Adding a node to ``nodes:`` or a fault after this one leaves the MX's spans as
    they were; the seed changes them; the same seed repeats them."""
    alone = spans(run_with([MX_FAULT | {"random": EXP}])[1])
    with_dns = spans(run_with([{"kind": "node", "nodes": ["mx", "dns"], "random": EXP}])[1])
    another = spans(run_with([MX_FAULT | {"random": EXP}, {"kind": "node", "node": "dns", "random": EXP}])[1])
    again = spans(run_with([MX_FAULT | {"random": EXP}])[1])
    other_seed = spans(run_with([MX_FAULT | {"random": EXP}], seed=8)[1])
    assert len(alone) >= 2
    assert [s for s in with_dns if s[1] == "mx"] == alone
    assert {s[1] for s in with_dns} == {"mx", "dns"}
    assert [s for s in another if s[0] == "fault 0"] == alone
    assert again == alone
    assert other_seed != alone


def test_same_seed_same_results_with_random_faults() -> None:
    """Random faults at the MX (refusing) and the resolver: two runs with one seed give
    the same messages and attempts; the faults did touch the mail."""
    faults = [MX_FAULT | {"answer": "refuse", "random": EXP}, {"kind": "node", "node": "dns", "random": EXP}]
    data = tiny_data(faults=faults)
    data["workload"][0]["interarrival"] = 5  # 70 messages, so that some meet a fault
    one = sim.run(parse_scenario(data), seed=3, trace=True)
    two = sim.run(parse_scenario(data), seed=3, trace=True)
    assert one.messages.equals(two.messages) and one.attempts.equals(two.attempts)
    assert one.stats["fault"] == two.stats["fault"]
    assert (one.attempts["outcome"] != "delivered").any()


# --- what run.json says -------------------------------------------------------------


def test_run_json_counts_a_scripted_fault(tmp_path: Path) -> None:
    """``components.fault`` in run.json: per fault (its name, else "fault N") and
    target, the failures and the seconds down: 100 s to 400 s is one failure, 300 s."""
    faults = [MX_FAULT | {"name": "maintenance", "start": 100, "end": 400, "crash": False},
              {"kind": "node", "nodes": ["dns", "mx"], "start": 1200, "end": 1300}]
    res, _, _ = run_with(faults)
    res.write(tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["components"]["fault"] == {
        "maintenance: mx": {"failures": 1, "downtime": 300.0},
        "fault 1: dns": {"failures": 1, "downtime": 100.0},
        "fault 1: mx": {"failures": 1, "downtime": 100.0},
    }
    assert "fault" not in sim.run(tiny(), seed=7).stats  # no faults: no counters


# --- reasons add up -----------------------------------------------------------------


@pytest.mark.parametrize(
    "outage, fault",
    [((100, 300), (200, 400)), ((200, 400), (100, 300))],
    ids=["outage first", "fault first"],
)
def test_a_fault_and_an_outage_add_up(outage: tuple[float, float], fault: tuple[float, float]) -> None:
    """The MX is down under the outage's reason and the fault's: up only when both are
    over. Whichever ends first (300 s), the other holds it down until 400 s."""
    data = tiny_data(faults=[MX_FAULT | {"start": fault[0], "end": fault[1]}])
    node(data, "mx")["outages"] = [{"start": outage[0], "end": outage[1]}]
    seen: list[tuple[float, bool]] = []

    def hook(model: Model) -> None:
        mx = model.node("mx")
        for t in (50.0, 150.0, 250.0, 350.0, 450.0):
            model.at(t, lambda: seen.append((model.env.now, mx.up)))

    sim.run(parse_scenario(data), seed=7, hook=hook)
    assert seen == [(50.0, True), (150.0, False), (250.0, False), (350.0, False), (450.0, True)]


def test_a_refusing_fault_and_a_silent_outage_together_are_silent() -> None:
    """While both hold the MX down, the silent one wins (a machine that is off refuses
    nothing); when the outage ends at 300 s the fault's refusal shows."""
    data = tiny_data(faults=[MX_FAULT | {"start": 100, "end": 400, "answer": "refuse"}])
    node(data, "mx")["outages"] = [{"start": 100, "end": 300, "answer": "none"}]
    seen: list[tuple[float, bool]] = []

    def hook(model: Model) -> None:
        mx = model.node("mx")
        for t in (250.0, 350.0):
            model.at(t, lambda: seen.append((model.env.now, mx.down_reply.silent)))

    sim.run(parse_scenario(data), seed=7, hook=hook)
    assert seen == [(250.0, True), (350.0, False)]


# --- bad input: one line, exit code 2 -----------------------------------------------


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


REGIONED = tiny_data()
for _n in REGIONED["topology"]["nodes"]:
    _n["region"] = "eu" if _n["id"] in ("mx", "store") else "us"

BAD = [
    ([MX_FAULT | {"start": 100}], "faults[0]", "a scripted fault needs an end (or give random: to fail at random)"),
    ([MX_FAULT | {"start": 100, "end": 100}], "faults[0]", "end (100.0) must be after start (100.0)"),
    ([MX_FAULT | {"nodes": ["dns"], "end": 10}], "faults[0]", "give node or nodes, not both"),
    ([{"kind": "node", "end": 10}], "faults[0]", "name the node that fails (node: ID, or nodes: [ID, ...])"),
    ([MX_FAULT | {"node": "nope", "end": 10}], "faults[0].node", "'nope' is not a node of the topology"),
    ([{"kind": "node", "nodes": ["mx", "nope"], "end": 10}], "faults[0].nodes[1]",
     "'nope' is not a node of the topology"),
    ([MX_FAULT | {"node": "r", "end": 10}], "faults[0].node",
     "'r' is a router node: it cannot fail by itself (cut it off with a link fault or a partition)"),
    ([MX_FAULT | {"node": "dns", "end": 10, "disk": "lost"}], "faults[0].disk",
     "'dns' is a resolver node: it has no queue or store to lose"),
    ([{"kind": "link", "a": "home", "b": "mx", "end": 10}], "faults[0]",
     "no edge between 'home' and 'mx' in topology.edges"),
    ([{"kind": "link", "a": "r", "b": "mx", "end": 10, "down": True, "latency": 0.1}], "faults[0]",
     "a link that is down carries nothing: give down, or latency/loss, not both"),
    ([{"kind": "partition", "nodes": ["home", "r", "mta", "dns", "mx", "store"], "end": 10}], "faults[0]",
     "the side cut off is the whole world: nothing is left on the other side"),
    ([{"kind": "partition", "region": "mars", "end": 10}], "faults[0].region",
     "no node is in region 'mars' (regions: eu, us)"),
    ([{"kind": "partition", "region": "eu", "nodes": ["mx"], "end": 10}], "faults[0]",
     "give the side cut off as nodes: [ID, ...] or region: NAME (one of them)"),
    ([MX_FAULT | {"random": {"between": 0, "repair": {"dist": "uniform", "low": 0, "high": 0}}}], "faults[0].random",
     "between and repair are both always 0: the node would fail and be repaired forever at one instant"),
    ([MX_FAULT | {"end": 10, "answer": "bounce"}], "faults[0].answer", "Input should be 'none' or 'refuse'"),
    ([MX_FAULT | {"end": 10, "name": "storm"}, {"kind": "node", "node": "dns", "end": 10, "name": "storm"}],
     "faults[1].name", "duplicate fault name 'storm'"),
    ([{"kind": "meteor", "end": 10}], "faults[0]",
     "Input tag 'meteor' found using 'kind' does not match any of the expected tags: 'node', 'link', 'partition'"),
]


@pytest.mark.parametrize("faults, key, problem", BAD, ids=[p for _, _, p in BAD])
def test_a_bad_fault_is_one_line(
    faults: list[dict[str, Any]], key: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {**REGIONED, "faults": faults}
    path = _write(tmp_path, data)
    assert_key_error(["validate", str(path)], capsys, path, key, problem)


def test_a_good_fault_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, {**REGIONED, "faults": [{"kind": "partition", "region": "eu", "end": 10}]})
    code, out, _ = cli(["validate", str(path)], capsys)
    assert code == 0 and "ok" in out


# --- the ready faults in topologies/ ----------------------------------------------


READY = sorted(p.name for p in (ROOT / "topologies").glob("fault-*.yaml"))


def test_the_library_has_the_faults_the_issue_asks() -> None:
    kinds = {name: {f.kind for f in load_scenario(ROOT / "topologies" / name).faults} for name in READY}
    assert {"fault-provider-outage.yaml", "fault-partition.yaml", "fault-resolver-outage.yaml",
            "fault-disk-failure.yaml", "fault-random.yaml"} <= set(READY)
    assert kinds["fault-partition.yaml"] == {"partition"}
    disk = load_scenario(ROOT / "topologies" / "fault-disk-failure.yaml").faults
    assert [f.disk for f in disk] == ["lost"]
    assert all(f.random is not None for f in load_scenario(ROOT / "topologies" / "fault-random.yaml").faults)


@pytest.mark.parametrize("name", READY)
def test_a_ready_fault_validates_and_says_what_it_shows(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "topologies" / name
    assert path.read_text().startswith("# ")  # the comment block at the top
    sc = load_scenario(path)
    assert sc.description and sc.faults and sc.name == path.stem
    code, out, err = cli(["validate", str(path)], capsys)
    assert code == 0, err


def test_the_resolver_outage_defers_the_company_s_mail_until_it_is_back() -> None:
    """fault-resolver-outage.yaml: shop-dns is silent from 30 to 60 min. Mail shop's
    people write before it is delivered in about a second (written 10 s before or
    earlier: mail written in the last instants is submitted, and looked up, after
    1,800 s, and waits like the rest); mail written during it waits at least until
    60 min; every row ends; mail to shop (other resolvers) is untouched."""
    res = sim.run(load_scenario(ROOT / "topologies" / "fault-resolver-outage.yaml"))
    m = res.messages
    assert (m["status"] != "in_flight").all()
    shop = m[(m["sender_domain"] == "shop.example") & (m["kind"] != "dsn") & (m["status"] == "delivered")]
    wait = shop["delivered"] - shop["created"]
    assert wait[shop["created"] < 1800 - 10].max() < 5
    during = shop[(shop["created"] > 1800 + 30) & (shop["created"] < 3600)]
    assert len(during) > 100 and (during["delivered"] >= 3600).all()
    assert (during["deferrals"] >= 1).all()
    to_shop = m[(m["recipient_domain"] == "shop.example") & (m["status"] == "delivered")]
    assert (to_shop["delivered"] - to_shop["created"]).max() < 5
    assert res.stats["fault"] == {"resolver crash: shop-dns": {"failures": 1, "downtime": 1800.0}}
    assert res.stats["resolver"]["shop-dns"]["timeouts"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", READY)
def test_a_ready_fault_runs_and_every_row_ends(name: str) -> None:
    res = sim.run(load_scenario(ROOT / "topologies" / name))
    assert not (res.messages["status"] == "in_flight").any()
    assert sum(row["failures"] for row in res.stats["fault"].values()) >= 1
