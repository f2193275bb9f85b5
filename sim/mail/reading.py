"""Reading and replies: when people look at their mail, and the mail they answer.

A domain with ``retrieval.reading:`` gets a :class:`Reading`, one of its
:attr:`~sim.mail.devices.Readers.hooks`: called once per stored row, it works out when
the recipient reads the row and whether (and when) they answer it.

- **Looks** (:class:`Looks`): a person looks at their mail at the times of a Poisson
  process with ``looks_per_day`` a day on the domain's daily ``profile`` (its local
  time: ``sim.mail.traffic.DailyClock``'s operational time). The looks are a pure
  function of (key, person): operational time is cut into blocks of one mean gap; block
  n holds a Poisson(1) number of looks, placed uniformly, all hashed (splitmix64) from
  (key, person, n). No process and no memory per person, and two messages waiting for
  one person are read at the same look.
- **read**: the first look at or after the first of the person's devices has the row
  (``Copies.retrieved``; webmail: once stored and shown). Rows in the junk folder are
  not read, nor rows no device ever gets; a look past the horizon leaves ``read`` NaN.
- **Replies**: a read row of kind person or reply is answered with probability
  ``reply_share``, ``reply_delay`` after it is read: a new row (kind reply,
  ``parent_id`` the row read, ``sender_person`` the reader) from the reader's domain to
  the parent's sender, submitted from the domain's client node to its outbound MTA
  and delivered like any mail. One timeout per reply, nothing per row not answered.
  Replies are made only up to the scenario's ``duration`` (the drain after it is for
  mail in flight to settle), and only by a domain with an outbound MTA.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, cast

import simpy

from ..config.reading import Reading as ReadingSpec
from ..config.workload import MAIL_CONNECT_TIMEOUT, Source, profile_weights
from ..core.component import Context
from ..core.records import KINDS, REPLY_KIND, Message
from ..core.rng import Draw
from .devices import _splitmix
from .dsn import who_sent
from .esp import ESP
from .mta import MTA
from .senders import MAX_SIZE, MailClient
from .traffic import DAY, DailyClock, size_sampler

if TYPE_CHECKING:
    from .devices import Copies
    from .domains import Domain

__all__ = ["Looks", "Reading", "Replies", "attach"]

_PERSON, _REPLY = KINDS.index("person"), REPLY_KIND
_MASK = (1 << 64) - 1
# Block n and person p are mixed in as n and p times odd constants of their own
# (bijections of 64-bit words), each before a splitmix step.
_BLOCK_SALT = 0x6A09E667F3BCC909
_PERSON_SALT = 0xBB67AE8584CAA73B
# Poisson(1) by inversion: P(K <= k) for k = 0, 1, ...; 18 looks in one block of mean 1
# has probability below 1e-16, past a double's resolution of the uniform.
_POISSON_1: tuple[float, ...] = tuple(
    sum(math.exp(-1.0) / math.factorial(j) for j in range(k + 1)) for k in range(18)
)
_MOST = len(_POISSON_1)
_EMPTY = _POISSON_1[0]  # P(no look in a block) = 1/e
_UNIT = 2.0**-53
TOLERANCE = 1e-6  # operational seconds: far above the clock's rounding, far below any gap
_OUTBOX_RETRY = float(Source.model_fields["outbox_retry"].default)  # a mail client's send/receive


def _uniform(z: int) -> float:
    return (z >> 11) * 2.0**-53


class Looks:
    """When each of a domain's people looks at their mail: a pure function of (key,
    person), a Poisson process of ``per_day`` looks a day on a daily profile."""

    def __init__(
        self, key: int | Callable[[], int], per_day: float, weights: tuple[float, ...], utc_offset: float
    ) -> None:
        # The key may be drawn at the first look asked for (a Generator costs ~1 KB and
        # ~26 us: a big world's domains may never receive mail in a short run).
        self._key: int | None = key if isinstance(key, int) else None
        self._draw = None if isinstance(key, int) else key
        self.block = DAY / per_day  # operational seconds holding one look on average
        # A flat profile's operational time is the time itself: no clock to apply.
        flat = len(set(weights)) == 1
        self.clock: DailyClock | None = None if flat else DailyClock(weights, utc_offset)

    @property
    def key(self) -> int:
        """The key of the per-person hash."""
        if self._key is None:
            assert self._draw is not None
            self._key = self._draw()
        return self._key

    def _base(self, person: int) -> int:
        """The person's own key: the domain's key and the person, mixed."""
        # Person p enters as p times an odd constant (a bijection), so distinct people
        # give distinct inputs, and one splitmix step mixes them with the key.
        return _splitmix(self.key ^ ((person * _PERSON_SALT) & _MASK))

    def _in_block(self, base: int, n: int) -> list[float]:
        """The looks of block ``n`` in operational time, sorted."""
        z = _splitmix(base ^ ((n * _BLOCK_SALT) & _MASK))
        u = _uniform(z)
        k = 0
        while k < _MOST and u >= _POISSON_1[k]:
            k += 1
        if not k:
            return []
        b = self.block
        out = []
        for _ in range(k):
            z = _splitmix(z)
            out.append((n + _uniform(z)) * b)
        if k > 1:
            out.sort()
        return out

    def next(self, person: int, t: float) -> float:
        """The person's first look at or after ``t`` (O(1) expected: a block is empty
        with probability 1/e). A look within ``TOLERANCE`` operational seconds before
        ``t`` counts as at ``t``: the inverse of the daily clock rounds, and a look
        must be found again from its own time."""
        # The hot path (once per stored row): the draws of _in_block, inlined, keeping
        # the least look at or after tau instead of a sorted list.
        clock = self.clock
        tau = (t if clock is None else clock.tau(t)) - TOLERANCE
        base = self._base(person)
        b = self.block
        n = math.floor(tau / b)
        while True:
            z = _splitmix(base ^ ((n * _BLOCK_SALT) & _MASK))
            u = (z >> 11) * _UNIT
            if u >= _EMPTY:  # at least one look in the block
                k = 1
                while k < _MOST and u >= _POISSON_1[k]:
                    k += 1
                best = math.inf
                for _ in range(k):
                    z = _splitmix(z)
                    x = (n + (z >> 11) * _UNIT) * b
                    if tau <= x < best:
                        best = x
                if best < math.inf:
                    return max(t, best if clock is None else clock.time(best))
            n += 1

    def between(self, person: int, start: float, end: float) -> Iterator[float]:
        """The person's looks in [``start``, ``end``), in order (for tests and notebooks)."""
        clock = self.clock
        tau = start if clock is None else clock.tau(start)
        base = self._base(person)
        n = math.floor(tau / self.block)
        while True:
            for x in self._in_block(base, n):
                if x < tau:
                    continue
                t = x if clock is None else clock.time(x)
                if t >= end:
                    return
                yield t
            n += 1


