"""The retry and concurrency groups of ``mailflow verify`` (sim/verification/retry.py,
concurrency.py): the references agree with hand-computed timelines, and a model broken
in one rule (a gap off by one step, a lost retry, the last try not brought forward to
the give-up time, Postfix's backoff cap or its one-second look-ahead dropped, Exim's
growth ignored, qmail's squares shifted, greylisting counted from the last sighting,
feedback doubled, the initial window or the cohort limit off by one, a dead destination
closed 1 s too long or too short) fails the cases that watch that rule (tests/verify_breaks.py). That
the cases pass on the model as it is, tests/test_verify_quick.py checks, in the one run
of the quick set that make test makes."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from sim.config.presets import PRESETS
from sim.mail import concurrency as conc
from sim.mail import retry as retry_rules
from sim.mail.policies import Greylist
from sim.mail.smtp import GREYLISTED
from sim.verification import cases, forget
from sim.verification import concurrency as vconc
from sim.verification import retry as vretry
from sim.verification.worlds import TINY, node
from tests.verify_breaks import breaks, the_case


@pytest.fixture(autouse=True)
def fresh_runs() -> Iterator[None]:
    """The groups keep one run per world (their cases share it): none may outlive a
    broken model, so the runs are dropped before and after each test."""
    forget()
    yield
    forget()


SCHEDULE = ("attempts before giving up", "give-up time after queueing", "attempt times, largest gap from the schedule")


def schedule(*presets: str, what: tuple[str, ...] = SCHEDULE) -> tuple[str, ...]:
    """The retry cases of ``presets`` (by default all three of each)."""
    return tuple(f"{p}: {w}" for p in presets for w in what)


def grey(preset: str, *retries: int) -> tuple[str, ...]:
    return tuple(f"{preset} behind greylisting: retry {k}" for k in retries)


# The presets whose rule is a list of gaps (sim.mail.retry.Intervals) with more than one
# distinct gap, so that a gap off by one step moves an attempt.
GROWING = ("exchange", "rfc5321", "sendgrid", "mailgun", "sparkpost", "ses", "gmail", "yahoo")


def test_every_preset_has_its_schedule_cases() -> None:
    chosen = cases(quick=True, groups=["retry"])
    for what in SCHEDULE:
        presets = {c.name.split(":")[0] for c in chosen if c.name.endswith(f": {what}")}
        assert presets == set(PRESETS), what


def test_the_documented_schedules_match_the_hand_computed_timelines() -> None:
    """The references agree with tests/test_presets.py's hand-computed give-up table
    (there the MX answer is cached for 150 s, here never: the same where no two attempts
    fall within 150 s)."""
    starts, give_up = vretry.documented_attempts("postfix")
    assert (len(starts), give_up + vretry.QUEUED) == (107, pytest.approx(433230.202))
    starts, give_up = vretry.documented_attempts("exim")
    assert (len(starts), give_up + vretry.QUEUED) == (24, pytest.approx(367230.202))
    starts, give_up = vretry.documented_attempts("qmail")
    assert len(starts) == 40 and starts[1:4] == [400, 1600, 3600]
    assert vconc.readme_rounds(200, 5, 20) == [*range(5, 20), 20]
    assert vconc.readme_dead_attempts(20, 8, 5, 1) == 7


def test_exims_documented_rule_grows_from_the_interval_actually_waited() -> None:
    """Exim's spec, by hand: after 2 h of 15-min retries the G rule's first interval is
    1 h (the previous 15 min is shorter than it); then 1.5 h, 2.25 h, ... from each
    failure; the -q30m queue runner takes each at the first run past it."""
    rule = vretry._EximDocumented()
    assert rule(1, 1000.0) == 1900.0  # F,2h,15m from the first failure
    assert rule(2, 8200.0) == 8200.0 + 900  # 2 h after the first failure: still F (cutoff inclusive)
    assert rule(3, 8201.0) == 8201.0 + 3600  # past 2 h: G, what was waited (1 s) is below 1 h
    assert rule(4, 12000.0) == 12000.0 + 3600 * 1.5  # then the 1 h predicted times 1.5
    assert rule(5, 16000.0) == 16000.0 + 4000 * 1.5  # a retry sooner than predicted grows from what was waited
    assert rule(6, 1000.0 + 4 * 86400 + 1) is None  # past the final cutoff: the address times out


def test_each_documented_schedule_builds_its_own_rule() -> None:
    """DOCUMENTED holds factories: Exim's stateful rule is built afresh per call, so a
    schedule worked out halfway leaves nothing behind for the next."""
    make = vretry.DOCUMENTED["exim"][0]
    half = make()
    half(1, 1000.0), half(2, 9000.0)
    assert make() is not half
    assert vretry.documented_attempts("exim") == vretry.documented_attempts("exim")


def test_the_retry_worlds_delays_are_read_from_the_tiny_world(monkeypatch: pytest.MonkeyPatch) -> None:
    """QUEUED, LOOKUP and FAIL follow TINY: a slower resolver moves them."""
    assert (vretry.QUEUED, vretry.LOOKUP, vretry.FAIL) == pytest.approx((100.388, 0.202, 30.202), abs=1e-12)
    monkeypatch.setitem(node(TINY, "dns"), "lookup", 0.5)
    queued, lookup, fail = vretry._tiny_delays()
    assert (queued, lookup, fail) == pytest.approx((100.388, 0.502, 30.502), abs=1e-12)


# -- retry: broken models ----------------------------------------------------------------


# The lost message never gives up: its give-up time is no number (the other cases are).
@breaks("retry", *schedule(*PRESETS), allow_nan=schedule(*PRESETS, what=("give-up time after queueing",)))
def test_a_lost_retry_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deferred queue drops the envelope it is given the third time: the message
    is never tried again, nor bounced."""
    put = retry_rules.DeferredQueue.put

    def losing(self: Any, envelope: Any, due: float) -> None:
        if self._puts == 2:  # this queue's third: counted, not kept
            self._puts += 1
        else:
            put(self, envelope, due)

    monkeypatch.setattr(retry_rules.DeferredQueue, "put", losing)


