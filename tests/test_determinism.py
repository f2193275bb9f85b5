"""Same scenario and seed: identical results. Named streams: components don't disturb each other."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sim import load_scenario, run
from sim.core.rng import Streams
from sim.config import parse_scenario
from tests.conftest import tiny_data


def test_same_seed_gives_identical_frames() -> None:
    sc = load_scenario()
    a = run(sc, seed=11).messages
    b = run(sc, seed=11).messages
    pd.testing.assert_frame_equal(a, b)


def test_different_seeds_differ() -> None:
    sc = load_scenario()
    a = run(sc, seed=11).messages
    b = run(sc, seed=12).messages
    assert len(a) != len(b) or not a["created"].equals(b["created"])


def test_scenario_seed_is_the_default() -> None:
    sc = load_scenario()
    pd.testing.assert_frame_equal(run(sc).messages, run(sc, seed=sc.seed).messages)


def test_adding_a_source_leaves_other_sources_draws_unchanged() -> None:
    data = tiny_data(duration=2000)
    data["workload"][0].update(interarrival={"dist": "exponential", "mean": 20},
                               size={"dist": "lognormal", "median": 5000, "sigma": 1})
    alone = run(parse_scenario(data)).messages
    data["domains"].append({"name": "other.example", "outbound": "mta"})
    data["workload"].append(
        {"name": "newsletter", "kind": "marketing", "client": "home", "domain": "other.example",
         "batches": [{"at": 500, "count": 30}]}
    )
    both = run(parse_scenario(data)).messages
    mine = both[both["sender_domain"] == "example.org"].reset_index(drop=True)
    assert len(both) == len(alone) + 30
    pd.testing.assert_series_equal(
        mine["created"], alone["created"].reset_index(drop=True), check_names=False
    )
    pd.testing.assert_series_equal(
        mine["size"], alone["size"].reset_index(drop=True), check_names=False
    )


def test_streams_depend_on_seed_and_name_only() -> None:
    s = Streams(5)
    first = s.generator("mta", "a", "loss").random(3)
    s.generator("something else").random(100)
    again = Streams(5).generator("mta", "a", "loss").random(3)
    assert (first == again).all()
    assert not (first == Streams(5).generator("mta", "b", "loss").random(3)).all()
    assert not (first == Streams(6).generator("mta", "a", "loss").random(3)).all()
    # Parts are kept apart: an id containing a separator is not another component.
    assert not (first == Streams(5).generator("mta", "a:loss").random(3)).all()


@pytest.mark.parametrize(
    "dist",
    [
        {"dist": "exponential", "mean": 2.0},
        {"dist": "lognormal", "median": 3.0, "sigma": 0.5},
        {"dist": "uniform", "low": 1.0, "high": 4.0},
    ],
)
def test_batched_sampler_draws_exactly_what_numpy_draws(dist: dict[str, float]) -> None:
    from pydantic import TypeAdapter

    from sim.core.rng import BATCH, sampler_for
    from sim.config import Distribution

    d = TypeAdapter(Distribution).validate_python(dist)
    gen, ref = Streams(3).generator("x"), Streams(3).generator("x")
    draw = sampler_for(d, gen)
    got = [draw() for _ in range(BATCH + 10)]
    if dist["dist"] == "exponential":
        want = list(ref.exponential(2.0, BATCH)) + list(ref.exponential(2.0, BATCH))[:10]
    elif dist["dist"] == "lognormal":
        import math

        want = list(ref.lognormal(math.log(3.0), 0.5, BATCH)) + list(
            ref.lognormal(math.log(3.0), 0.5, BATCH)
        )[:10]
    else:
        want = list(ref.uniform(1.0, 4.0, BATCH)) + list(ref.uniform(1.0, 4.0, BATCH))[:10]
    assert got == want


def test_progress_reporting_does_not_change_results() -> None:
    sc = load_scenario()
    seen: list[tuple[float, int]] = []
    with_bar = run(sc, progress=lambda t, n: seen.append((t, n))).messages
    pd.testing.assert_frame_equal(with_bar, run(sc).messages)
    assert len(seen) == 100
    assert seen[-1] == (sc.horizon, len(with_bar))
    assert all(a[0] < b[0] and a[1] <= b[1] for a, b in zip(seen, seen[1:]))


def test_changing_one_purpose_leaves_the_others_draws_alone() -> None:
    # Two MX hosts at equal preference (random order) and, in the second run, a lossy
    # access link: retransmission draws must not reshuffle the MX choices or the sizes.
    data = tiny_data(duration=3000)
    data["workload"][0]["interarrival"] = {"dist": "exponential", "mean": 5}
    data["workload"][0]["size"] = {"dist": "lognormal", "median": 5000, "sigma": 1}
    data["topology"]["nodes"].append({"id": "mx2", "kind": "mx", "processing": 0.05})
    data["topology"]["edges"].append({"a": "mx", "b": "mx2", "latency": 0.001})
    data["domains"][0]["mx"].append({"host": "mx2", "preference": 10})
    clean = run(parse_scenario(data)).messages
    data["topology"]["edges"][0]["loss"] = 0.05
    lossy = run(parse_scenario(data)).messages
    assert (lossy["submitted"] - lossy["created"]).max() > 1.0  # retransmissions happened
    for column in ("created", "size", "recipient_person"):
        pd.testing.assert_series_equal(clean[column], lossy[column])
    # The MTA's shuffles come in the same sequence; the k-th delivery attempt gets the
    # k-th shuffle (which message that is can change with the timing).
    order = [run_.sort_values("submitted")["mx_host"].tolist() for run_ in (clean, lossy)]
    assert order[0] == order[1]
    assert {"mx", "mx2"} <= set(order[0])


def test_edge_order_in_the_file_does_not_matter() -> None:
    data = tiny_data()
    # A second route home-r2-mta as fast as home-r-mta, but with far more bandwidth.
    data["topology"]["nodes"].append({"id": "r2", "kind": "router"})
    extra = [
        {"a": "home", "b": "r2", "latency": 0.02, "bandwidth": 1e9},
        {"a": "r2", "b": "mta", "latency": 0.001, "bandwidth": 1e9},
    ]
    after = run(parse_scenario({**data, "topology": {
        "nodes": data["topology"]["nodes"], "edges": data["topology"]["edges"] + extra}}))
    before = run(parse_scenario({**data, "topology": {
        "nodes": data["topology"]["nodes"], "edges": extra + data["topology"]["edges"]}}))
    pd.testing.assert_frame_equal(after.messages, before.messages)


def test_progress_stops_exactly_at_the_horizon() -> None:
    # A horizon that 100 equal steps do not reach exactly (2.6531 * 100 / 100 != 2.6531).
    data = tiny_data(duration=2.24, drain=0.4131)
    data["workload"][0]["interarrival"] = 1.74
    sc = parse_scenario(data)
    with_bar = run(sc, progress=lambda t, n: None).messages
    pd.testing.assert_frame_equal(with_bar, run(sc).messages)


def test_another_process_with_another_hash_seed_gives_the_same_file(tmp_path: Path) -> None:
    # What a Dask worker would do: a fresh interpreter, its own string-hash seed.
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [sys.executable, "-m", "sim", "run", "--seed", "3", "--out", str(out)],
        check=True, capture_output=True, env=env,
    )
    there = pd.read_parquet(out / "messages.parquet")
    here = run(load_scenario(), seed=3).messages
    pd.testing.assert_frame_equal(there, here, check_categorical=False)
