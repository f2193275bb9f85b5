"""How many delivery attempts a destination (a recipient domain, or the smart host)
gets at once.

A **concurrency policy** is data an MTA is given: it decides whether one more attempt
to a destination may start, and hears how each attempt ended (feedback for adaptive
rules such as Postfix's slow start). A :class:`Destination` is the MTA's state for one
destination: attempts in progress, envelopes parked until a slot frees, and the
window an adaptive policy keeps there.

:class:`PostfixConcurrency` is Postfix's per-destination scheduler (SCHEDULER_README,
"Concurrency scheduling"; ``src/qmgr/qmgr_queue.c``): a window that starts at
``initial_destination_concurrency``, grows with positive feedback after each attempt
the site answered, shrinks with negative feedback after each failed session, and after
``failed_cohort_limit`` failed cohorts closes the destination ("dead", Postfix's
throttled queue) for ``minimal_backoff_time``. With ``destination_rate_delay`` the
window is 1 and the destination pauses after each attempt. The formulas are in
docs/model.md ("Destination concurrency").
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

from ..config.nodes import parse_feedback
from ..core.records import Envelope
from .smtp import Outcome

__all__ = [
    "ConcurrencyPolicy", "DEAD", "Destination", "Feedback", "FixedConcurrency",
    "PostfixConcurrency", "SUSPENDED",
]

# A window at or below zero is a closed destination, as Postfix's queue states
# QMGR_QUEUE_STAT_THROTTLED and QMGR_QUEUE_STAT_SUSPENDED are.
DEAD, SUSPENDED = 0, -1
# The first outcome that is a failed session (REFUSED, TIMEOUT, INTERRUPTED): the site
# did not answer, refused the connection or cut it. Every outcome below it is an answer.
_FAILED_SESSION = Outcome.REFUSED


class Destination:
    """A sending MTA's state for one recipient domain: attempts running, envelopes waiting.

    ``busy`` counts attempts in progress and slots reserved for parked envelopes handed
    back to the active queue (``reserved`` of them, not yet taken by an agent).
    ``window`` is how many attempts the policy allows at once; ``DEAD`` or ``SUSPENDED``
    close the destination until ``until``.
    """

    __slots__ = ("busy", "parked", "reserved", "window", "success", "failure", "cohorts",
                 "until", "timer", "cause")

    def __init__(self, window: int = 1) -> None:
        self.busy = 0  # attempts in progress (and reserved slots)
        self.parked: deque[Envelope] = deque()  # waiting for a free slot, oldest first
        self.reserved = 0  # parked envelopes woken into the active queue, slot held
        self.window = window
        self.success = 0.0  # positive feedback not yet turned into a larger window
        self.failure = 0.0  # negative feedback credit (Postfix's queue->failure)
        self.cohorts = 0.0  # failed pseudo-cohorts in a row (Postfix's fail_cohorts)
        self.until = 0.0  # when a dead or suspended destination opens again
        self.timer = False  # a wake-up for parked mail is pending (rate delay)
        self.cause = -1  # a row whose last reply tells why it died (-1: none)

    @property
    def dead(self) -> bool:
        """Closed after failed cohorts: mail for it is deferred at once."""
        return self.window == DEAD

    @property
    def suspended(self) -> bool:
        """Pausing between deliveries (``destination_rate_delay``): mail for it waits."""
        return self.window == SUSPENDED


class ConcurrencyPolicy(Protocol):
    """Decides how many attempts a destination may have at once, from what it hears."""

    def destination(self) -> Destination:
        """The state of a destination the MTA has not sent to yet."""

    def allows(self, dest: Destination, now: float) -> bool:
        """Whether one more attempt may start at ``now``."""

    def finished(self, dest: Destination, outcome: Outcome, now: float) -> bool:
        """An attempt to ``dest`` ended at ``now`` with ``outcome`` (its slot already
        released). True when the destination has just been closed as dead: the MTA
        defers the mail parked there at once."""


class FixedConcurrency:
    """At most ``limit`` attempts per destination, whatever happens (no feedback)."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def destination(self) -> Destination:
        """A destination whose window is the fixed limit."""
        return Destination(self.limit)

    def allows(self, dest: Destination, now: float) -> bool:
        """Below the fixed limit."""
        return dest.busy < self.limit

    def finished(self, dest: Destination, outcome: Outcome, now: float) -> bool:
        """A fixed limit learns nothing and never closes a destination."""
        return False


class Feedback:
    """One feedback rule of Postfix's scheduler, as postconf(5) writes it.

    ``"1/concurrency"`` (the default): ``base / window``; ``"1/sqrt_concurrency"``:
    ``base / sqrt(window)``; a number or a fraction (``"1/8"``): that constant.
    """

    __slots__ = ("base", "index")

    def __init__(self, text: str) -> None:
        self.base, self.index = parse_feedback(text)

    def value(self, window: int) -> float:
        """The feedback for a destination whose window is ``window`` (Postfix's
        QMGR_FEEDBACK_VAL)."""
        if self.index == "concurrency":
            return self.base / window
        if self.index == "sqrt_concurrency":
            return self.base / math.sqrt(window)
        return self.base


