"""The command line's small things: show, -h, help text, --out ''."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim.config import load_scenario, parse_scenario
from tests.conftest import node, tiny_data
from tests.test_errors import cli, write

COMMANDS = ["run", "validate", "show"]


def test_show_prints_the_effective_scenario_with_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, tiny_data(), "tiny.yaml")
    code, out, err = cli(["show", str(path), "--set", "duration=2h",
                          "--set", "topology.nodes[mta].workers=9"], capsys)
    assert (code, err) == (0, "")
    shown = yaml.safe_load(out)
    assert shown["version"] == 1
    assert shown["duration"] == 7200.0
    mta = node(shown, "mta")
    assert mta["workers"] == 9
    assert mta["maximal_queue_lifetime"] == 432000.0  # a default, filled in
    assert node(shown, "dns")["max_ttl"] == 86400.0
    assert shown["smtp"] == {"tls": True, "tls_round_trips": 1, "pipelining": True, "rto": 1.0}
    # What show prints is a scenario that loads back to the same thing.
    assert parse_scenario(shown) == load_scenario(path, ["duration=2h", "topology.nodes[mta].workers=9"])


def test_show_of_the_default_scenario_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(["show"], capsys)
    assert code == 0
    assert "&" not in out and "*id" not in out  # no anchors: the output reads alone
    assert parse_scenario(yaml.safe_load(out)) == load_scenario()


@pytest.mark.parametrize("command", ["show", "validate", "run"])
def test_show_reports_bad_input_like_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    data = tiny_data()
    data["topology"]["edges"][3]["latency"] = -0.01
    path = write(tmp_path, data)
    code, out, err = cli([command, str(path)], capsys)
    assert (code, out) == (2, "")
    assert err.strip() == (
        f"mailflow: {path}: topology.edges[3].latency: "
        "Input should be greater than or equal to 0 (got -0.01)"
    )


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_dash_h_is_help_everywhere(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, short, _ = cli([*command, "-h"], capsys)
    assert code == 0 and short.startswith("Usage: mailflow")
    code, long, _ = cli([*command, "--help"], capsys)
    assert code == 0 and short == long


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_has_no_type_placeholders(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    _, text, _ = cli([*command, "--help"], capsys)
    for placeholder in ("<bool>", "<list[str]>", "<int range>", "<int>"):
        assert placeholder not in text, text
    if command == ["run"]:
        assert "--set KEY=VALUE" in text and "--out DIR" in text and "--force" in text


@pytest.mark.parametrize("value", ["", " "])
def test_empty_out_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, tiny_data(), "tiny.yaml")
    for args in (["--out", value], [f"--out={value}"]):
        code, out, err = cli(["run", str(path), *args], capsys)
        assert (code, out) == (2, "")
        assert err.strip() == "mailflow run: Invalid value for '--out': an empty path; give a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]  # nothing written here
