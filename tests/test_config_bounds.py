"""Bounds that hold: a scenario that validates must run, and one that cannot is refused
in one line before anything is built."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

import sim
from sim.config import ScenarioError, ScenarioWarning, load_scenario, parse_scenario
from sim.config.budget import BYTES_PER_MESSAGE, estimate, memory_limit, physical_memory
from sim.config.yamlfile import MAX_ALIAS_VALUES
from tests.conftest import node, tiny_data
from tests.test_errors import cli, write


def rate_source(rate: float) -> dict[str, Any]:
    data = tiny_data()
    data["workload"][0].pop("interarrival")
    data["workload"][0]["rate"] = rate
    return data


# --- a Poisson rate too slow for the run's own exponential gaps ----------------------

def test_tiny_rate_is_refused_with_the_bound(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, rate_source(1e-16))
    code, out, err = cli(["run", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and out == ""
    assert err.strip() == (
        f"mailflow: {path}: workload[people].rate: rate must be at least 1e-09 messages/s "
        "(one message in 1e+09 s, about 32 years) (got 1e-16)"
    )


def test_slowest_valid_rate_runs() -> None:
    with pytest.warns(ScenarioWarning, match="probably none"):
        sc = parse_scenario(rate_source(1e-9))
    assert sim.run(sc).summary().counts["created"] >= 0  # no ValidationError at run time


# --- latencies and other times are bounded, so every time in a run is finite ---------

@pytest.mark.parametrize(
    "edit, key, problem",
    [
        (lambda d: d["topology"]["edges"][0].update(latency=1e308), "topology.edges[0].latency",
         "one-way latency must be at most 10 s (a geostationary satellite hop is about 0.3 s) (got 1e+308)"),
        (lambda d: d["topology"]["edges"][0].update(latency="11s"), "topology.edges[0].latency",
         "one-way latency must be at most 10 s"),
        (lambda d: d["topology"]["edges"][0].update(bandwidth=1e-300), "topology.edges[0].bandwidth",
         "greater than or equal to 1"),
        (lambda d: d["smtp"].update(rto=1e308) if "smtp" in d else d.update(smtp={"rto": 1e308}),
         "smtp.rto", "less than or equal to 60"),
        (lambda d: node(d, "mta").update(maximal_queue_lifetime=1e300),
         "topology.nodes[mta].maximal_queue_lifetime", "less than or equal to 1000000000"),
        (lambda d: node(d, "mx").update(outages=[{"start": 0, "end": 1e300}]),
         "topology.nodes[mx].outages[0].end", "less than or equal to 1000000000"),
        (lambda d: node(d, "dns").update(lookup={"dist": "exponential", "mean": 1e12}),
         "topology.nodes[dns].lookup.mean", "less than or equal to 1000000000"),
        (lambda d: d["domains"][0].update(mx_ttl=1e300), "domains[example.org].mx_ttl",
         "less than or equal to 1000000000"),
        (lambda d: d["workload"][0].update(start=1e300), "workload[people].start",
         "less than or equal to 1000000000"),
    ],
    ids=["latency", "latency-units", "bandwidth", "rto", "queue-lifetime", "outage", "lookup",
         "mx-ttl", "source-start"],
)
def test_times_are_bounded(tmp_path: Path, edit: Any, key: str, problem: str) -> None:
    data = tiny_data()
    edit(data)
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, data))
    assert (info.value.path, problem in info.value.problem) == (key, True), str(info.value)


def test_slowest_valid_link_still_delivers() -> None:
    data = tiny_data()
    for edge in data["topology"]["edges"]:
        edge["latency"] = 10
    res = sim.run(parse_scenario(data))
    assert res.summary().counts["delivered"] > 0


# --- memory budget --------------------------------------------------------------------

def test_physical_memory_is_read() -> None:
    ram = physical_memory()
    assert ram is not None and ram > 2**26
    assert memory_limit() == ram // 2


def test_estimate_counts_messages_and_bytes() -> None:
    est = estimate(parse_scenario(rate_source(2.0)))  # 2/s for 350 s
    assert est.messages == pytest.approx(700)
    assert est.memory == pytest.approx(700 * BYTES_PER_MESSAGE)


def test_batches_outside_the_window_are_not_counted() -> None:
    data = tiny_data()
    data["workload"][0].pop("interarrival")
    data["workload"][0]["batches"] = [{"at": 10, "count": 5}, {"at": 400, "count": 7}]
    assert estimate(parse_scenario(data)).messages == 5  # duration 350: the second is never sent


def hour_at_1e5() -> dict[str, Any]:
    data = rate_source(1e5)
    data["duration"] = 3600  # 3.6e8 messages
    return data


def test_too_big_for_memory_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, hour_at_1e5())
    code, out, err = cli(["validate", str(path)], capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    limit = memory_limit()
    assert limit is not None and limit < 72e9  # the test assumes a machine under 144 GB
    assert lines[0] == (
        f"mailflow: {path}: workload: the sources would create about 3.6e+08 messages, "
        f"needing about 72 GB of memory (200 bytes a message), more than the "
        f"{limit / 1e9:.3g} GB a run may use (half of this machine's RAM); "
        "--force (force=True) runs it anyway"
    )
    code, _, err = cli(["run", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "72 GB" in err and not (tmp_path / "o").exists()


def test_python_users_are_protected_and_can_force(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="3.6e[+]08 messages"):
        parse_scenario(hour_at_1e5())
    assert parse_scenario(hour_at_1e5(), force=True).workload[0].rate == 1e5
    small = rate_source(2.0)  # ~700 messages, ~315 kB
    with pytest.raises(ScenarioError, match="more than the 0.0001 GB a run may use [(]max_memory[)]"):
        parse_scenario(small, max_memory=100_000)
    path = write(tmp_path, small)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, max_memory=100_000)
    assert info.value.source == str(path)
    assert load_scenario(path, max_memory=100_000, force=True).name == "tiny"


def test_budget_blames_set_when_the_file_fits(tmp_path: Path) -> None:
    path = write(tmp_path, rate_source(2.0))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["workload[people].rate=1e5", "duration=1h"])
    assert info.value.source == f"--set (on {path})" and info.value.path == "workload"


def test_force_on_run_skips_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # A run that needs a few hundred kB against a pretend machine with 200 kB of RAM.
    monkeypatch.setattr("sim.config.budget.physical_memory", lambda: 200_000)
    path = write(tmp_path, rate_source(2.0))
    code, _, err = cli(["run", str(path), "--out", str(tmp_path / "a")], capsys)
    assert code == 2 and "more than the 0.0001 GB a run may use" in err
    code, out, _ = cli(["run", str(path), "--out", str(tmp_path / "b"), "--force"], capsys)
    assert code == 0 and (tmp_path / "b" / "messages.parquet").exists()


# --- sources that send nothing: a warning, not an error --------------------------------

def test_source_starting_after_the_end_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tiny_data()
    data["workload"][0]["start"] = 400  # duration 350
    path = write(tmp_path, data)
    with pytest.warns(ScenarioWarning) as record:
        load_scenario(path)
    assert [str(w.message) for w in record] == [
        f"{path}: workload[people].start: the source starts at 400 s, but the sources stop at "
        "350 s (duration): it sends nothing",
        f"{path}: workload: the scenario creates no messages",
    ]
    code, out, err = cli(["validate", str(path)], capsys)
    assert code == 0 and "ok" in out
    assert err.strip().splitlines() == [
        f"mailflow: warning: {path}: workload[people].start: the source starts at 400 s, "
        "but the sources stop at 350 s (duration): it sends nothing",
        f"mailflow: warning: {path}: workload: the scenario creates no messages",
    ]


def test_warning_names_set_when_the_override_causes_it(tmp_path: Path) -> None:
    path = write(tmp_path, tiny_data())
    with pytest.warns(ScenarioWarning) as record:
        load_scenario(path, ["workload[people].start=6m"])
    assert str(record[0].message).startswith(f"--set (on {path}): workload[people].start: ")


def test_improbable_messages_warn_and_a_normal_scenario_does_not() -> None:
    with pytest.warns(ScenarioWarning, match="about 3.5e-07 messages: probably none"):
        parse_scenario(rate_source(1e-9))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_scenario(tiny_data())


def test_batches_outside_the_window_warn() -> None:
    data = tiny_data()
    data["workload"][0].pop("interarrival")
    data["workload"][0]["batches"] = [{"at": 400, "count": 7}]
    with pytest.warns(ScenarioWarning) as record:
        parse_scenario(data)
    assert [str(w.message) for w in record] == [
        "workload[people].batches: no batch is between start (0 s) and stop (350 s): "
        "the source sends nothing",
        "workload: the scenario creates no messages",
    ]


# --- YAML: alias bombs, NUL bytes -----------------------------------------------------

def bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "x-laughs:\n" + "".join(f"  {line}\n" for line in lines) + f"description: *a{levels - 1}\n"


@pytest.mark.parametrize("sets", [[], ["duration=5"]])
def test_alias_bomb_is_one_line_and_fast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sets: list[str]
) -> None:
    path = write(tmp_path, bomb(12) + yaml.safe_dump(tiny_data()))
    started = time.perf_counter()
    code, _, err = cli(["validate", str(path), *[f"--set={s}" for s in sets]], capsys)
    assert time.perf_counter() - started < 5
    assert code == 2
    assert err.strip() == (
        # a6 (line 8) is the first level past the bound: 9**6 values at each use
        f"mailflow: {path}: line 8: invalid YAML: aliases expand to more than "
        f"{MAX_ALIAS_VALUES:,} values"
    )


def test_alias_bomb_in_set_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, tiny_data())
    value = "{" + bomb(12).replace("\n", ", ").replace("x-laughs:, ", "").replace("  ", "") + "}"
    value = value.replace(", description: *a11, }", ", b: *a11}")
    code, _, err = cli(["validate", str(path), "--set", f"description={value}"], capsys)
    assert code == 2
    assert err.strip().startswith(
        f"mailflow: --set (on {path}): description: value is not valid YAML: aliases expand"
    ), err


def test_modest_aliases_still_work(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:  # loads; fails only on the unknown key
        load_scenario(write(tmp_path, yaml.safe_dump(tiny_data()) + bomb(3)))
    assert info.value.path == "description"


def test_recursive_alias_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, yaml.safe_dump(tiny_data()) + "x: &loop [1, *loop]\n")
    code, _, err = cli(["validate", str(path)], capsys)
    assert code == 2 and "invalid YAML: alias *loop refers to itself" in err


def test_nul_byte_is_reported_with_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, 'name: x\nseed: 1\ndescription: "a\0b"\n')
    code, _, err = cli(["validate", str(path)], capsys)
    assert (code, err.strip()) == (
        2, f"mailflow: {path}: line 3, column 16: invalid YAML: character U+0000 (NUL) is not allowed"
    )


def test_nul_byte_in_an_override_value() -> None:
    with pytest.raises(ScenarioError) as info:
        sim.config.apply_overrides({}, ["description=a\0b"])
    assert str(info.value) == (
        "description: value is not valid YAML: character U+0000 (NUL) is not allowed at column 2"
    )


# --- layout version --------------------------------------------------------------------

def test_version_one_is_the_layout(tmp_path: Path) -> None:
    assert parse_scenario(tiny_data(version=1)).version == 1
    assert parse_scenario(tiny_data()).version == 1


@pytest.mark.parametrize("version", [0, 2, 99])
def test_unknown_version_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: int
) -> None:
    data = tiny_data(version=version)
    data["renamed_in_the_future"] = 1  # the version is reported, not the keys it changed
    path = write(tmp_path, data)
    code, _, err = cli(["validate", str(path)], capsys)
    assert (code, err.strip()) == (
        2,
        f"mailflow: {path}: version: scenario layout version {version} is unknown; "
        "this mailflow reads version 1 only (the only layout so far)",
    )


def test_version_of_the_wrong_type(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(tiny_data(version="one"))
    assert info.value.path == "version" and "Input should be 1" in info.value.problem


def test_trace_raises_the_memory_estimate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A run that fits untraced but not with the attempts table: --trace is refused
    # before running, naming the figure it used; validate takes --force as run does.
    from sim.config.budget import BYTES_PER_MESSAGE, BYTES_PER_TRACED_MESSAGE, check_budget, estimate

    sc = load_scenario(None)
    messages = estimate(sc).messages
    limit = int(messages * (BYTES_PER_MESSAGE + BYTES_PER_TRACED_MESSAGE) / 2)
    check_budget(sc, limit)  # fits untraced
    with pytest.raises(ScenarioError, match=f"{BYTES_PER_TRACED_MESSAGE} bytes a message with --trace"):
        check_budget(sc, limit, trace=True)
