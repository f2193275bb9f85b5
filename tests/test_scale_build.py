"""A big world's build: compact, lazily made random streams; checks that stay linear."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.config import Constant, Exponential
from sim.core.rng import BATCH, FIRST_BATCH, Sampler, Streams


def test_batches_grow_from_small_and_draw_exactly_one_big_batch() -> None:
    draw = Streams(3).sampler(Exponential(dist="exponential", mean=2.0), "x")
    assert isinstance(draw, Sampler)
    got = [draw() for _ in range(FIRST_BATCH)]
    assert len(draw._buf) == FIRST_BATCH  # a stream drawn 64 times holds 64 values
    got += [draw() for _ in range(3 * BATCH)]
    assert len(draw._buf) == BATCH  # ... and a busy one at most BATCH
    assert draw._buf.itemsize == 8  # 8 bytes a value, not a 32-byte Python float + pointer
    want = Streams(3).generator("x").exponential(2.0, FIRST_BATCH + 3 * BATCH).tolist()
    assert got == want
    assert all(type(v) is float for v in got[:10])


def count_streams(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The names of the streams whose Generator is made from now on, in order."""
    made: list[tuple[str, ...]] = []
    real = Streams.generator

    def counted(self: Streams, *name: str) -> np.random.Generator:
        made.append(name)
        return real(self, *name)

    monkeypatch.setattr(Streams, "generator", counted)
    return made


def test_a_stream_is_made_at_its_first_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    want = Streams(1).generator("u").random()
    made = count_streams(monkeypatch)
    s = Streams(1)
    uniform = s.uniform("u")
    fixed = s.sampler(Constant(dist="constant", value=2.0), "k")
    gaps = s.sampler(Exponential(dist="exponential", mean=1.0), "e")
    assert made == []
    assert fixed() == 2.0 and made == []  # a constant never needs a stream
    first = uniform()
    assert made == [("u",)] and first == want
    gaps()
    gaps()
    assert made == [("u",), ("e",)]


def test_a_source_makes_its_streams_when_it_first_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    # A generated world's sources, with cc and contacts, hold no Generator once built:
    # each is made at the source's first draw (at 10,000 domains, 10,000 sources).
    made = count_streams(monkeypatch)
    model = sim.build(sim.parse_scenario(sim.generate.internet(domains=30, duration=600, seed=2)))
    assert [n for n in made if n[0] in ("source", "contacts")] == []
    model.start()
    model.run(until=1.0)  # each source has drawn its first gap, few have sent
    gaps = [n for n in made if n[0] == "source" and n[-1] == "arrivals"]
    assert len(gaps) == sum(1 for s in model.sources if s.spec.batches is None)  # campaigns wait
    assert len([n for n in made if n[0] == "source"]) < 2 * len(gaps)