@breaks("retry", *schedule(*GROWING, what=SCHEDULE[::2]), *grey("gmail", 1, 2, 3, 4), *grey("yahoo", 1, 2, 3, 4))
def test_a_gap_off_by_one_step_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    gap = retry_rules.Intervals.gap
    monkeypatch.setattr(retry_rules.Intervals, "gap", lambda self, failures: gap(self, failures + 1))


@breaks("retry", *schedule("exchange", "rfc5321", "sendgrid", "mailgun", "sparkpost", "ses", "gmail", "yahoo",
                           "outlook", what=SCHEDULE[1:2]))
def test_the_last_try_not_brought_forward_to_the_give_up_time_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A list of gaps: the try due past the give-up time is not brought forward to it,
    so the message bounces later (or, past the give-up time at the failure before, never tried there)."""
    monkeypatch.setattr(retry_rules.Intervals, "next_due",
                        lambda self, q, attempts, now, dest=None: None if now - q >= self.give_up
                        else now + self.gap(attempts))


@breaks("retry", *schedule("postfix", what=SCHEDULE[::2]))
def test_postfix_without_its_maximal_backoff_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """maximal_backoff_time ignored: the wait keeps growing with the message's age.
    (Postfix's whole-second rule is watched by tests/test_presets.py: on the preset's
    300 s grid no due time falls within a second of a scan, so it moves no attempt.)"""
    due = retry_rules.PostfixBackoff.next_due

    def uncapped(self: Any, queued_at: float, attempts: int, now: float, dest: Any = None) -> float | None:
        self.maximal = math.inf
        return due(self, queued_at, attempts, now, dest)

    monkeypatch.setattr(retry_rules.PostfixBackoff, "next_due", uncapped)


@breaks("retry", "postfix, scans and backoff of 10 s: a retry stamped 1 s past a scan goes at that scan")
def test_postfix_without_its_one_second_look_ahead_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    init = retry_rules.DeferredQueue.__init__

    def exact_scans(self: Any, env: Any, every: float, release: Any, whole_seconds: bool = False) -> None:
        init(self, env, every, release, False)

    assert vretry.LOOK_AHEAD_RETRY == 140
    monkeypatch.setattr(retry_rules.DeferredQueue, "__init__", exact_scans)
    assert vretry.look_ahead_retry() == pytest.approx(150)  # the next scan


@breaks("retry", *schedule("exim", what=SCHEDULE[::2]))
def test_exim_without_its_geometric_growth_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    segments = retry_rules.EximRule.parse("F,2h,15m; G,16h,1h,1.0; F,4d,6h").segments
    monkeypatch.setattr(retry_rules.EximRule, "parse", classmethod(lambda cls, text: cls(segments)))


@breaks("retry", *schedule("qmail", what=SCHEDULE[::2]))
def test_qmail_squares_shifted_by_one_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    due = retry_rules.Quadratic.next_due
    monkeypatch.setattr(retry_rules.Quadratic, "next_due",
                        lambda self, q, attempts, now, dest=None: due(self, q, attempts + 1, now, dest))


@breaks("retry", "yahoo behind greylisting: delay at postgrey's 300 s")
def test_greylisting_counted_from_the_last_sighting_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A greylisted triplet's first sighting moved to now: the delay counts from the
    last retry, so Yahoo's 5:39 no longer passes (the 12:58 does)."""
    check = Greylist.check

    def forgetful(self: Any, server: Any, client: str, msg: Any, now: float) -> Any:
        reply = check(self, server, client, msg, now)
        if reply is GREYLISTED:
            key = (client, msg.sender, msg.domain, msg.user)
            self.triplets[key] = (now, now)
        return reply

    monkeypatch.setattr(Greylist, "check", forgetful)
    c = the_case("retry", "yahoo behind greylisting: delay at postgrey's 300 s")
    assert c.measure(True, 1).value == pytest.approx(779.374 + 0.46, abs=1e-6)


