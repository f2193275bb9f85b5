"""Named random streams and cheap batched samplers.

One ``SeedSequence`` per run; every component derives its own Generator from the seed
and a stable name (not from creation order), so adding a component leaves every other
component's draws unchanged. Hot streams draw in batches, up to 4,096 values at a
time: a scalar numpy draw costs ~0.36 us, a batched one ~0.03 us (docs/architecture.md).

Idle capacity costs nothing here either: a sampler makes its Generator (~1 KB, ~26 us)
only when first called, starts with a small batch and doubles it up to 4,096, and keeps
the batch as an ``array.array`` of 8-byte values (a 4,096-value buffer is 33 KB; as a
list of Python floats it was 129 KB). Batch sizes do not change the values drawn: numpy
draws each value of a batch from the bit generator in turn, so draws of 64 then 128
values are the first 192 of one draw of 4,096.
"""

from __future__ import annotations

import array
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..config.distributions import Constant, Distribution, Exponential, LogNormal, Uniform

__all__ = ["BATCH", "Draw", "FIRST_BATCH", "Sampler", "Stream", "Streams", "sampler_for"]

BATCH = 4096  # the largest batch
FIRST_BATCH = 64  # the first batch: a stream drawn a few times holds a few values


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
        """A zero-argument callable drawing from ``dist`` on the stream ``name``.

        The stream's Generator is made at the first draw (never, for a constant)."""
        return sampler_for(dist, Stream(self, name))

    def stream(self, *name: str) -> Stream:
        """The stream ``name``, its Generator made at the first ``.gen``."""
        return Stream(self, name)

    def uniform(self, *name: str) -> Sampler:
        """Batched uniforms on [0, 1) from the stream ``name`` (made at the first draw)."""
        later = Stream(self, name)
        return Sampler(lambda n: later.gen.random(n))


class Stream:
    """A named stream whose Generator is made when first asked for (``.gen``): a
    component that may never draw costs no Generator."""

    __slots__ = ("_streams", "_name", "_gen")

    def __init__(self, streams: Streams | None, name: tuple[str, ...]) -> None:
        self._streams = streams
        self._name = name
        self._gen: np.random.Generator | None = None

    @classmethod
    def made(cls, gen: np.random.Generator) -> Stream:
        """One that holds a Generator made already."""
        later = cls(None, ())
        later._gen = gen
        return later

    @classmethod
    def of(cls, gen: np.random.Generator | Stream) -> Stream:
        """``gen`` as a stream (a made Generator is held as it is)."""
        return gen if isinstance(gen, Stream) else cls.made(gen)

    @property
    def gen(self) -> np.random.Generator:
        """The Generator (made now if not yet)."""
        if self._gen is None:
            assert self._streams is not None  # only made() has none, and it has a Generator
            self._gen = self._streams.generator(*self._name)
        return self._gen


Draw = Callable[[], float]


class Sampler:
    """Hands out values drawn ahead in batches; calling it returns the next value.

    ``fill(n)`` draws the next ``n`` values; batches grow from FIRST_BATCH to BATCH.
    """

    __slots__ = ("_fill", "_buf", "_i", "_next")

    def __init__(self, fill: Callable[[int], np.ndarray]) -> None:
        self._fill = fill
        self._buf: array.array[Any] = _EMPTY
        self._i = 0
        self._next = FIRST_BATCH

    def __call__(self) -> float:
        i = self._i
        if i == len(self._buf):
            n = self._next
            self._buf = _compact(self._fill(n))
            self._next = min(2 * n, BATCH)
            i = 0
        self._i = i + 1
        return self._buf[i]  # type: ignore[no-any-return,unused-ignore]


_EMPTY: array.array[Any] = array.array("d")


def _compact(values: np.ndarray) -> array.array[Any]:
    """The values as 8-byte machine numbers; indexing gives Python floats (or ints)."""
    whole = values.dtype.kind in "iu"
    out: array.array[Any] = array.array("q" if whole else "d")
    out.frombytes(values.astype(np.int64 if whole else np.float64, copy=False).tobytes())
    return out


class _Fixed:
    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self) -> float:
        return self.value


def sampler_for(dist: Distribution, gen: np.random.Generator | Stream) -> Draw:
    """A fast sampler for a scenario distribution on the given Generator (or one made
    when first drawn from)."""
    if isinstance(dist, Constant):
        return _Fixed(float(dist.value))
    later = Stream.of(gen)
    if isinstance(dist, Exponential):
        return Sampler(lambda n: later.gen.exponential(dist.mean, n))
    if isinstance(dist, LogNormal):
        mu = float(np.log(dist.median))
        return Sampler(lambda n: later.gen.lognormal(mu, dist.sigma, n))
    if isinstance(dist, Uniform):
        return Sampler(lambda n: later.gen.uniform(dist.low, dist.high, n))
    raise TypeError(f"unknown distribution {dist!r}")
