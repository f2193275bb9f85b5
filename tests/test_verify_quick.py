"""``mailflow verify --quick`` for every group passes (issue 12: part of make test), and
each scored case's sample is large enough to tell: its 95 % interval is no wider than
its tolerance, so a pass is not luck of the seed. One test, so that the quick set runs
once even when pytest spreads tests over workers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sim.verification import GROUPS
from tests.conftest import cli


def test_mailflow_verify_quick_passes_with_intervals_within_tolerance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(["verify", "--quick", "--out", str(tmp_path)], capsys)
    assert code == 0, out + err
    frame = pd.read_csv(tmp_path / "verification.csv", keep_default_na=False)
    assert set(frame["group"]) == set(GROUPS)  # every group ran
    assert not (frame["result"] == "FAIL").any(), frame[frame["result"] == "FAIL"]
    scored = frame[frame["result"] != "compare"].astype({"ci_low": float, "ci_high": float, "tolerance": float})
    wide = scored[(scored["ci_high"] - scored["ci_low"]) / 2 > scored["tolerance"]]
    assert wide.empty, wide[["group", "case", "ci_low", "ci_high", "tolerance"]]
    assert all((tmp_path / f"verify-{g}.png").stat().st_size > 0 for g in GROUPS)
