"""``mailflow verify``: the case framework (sim/verification). The cases themselves are
checked in tests/test_verify_*.py, each with a deliberately broken model that fails it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from sim.verification import CASES, Measured, case, cases, run_cases, table
from tests.conftest import cli


@pytest.fixture
def fake_cases() -> Iterator[None]:
    """Three cases in the smtp group: one within its tolerance, one outside, one that
    raises; and a reality comparison. Removed afterwards."""
    # The groups' own cases are registered when their modules are first imported: import
    # them now and set them aside, so that only the fakes run here.
    cases(groups=["smtp", "reality"])
    before = list(CASES)
    CASES[:] = [c for c in CASES if c.group not in ("smtp", "reality")]
    case("smtp", "fake: within 1 %", "s", 10.0, "by hand", 0.01)(lambda quick, seed: Measured(10.09, 10.0, 10.2, 5))
    case("smtp", "fake: outside 0.5 s", "s", 10.0, "by hand", 0.5, relative=False)(
        lambda quick, seed: Measured(10.6, 10.55, 10.65, 5))
    case("smtp", "fake: full only", "s", 1.0, "by hand", 0.1, quick=False)(lambda quick, seed: Measured(1.0, 1, 1))

    def broken(quick: bool, seed: int) -> Measured:
        raise RuntimeError("no such node")

    case("smtp", "fake: raises", "s", 1.0, "by hand", 0.1)(broken)
    case("reality", "fake: delays", "s", 60.0, "a paper", 0.0, scored=False,
         note="the paper measured bounces, not deliveries")(lambda quick, seed: Measured(90, 80, 100))
    yield
    CASES[:] = before


def test_cases_are_judged_by_their_stated_tolerance(fake_cases: None) -> None:
    outcomes = run_cases(quick=True, groups=["smtp", "reality"])
    frame = table(outcomes).set_index("case")
    assert list(frame.index) == ["fake: within 1 %", "fake: outside 0.5 s", "fake: raises", "fake: delays"]
    assert frame.loc["fake: within 1 %", "result"] == "pass"  # |10.09 - 10| <= 0.1
    assert frame.loc["fake: within 1 %", "tolerance"] == pytest.approx(0.1)
    assert frame.loc["fake: outside 0.5 s", "result"] == "FAIL"  # |10.6 - 10| > 0.5
    assert frame.loc["fake: raises", "result"] == "FAIL"
    assert frame.loc["fake: raises", "error"] == "RuntimeError: no such node"
    assert frame.loc["fake: delays", "result"] == "compare"
    full = table(run_cases(quick=False, groups=["smtp"]))
    assert "fake: full only" in set(full["case"])


def test_mailflow_verify_fails_with_exit_code_1_and_writes_the_table(
    fake_cases: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(["verify", "--quick", "--only", "smtp", "--out", str(tmp_path)], capsys)
    assert code == 1
    assert "1 of 3 cases pass; 0 comparisons with reality" in out
    written = pd.read_csv(tmp_path / "verification.csv")
    assert list(written["result"]) == ["pass", "FAIL", "FAIL"]


def test_a_registered_case_name_is_unique(fake_cases: None) -> None:
    with pytest.raises(ValueError, match="registered twice"):
        case("smtp", "fake: within 1 %", "s", 1.0, "x", 0.1)(lambda quick, seed: Measured(1, 1, 1))


def test_an_unknown_group_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["verify", "--only", "bogus"], capsys)
    assert code == 2 and out == ""
    assert err.strip() == "mailflow: --only bogus: no such group (groups: queueing, retry, concurrency, dns, smtp, reality)"


def test_comparisons_say_how_to_read_them(fake_cases: None, capsys: pytest.CaptureFixture[str]) -> None:
    """A comparison's note is in the table (and so in verification.csv) and printed."""
    frame = table(run_cases(quick=True, groups=["reality"])).set_index("case")
    assert frame.loc["fake: delays", "note"] == "the paper measured bounces, not deliveries"
    code, out, _ = cli(["verify", "--quick", "--only", "reality"], capsys)
    assert code == 0
    assert "reality: fake: delays: the paper measured bounces, not deliveries" in out