def test_the_comparisons_with_reality_are_not_scored() -> None:
    gmail = the_case("retry", "gmail behind greylisting: delay at postgrey's 300 s")
    outlook = the_case("retry", "outlook behind greylisting: mean retry gap")
    assert not gmail.scored and not outlook.scored and gmail.note and outlook.note
    # Hotmail's measured mean gap (94 attempts to 362:11), not the preset's own 150 s
    assert outlook.reference == pytest.approx(21731 / 93, abs=0.05) and "not an input" in outlook.note
    m = gmail.measure(True, 1)
    assert gmail.judge(m) is None and m.value > 6 * 3600  # the 7th retry, from the first IP again



def test_the_greylisting_rows_say_which_are_inputs() -> None:
    """Retries 1-4 are the presets' own gaps seen through the model (scored, and say so);
    the later measured retries and Hotmail's delay were no input (compared, not scored)."""
    rows = [c for c in cases(groups=["retry"]) if "behind greylisting: retry" in c.name]
    inputs = [c for c in rows if "past the measured gaps" not in c.name]
    later = [c for c in rows if "past the measured gaps" in c.name]
    assert len(inputs) == len(later) == 8
    assert all(c.scored and c.note.startswith("an input seen through the model") for c in inputs)
    assert all(not c.scored and c.note.startswith("not an input") for c in later)
    assert [c.reference for c in later if c.name.startswith("yahoo")] == [3313, 6575, 13007, 25836]  # 55:13 ... 430:36
    outlook = the_case("retry", "outlook behind greylisting: delay at postgrey's 300 s")
    assert not outlook.scored and outlook.reference == 5 * 60 + 6
    assert 300 < outlook.measure(True, 1).value < 301.5  # the second 150 s retry, after two greylisted sessions


# -- concurrency: broken models ----------------------------------------------------------

SLOW_START = tuple(f"slow start {label}: {what}" for label in ("5 -> 20", "2 -> 10")
                   for what in ("rounds until the window is at the limit",
                                "attempts per round, largest gap from min(initial + n, limit)"))


@breaks("concurrency", *SLOW_START)
def test_doubled_positive_feedback_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    value = conc.Feedback.value
    monkeypatch.setattr(conc.Feedback, "value", lambda self, window: 2 * value(self, window))


@breaks("concurrency", *SLOW_START)
def test_an_initial_window_off_by_one_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conc.PostfixConcurrency, "destination", lambda self: conc.Destination(self.initial + 1))


@breaks("concurrency", *(f"dead destination, failed_cohort_limit {limit}: attempts before it is dead"
                         for limit in (1, 2)))
def test_a_cohort_limit_off_by_one_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    init = conc.PostfixConcurrency.__init__

    def one_more(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.cohort_limit += 1

    monkeypatch.setattr(conc.PostfixConcurrency, "__init__", one_more)


def throttled_for(change: float) -> Any:
    """A break: every dead destination closed ``change`` s longer than its throttle time."""

    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        init = conc.PostfixConcurrency.__init__

        def changed(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            self.throttle_time += change

        monkeypatch.setattr(conc.PostfixConcurrency, "__init__", changed)

    return patch


def test_a_dead_destination_reopens_within_the_probes_spacing() -> None:
    """On the model as it is the first probe tried arrived within 0.1 s after the reopening."""
    assert 300 <= vconc.dead_for() < 300.1


@breaks("concurrency", "dead destination: closed for minimal_backoff_time")
def test_a_dead_destination_closed_too_long_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Closed 1 s too long: the first probe tried comes 1 s later, past the 0.1 s allowed."""
    throttled_for(1.0)(monkeypatch)


@breaks("concurrency", "dead destination: closed for minimal_backoff_time")
def test_a_dead_destination_closed_too_short_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Closed 1 s too short (with 1 s probes this one passed: 299.75 within 1 s)."""
    throttled_for(-1.0)(monkeypatch)


# -- the tolerances ------------------------------------------------------------------


def test_the_tolerances_are_stated_and_finite_for_every_scored_case() -> None:
    for c in cases(groups=["retry", "concurrency"]):
        assert c.source
        if c.scored:
            assert math.isfinite(c.tolerance) and c.tolerance >= 0
