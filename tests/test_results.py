"""Results: the Python API, the files a run writes and what they carry."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import sim
from sim.faces.cli import main
from sim.simulation import summarize
from tests.conftest import tiny


def test_api_returns_messages_and_summary() -> None:
    res = sim.run(tiny(), seed=3)
    m = res.messages
    assert list(m.columns) == [
        "message_id", "sender_domain", "recipient_domain", "recipient_person", "kind", "size", "created", "submitted",
        "accepted", "delivered", "retrieved", "ended", "status", "attempts", "final_reply", "reason",
        "mx_host", "where",
    ]
    assert (m["message_id"] == m.index).all()
    s = res.summary()
    assert s.counts.to_dict() == {"created": 3, "in_flight": 0, "delivered": 3, "bounced": 0, "lost": 0}
    row = s.times.loc["delivery"]
    d = m["delivered"] - m["created"]
    assert (row["count"], row["mean"], row["max"]) == (3, pytest.approx(d.mean()), pytest.approx(d.max()))
    assert row["p50"] == pytest.approx(d.median())
    assert list(s.times.index) == [
        "delivery", "submission", "relay", "local delivery", "retrieval", "end to end",
    ]
    assert "delivered" in str(s)


def test_write_carries_config_seed_and_version(tmp_path: Path) -> None:
    res = sim.run(tiny(), seed=3)
    folder = res.write(tmp_path / "out")
    meta = json.loads((folder / "run.json").read_text())
    assert meta["seed"] == 3 and meta["scenario"]["seed"] == 3
    assert meta["mailflow_version"] == sim.__version__
    assert meta["scenario"]["topology"]["nodes"][2]["workers"] == 4
    assert meta["wall_time_s"] > 0
    assert meta["summary"]["counts"]["delivered"] == 3
    # The scenario in run.json is complete: it validates and reproduces the run.
    again = sim.run(sim.parse_scenario(meta["scenario"]))
    pd.testing.assert_frame_equal(again.messages, res.messages)

    table = pq.read_table(folder / "messages.parquet")
    provenance = json.loads(table.schema.metadata[b"mailflow"])
    assert provenance["seed"] == 3 and provenance["mailflow_version"] == sim.__version__
    assert provenance["scenario"] == meta["scenario"]
    back = pd.read_parquet(folder / "messages.parquet")
    pd.testing.assert_frame_equal(back, res.messages, check_categorical=False)


def test_cli_run_prints_summary_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--seed", "5", "--out", str(tmp_path / "r"), "--set", "duration=600"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert "delivered" in out and "end to end" in out and "p99" in out
    assert str(tmp_path / "r") in out
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["seed"] == 5 and meta["scenario"]["duration"] == 600
    assert meta["scenario"]["name"] == "default"


def test_cli_validate(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["validate", str(sim.config.default_scenario_path())])
    assert info.value.code == 0
    assert "ok (" in capsys.readouterr().out


def test_summary_by_group_matches_the_groups_alone() -> None:
    res = sim.run(sim.load_scenario())
    s = res.summary(by="kind")
    assert list(s.counts.index) == ["person", "transactional", "marketing"]
    assert s.counts["created"].sum() == len(res.messages)
    marketing = res.messages[res.messages["kind"] == "marketing"]
    alone = summarize(marketing)
    pd.testing.assert_frame_equal(s.times.loc["marketing"], alone.times)
    with pytest.raises(KeyError, match="no column 'nope'"):
        res.summary(by="nope")


def test_default_out_keeps_runs_with_different_overrides_apart() -> None:
    from sim.faces.cli import default_out

    sc = sim.load_scenario()
    plain = default_out(sc, None, [])
    assert plain == Path("results") / "default-seed1"
    assert default_out(sc, 4, []) == Path("results") / "default-seed4"
    a = default_out(sc, None, ["duration=7200"])
    b = default_out(sc, None, ["duration=600"])
    assert len({plain, a, b}) == 3
    assert a == default_out(sc, None, ["duration=7200"])  # the same overrides, the same folder
