"""Durations and sizes written with units, in files, in --set and from Python."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sim.config import Constant, ScenarioError, load_scenario, parse_scenario
from sim.config.units import parse_duration, parse_size
from tests.conftest import assert_key_error, node, tiny_data
from tests.test_errors import cli, write


@pytest.mark.parametrize(
    "text, seconds",
    [("90s", 90.0), ("5m", 300.0), ("2h", 7200.0), ("4d", 345600.0), ("35ms", 0.035),
     ("0.1h", 360.0), ("1.5 m", 90.0), ("1e3s", 1000.0), ("42", 42.0), (" 7s ", 7.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text, nbytes",
    [("10MB", 10_000_000), ("512KB", 512_000), ("512kB", 512_000), ("1GiB", 2**30),
     ("1.5KiB", 1536), ("1.1MB", 1_100_000), ("2TB", 2 * 10**12), ("3MiB", 3 * 2**20),
     ("100B", 100), ("4096", 4096), ("0.5B", 0.5)],
)
def test_sizes_si_and_binary(text: str, nbytes: float) -> None:
    value = parse_size(text)
    assert value == nbytes
    assert isinstance(value, int) == float(nbytes).is_integer()


def test_numbers_pass_through_and_booleans_do_not() -> None:
    assert parse_duration(3) == 3 and parse_size(2.5) == 2.5
    with pytest.raises(ValueError, match="not a boolean"):
        parse_duration(True)


SCENARIO_WITH_UNITS: dict[str, Any] = {
    "duration": "5m",
    "drain": "1h",
    "smtp": {"rto": "500ms"},
}


def test_every_kind_of_field_takes_units() -> None:
    data = tiny_data(**SCENARIO_WITH_UNITS)
    node(data, "mta").update(message_size_limit="10MB", queue_run_delay="5m", minimal_backoff_time="5m",
                    maximal_backoff_time="1h", maximal_queue_lifetime="4d",
                    smtp_connect_timeout="30s")
    node(data, "dns").update(lookup="50ms", max_ttl="1d")
    node(data, "mx").update(processing={"dist": "lognormal", "median": "78ms", "sigma": 0.5},
                    message_size_limit="20MiB", outages=[{"start": "1m", "end": "2m"}])
    node(data, "store").update(write={"dist": "uniform", "low": "2ms", "high": "10ms"})
    data["topology"]["edges"][0]["latency"] = "35ms"
    dom = data["domains"][0]
    dom["mx_ttl"] = "1h"
    dom["retrieval"]["imap"].update(poll_interval="10m", phase="30s")
    src = data["workload"][0]
    src.update(interarrival={"dist": "exponential", "mean": "2m"}, start="10s", stop="4m",
               size={"dist": "lognormal", "median": "4KiB", "sigma": 1})
    sc = parse_scenario(data)
    mta, dns, mx, store = sc.topology.nodes[2:6]
    assert (sc.duration, sc.drain, sc.smtp.rto) == (300, 3600, 0.5)
    assert (mta.message_size_limit, mta.queue_run_delay, mta.maximal_backoff_time,  # type: ignore[union-attr]
            mta.maximal_queue_lifetime, mta.smtp_connect_timeout) == (10**7, 300, 3600, 345600, 30)  # type: ignore[union-attr]
    assert isinstance(dns.lookup, Constant) and dns.lookup.value == 0.05  # type: ignore[union-attr]
    assert dns.max_ttl == 86400  # type: ignore[union-attr]
    assert mx.processing.median == 0.078 and mx.message_size_limit == 20 * 2**20  # type: ignore[union-attr]
    assert (mx.outages[0].start, mx.outages[0].end) == (60, 120)  # type: ignore[union-attr]
    assert (store.write.low, store.write.high) == (0.002, 0.01)  # type: ignore[union-attr]
    assert sc.topology.edges[0].latency == 0.035
    d = sc.domains[0]
    assert d.mx_ttl == 3600 and d.retrieval is not None
    assert (d.retrieval.imap.poll_interval, d.retrieval.imap.phase) == (600, 30)
    w = sc.workload[0]
    assert (w.interarrival.mean, w.start, w.stop, w.size.median) == (120, 10, 240, 4096)  # type: ignore[union-attr]


def test_batches_and_constant_sizes_take_units() -> None:
    data = tiny_data()
    src = data["workload"][0]
    src.pop("interarrival")
    src.update(batches=[{"at": "2m", "count": 3}], size="6KB")
    sc = parse_scenario(data)
    assert sc.workload[0].batches[0].at == 120  # type: ignore[index]
    size = sc.workload[0].size
    assert isinstance(size, Constant) and size.value == 6000


@pytest.mark.parametrize(
    "edit, key, problem",
    [
        (lambda d: d.update(duration="2y"), "duration",
         "unknown unit 'y' for seconds (use ms, s, m, h or d) (got '2y')"),
        (lambda d: d.update(duration="soon"), "duration",
         "Input should be a valid number of seconds, optionally with a unit (ms, s, m, h or d) (got 'soon')"),
        (lambda d: d["workload"][0].update(size="5m"), "workload[people].size",
         "unknown unit 'm' for bytes (use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB) (got '5m')"),
        (lambda d: d["workload"][0].update(size={"dist": "uniform", "low": "1KB", "high": "2h"}),
         "workload[people].size.high", "unknown unit 'h' for bytes"),
        (lambda d: node(d, "dns").update(lookup="5MB"), "topology.nodes[dns].lookup",
         "unknown unit 'MB' for seconds"),
        (lambda d: node(d, "mta").update(message_size_limit="10Mb"),
         "topology.nodes[mta].message_size_limit", "unknown unit 'Mb' for bytes"),
        (lambda d: d["topology"]["edges"][0].update(latency="-5ms"), "topology.edges[0].latency",
         "greater than or equal to 0"),
        (lambda d: d.update(duration="1e400s"), "duration", "finite number"),
        (lambda d: d["workload"][0].update(size="1e40000000TB"), "workload[people].size",
         "finite number"),
        (lambda d: d["workload"][0].update(size="2e15B"), "workload[people].size",
         "less than or equal to 1000000000000000"),
    ],
    ids=["unknown-duration-unit", "not-a-number", "minutes-for-a-size", "hours-in-size-dist",
         "bytes-for-a-time", "megabit", "negative", "huge-duration", "absurd-size",
         "size-over-bound"],
)
def test_bad_units_are_one_line_naming_key_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, key: str, problem: str
) -> None:
    data = tiny_data()
    edit(data)
    path = write(tmp_path, data)
    assert_key_error(["validate", str(path)], capsys, path, key, problem)


def test_set_takes_units(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, tiny_data())
    sc = load_scenario(path, ["duration=2h", "topology.edges[0].latency=35ms",
                              "topology.nodes[mta].message_size_limit=1GiB"])
    assert (sc.duration, sc.topology.edges[0].latency) == (7200, 0.035)
    assert sc.topology.nodes[2].message_size_limit == 2**30  # type: ignore[union-attr]
    code, _, err = cli(["validate", str(path), "--set", "duration=2 fortnights"], capsys)
    assert code == 2
    assert err.strip() == (
        f"mailflow: --set (on {path}): duration: unknown unit 'fortnights' for seconds "
        "(use ms, s, m, h or d) (got '2 fortnights')"
    )


def test_a_size_that_is_not_whole_bytes_is_refused_where_bytes_are_counted() -> None:
    data = tiny_data()
    node(data, "mta")["message_size_limit"] = "1.5B"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    assert info.value.path == "topology.nodes[mta].message_size_limit"
    assert "valid integer" in info.value.problem