class Replies(MailClient):
    """A domain's people answering mail: their replies, submitted from its client node
    to its outbound MTA (the mail clients' outbox as a traffic source's)."""

    def __init__(self, ctx: Context, domain: Domain, client: str, mta: str, spec: ReadingSpec) -> None:
        super().__init__(ctx, client, MAIL_CONNECT_TIMEOUT, _OUTBOX_RETRY)
        self.domain = domain
        self.mta_id = mta
        self.stop = ctx.scenario.duration
        self._size = size_sampler(spec.reply_size, ctx.streams.stream("reading", domain.name, "reply-size"))
        self.made = 0  # replies made

    def due(self, event: simpy.Event) -> None:
        """A reply's time has come: make its row and submit it (unless the row it
        answers was destroyed before it was read)."""
        parent, to, writer = cast("tuple[int, Domain, int]", event.value)
        rec = self.recorder
        if not rec.read_at(parent) <= self.env.now:  # NaN: the look never happened
            return
        size = float(min(max(1, round(self._size())), MAX_SIZE))
        person = who_sent(rec, parent, to.users)
        mid = rec.reply(self.env.now, parent, self.domain.index, to.index, person, writer, size)
        self.made += 1
        if self.mta is None:
            self.mta = self.ctx.node(self.mta_id, MTA)
        self.mta.submit(Message(mid, to, person, size, self.domain), self.client, (), self)


class Reading:
    """The hook that reads a domain's stored rows and answers some (``Readers.hooks``)."""

    def __init__(self, ctx: Context, domain: Domain, spec: ReadingSpec, client: str) -> None:
        self.spec = spec
        self.domain = domain.name
        self.index = domain.index
        self.env = ctx.env
        self.recorder = ctx.recorder
        self.horizon = ctx.horizon
        streams, name = ctx.streams, domain.name

        def key() -> int:
            return int(streams.generator("reading", name, "looks").integers(0, 2**63))

        self.looks = Looks(key, float(spec.looks_per_day), profile_weights(spec.profile), domain.spec.utc_offset)
        self.share = float(spec.reply_share)
        # A domain with no outbound MTA, or an application's ESP, sends no replies.
        outbound = domain.spec.outbound
        self.replies: Replies | None = None
        if outbound is not None and self.share > 0 and not isinstance(ctx.nodes.get(outbound), ESP):
            self.replies = Replies(ctx, domain, client, outbound, spec)
        self._answer: Draw = ctx.streams.uniform("reading", domain.name, "reply")
        self._delay: Draw = ctx.streams.sampler(spec.reply_delay, "reading", domain.name, "reply-delay")
        self.read = 0  # rows read within the run (less those a loss undid: Recorder.unread)

    def stats(self) -> dict[str, float]:
        """Rows read within the run; replies made, and those taken back into the mail
        clients' outbox (submissions the MTA did not take)."""
        replies = self.replies
        return {
            "read": self.read - self.recorder.unread.get(self.index, 0),
            "replies": replies.made if replies is not None else 0,
            "replies_kept": replies.kept if replies is not None else 0,
        }

    def __call__(self, msg: Message, copies: Copies, t: float) -> None:
        """Row ``msg`` was stored at ``t`` and its devices have it as ``copies`` say."""
        first = copies.retrieved
        if first > self.horizon:  # (INF: no device ever has it)
            return
        rec = self.recorder
        mid = msg.id
        if rec.junked(mid):  # nobody reads the junk folder
            return
        read = self.looks.next(msg.user, first)
        if read > self.horizon:
            return
        rec.read(mid, read)
        self.read += 1
        replies = self.replies
        if replies is None or rec.kind_of(mid) not in (_PERSON, _REPLY):
            return
        if self._answer() >= self.share:
            return
        at = read + float(self._delay())
        if at >= replies.stop:  # made while traffic runs, as a source's mail
            return
        # One timeout per reply, scheduled now: its value says what it answers.
        self.env.timeout(at - self.env.now, (mid, msg.sender, msg.user)).callbacks.append(replies.due)


def attach(ctx: Context, domain: Domain) -> Reading | None:
    """Plug reading into ``domain``'s readers when its retrieval has ``reading:``
    (None otherwise: a run without reading pays nothing)."""
    readers = domain.readers
    retrieval = domain.spec.retrieval
    if readers is None or retrieval is None or retrieval.reading is None:
        return None
    reading = Reading(ctx, domain, retrieval.reading, retrieval.client)
    readers.hooks.append(reading)
    return reading
