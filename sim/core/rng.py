"""Named random streams and cheap batched samplers.

One ``SeedSequence`` per run turns the seed into a 256-bit key; every component derives
its own Generator from that key and a stable name (not from creation order), so adding
a component leaves every other component's draws unchanged. A named stream's PCG64 is
seeded with SHAKE256(key || name): a keyed hash, through numpy's ``ISeedSequence``
interface, so that making a stream costs ~5 us instead of the ~17.5 us of a
``SeedSequence`` per name (a 10,000-domain world makes one for each of its 10,000
sources and more: docs/performance.md). Hot streams draw in batches, up to 4,096
values at a time: a scalar numpy draw costs ~0.36 us, a batched one ~0.03 us
(docs/architecture.md).

Idle capacity costs nothing here either: a sampler makes its Generator (~1 KB)
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
from json.encoder import encode_basestring_ascii
from typing import Any

import numpy as np
from numpy.random.bit_generator import ISeedSequence

from ..config.distributions import Constant, Distribution, Exponential, LogNormal, Uniform

__all__ = ["BATCH", "Draw", "FIRST_BATCH", "NamedSeed", "STREAMS", "Sampler", "Stream", "Streams", "sampler_for"]

# How named streams are made: recorded in run.json and in a sweep's definition, so that
# results drawn under another scheme (SeedSequence per name, before 0.2.0) are told
# apart and a sweep begun under it is not resumed with these.
STREAMS = "shake256-pcg64/1"
BATCH = 4096  # the largest batch
FIRST_BATCH = 64  # the first batch: a stream drawn a few times holds a few values


class NamedSeed(ISeedSequence):
    """The seed of one named stream: SHAKE256 of the run's key and the name.

    The input is the run's 32-byte key followed by the name as a JSON list, so no two
    (key, name) pairs give the same input; SHAKE256 (FIPS 202) of it gives streams of
    different names, or of one name under different keys, unrelated states, as
    ``SeedSequence`` spawn keys would. Bytes are read little-endian, so a stream is the
    same on every machine. It cannot spawn children (``Generator.spawn``): a component
    that needs more streams names them (``Streams.generator``).
    """

    __slots__ = ("_material", "name")

    def __init__(self, key: bytes, name: tuple[str, ...]) -> None:
        self.name = name
        # JSON keeps ('mx', 'a:b') and ('mx', 'a', 'b') apart whatever the ids contain.
        self._material = key + _json_list(name)

    def __repr__(self) -> str:
        return f"NamedSeed({self.name!r})"

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> np.ndarray:
        """``n_words`` words of the stream's seed, as ``SeedSequence.generate_state``."""
        try:
            words = _WORDS.get(dtype)  # (numpy asks for np.uint64 itself: no np.dtype() call)
        except TypeError:  # unhashable: a structured spec, an array; np.dtype() judges it
            words = None
        if words is None:
            words = _WORDS.get(np.dtype(dtype))
            if words is None:
                raise ValueError("only support uint32 or uint64")  # SeedSequence's own words
        out, little, size = words
        state = np.frombuffer(hashlib.shake_256(self._material).digest(n_words * size), dtype=little)
        return state if out is little else state.astype(out)


def _json_list(name: tuple[str, ...]) -> bytes:
    """``json.dumps(name).encode()``, byte for byte, at a quarter of its cost for the
    usual name, a tuple of strings (a big world makes tens of thousands of streams)."""
    if type(name) is tuple:  # (a string or a dict is not split into its parts)
        try:
            return ("[" + ", ".join(map(encode_basestring_ascii, name)) + "]").encode("ascii")
        except TypeError:  # a part that is not a string: JSON's own rules for it
            pass
    return json.dumps(name).encode("utf-8")


def _words(dtype: Any) -> tuple[np.dtype[Any], np.dtype[Any], int]:
    """A word type's native dtype, its little-endian dtype (the same object on a
    little-endian machine: no byte swap) and its size."""
    out = np.dtype(dtype)
    little = out.newbyteorder("<")
    return out, (out if little == out else little), out.itemsize


# By the type as numpy passes it and by its dtype: the words' native and little-endian
# dtypes and size.
_WORDS: dict[Any, tuple[np.dtype[Any], np.dtype[Any], int]] = {
    t: _words(t) for t in (np.uint32, np.uint64, np.dtype(np.uint32), np.dtype(np.uint64))
}


class Streams:
    """The run's random streams, one independent Generator per component name."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        # The run's key: the seed through SeedSequence (whatever its size), once per run
        # (8 words drawn from its 128-bit pool).
        self._key = np.random.SeedSequence(seed).generate_state(8, np.uint32).astype("<u4").tobytes()

    def generator(self, *name: str) -> np.random.Generator:
        """A Generator that depends only on the run's seed and this name.

        A name is a path of parts, e.g. ``("mx", host_id, "filter")``: one stream per
        component and purpose, so that no draw of one purpose shifts another's.
        """
        # numpy's stubs name only SeedSequence; BitGenerator takes any ISeedSequence.
        return np.random.Generator(np.random.PCG64(NamedSeed(self._key, name)))  # type: ignore[arg-type]

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
