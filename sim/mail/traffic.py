"""What traffic looks like: whom a message goes to, when in the day, how large.

Pieces a traffic source (``sim.mail.senders``) puts together, each a small object built
once per source (or once per run, for the table every source shares):

- :class:`Receivers`: recipient domains with their cumulative weights, built once per
  run for "any person on the Internet" (weights = users) and only for a source that
  names its own ``recipients``; every source draws from it through its own stream;
- :class:`DailyClock`: a piecewise-constant daily rate in a domain's local time, and
  the inverse of its cumulative rate (a non-homogeneous Poisson process with no
  rejected draws);
- :class:`Contacts`: a person's regular correspondents, a pure function of (sender
  domain, person, rank): nothing is stored per person;
- :func:`size_sampler`: message sizes, including a body plus attachments.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..config.distributions import WithAttachments
from ..core.rng import Draw, Sampler, Stream, sampler_for
from .devices import person_uniforms

if TYPE_CHECKING:
    from ..config.distributions import Distribution
    from .domains import Domain

__all__ = ["Contacts", "DAY", "DailyClock", "Receivers", "size_sampler"]

DAY = 86400.0
CONTACTS_LIMIT = 2**20  # contacts per person: rank k fits in the 20 low bits of the hash input
HOUR = 3600.0


class Receivers:
    """Recipient domains and their cumulative weights: draw a domain from a uniform.

    The cumulative weights are computed as ``numpy.random.Generator.choice`` computes
    them, so drawing ``searchsorted(cdf, u, 'right')`` for the uniforms ``choice`` would
    draw gives the very same domains (a source's draws did not change when the table
    became shared).
    """

    def __init__(self, domains: Sequence[Domain], weights: Sequence[float]) -> None:
        self.domains = list(domains)
        w = np.asarray(weights, dtype=float)
        p = w / w.sum()
        cdf = p.cumsum()
        cdf /= cdf[-1]
        self.cdf = cdf
        # The one domain with any weight, if so: no draw is needed (nor made) at all.
        self.only = int(np.argmax(p)) if np.count_nonzero(p) == 1 else None
        self._cdf_list: list[float] | None = None

    def sampler(self, gen: np.random.Generator | Stream) -> Draw:
        """Batched draws of domain indices on ``gen`` (one stream per source)."""
        cdf, stream = self.cdf, Stream.of(gen)
        return Sampler(lambda n: cdf.searchsorted(stream.gen.random(n), side="right"))

    def at(self, u: float) -> Domain:
        """The domain for the uniform ``u`` in [0, 1)."""
        if self._cdf_list is None:
            self._cdf_list = self.cdf.tolist()  # scalar bisect on a list beats numpy's call cost
        i = bisect.bisect_right(self._cdf_list, u)
        return self.domains[min(i, len(self.domains) - 1)]


class DailyClock:
    """A daily rate profile in one domain's local time, as operational time.

    With relative rates r_h (mean 1 over the 24 hours of local time), operational time
    τ(t) = ∫ r(local(s)) ds grows by a day per day. Unit-rate Poisson arrivals in τ are
    arrivals at rate ``rate * r_h`` in t, so the next arrival after τ₀ is at
    τ⁻¹(τ₀ + E), E exponential of mean 1/``rate``: one draw per message, none rejected.
    """

    def __init__(self, weights: Sequence[float], utc_offset: float) -> None:
        w = [float(x) for x in weights]
        mean = sum(w) / len(w)
        self.rel = [x / mean for x in w]
        self.offset = utc_offset * HOUR
        # cum[h]: operational seconds from local midnight to the start of hour h.
        cum = [0.0]
        for r in self.rel:
            cum.append(cum[-1] + r * HOUR)
        cum[-1] = DAY  # the sum is a day up to rounding; make it exactly one
        self.cum = cum

    def tau(self, t: float) -> float:
        """Operational time at simulated time ``t``."""
        local = t + self.offset
        day = math.floor(local / DAY)
        rem = local - day * DAY
        h = min(int(rem // HOUR), 23)
        return day * DAY + self.cum[h] + (rem - h * HOUR) * self.rel[h]

    def time(self, tau: float) -> float:
        """Simulated time at operational time ``tau`` (the inverse of :meth:`tau`)."""
        day = math.floor(tau / DAY)
        rem = tau - day * DAY
        # The last hour starting at or before rem; hours of zero rate have no width
        # and are stepped over (bisect_right lands past equal starts).
        h = min(bisect.bisect_right(self.cum, rem) - 1, 23)
        local = day * DAY + h * HOUR + (rem - self.cum[h]) / self.rel[h]
        return local - self.offset


class Contacts:
    """Regular correspondents: contact k of person p is a pure function of (key, p, k).

    Each person has ``count`` contacts ranked by how often they are written to, rank k
    with weight (k + 1)^-exponent (Zipf); a contact is a person drawn from
    ``receivers`` (by users, as anyone is) with uniforms hashed from the sender domain's
    key, the person and k (splitmix64, ``sim.mail.devices.person_uniforms``). The same
    person writes to the same contacts in every source of the domain and every run
    with the same seed; no list is kept.
    """

    def __init__(
        self, key: int | Stream, count: int, exponent: float, receivers: Receivers,
        gen: np.random.Generator | Stream,
    ) -> None:
        if count > CONTACTS_LIMIT:
            raise ValueError(f"at most {CONTACTS_LIMIT} contacts per person, got {count}")
        # A stream's first integer is the key, drawn at the first message, not at build.
        self._keys = key if isinstance(key, Stream) else None
        self._key: int | None = key if isinstance(key, int) else None
        self.receivers = receivers
        ranks = np.arange(1, count + 1, dtype=float) ** -exponent
        cdf = np.cumsum(ranks / ranks.sum())
        cdf /= cdf[-1]
        rank_stream = Stream.of(gen)
        self._rank = Sampler(lambda n: cdf.searchsorted(rank_stream.gen.random(n), side="right"))

    @property
    def key(self) -> int:
        """The sender domain's key."""
        if self._key is None:
            assert self._keys is not None  # one of the two is given
            self._key = int(self._keys.gen.integers(0, 2**63))
        return self._key

    def draw(self, person: int) -> tuple[Domain, int]:
        """One recipient (domain, person index) for a message of ``person``."""
        k = int(self._rank())
        # (person, k) packed into one integer: person < 2^32 and k < 2^20 (the contacts
        # limit), so distinct pairs stay distinct and one hash serves both.
        u_domain, u_person = person_uniforms(self.key, (person << 20) | k)
        domain = self.receivers.at(u_domain)
        return domain, int(u_person * domain.users)


def size_sampler(dist: Distribution | WithAttachments, gen: np.random.Generator | Stream) -> Draw:
    """A batched sampler of message sizes, a body plus attachments included."""
    stream = Stream.of(gen)
    if isinstance(dist, WithAttachments):
        body, att, share = dist.body, dist.attachment, float(dist.attachment_share)
        mu_b, mu_a = math.log(body.median), math.log(att.median)

        def fill(n: int) -> np.ndarray:
            gen = stream.gen
            size = gen.lognormal(mu_b, body.sigma, n)
            with_att = gen.random(n) < share
            size[with_att] += gen.lognormal(mu_a, att.sigma, int(with_att.sum()))
            return size

        return Sampler(fill)
    return sampler_for(dist, stream)
