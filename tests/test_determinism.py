"""Same scenario and seed: identical results. Named streams: components don't disturb each other."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def test_a_named_stream_is_pcg64_seeded_with_shake256_of_the_run_key_and_the_name() -> None:
    """The scheme, written out: the run key is SeedSequence(seed)'s first 8 words (little-
    endian bytes), the stream's PCG64 is seeded with SHAKE256(key || JSON of the name),
    read as little-endian words, so a stream is the same on every machine."""
    import hashlib
    import json

    import numpy as np

    from sim.core.rng import NamedSeed

    key = np.random.SeedSequence(5).generate_state(8, np.uint32).astype("<u4").tobytes()
    words = hashlib.shake_256(key + json.dumps(["mta", "a", "loss"]).encode()).digest(32)
    seed = NamedSeed(key, ("mta", "a", "loss"))
    assert seed.generate_state(4, np.uint64).tolist() == np.frombuffer(words, "<u8").tolist()
    # As SeedSequence: 64-bit words are pairs of 32-bit ones, low word first.
    assert seed.generate_state(8, np.uint32).tolist() == np.frombuffer(words, "<u4").tolist()
    want = np.random.Generator(np.random.PCG64(seed)).random(3)
    assert (Streams(5).generator("mta", "a", "loss").random(3) == want).all()
    with pytest.raises(ValueError, match="uint32 or uint64"):
        seed.generate_state(2, np.float64)
    with pytest.raises(ValueError, match="uint32 or uint64"):  # an unhashable spec too
        seed.generate_state(2, [("a", "<u4")])
    # A name that is not a tuple is not split into parts: "abc" is not ("a", "b", "c").
    assert NamedSeed(key, "abc")._material != NamedSeed(key, ("a", "b", "c"))._material  # type: ignore[arg-type]


# Any code point, lone surrogates included (st.text() leaves them out by default).
_ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()))


@given(st.lists(st.one_of(_ANY_TEXT, st.integers(), st.booleans(), st.none(), st.floats()), max_size=4))
def test_a_stream_name_is_encoded_as_json_dumps_encodes_it(parts: list[object]) -> None:
    """The fast encoding of a name (strings through the C escaper) gives the bytes of
    ``json.dumps``, whatever the text (quotes, backslashes, control characters,
    non-ASCII, lone surrogates) and for parts that are not strings (JSON's own rules:
    true, null, NaN)."""
    import json

    from sim.core.rng import _json_list

    name = tuple(parts)
    assert _json_list(name) == json.dumps(name).encode("utf-8")  # type: ignore[arg-type]


def test_named_streams_first_draws_are_uniform_across_names() -> None:
    """2,000 names' first uniforms, and two streams side by side, look independent:
    Kolmogorov-Smirnov against U(0, 1) and the correlation of paired draws (fixed seed;
    a false alarm at p < 0.001 about once in a thousand seeds)."""
    from scipy import stats

    s = Streams(9)
    firsts = [s.generator("source", f"d{i}.example", "arrivals").random() for i in range(2000)]
    assert stats.kstest(firsts, "uniform").pvalue > 0.001
    a, b = s.generator("mx", "a", "loss").random(20000), s.generator("mx", "b", "loss").random(20000)
    assert stats.pearsonr(a, b).pvalue > 0.001


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
