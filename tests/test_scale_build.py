"""A big world's build: compact, lazily made random streams; checks that stay linear."""

from __future__ import annotations

import numpy as np
import pytest

from sim.config import Constant, Exponential
from sim.core.rng import BATCH, FIRST_BATCH, Choice, Sampler, Streams


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


def test_choice_draws_what_one_numpy_choice_draws() -> None:
    weights = [5.0, 1.0, 0.0, 3.0]
    pick = Choice(weights, Streams(4).generator("c"))
    got = [pick() for _ in range(1000)]
    p = np.array(weights) / sum(weights)
    assert got == Streams(4).generator("c").choice(4, size=1000, p=p).tolist()
    assert all(type(v) is int for v in got[:10])


def test_a_stream_is_made_at_its_first_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[str, ...]] = []
    real = Streams.generator

    def counted(self: Streams, *name: str) -> np.random.Generator:
        made.append(name)
        return real(self, *name)

    monkeypatch.setattr(Streams, "generator", counted)
    s = Streams(1)
    uniform = s.uniform("u")
    fixed = s.sampler(Constant(dist="constant", value=2.0), "k")
    gaps = s.sampler(Exponential(dist="exponential", mean=1.0), "e")
    assert made == []
    assert fixed() == 2.0 and made == []  # a constant never needs a stream
    first = uniform()
    assert made == [("u",)] and first == real(s, "u").random()
    gaps()
    gaps()
    assert made == [("u",), ("e",)]