class PostfixConcurrency:
    """Postfix's per-destination concurrency scheduler (qmgr, Postfix 2.5 and later).

    Hysteresis is 1, as in Postfix: the window changes by one when a whole unit of
    feedback has built up (``success + f/2 >= 1``; ``failure - f/2 < 0``).
    """

    __slots__ = ("initial", "limit", "positive", "negative", "cohort_limit", "throttle_time",
                 "rate_delay")

    def __init__(
        self,
        initial: int,
        limit: int,
        positive: Feedback | None = None,
        negative: Feedback | None = None,
        cohort_limit: int = 1,
        throttle_time: float = 300.0,
        rate_delay: float = 0.0,
    ) -> None:
        # A rate-delayed transport delivers one at a time (qmgr_transport.c); the
        # initial window never exceeds the limit (qmgr_queue_create).
        self.limit = 1 if rate_delay > 0 else limit
        self.initial = min(initial, self.limit)
        self.positive = positive or Feedback("1/concurrency")
        self.negative = negative or Feedback("1/concurrency")
        self.cohort_limit = cohort_limit  # 0: never dead
        self.throttle_time = throttle_time  # Postfix: minimal_backoff_time
        self.rate_delay = rate_delay

    def destination(self) -> Destination:
        """A new destination opens at the initial window."""
        return Destination(self.initial)

    def allows(self, dest: Destination, now: float) -> bool:
        """Below the window; a closed destination opens once its time is up."""
        if dest.busy < dest.window:
            return True
        if dest.window > 0 or now < dest.until:
            return False
        self._reopen(dest, dest.busy)
        return dest.busy < dest.window

    def _reopen(self, dest: Destination, busy: int) -> None:
        """The timer Postfix sets when it closes a queue goes off (evaluated when the
        destination is next asked about: nothing can change it in between)."""
        if dest.window == DEAD:
            # qmgr_queue_unthrottle: "back from the almost grave, best concurrency is
            # anyone's guess": the attempts still out, or the initial window.
            dest.window = busy if busy > 0 else self.initial
            dest.success = dest.failure = dest.cohorts = 0.0
        else:  # qmgr_queue_resume
            dest.window = 1
        dest.until = 0.0

    def finished(self, dest: Destination, outcome: Outcome, now: float) -> bool:
        """Feedback from one attempt; True when the destination has just died."""
        if (
            outcome < _FAILED_SESSION and dest.busy == 0 and dest.window > 0
            and not dest.parked and not self.rate_delay
        ):
            # The common case under light load: an answered attempt leaves the destination
            # idle, so its queue is discarded whatever the feedback would have changed
            # (the end of this method, taken at once).
            dest.window = self.initial
            dest.success = dest.failure = dest.cohorts = 0.0
            return False
        busy = dest.busy + 1  # Postfix's busy_refcount still counts the attempt that ended
        if dest.window <= 0 and now >= dest.until:
            self._reopen(dest, busy)
        died = False
        if outcome >= _FAILED_SESSION:
            if dest.window > 0:
                died = self._negative(dest, now)
        else:
            self._positive(dest, busy)
        if self.rate_delay > 0:
            # qmgr_entry_done: a rate-delayed queue is never left dead (its mail was
            # deferred above); it pauses after every attempt.
            if dest.window == DEAD:
                self._reopen(dest, busy - 1)
            dest.window = SUSPENDED
            dest.until = now + self.rate_delay
        elif dest.busy == 0 and not dest.parked and dest.window > 0:
            # qmgr_queue_done: an idle destination's queue is discarded, and with it
            # what the scheduler had learnt; the next mail starts at the initial window.
            dest.window = self.initial
            dest.success = dest.failure = dest.cohorts = 0.0
        return died

    def _positive(self, dest: Destination, busy: int) -> None:
        """qmgr_queue_unthrottle: the site answered."""
        dest.cohorts = 0.0
        if dest.window == DEAD:
            self._reopen(dest, busy)
            return
        window = dest.window
        # Grow only below the limit and while the window is within the initial
        # concurrency of what is actually in use (so that it tracks real concurrency).
        if window < self.limit and window < busy + self.initial:
            feedback = self.positive.value(window)
            dest.success += feedback
            while dest.success + feedback / 2 >= 1:
                window += 1
                dest.success -= 1
                dest.failure = 0.0
            dest.window = min(window, self.limit)

    def _negative(self, dest: Destination, now: float) -> bool:
        """qmgr_queue_throttle: a failed session; True when the destination dies."""
        window = dest.window
        dest.cohorts += 1 / window
        if self.cohort_limit > 0 and dest.cohorts >= self.cohort_limit:
            dest.window = DEAD
            dest.until = now + self.throttle_time
            return True
        feedback = self.negative.value(window)
        dest.failure -= feedback
        while dest.failure - feedback / 2 < 0:
            window -= 1
            dest.success = 0.0
            dest.failure += 1
        dest.window = max(window, 1)
        return False
