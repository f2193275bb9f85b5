"""The attempts table (--trace): one row per attempt at one server, hand-computed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import sim
from sim.config import parse_scenario
from sim.faces.cli import main
from tests.conftest import tiny, tiny_data
from tests.test_mta import two_mx

RELAY = 8 * 0.032 + 10_000 / 5.0e6  # mta-mx: 8 round trips of 0.032 s and 10 kB at 5 MB/s


def test_a_traced_message_shows_every_hop_at_its_hand_computed_times() -> None:
    res = sim.run(tiny(), trace=True)
    a = res.attempts
    assert a is not None
    first = a[a["id"] == 0].set_index("hop")
    assert list(first.index) == [0, 1, 2]
    # Submission: home -> mta, 9 round trips of 0.042 s and 10 kB at 1 MB/s.
    sub = first.loc[0]
    assert (sub["src"], sub["dst"], sub["outcome"]) == ("home", "mta", "delivered")
    assert (sub["start"], sub["end"]) == (100.0, pytest.approx(100.388, abs=1e-9))
    # Relay: after the 0.202 s MX lookup, 250 from the MX at the final ".".
    relay = first.loc[1]
    assert (relay["src"], relay["dst"], relay["reply"], relay["enhanced"]) == ("mta", "mx", 250, "2.0.0")
    assert relay["start"] == pytest.approx(100.59, abs=1e-9)
    assert relay["end"] == pytest.approx(100.59 + RELAY, abs=1e-9)
    assert (relay["attempt"], relay["host_order"], relay["outcome"]) == (1, 1, "delivered")
    # LMTP: after the 0.05 s scan; ends when the store has written it (delivered).
    lmtp = first.loc[2]
    assert (lmtp["src"], lmtp["dst"]) == ("mx", "store")
    assert lmtp["start"] == pytest.approx(relay["end"] + 0.05, abs=1e-9)
    assert lmtp["end"] == pytest.approx(res.messages.loc[0, "delivered"], abs=1e-9)
    # Joinable on id: every traced id is a row of the messages table.
    assert set(a["id"]) <= set(res.messages.index)


def test_tracing_changes_nothing_else_and_is_off_by_default() -> None:
    plain = sim.run(tiny())
    traced = sim.run(tiny(), trace=True)
    assert plain.attempts is None
    pd.testing.assert_frame_equal(plain.messages, traced.messages)


def test_fallback_and_retry_rows_say_what_each_server_did() -> None:
    # Primary down for good, backup refusing everything for the first attempt only: a
    # timeout at host 1, then the backup; both MX down for the first 200 s.
    data = two_mx()

    def outage(model: Any) -> None:
        for host in ("mx", "mx2"):
            model.node(host).set_up(False)
        model.at(200, lambda: model.node("mx2").set_up(True))

    res = sim.run(parse_scenario(data), trace=True, hook=outage)
    a = res.attempts
    assert a is not None
    rows = a[(a["id"] == 0) & (a["hop"] == 1)]
    # Attempt 1 at 100.59: mx times out (30 s), then mx2 times out (30 s): deferred.
    # Deferred at 160.59 (age 60.2 s: the 300 s minimum backoff, due 460.59); attempt 2
    # at the queue run of t=600, after a fresh 0.202 s lookup: mx times out,
    # then mx2 (up since 200) delivers.
    assert list(zip(rows["attempt"], rows["host_order"], rows["dst"], rows["outcome"])) == [
        (1, 1, "mx", "timeout"), (1, 2, "mx2", "deferred"),
        (2, 1, "mx", "timeout"), (2, 2, "mx2", "delivered"),
    ]
    assert rows["start"].iloc[1] == pytest.approx(130.59, abs=1e-9)
    assert rows["start"].iloc[2] == pytest.approx(600.202, abs=1e-9)
    assert res.messages.loc[0, "attempts"] == 2


def test_cli_trace_writes_attempts_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tiny.yaml"
    import yaml

    path.write_text(yaml.safe_dump(tiny_data()))
    for flag, present in ((["--trace"], True), ([], False)):
        out = tmp_path / f"out{present}"
        with pytest.raises(SystemExit) as info:
            main(["run", str(path), "--out", str(out), *flag])
        assert info.value.code == 0
        assert (out / "attempts.parquet").exists() == present
    a = pd.read_parquet(tmp_path / "outTrue" / "attempts.parquet")
    m = pd.read_parquet(tmp_path / "outTrue" / "messages.parquet")
    joined = a.merge(m, left_on="id", right_index=True)
    assert len(joined) == len(a) == 3 * len(m)
    capsys.readouterr()
