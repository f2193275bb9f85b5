"""``mailflow trace`` (one message's journey) and ``mailflow compare`` (two runs or
sweeps side by side), on the tiny scenario whose every delay is known."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import sim
from sim.simulation.journey import (
    ABSENT, compare_counts, compare_sweeps, compare_times, journey, scenario_config,
    scenario_differences,
)
from tests.conftest import cli, tiny, tiny_data

# Message 0 of the tiny scenario (tests/test_attempts.py works these out):
SUBMIT_END = 100.388  # created at 100; 9 round trips of 0.042 s + 10 kB at 1 MB/s
RELAY_START = 100.59  # + the 0.202 s MX lookup
RELAY_END = RELAY_START + 8 * 0.032 + 10_000 / 5.0e6  # 100.848
LMTP_START = RELAY_END + 0.05  # the content scan: 100.898




@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("runs") / "traced"
    sim.run(tiny(), trace=True).write(folder)
    return folder


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("runs") / "plain"
    sim.run(tiny()).write(folder)
    return folder


def test_journey_is_the_messages_attempts_in_order_with_its_row(traced: Path) -> None:
    results = sim.Results.read(traced)
    steps = journey(results, 0)
    assert list(steps["hop"]) == [0, 1, 2]
    assert list(steps["outcome"]) == ["delivered"] * 3
    assert list(zip(steps["src"], steps["dst"])) == [("home", "mta"), ("mta", "mx"), ("mx", "store")]
    assert steps["start"].tolist() == pytest.approx([100.0, RELAY_START, LMTP_START], abs=1e-9)
    assert steps["duration"].tolist() == pytest.approx(
        [SUBMIT_END - 100.0, RELAY_END - RELAY_START, steps["end"].iloc[2] - LMTP_START], abs=1e-9
    )
    # The message's own columns ride along on every attempt.
    assert (steps["status"] == "delivered").all() and (steps["kind"] == "person").all()
    with pytest.raises(KeyError, match="no message row 99"):
        journey(results, 99)


def test_trace_prints_the_row_and_every_attempt_at_its_time(
    traced: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivered = sim.Results.read(traced).messages.loc[0, "delivered"]
    code, out, err = cli(["trace", str(traced), "--id", "0"], capsys)
    assert code == 0 and err == ""
    header = out.splitlines()[0]
    assert header.startswith("message 0: person example.org → example.org, 10,000 B, delivered")
    assert "created 100.000" in header and f"submitted {SUBMIT_END:.3f}" in header
    assert f"accepted {RELAY_END:.3f}" in header and f"delivered {delivered:,.3f}" in header
    lines = out.splitlines()
    submission = next(line for line in lines if "home → mta" in line)
    relay = next(line for line in lines if "mta → mx" in line)
    lmtp = next(line for line in lines if "mx → store" in line)
    assert "100.000" in submission and "100.388" in submission and "0.388" in submission
    assert f"{RELAY_START:.3f}" in relay and f"{RELAY_END:.3f}" in relay and "250 2.0.0" in relay
    assert f"{RELAY_END - RELAY_START:.3f}" in relay
    assert f"{LMTP_START:.3f}" in lmtp
    assert all("delivered" in line for line in (submission, relay, lmtp))
    # In order: submission, relay, LMTP.
    assert lines.index(submission) < lines.index(relay) < lines.index(lmtp)


def test_trace_without_attempts_prints_the_row_and_says_to_rerun(
    plain: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(["trace", str(plain), "--id", "1"], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("message 1: person") and "created 200.000" in lines[0]
    assert "--trace" in lines[1]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--id", "0"], "not a run folder"),  # the folder exists, holds no run
        (["--id", "3"], "no such message"),  # the tiny run has ids 0 to 2
        (["--id", "-1"], "no such message"),
        (["--id", "x"], "valid integer"),
    ],
)
def test_trace_errors_are_one_line_with_exit_2(
    args: list[str], words: str, traced: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path if words == "not a run folder" else traced
    code, out, err = cli(["trace", str(folder), *args], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err


def test_compare_a_run_with_itself_shows_no_difference(
    traced: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = sim.Results.read(traced)
    s = results.summary()
    counts = compare_counts(s, s)
    assert (counts["diff"] == 0).all()
    times = compare_times(s, s)
    numbers = times.dropna(subset=["a"])
    assert len(numbers) > 0 and (numbers["diff"] == 0).all() and (numbers["ratio"] == 1).all()
    assert scenario_differences(scenario_config(results), scenario_config(results)) == []
    code, out, err = cli(["compare", str(traced), str(traced)], capsys)
    assert code == 0 and err == ""
    assert "scenarios: no differences" in out
    delivered = next(line for line in out.splitlines() if line.strip("│ ").startswith("delivered"))
    assert "1.000" in delivered and "+" not in delivered


def test_compare_two_runs_lists_the_differing_key_and_the_counts(
    traced: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # B runs twice as long (--set duration=700): twice the arrivals.
    import yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_data()))
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    assert cli(["run", str(path), "--out", str(run_a)], capsys)[0] == 0
    assert cli(["run", str(path), "--out", str(run_b), "--set", "duration=700"], capsys)[0] == 0
    a, b = sim.Results.read(run_a), sim.Results.read(run_b)
    diffs = scenario_differences(scenario_config(a), scenario_config(b))
    assert diffs == [("duration", 350.0, 700.0)]
    code, out, err = cli(["compare", str(run_a), str(run_b)], capsys)
    assert code == 0 and err == ""
    assert "scenarios: 1 key differs" in out and "  duration: 350.0 → 700.0" in out
    n_a, n_b = len(a.messages), len(b.messages)
    assert n_b > n_a
    created = next(line for line in out.splitlines() if line.strip("│ ").startswith("created"))
    assert f"+{n_b - n_a}" in created and f"{n_b / n_a:.3f}" in created
    counts = compare_counts(a.summary(), b.summary())
    delivered_a = int((a.messages["status"] == "delivered").sum())
    delivered_b = int((b.messages["status"] == "delivered").sum())
    assert counts.loc["delivered", "diff"] == delivered_b - delivered_a


def test_scenario_differences_name_list_elements_and_absent_keys() -> None:
    a = {"duration": 10, "nodes": [{"id": "mx", "max": 5}, {"id": "mta"}], "x": {"y": 1}}
    b = {"duration": 10, "nodes": [{"id": "mx", "max": 2}], "x": {"y": 1, "z": 3}}
    assert scenario_differences(a, b) == [
        ("nodes[mx].max", 5, 2), ("nodes[mta]", {"id": "mta"}, ABSENT), ("x.z", ABSENT, 3),
    ]


def test_compare_sweeps_means_points_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "topology.nodes[mx].max_connections"

    def sweep(name: str, p50: list[float], censored: list[bool]) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        pd.DataFrame(
            {key: [1, 1, 2, 2], "replication": [0, 1, 0, 1], "seed": [1, 2, 3, 4], "delivery_p50": p50,
             "delivery_p50_censored": censored}
        ).to_parquet(folder / "summary.parquet")
        return folder

    a = sweep("a", [1.0, 3.0, 5.0, 7.0], [False, False, False, True])
    b = sweep("b", [2.0, 4.0, 5.0, 9.0], [False] * 4)
    frame = compare_sweeps(pd.read_parquet(a / "summary.parquet"), pd.read_parquet(b / "summary.parquet"))
    assert frame.loc[(1, "delivery_p50")].tolist()[:3] == [2.0, 3.0, 1.0]  # means 2 and 3
    assert frame.loc[(2, "delivery_p50"), "diff"] == 1.0  # means 6 and 7
    # One censored replication marks its point's mean (and the difference), not the other point's.
    assert frame["a_censored"].tolist() == [False, True] and not frame["b_censored"].any()
    code, out, err = cli(["compare", str(a), str(b)], capsys)
    assert code == 0 and err == "" and "delivery_p50" in out and key in out
    rows = [line for line in out.splitlines() if "delivery_p50" in line]
    assert "~6" in rows[1] and "~+1" in rows[1] and "~" not in rows[0]
    # Sweeps that vary different keys cannot be matched point by point: one line.
    other = tmp_path / "other"
    other.mkdir()
    pd.read_parquet(a / "summary.parquet").rename(columns={key: "drain"}).to_parquet(other / "summary.parquet")
    code, out, err = cli(["compare", str(a), str(other)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "vary different keys" in err
    # A folder with neither a run nor a summary.parquet, or a run against a sweep: one line.
    (tmp_path / "empty").mkdir()
    code, out, err = cli(["compare", str(a), str(tmp_path / "empty")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "summary.parquet" in err


def test_compare_bad_folder_is_one_line_exit_2(
    traced: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(["compare", str(traced), str(tmp_path / "nowhere")], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "nowhere" in err


def test_trace_of_a_retried_message_shows_timeouts_and_the_deferral(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both MX down until mx2 comes up at 200 s (tests/test_attempts.py): attempt 1 times
    # out at mx and mx2 (deferred), attempt 2 at 600.202 times out at mx, mx2 delivers.
    from typing import Any

    from tests.test_mta import two_mx

    def outage(model: Any) -> None:
        for host in ("mx", "mx2"):
            model.node(host).set_up(False)
        model.at(200, lambda: model.node("mx2").set_up(True))

    sim.run(sim.parse_scenario(two_mx()), trace=True, hook=outage).write(tmp_path / "r")
    code, out, err = cli(["trace", str(tmp_path / "r"), "--id", "0"], capsys)
    assert code == 0 and "attempts 2" in out.splitlines()[0]
    relay = [line for line in out.splitlines() if "mta → mx" in line]
    assert [("timeout" in r, "deferred" in r, "delivered" in r) for r in relay] == [
        (True, False, False), (False, True, False), (True, False, False), (False, False, True),
    ]
    assert "100.590" in relay[0] and "130.590" in relay[1] and "600.202" in relay[2]
    assert all("- 4.4.1" in r for r in relay[:3]) and "250 2.0.0" in relay[3]
