"""Named random streams and cheap batched samplers.

One ``SeedSequence`` per run; every component derives its own Generator from the seed
and a stable name (not from creation order), so adding a component leaves every other
component's draws unchanged. Hot streams draw 4,096 values at a time: a scalar numpy
draw costs ~0.36 us, a batched one ~0.03 us (docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

import numpy as np

from ..config.distributions import Constant, Distribution, Exponential, LogNormal, Uniform

__all__ = ["BATCH", "Choice", "Draw", "Sampler", "Streams", "sampler_for"]

BATCH = 4096


def _name_key(parts: tuple[str, ...]) -> tuple[int, int]:
    # JSON keeps ('mx', 'a:b') and ('mx', 'a', 'b') apart whatever the ids contain.
    digest = hashlib.blake2b(json.dumps(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little")


class Streams:
    """The run's random streams, one independent Generator per component name."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def generator(self, *name: str) -> np.random.Generator:
        """A Generator that depends only on the run's seed and this name.

        A name is a path of parts, e.g. ``("mx", host_id, "filter")``: one stream per
        component and purpose, so that no draw of one purpose shifts another's.
        """
        seq = np.random.SeedSequence(self.seed, spawn_key=_name_key(name))
        return np.random.Generator(np.random.PCG64(seq))

    def sampler(self, dist: Distribution, *name: str) -> Draw:
        """A zero-argument callable drawing from ``dist`` on the stream ``name``."""
        return sampler_for(dist, self.generator(*name))

    def uniform(self, *name: str) -> Sampler:
        """Batched uniforms on [0, 1) from the stream ``name``."""
        gen = self.generator(*name)
        return Sampler(gen.random)


Draw = Callable[[], float]


class Sampler:
    """Hands out values drawn ahead in batches; calling it returns the next value."""

    __slots__ = ("_fill", "_buf", "_i")

    def __init__(self, fill: Callable[[int], np.ndarray]) -> None:
        self._fill = fill
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        i = self._i
        if i == len(self._buf):
            self._buf = self._fill(BATCH).tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]


class _Fixed:
    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self) -> float:
        return self.value


def sampler_for(dist: Distribution, gen: np.random.Generator) -> Draw:
    """A fast sampler for a scenario distribution on the given Generator."""
    if isinstance(dist, Constant):
        return _Fixed(float(dist.value))
    if isinstance(dist, Exponential):
        return Sampler(lambda n: gen.exponential(dist.mean, n))
    if isinstance(dist, LogNormal):
        mu = float(np.log(dist.median))
        return Sampler(lambda n: gen.lognormal(mu, dist.sigma, n))
    if isinstance(dist, Uniform):
        return Sampler(lambda n: gen.uniform(dist.low, dist.high, n))
    raise TypeError(f"unknown distribution {dist!r}")


class Choice:
    """Draws an index with the given weights (e.g. a recipient domain), batched."""

    __slots__ = ("_draw", "_only")

    def __init__(self, weights: Sequence[float], gen: np.random.Generator) -> None:
        w = np.asarray(weights, dtype=float)
        p = w / w.sum()
        self._only = int(np.argmax(p)) if np.count_nonzero(p) == 1 else None
        self._draw = Sampler(lambda n: gen.choice(len(p), size=n, p=p))

    def __call__(self) -> int:
        if self._only is not None:
            return self._only
        return int(self._draw())
