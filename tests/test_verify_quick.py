"""``mailflow verify --quick`` for every group passes (issue 12: part of make test)."""

from __future__ import annotations

import pytest

from tests.conftest import cli


def test_mailflow_verify_quick_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["verify", "--quick"], capsys)
    assert code == 0, out + err
    assert "cases pass" in out and "FAIL" not in out
    for group in ("queueing", "retry", "concurrency", "dns", "smtp", "reality"):  # every group ran
        assert f"  {group}: " in out, group