def test_an_out_folder_that_cannot_be_made_fails_before_any_case_runs(
    fake_cases: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, out, err = cli(["verify", "--quick", "--only", "smtp", "--out", str(blocker / "sub")], capsys)
    assert code == 2 and out == ""  # nothing ran
    assert err.startswith(f"mailflow: --out {blocker / 'sub'}: cannot make the folder")


def test_a_run_without_cases_verifies_nothing_and_fails(fake_cases: None, capsys: pytest.CaptureFixture[str]) -> None:
    CASES[:] = [c for c in CASES if c.group != "smtp"]
    code, out, _ = cli(["verify", "--quick", "--only", "smtp"], capsys)
    assert code == 1 and "no case ran: nothing was verified" in out


def test_exact_cases_show_enough_digits_to_see_their_tolerance(
    fake_cases: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reference of 433,129.814 s with a tolerance of 1 ms prints to the millisecond."""
    case("smtp", "fake: exact", "s", 433129.814, "by hand", 0.001, relative=False)(
        lambda quick, seed: Measured(433129.8141, 433129.8141, 433129.8141))
    code, out, _ = cli(["verify", "--quick", "--only", "smtp"], capsys)
    assert "433129.814 s" in out and "433129.8141 [" in out


def test_a_run_without_cases_writes_an_empty_table_with_its_columns(
    fake_cases: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    CASES[:] = [c for c in CASES if c.group != "smtp"]
    code, _, err = cli(["verify", "--quick", "--only", "smtp", "--out", str(tmp_path)], capsys)
    assert code == 1 and err == ""  # no traceback: nothing verified
    assert "note" in (tmp_path / "verification.csv").read_text().splitlines()[0]


def test_the_csv_keeps_the_comparisons_notes(fake_cases: None, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["verify", "--quick", "--only", "reality", "--out", str(tmp_path)], capsys)[0] == 0
    written = pd.read_csv(tmp_path / "verification.csv")
    assert list(written["note"]) == ["the paper measured bounces, not deliveries"]


def test_digits_for_any_reference_and_tolerance() -> None:
    from sim.faces.cli import _digits

    assert _digits(433129.814, 0.001) == 11  # 4.3e8 tolerances: 9 digits, and 2 more
    for ref, tol in ((1, float("inf")), (float("inf"), 1), (1e-320, 1e10), (0, 0.1), (5, 0), (float("nan"), 1)):
        assert _digits(ref, tol) == 4


def test_a_group_asked_for_that_ran_nothing_fails(fake_cases: None, capsys: pytest.CaptureFixture[str]) -> None:
    """--only smtp --only reality, with the smtp group empty: the reality comparison ran,
    but smtp verified nothing, and the command says so and fails."""
    CASES[:] = [c for c in CASES if c.group != "smtp"]
    code, out, _ = cli(["verify", "--quick", "--only", "smtp", "--only", "reality"], capsys)
    assert code == 1 and "smtp: no case ran" in out


def test_the_plots_draw_a_case_that_raised(fake_cases: None, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(["verify", "--quick", "--only", "smtp", "--out", str(tmp_path)], capsys)
    assert code == 1 and err == ""  # the failures, no traceback from drawing the raised case
    assert (tmp_path / "verify-smtp.png").stat().st_size > 0


def test_the_command_says_how_many_intervals_are_within_their_tolerance(
    fake_cases: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Within 1 %: half-width 0.1 = its tolerance 0.1; outside 0.5 s: 0.05 <= 0.5; the
    case that raised has no interval. A full-only case does not run in --quick."""
    code, out, _ = cli(["verify", "--quick", "--only", "smtp"], capsys)
    assert "judged on the simulated value; 2 of 3 cases' 95% intervals are within ± their tolerance" in out
    case("smtp", "fake: wide", "s", 10.0, "by hand", 0.01)(lambda quick, seed: Measured(10.0, 9.8, 10.2, 5))
    code, out, _ = cli(["verify", "--quick", "--only", "smtp"], capsys)
    assert "2 of 4 cases' 95% intervals" in out  # ±0.2 is wider than ±0.1, though its value passes


def test_a_comparison_of_0_is_drawn_at_the_floor_of_its_log_axis() -> None:
    """A silent loss of 0 against a published 0.5 %: no dot could sit at 0 on a log axis,
    so it is a marker at the panel's floor, labelled 0, inside the axis' limits."""
    from sim.verification.plots import figure

    frame = pd.DataFrame({
        "case": ["loss", "delay"], "unit": ["share", "s"], "reference": [0.005, 60.0],
        "simulated": [0.0, 1.2], "ci_low": [0.0, 1.0], "ci_high": [0.0, 1.4], "tolerance": [float("nan")] * 2,
        "result": ["compare", "compare"],
    })
    fig = figure("reality", frame)
    assert fig is not None
    ax = fig.axes[-1]
    labels = [t for t in ax.texts if t.get_text() == "0"]
    assert len(labels) == 1
    floor, y = labels[0].xy
    assert y == 1  # the first row, drawn at the top
    assert 0 < floor < 1.0 / 60.0  # below the smallest value drawn (1.0 / 60)
    points = [tuple(p) for c in ax.collections for p in c.get_offsets()]
    assert (floor, 1) in points  # the marker itself, not only its label
    left, _ = ax.get_xlim()
    assert left < floor  # on the panel, not cut off


def test_reality_runs_on_the_provider_share_world_and_draws_its_zeros(tmp_path: Path) -> None:
    """The quick reality group: every row has a value; the generated world's people
    follow Lange's shares, so the mail to each provider is near them (person-to-person
    mail drifts from the share of addresses by correspondents and colleagues: within 3
    points, about twice the quick interval's half-width); the world has no cause for
    silent loss, and its 0 is drawn on the log axis."""
    from sim.verification.plots import figure

    frame = table(run_cases(quick=True, groups=["reality"])).set_index("case")
    assert frame["simulated"].notna().all() and set(frame["result"]) == {"compare"}
    for provider, share in (("Gmail", 0.39), ("Microsoft", 0.35), ("Yahoo", 0.18)):
        row = frame.loc[f"provider-share world: share of person-to-person mail to {provider}"]
        assert row["reference"] == share and abs(row["simulated"] - share) < 0.03
    assert frame.loc["provider-share world: share of messages lost silently", "simulated"] == 0.0
    assert frame.loc["default scenario: share of messages lost silently", "simulated"] > 0.0  # its discard_rate
    fig = figure("reality", frame.reset_index())
    assert fig is not None and [t.get_text() for t in fig.axes[-1].texts] == ["0"]


def test_a_negative_seed_is_one_line_before_any_case_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["verify", "--quick", "--only", "dns", "--seed", "-1"], capsys)
    assert code == 2 and "--seed" in err and "Traceback" not in err
    assert "dns:" not in out  # no case ran


def test_the_table_shows_n_and_only_comparisons_say_so(
    fake_cases: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(["verify", "--quick", "--only", "reality"], capsys)
    assert code == 0
    assert "1 comparisons with reality (not scored)" in out and "0 of 0" not in out
    assert "│ n " in out or "┃ n " in out  # the samples behind each value, as the CSV has them


def test_out_replaces_an_earlier_runs_figures(fake_cases: None, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "verify-queueing.png").write_bytes(b"old")
    (tmp_path / "verify-queueing.svg").write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "verify-diagram.png").write_bytes(b"mine")
    cli(["verify", "--quick", "--only", "smtp", "--out", str(tmp_path)], capsys)
    assert not (tmp_path / "verify-queueing.png").exists() and not (tmp_path / "verify-queueing.svg").exists()
    assert (tmp_path / "verify-smtp.png").exists() and (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "verify-diagram.png").read_bytes() == b"mine"  # not a figure of ours


def test_the_help_names_the_groups(capsys: pytest.CaptureFixture[str]) -> None:
    from sim.verification import GROUPS

    code, out, _ = cli(["verify", "--help"], capsys)
    assert code == 0
    assert all(g in " ".join(out.split()) for g in GROUPS)


def test_an_empty_out_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(["verify", "--quick", "--only", "smtp", "--out", ""], capsys)
    assert code == 2 and "--out" in err and "empty path" in err
