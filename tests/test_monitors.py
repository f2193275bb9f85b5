"""Time-series monitors: exact time-averages, Little's law, no extra events, the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim.core.counting import CountingEnvironment
from sim import build, run
from sim.config import parse_scenario
from sim.config.generate import internet
from sim.core.monitors import Level, Monitors
from sim.simulation.results import Results
from tests.conftest import node, tiny_data
from tests.test_errors import cli, write
from tests.test_queueing import BANDWIDTH, C, LAM, MU, erlang_c_wait, mmc_world
from tests.test_timeline import LOOKUP, MTA_DNS, MTA_MX, leg


def test_level_interval_means_by_hand() -> None:
    monitors = Monitors(10.0, 25.0)  # grid 10, 20 and the end, 25
    level = monitors.level("mta", "q")
    level.add(0.0, 3)  # 3 over [0, 2)
    level.add(2.0, -1)  # 2 over [2, 5)
    level.set(5.0, 1)  # 1 over [5, 12)
    level.add(12.0, -1)  # 0 over [12, 13)
    level.add(13.0, 4)  # 4 from 13 on
    level.set(20.0, 7)  # at a grid point: belongs to the next interval
    monitors.close(25.0)
    f = monitors.frame()
    assert f["time"].tolist() == [10.0, 20.0, 25.0]
    assert f["mean"].tolist() == pytest.approx([(6 + 6 + 5) / 10, (2 + 0 + 28) / 10, 7.0])
    assert f["max"].tolist() == [3.0, 4.0, 7.0]
    assert f["value"].tolist() == [1.0, 4.0, 7.0]
    assert level.max == 7.0
    assert level.mean(25.0) == pytest.approx((17 + 30 + 35) / 25)


def test_quiet_level_is_closed_at_the_end_and_bad_steps_are_refused() -> None:
    level = Level(3.0, 10.0, value=2.0)
    level.close(10.0)
    assert list(level.times) == [3.0, 6.0, 9.0, 10.0]
    assert list(level.means) == [2.0] * 4 and list(level.values) == [2.0] * 4
    level.close(10.0)  # closing again adds nothing
    assert len(level.times) == 4
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            Monitors(bad, 100.0)
    with pytest.raises(ValueError, match="points"):
        Monitors(1e-6, 100.0)


def test_active_queue_of_a_burst_by_hand() -> None:
    # Three messages submitted together to one delivery agent: the first goes straight
    # to the agent, so the active queue holds 2 for the first session (DNS miss), 1 for
    # the second (DNS cached), then 0.
    data = tiny_data()
    node(data, "mta").update(workers=1)
    data["workload"][0].pop("interarrival")
    data["workload"][0]["batches"] = [{"at": 10, "count": 3}]
    res = run(parse_scenario(data), sample_every=10)
    m = res.messages
    assert m["submitted"].nunique() == 1
    submitted = float(m["submitted"].iloc[0])
    quit_ = 2 * MTA_MX[0]  # one round trip
    first = 2 * MTA_DNS + LOOKUP + leg(MTA_MX, 8) + quit_
    second = 2 * MTA_DNS + leg(MTA_MX, 8) + quit_
    assert 10 < submitted and submitted + first + second < 20  # all in [10, 20)
    ts = res.timeseries
    assert ts is not None
    q = ts[(ts["component"] == "mta") & (ts["metric"] == "active_queue")].set_index("time")
    assert len(q) == 135  # 1350 s in steps of 10 s
    assert q.loc[10.0, "mean"] == 0.0 and q.loc[10.0, "max"] == 0.0
    assert q.loc[20.0, "mean"] == pytest.approx((2 * first + second) / 10, abs=1e-9)
    assert q.loc[20.0, "max"] == 2.0 and q.loc[20.0, "value"] == 0.0
    assert (q.loc[30.0:, "max"] == 0.0).all()
    sessions = ts[(ts["component"] == "mta") & (ts["metric"] == "sessions")].set_index("time")
    # Three submission sessions at once, then one delivery session at a time.
    assert sessions.loc[20.0, "max"] == 3.0 and sessions.loc[20.0, "value"] == 0.0
    writes = ts[(ts["component"] == "store") & (ts["metric"] == "writes")]
    assert writes["max"].max() == 1.0 and writes["value"].iloc[-1] == 0.0


def _area(series: pd.DataFrame) -> float:
    """The integral of a level over the run, from its interval means."""
    times = series["time"].to_numpy()
    return float(np.sum(series["mean"].to_numpy() * np.diff(times, prepend=0.0)))


def test_littles_law_in_the_mmc_mta() -> None:
    duration = 30_000 / LAM
    res = run(parse_scenario(mmc_world(seed=11, duration=duration)), sample_every=60)
    ts = res.timeseries
    assert ts is not None
    q = ts[(ts["component"] == "mta") & (ts["metric"] == "active_queue")]
    horizon = res.scenario.horizon
    assert q["time"].iloc[-1] == horizon
    mean_queue = _area(q) / horizon
    m = res.messages
    done = m.dropna(subset=["accepted"])
    wait = done["accepted"] - done["submitted"] - done["size"] / BANDWIDTH
    lam = m["submitted"].notna().sum() / horizon
    assert len(done) > 29_000
    assert mean_queue == pytest.approx(lam * wait.mean(), rel=0.02)
    # And near the M/M/c figure (a loose check: one short run's sampling error).
    assert mean_queue == pytest.approx(LAM * erlang_c_wait(C, LAM, MU), rel=0.25)


def _busy_world() -> Any:
    """A small generated Internet, one attempt per destination, two scanners per MX."""
    data = internet(domains=4, rate=8.0, duration=900, drain=1200, seed=3)
    data["topology"]["nodes"] = [
        {**n, "destination_concurrency_limit": 1} if n["kind"] == "mta"
        else {**n, "workers": 2} if n["kind"] == "mx" else n
        for n in data["topology"]["nodes"]
    ]
    return parse_scenario(data)


def _outage(model: Any) -> None:
    """Every MX down from 100 s to 700 s: deferrals and retries."""
    for component in model.nodes.values():
        if type(component).__name__ == "MX":
            model.at(100, lambda c=component: c.set_up(False))
            model.at(700, lambda c=component: c.set_up(True))


def test_monitors_off_by_default_cost_nothing_and_change_nothing() -> None:
    sc = _busy_world()
    counts = []
    for every in (None, 30.0):
        model = build(sc, env=CountingEnvironment(), sample_every=every)
        _outage(model)
        model.run()
        counts.append((model.env.scheduled, model.results(_outage)))  # type: ignore[attr-defined]
    (off_events, off), (on_events, on) = counts
    assert off.timeseries is None and on.timeseries is not None
    assert off_events == on_events
    pd.testing.assert_frame_equal(off.messages, on.messages)
    assert run(sc).timeseries is None
    assert (off.messages["attempts"] > 1).any()  # the outage made retries


def test_levels_follow_the_counters_at_any_instant() -> None:
    sc = _busy_world()
    model = build(sc, sample_every=45.0)
    _outage(model)
    monitors = model.monitors
    assert monitors is not None
    seen = {"deferred": 0.0, "parked": 0.0, "scan_queue": 0.0, "writes": 0.0}
    for until in np.linspace(50, sc.horizon, 23):
        model.run(until=float(until))
        for node_id, component in model.nodes.items():
            kind = type(component).__name__
            expected: dict[str, float] = {}
            if kind == "MTA":
                expected = {
                    "active_queue": len(component.active),
                    "deferred": len(component.deferred),
                    "sessions": component.in_session,
                    "parked": sum(len(d.parked) for d in component.destinations.values()),
                }
            elif kind == "MX":
                expected = {
                    "scan_queue": len(component.queue),
                    "scanners_busy": component.in_work,
                    "connections": component.connections,
                }
            elif kind == "Mailbox":
                capacity = component.capacity  # sampled runs follow every store's bytes
                capacity.advance(model.env.now)  # the frees due, applied lazily
                expected = {"writes": component.slots.busy, "occupancy": capacity.used,
                            "full_mailboxes": capacity.full_mailboxes}
            for metric, value in expected.items():
                level = monitors.levels[(node_id, metric)]
                assert level.value == value, (until, node_id, metric)
                if metric in seen:
                    seen[metric] = max(seen[metric], level.max)
    assert all(peak > 0 for peak in seen.values()), seen  # every path was exercised
    ts = model.results(_outage).timeseries
    assert ts is not None
    assert set(ts["metric"].cat.categories) == {
        "active_queue", "deferred", "sessions", "parked", "scan_queue", "scanners_busy",
        "connections", "writes", "occupancy", "full_mailboxes",
    }
    per_series = ts.groupby(["component", "metric"], observed=True).size()
    assert (per_series == int(np.ceil(sc.horizon / 45.0))).all()
    # A time-weighted mean of a level held constant rounds to within a few ulps of it
    # (a store's occupancy is ~1e8 bytes): relative slack, not absolute.
    assert (ts["max"] >= ts["mean"] * (1 - 1e-12) - 1e-9).all() and (ts["max"] >= ts["value"]).all()


def test_cli_sample_every_writes_timeseries_and_read_loads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, tiny_data(), "tiny.yaml")
    out = tmp_path / "run"
    code, text, err = cli(["run", str(path), "--out", str(out), "--sample-every", "50"], capsys)
    assert code == 0, err
    assert "timeseries.parquet" in text
    back = Results.read(out)
    assert back.timeseries is not None
    expected = run(parse_scenario(tiny_data()), sample_every=50).timeseries
    assert expected is not None
    pd.testing.assert_frame_equal(back.timeseries, expected)
    assert len(expected) == 27 * expected.groupby(["component", "metric"], observed=True).ngroups

    out2 = tmp_path / "run2"
    code, _, err = cli(["run", str(path), "--out", str(out2), "--timeseries"], capsys)
    assert code == 0, err
    ts = pd.read_parquet(out2 / "timeseries.parquet")
    assert list(ts.columns) == ["time", "component", "metric", "mean", "max", "value"]
    assert ts["time"].nunique() == 100 and ts["time"].max() == 1350.0

    out3 = tmp_path / "run3"
    code, _, _ = cli(["run", str(path), "--out", str(out3)], capsys)
    assert code == 0 and not (out3 / "timeseries.parquet").exists()
    assert Results.read(out3).timeseries is None
    code, _, err = cli(["run", str(path), "--out", str(out3), "--sample-every", "0"], capsys)
    assert code == 2
    code, _, err = cli(["run", str(path), "--out", str(out3), "--sample-every", "soon"], capsys)
    assert code == 2 and err.strip().splitlines() == [
        "mailflow: --sample-every soon: Input should be a valid number of seconds, optionally with a unit (ms, s, m, h or d)"
    ]
    out4 = tmp_path / "run4"
    code, _, _ = cli(["run", str(path), "--out", str(out4), "--sample-every", "15m"], capsys)
    assert code == 0 and pd.read_parquet(out4 / "timeseries.parquet")["time"].iloc[0] == 900.0
