"""Bad input: one line naming the file, the key path and the problem; exit code 2."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.config import ScenarioError, load_scenario
from tests.conftest import cli, node, tiny_data


def write(tmp_path: Path, data: Any, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path




def broken(edit: Any) -> dict[str, Any]:
    data = tiny_data()
    edit(data)
    return data


CASES = [
    pytest.param(
        lambda d: node(d, "mta").update(wokers=3),
        "topology.nodes[mta].wokers",
        "unknown key",
        id="unknown-key",
    ),
    pytest.param(
        lambda d: d.update(frobnicate=True), "frobnicate", "unknown key", id="unknown-top-key"
    ),
    pytest.param(
        lambda d: node(d, "mta").update(workers="many"),
        "topology.nodes[mta].workers",
        "valid integer",
        id="wrong-type",
    ),
    pytest.param(
        lambda d: d["topology"]["edges"][3].update(latency=-0.01),
        "topology.edges[3].latency",
        "greater than or equal to 0",
        id="negative-latency",
    ),
    pytest.param(
        lambda d: d["domains"][0]["mx"][0].update(host="mx9"),
        "domains[example.org].mx[0].host",
        "'mx9' is not a node of the topology",
        id="mx-host-missing",
    ),
    pytest.param(
        lambda d: d["domains"][0]["mx"][0].update(host="store"),
        "domains[example.org].mx[0].host",
        "is a mailbox node, not an mx or relay node",
        id="mx-host-wrong-kind",
    ),
    pytest.param(
        lambda d: d["topology"]["edges"].pop(4),
        "topology.edges",
        "disconnected: 'store' cannot reach",
        id="disconnected",
    ),
    pytest.param(
        lambda d: d["domains"][0].update(mx=[]),
        "domains[example.org]",
        "no MX records and no host",
        id="recipient-domain-without-mx",
    ),
    pytest.param(
        lambda d: d["workload"][0].update(rate=2),
        "workload[people]",
        "exactly one of rate, interarrival or batches",
        id="two-arrival-processes",
    ),
    pytest.param(
        lambda d: node(d, "dns").update(lookup={"dist": "gamma", "mean": 1}),
        "topology.nodes[dns].lookup",
        "'constant', 'exponential', 'lognormal', 'uniform'",
        id="unknown-distribution",
    ),
    pytest.param(
        lambda d: node(d, "dns").update(lookup={"dist": "lognormal", "median": 1}),
        "topology.nodes[dns].lookup.sigma",
        "missing required key",
        id="distribution-missing-parameter",
    ),
    pytest.param(
        lambda d: d["topology"]["nodes"].append({"id": "mta", "kind": "client"}),
        "topology.nodes[6].id",
        "duplicate node id 'mta'",
        id="duplicate-node",
    ),
    pytest.param(
        lambda d: node(d, "mta").update(resolver="store"),
        "topology.nodes[mta].resolver",
        "is a mailbox node, not a resolver node",
        id="resolver-wrong-kind",
    ),
    pytest.param(
        lambda d: d["topology"]["edges"][0].update(b="nowhere"),
        "topology.edges[0].b",
        "'nowhere' is not a node of the topology",
        id="edge-to-nowhere",
    ),
    pytest.param(
        lambda d: d["workload"][0].update(domain="nowhere.example"),
        "workload[people].domain",
        "not a domain of the scenario",
        id="unknown-sender-domain",
    ),
]


MORE_CASES = [
    pytest.param(
        lambda d: node(d, "mta").update(workers=True),
        "topology.nodes[mta].workers", "not a boolean", id="boolean-for-number",
    ),
    pytest.param(
        lambda d: d["topology"]["edges"][0].update(latency=False),
        "topology.edges[0].latency", "not a boolean", id="boolean-for-latency",
    ),
    pytest.param(
        lambda d: d["workload"][0].update(interarrival=0),
        "workload[people]", "must not all be zero", id="zero-interarrival",
    ),
    pytest.param(
        lambda d: (d["workload"][0].pop("interarrival"), d["workload"][0].update(rate=1e300)),
        "workload[people]", "would create about", id="absurd-rate",
    ),
    pytest.param(
        lambda d: node(d, "mta").update(workers=10**9),
        "topology.nodes[mta].workers", "less than or equal to 100000", id="too-many-workers",
    ),
    pytest.param(
        lambda d: d.update(duration=float("inf")),
        "duration", "finite number", id="infinite-duration",
    ),
    pytest.param(
        lambda d: d.update(name="../escape"),
        "name", "should match pattern", id="name-with-a-path",
    ),
    pytest.param(
        lambda d: d["workload"].append(dict(d["workload"][0])),
        "workload[1].name", "duplicate source name 'people'", id="duplicate-source",
    ),
    pytest.param(
        lambda d: d["topology"]["edges"].append({"a": "r", "b": "home", "latency": 0.1}),
        "topology.edges[5]", "a second edge between 'r' and 'home'", id="parallel-edge",
    ),
    pytest.param(
        lambda d: d["domains"][0]["mx"].append({"host": "mx", "preference": 20}),
        "domains[example.org].mx[1].host", "'mx' is listed twice", id="mx-listed-twice",
    ),
    pytest.param(
        lambda d: d["workload"][0].update(start=100, stop=50),
        "workload[people]", "stop (50.0) must be after start (100.0)", id="stop-before-start",
    ),
    pytest.param(
        lambda d: (
            d["domains"].append(dict(d["domains"][0], name="other.example")),
            d["workload"][0].update(recipients={"example.org": 1e308, "other.example": 1e308}),
        ),
        "workload[people].recipients", "finite number above zero", id="weights-overflow",
    ),
    pytest.param(
        lambda d: d["workload"][0].update(size={"dist": "lognormal", "median": 1e300, "sigma": 1}),
        "workload[people].size.median", "less than or equal to", id="absurd-size",
    ),
]


SECOND_CASES = [
    pytest.param(
        lambda d: node(d, "mx").update(outages=[{"start": 50, "end": 40}]),
        "topology.nodes[mx].outages[0]", "end (40.0) must be after start (50.0)",
        id="outage-backwards",
    ),
    pytest.param(
        lambda d: node(d, "mx").update(
            outages=[{"start": 10, "end": 40}, {"start": 30, "end": 60}]
        ),
        "topology.nodes[mx]", "outages overlap", id="outages-overlap",
    ),
    pytest.param(
        lambda d: d["workload"][0].update(
            interarrival={"dist": "lognormal", "median": 2e-27, "sigma": 10}
        ),
        "workload[people]", "would create about", id="heavy-tailed-flood",
    ),
    pytest.param(
        lambda d: d["workload"][0].update(interarrival={"dist": "uniform", "low": 0, "high": 5e-324}),
        "workload[people]", "must not all be zero", id="vanishing-uniform-gap",
    ),
    pytest.param(
        lambda d: d["domains"][0]["retrieval"]["imap"].update(poll_interval=1e-310),
        "domains[example.org].retrieval.imap.poll_interval", "greater than or equal to 1", id="tiny-poll",
    ),
    pytest.param(
        lambda d: d["workload"][0].update(interarrival={"dist": "exponential", "mean": -1}),
        "workload[people].interarrival.mean", "greater than 0", id="bad-interarrival-parameter",
    ),
    pytest.param(
        lambda d: node(d, "mta").update(mta=1),
        "topology.nodes[mta].mta", "unknown key", id="key-named-like-a-tag",
    ),
    pytest.param(
        lambda d: (d["workload"][0].pop("interarrival"), d["workload"][0].update(batches=[])),
        "workload[people].batches", "at least 1 item", id="no-batches",
    ),
    pytest.param(
        lambda d: d.update({"bad\nkey": 1}),
        "'bad\\nkey'", "unknown key", id="newline-in-key",
    ),
]


@pytest.mark.parametrize("edit, key, problem", CASES + MORE_CASES + SECOND_CASES)
def test_bad_scenario_is_one_line_naming_file_key_and_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, key: str, problem: str
) -> None:
    path = write(tmp_path, broken(edit))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.path == key
    assert problem in info.value.problem

    code, out, err = cli(["run", str(path), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mailflow: {path}: {key}: ")
    assert problem in lines[0]
    assert not (tmp_path / "out").exists()


def test_invalid_yaml_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "name: x\ntopology: [unclosed\n")
    code, _, err = cli(["run", str(path)], capsys)
    assert code == 2
    assert err.strip().startswith(f"mailflow: {path}: line 3: invalid YAML")
    assert len(err.strip().splitlines()) == 1


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(["run", str(tmp_path / "nope.yaml")], capsys)
    assert (code, err.strip()) == (2, f"mailflow: {tmp_path / 'nope.yaml'}: no such file")


def test_not_a_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(["run", str(write(tmp_path, "- just\n- a list\n"))], capsys)
    assert code == 2 and "a scenario must be a mapping" in err


@pytest.mark.parametrize(
    "override, message",
    [
        ("topology.nodes[mta].workers=0", "topology.nodes[mta].workers: Input should be greater than 0"),
        ("topology.nodes[nope].workers=3", "topology.nodes[nope].workers: no element with id or name 'nope'"),
        ("domains[example.org].mx_ttl=soon", "domains[example.org].mx_ttl: Input should be a valid number"),
        ("duration", "duration: expected key.path=value"),
        ("workload[5].rate=1", "workload[5].rate: index 5 is out of range (length 1)"),
    ],
)
def test_bad_override_names_set_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, message: str
) -> None:
    path = write(tmp_path, tiny_data(), "tiny.yaml")
    code, _, err = cli(["run", str(path), "--set", override], capsys)
    assert code == 2
    assert err.strip().startswith(f"mailflow: --set (on {path}): {message}"), err


def test_good_override_changes_the_scenario(tmp_path: Path) -> None:
    path = write(tmp_path, tiny_data(), "tiny.yaml")
    sc = load_scenario(
        path,
        [
            "topology.nodes[mta].workers=9",
            "domains[example.org].users=5",
            "workload[people].recipients={example.org: 1}",
            "workload[people].recipients[example.org]=3",
        ],
    )
    assert sc.topology.nodes[2].workers == 9  # type: ignore[union-attr]
    assert sc.domains[0].users == 5
    assert sc.workload[0].recipients == {"example.org": 3.0}


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "--seed", "abc"], "'--seed'"),
        (["run", "--seed", "-1"], "'--seed'"),
        (["run", "--bogus"], "No such option: --bogus"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_bad_flags_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    code, out, err = cli(args, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert fragment in err


def test_console_script_prints_no_traceback(tmp_path: Path) -> None:
    bad = copy.deepcopy(tiny_data())
    bad["topology"]["edges"][0]["latency"] = -1
    path = write(tmp_path, bad)
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "run", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"mailflow: {path}: topology.edges[0].latency: "
        "Input should be greater than or equal to 0 (got -1)"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: a\nseed: 1\nseed: 2\n", "line 3: invalid YAML: duplicate key 'seed'"),
        ("[" * 5000 + "]" * 5000, "invalid YAML: nested too deeply"),
        ("", "a scenario must be a mapping"),
        ("? [a, b]\n: 1\n", "a key that is a list or mapping"),
        ("seed: " + "1" * 5000 + "\n", "invalid YAML: Exceeds the limit"),
    ],
    ids=["duplicate-key", "deep-nesting", "empty", "unhashable-key", "giant-integer"],
)
def test_yaml_problems_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    code, _, err = cli(["run", str(write(tmp_path, text))], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert message in err


def test_bad_yaml_in_set_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, tiny_data(), "tiny.yaml")
    code, _, err = cli(["run", str(path), "--set", "domains=["], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"mailflow: --set (on {path}): domains: value is not valid YAML: ")


def test_set_can_mend_a_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, broken(lambda d: node(d, "mta").update(workers=0)))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.source == str(path)
    sc = load_scenario(path, ["topology.nodes[mta].workers=4"])
    assert sc.topology.nodes[2].workers == 4  # type: ignore[union-attr]
    # A file that is broken elsewhere is still blamed on the file.
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["duration=10"])
    assert info.value.source == str(path) and info.value.path == "topology.nodes[mta].workers"


MERGED = """
name: merged
duration: 350
topology:
  nodes:
    - {id: home, kind: client}
    - {id: mta, kind: mta, resolver: dns}
    - {id: dns, kind: resolver}
    - &mx {id: mx, kind: mx, processing: 0.05, max_connections: 7}
    - {<<: *mx, id: mx2}
    - {id: store, kind: mailbox}
  edges:
    - {a: home, b: mta, latency: 0.01}
    - {a: mta, b: dns, latency: 0.001}
    - {a: mta, b: mx, latency: 0.01}
    - {a: mta, b: mx2, latency: 0.01}
    - {a: mx, b: store, latency: 0.001}
