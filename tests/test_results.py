"""Results: the Python API, the files a run writes and what they carry."""

from __future__ import annotations

import json
import re
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
        "message_id", "parent_id", "sender_domain", "recipient_domain", "recipient_person", "sender_person", "kind",
        "action", "size",
        "created", "submitted",
        "accepted", "delivered", "retrieved", "synced", "read", "ended", "status", "attempts", "deferrals",
        "final_reply", "reason", "mx_host", "where", "access", "folder", "copies",
    ]
    assert (m["message_id"] == m.index).all()
    assert list(m["folder"]) == ["inbox"] * 3  # every delivered row not junked
    s = res.summary()
    assert s.counts.to_dict() == {"created": 3, "in_flight": 0, "delivered": 3, "bounced": 0, "lost": 0}
    row = s.times.loc["delivery"]
    d = m["delivered"] - m["created"]
    # Nothing in flight at the end: the restricted mean is the plain mean, and no
    # statistic is flagged as censored.
    assert (row["count"], row["rmean"], row["max"]) == (3, pytest.approx(d.mean()), pytest.approx(d.max()))
    assert row["censored"] == 0 and not row[[c for c in s.times.columns if c.endswith("_censored")]].any()
    assert row["p50"] == pytest.approx(d.median())
    assert list(s.times.index) == [
        "delivery", "submission", "relay", "local delivery", "retrieval", "sync", "end to end",
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
    # Without a file, as run and show: the shipped scenario, overrides applied.
    with pytest.raises(SystemExit) as info:
        main(["validate", "--set", "drain=-1"])
    assert info.value.code == 2 and "drain" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["validate", "--set", "drain=60"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("default: ok (")


def test_cli_validate_counts_in_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One of a thing is singular: the tiny world has one domain and one source."""
    import yaml

    from tests.conftest import cli, tiny_data

    data = tiny_data()
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    code, out, _ = cli(["validate", str(path)], capsys)
    nodes = len(data["topology"]["nodes"])
    assert (len(data["domains"]), len(data["workload"])) == (1, 1) and nodes > 1
    assert (code, out) == (0, f"{path}: ok ({nodes} nodes, 1 domain, 1 source)\n")


def test_summary_by_group_matches_the_groups_alone() -> None:
    res = sim.run(sim.load_scenario())
    s = res.summary(by="kind")
    assert list(s.counts.index) == ["person", "transactional", "marketing"]  # DSNs left out
    assert s.counts["created"].sum() == (res.messages["kind"] != "dsn").sum() == len(res.messages) - s.dsn_rows
    with_dsn = res.summary(by="kind", dsn=True)
    assert list(with_dsn.counts.index) == ["person", "transactional", "marketing", "dsn"]
    assert with_dsn.counts["created"].sum() == len(res.messages)
    marketing = res.messages[res.messages["kind"] == "marketing"]
    alone = summarize(marketing, horizon=res.scenario.horizon)
    pd.testing.assert_frame_equal(s.times.loc["marketing"], alone.times)
    with pytest.raises(KeyError, match="no column 'nope'"):
        res.summary(by="nope")


def test_default_out_is_unique_per_resolved_scenario_and_seed(tmp_path: Path) -> None:
    from sim.faces.cli import default_out
    from sim.simulation.results import run_id

    sc = sim.load_scenario()
    plain = default_out(sc, None)
    assert plain.parent == Path("results")
    assert re.fullmatch(r"default-seed1-[0-9a-f]{8}", plain.name)
    assert plain.name.endswith(run_id(sc)[:8])
    assert default_out(sc, 4).name.startswith("default-seed4-")
    a = default_out(sim.load_scenario(None, ["duration=7200"]), None)
    b = default_out(sim.load_scenario(None, ["duration=1200"]), None)
    assert len({plain, a, b}) == 3
    # The resolved scenario counts, not how it was spelled: an override that changes
    # nothing, or the seed set in the file rather than by --seed, gives the same folder.
    assert default_out(sim.load_scenario(None, ["duration=3600"]), None) == plain
    assert default_out(sim.load_scenario(None, ["seed=4"]), None) == default_out(sc, 4)
    # An edited copy under the same name is another scenario: another folder.
    text = sim.config.default_scenario_path().read_text()
    edited = tmp_path / "default.yaml"
    edited.write_text(text.replace("drain: 1800", "drain: 1700"))
    copy = sim.load_scenario(edited)
    assert copy.name == sc.name and default_out(copy, None) != plain


def test_results_read_back_equal_what_was_written(tmp_path: Path) -> None:
    res = sim.run(tiny(), seed=3, trace=True)
    back = sim.Results.read(res.write(tmp_path / "r"))
    pd.testing.assert_frame_equal(back.messages, res.messages)
    assert back.attempts is not None and res.attempts is not None
    pd.testing.assert_frame_equal(back.attempts, res.attempts)
    assert (back.seed, back.run_id, back.stats) == (res.seed, res.run_id, res.stats)
    pd.testing.assert_frame_equal(back.summary().times, res.summary().times)
    with pytest.raises(FileNotFoundError, match="no run here"):
        sim.Results.read(tmp_path)
