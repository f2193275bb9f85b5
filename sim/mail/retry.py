"""When a sending MTA tries again.

Send-side policies are data an MTA is given, not code inside it:

- a **retry schedule** decides when a deferred message is due again, from its history
  (when it was queued, how many attempts it had) and the time of the failure, or that
  it has been queued too long and bounces;
- the **deferred queue** holds deferred envelopes (a message's recipients for one
  destination) as data (a heap by due time) and one queue runner per MTA moves due
  ones back to the active queue on its scan grid, as Postfix's queue manager does. A
  million deferred envelopes are a million tuples, not a million sleeping processes.

Each rule lives in a class named after it (docs/model.md gives every formula,
docs/sources.md every source): :class:`PostfixBackoff` (the default, in whole seconds as
Postfix keeps time), :class:`EximRule` (Exim's retry rule language), :class:`Quadratic`
(qmail) and :class:`Intervals` (a list of gaps, then the last again or grown by a
factor, up to a give-up time: sendmail, Exchange, RFC 5321, the ESPs and providers).
:func:`schedule_for` picks one from an MTA node's resolved keys. The deferred queue is
scanned every ``queue_run_delay`` (Postfix's whole-second rule when the schedule is
Postfix's), or with ``queue_run_delay: 0`` takes each message at its own due time. How
many attempts a destination gets at once is ``sim.mail.concurrency``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol

import simpy

from ..config import MTANode
from ..config.schedules import EximSegment, parse_exim_rule
from ..core.records import Envelope

if TYPE_CHECKING:
    from .concurrency import Destination

__all__ = [
    "DeferredQueue", "EximRule", "Intervals", "PostfixBackoff", "Quadratic", "RetrySchedule", "first_gap",
    "schedule_for",
]


class RetrySchedule(Protocol):
    """Decides when a deferred message is due again.

    It sees the message's history (when it was queued, how many attempts it had) and
    the destination's state, so rules kept per destination or per host (Exim's retry
    database) fit the same seam.
    """

    def next_due(
        self, queued_at: float, attempts: int, now: float, dest: Destination
    ) -> float | None:
        """When the message that failed at ``now`` may be tried again; None: give up."""


class PostfixBackoff:
    """Postfix's rule: wait the message's age, clamped, until its queue lifetime ends.

    In whole seconds, as src/qmgr/qmgr_active.c keeps them: the age is
    ``floor(now) - floor(queued)``; the message expires when that age reaches
    ``maximal_queue_lifetime``; otherwise its queue file's time stamp (the due time) is
    ``floor(now) + clamp(age, minimal, maximal)``. The deferred queue's scan takes a
    file whose time stamp is at most one second ahead (:class:`DeferredQueue`).
    """

    __slots__ = ("minimal", "maximal", "lifetime")

    def __init__(self, minimal: float, maximal: float, lifetime: float) -> None:
        self.minimal = minimal  # minimal_backoff_time
        self.maximal = maximal  # maximal_backoff_time
        self.lifetime = lifetime  # maximal_queue_lifetime

    def next_due(
        self, queued_at: float, attempts: int, now: float, dest: Destination | None = None
    ) -> float | None:
        """floor(now) + clamp(age, minimal, maximal); None once the age reaches the lifetime."""
        clock = math.floor(now)
        age = clock - math.floor(queued_at)
        if age >= self.lifetime:
            return None
        return clock + min(max(age, self.minimal), self.maximal)


class EximRule:
    """Exim's retry rule: fixed (F) and geometric (G) segments up to cutoffs.

    The segment in force is the first whose cutoff is above the message's age. ``F``:
    the next try is ``interval`` later. ``G``: the gaps are ``interval``, ``interval *
    factor``, ... counted from the segment's start (the previous cutoff): the gap taken is
    the first whose ideal retry time, ``start + interval * (factor**k - 1) / (factor -
    1)``, lies beyond the age. That is Exim's gap sequence while each retry happens
    within one gap of its ideal time (true of the default rule with a queue runner of up
    to 30 min). Past the last cutoff the message bounces at its next failure.

    Exim keeps this state per host (first failure, last gap) in its retry database; the
    model keeps none: the message's age stands for the time since the host's first
    failure. So a new message to a failing host is tried at once instead of waiting for
    the host's next retry time, and the cutoffs count from queueing, not from the first
    failure (later by the first attempt's length, a connect timeout at most).
    """

    __slots__ = ("segments",)

    def __init__(self, segments: tuple[EximSegment, ...]) -> None:
        self.segments = segments

    @classmethod
    def parse(cls, text: str) -> EximRule:
        """The rule written as Exim writes it (``F,2h,15m; G,16h,1h,1.5; F,4d,6h``)."""
        return cls(parse_exim_rule(text))

    def next_due(
        self, queued_at: float, attempts: int, now: float, dest: Destination | None = None
    ) -> float | None:
        """now + the gap of the segment in force; None past the last cutoff."""
        age = now - queued_at
        start = 0.0
        for seg in self.segments:
            if age < seg.cutoff:
                if seg.kind == "F" or seg.factor == 1.0:
                    return now + seg.interval
                gap, ideal, into = seg.interval, 0.0, age - start
                while ideal + gap <= into:  # a few steps: the gaps grow geometrically
                    ideal += gap
                    gap *= seg.factor
                return now + gap
            start = seg.cutoff
        return None


class Quadratic:
    """qmail's schedule: the n-th retry at ``step * n**2`` s after queueing.

    qmail-send computes the next try at an attempt's start as ``birth + (isqrt(age) +
    c)**2`` with c = 20 for remote deliveries (``step`` = c**2 = 400 s): an attempt
    that starts on its slot, 400 (n-1)**2, is followed by the slot 400 n**2. The model
    sees the failure, not the start, so it takes the slot of the attempt count, and
    qmail's formula at the failure when that slot has passed already (an attempt that
    waited for a worker). A message whose age exceeds the lifetime (qmail's
    ``queuelifetime``) at a failure bounces; qmail checks at the attempt's start, so
    the two differ only for an attempt that straddles the lifetime.
    """

    __slots__ = ("step", "skip", "lifetime")

    def __init__(self, step: float, lifetime: float) -> None:
        self.step = step
        self.skip = math.sqrt(step)
        self.lifetime = lifetime

    def next_due(
        self, queued_at: float, attempts: int, now: float, dest: Destination | None = None
    ) -> float | None:
        """queued + step * attempts**2 (or qmail's formula if that is past); None past the lifetime."""
        age = now - queued_at
        if age > self.lifetime:
            return None
        due = queued_at + self.step * attempts * attempts
        if due <= now:
            n = math.isqrt(int(age)) + self.skip
            due = queued_at + n * n
        return due


class Intervals:
    """A list of gaps after the first, second, ... failure; then the last gap again, or
    grown by ``factor`` per failure up to ``cap``; the last try no later than ``give_up``.

    At a failure at age ``>= give_up`` the message bounces; otherwise it is due
    ``min(now + gap, queued + give_up)``: the final try falls on the give-up time.
    """

    __slots__ = ("gaps", "factor", "cap", "give_up")

    def __init__(
        self, gaps: tuple[float, ...], factor: float | None, cap: float | None, give_up: float
    ) -> None:
        self.gaps = gaps
        self.factor = factor
        self.cap = cap
        self.give_up = give_up

    def gap(self, failures: int) -> float:
        """The wait after the ``failures``-th failure (1 for the first)."""
        gaps = self.gaps
        i = max(failures, 1) - 1
        if i < len(gaps):
            gap = gaps[i]
        elif self.factor is None:
            gap = gaps[-1]
        else:
            try:
                gap = gaps[-1] * self.factor ** (i - len(gaps) + 1)
            except OverflowError:
                gap = math.inf
        return gap if self.cap is None else min(gap, self.cap)

    def next_due(
        self, queued_at: float, attempts: int, now: float, dest: Destination | None = None
    ) -> float | None:
        """min(now + gap, queued + give_up); None once the age reaches give_up."""
        if now - queued_at >= self.give_up:
            return None
        return min(now + self.gap(attempts), queued_at + self.give_up)


def schedule_for(spec: MTANode) -> RetrySchedule:
    """The retry schedule an MTA node's resolved keys describe (preset, node, --set)."""
    retry = spec.retry
    if retry is None:
        return PostfixBackoff(spec.minimal_backoff_time, spec.maximal_backoff_time, spec.maximal_queue_lifetime)
    if retry.rule is not None:
        return EximRule.parse(retry.rule)
    assert retry.give_up is not None  # RetrySpec's own check
    if retry.quadratic is not None:
        return Quadratic(retry.quadratic, retry.give_up)
    assert retry.intervals is not None
    return Intervals(tuple(retry.intervals), retry.factor, retry.max_interval, retry.give_up)


def first_gap(schedule: RetrySchedule, minimal: float) -> float:
    """The wait after a first failure under ``schedule`` (``minimal``, Postfix's
    ``minimal_backoff_time``, for Postfix's backoff or a schedule of a hook's own).

    Postfix closes a dead destination for ``minimal_backoff_time``, its shortest retry
    gap, so that the mail deferred when it died finds it open again when it comes due;
    under another schedule its first gap plays that part.
    """
    if isinstance(schedule, Intervals):
        return schedule.gap(1)
    if isinstance(schedule, Quadratic):
        return schedule.step
    if isinstance(schedule, EximRule):
        return schedule.segments[0].interval
    return minimal


class DeferredQueue:
    """Deferred envelopes by due time, moved back to the active queue when due.

    With ``every > 0`` a runner scans at t = k * every (k >= 1) and takes the envelopes
    due by then; with ``whole_seconds`` (Postfix's qmgr, src/qmgr/qmgr_active.c) it takes
    those due by ``floor(t) + 1``, as the scan takes a queue file whose time stamp is at
    most one second in the future. While the queue is empty the runner sleeps instead of
    waking for nothing; it then resumes at the next tick of the same grid, so the
    schedule is exactly that of a runner that never slept.

    With ``every == 0`` there is no grid: each envelope is released at its own due time
    (qmail, the ESPs). One timeout is armed for the earliest due time only, and re-armed
    when an earlier one arrives: a timeout per distinct due time at most, none per
    message waiting behind it.
    """

    def __init__(
        self,
        env: simpy.Environment,
        every: float,
        release: Callable[[Envelope], None],
        whole_seconds: bool = False,
    ) -> None:
        self.env = env
        self.every = every
        self.release = release
        self.whole_seconds = whole_seconds
        # (due, id of the envelope's first row, put count, envelope): the id breaks ties in
        # a fixed order; the count, ties of two copies of one row (a duplicate's).
        self.heap: list[tuple[float, int, int, Envelope]] = []
        self._puts = 0
        self._idle: simpy.Event | None = None  # the sleeping runner's wake-up
        self._alarms: list[float] = []  # without a grid: the times of timeouts armed

    def __len__(self) -> int:
        return len(self.heap)

    def rows(self) -> int:
        """Rows (recipients) held: the envelopes' sizes added up (for the books)."""
        return sum(len(item[-1]) for item in self.heap)

    def put(self, envelope: Envelope, due: float) -> None:
        """Hold ``envelope`` until the first scan that takes it (or its due time, no grid)."""
        self._puts += 1
        heapq.heappush(self.heap, (due, envelope[0].id, self._puts, envelope))
        if self.every == 0.0:
            if not self._alarms or self._alarms[0] > due:
                self._arm(due)
        elif self._idle is not None:
            self._idle.succeed()
            self._idle = None

    def run_now(self) -> None:
        """A scan now, off the grid: what is due goes (the queue manager starting after
        its server was down: Postfix's qmgr runs the deferred queue at once)."""
        now = self.env.now
        limit = math.floor(now) + 1 if self.whole_seconds else now
        heap = self.heap
        while heap and heap[0][0] <= limit:
            self.release(heapq.heappop(heap)[-1])

    def start(self) -> None:
        """Start the queue runner (none without a grid: timeouts do its work)."""
        if self.every > 0.0:
            self.env.process(self._run())

    def _arm(self, at: float) -> None:
        heapq.heappush(self._alarms, at)
        alarm = self.env.timeout(max(at - self.env.now, 0.0), value=at)
        alarm.callbacks.append(self._ring)

    def _ring(self, alarm: simpy.Event) -> None:
        at = heapq.heappop(self._alarms)  # alarms ring in time order: this one
        heap = self.heap
        # Compared with the alarm's own time, not env.now (which may be an ulp off).
        while heap and heap[0][0] <= at:
            self.release(heapq.heappop(heap)[-1])
        if heap and (not self._alarms or self._alarms[0] > heap[0][0]):
            self._arm(heap[0][0])

    def _run(self) -> Generator[simpy.Event, Any, None]:
        env, heap, every, whole = self.env, self.heap, self.every, self.whole_seconds
        while True:
            if not heap:
                self._idle = env.event()
                yield self._idle
            k = math.floor(env.now / every) + 1
            if k * every <= env.now:  # now / every rounded down past a tick
                k += 1
            yield env.timeout(k * every - env.now)
            now = env.now
            limit = math.floor(now) + 1 if whole else now
            while heap and heap[0][0] <= limit:
                self.release(heapq.heappop(heap)[-1])