domains:
  - {name: example.org, users: 1, outbound: mta, mailbox: store,
     mx: [{host: mx, preference: 10}, {host: mx2, preference: 20}]}
workload:
  - {name: people, kind: person, client: home, domain: example.org, rate: 0.1}
"""


def test_yaml_merge_keys_work(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, MERGED, "merged.yaml"))
    mx2 = sc.topology.nodes[4]
    assert (mx2.id, mx2.kind, mx2.max_connections) == ("mx2", "mx", 7)  # type: ignore[union-attr]


def test_bad_selector_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, tiny_data(), "tiny.yaml")
    for selector in ("--1", "²"):
        code, _, err = cli(["run", str(path), "--set", f"workload[{selector}].rate=1"], capsys)
        assert code == 2 and f"no element with id or name '{selector}'" in err


def test_set_is_blamed_for_what_it_brings_in(tmp_path: Path) -> None:
    path = write(tmp_path, broken(lambda d: node(d, "mta").update(workers=0)))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["topology.nodes[mta].workers=4", "duration=-1"])
    assert info.value.source == f"--set (on {path})" and info.value.path == "duration"


def test_out_is_checked_before_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, tiny_data(), "tiny.yaml")
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = cli(["run", str(path), "--out", str(blocker / "sub")], capsys)
    assert code == 2 and out == ""  # no summary: nothing was run
    assert err.strip().startswith(f"mailflow: --out {blocker / 'sub'}: cannot write results")
    assert len(err.strip().splitlines()) == 1


def test_paths_with_brackets_print_as_they_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, tiny_data(), "t[red]x.yaml")
    code, out, _ = cli(["validate", str(path)], capsys)
    assert code == 0 and f"{path}: ok" in out
    code, out, _ = cli(["run", str(path), "--out", str(tmp_path / "o[/x]")], capsys)
    assert code == 0 and "o[/x]" in out


def test_bare_mailflow_prints_help_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli([], capsys)
    assert code == 0 and err == ""
    assert out.startswith("Usage: mailflow") and "\n  run " in out
