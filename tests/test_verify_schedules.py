"""The retry and concurrency groups of ``mailflow verify`` (sim/verification/retry.py,
concurrency.py): every case passes on the model as it is, and a model broken in one
rule (a gap off by one step, a lost retry, Postfix's backoff cap or its one-second look-ahead dropped, Exim's
growth ignored, qmail's squares shifted, greylisting counted from the last sighting,
feedback doubled, the initial window or the cohort limit off by one) fails the cases
that watch that rule."""

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
from sim.verification import Case, cases
from sim.verification import concurrency as vconc
from sim.verification import retry as vretry
from tests.conftest import cli


def _clear() -> None:
    for fn in (vretry.down_for_ever, vretry.greylisted, vconc.slow_start_rounds, vconc.dead_attempts,
               vconc.dead_for, vretry.look_ahead_retry):
        fn.cache_clear()


@pytest.fixture(autouse=True)
def fresh_runs() -> Iterator[None]:
    """The groups keep one run per world (their cases share it): none may outlive a
    broken model, so the runs are dropped before and after each test."""
    _clear()
    yield
    _clear()


def named(group: str, name: str) -> Case:
    return next(c for c in cases(groups=[group]) if c.name == name)


def judged(c: Case) -> bool | None:
    return c.judge(c.measure(True, 1))


def test_every_retry_and_concurrency_case_passes_on_the_model() -> None:
    chosen = cases(quick=True, groups=["retry", "concurrency"])
    for what in ("attempts before giving up", "give-up time after queueing",
                 "attempt times, largest gap from the schedule"):
        presets = {c.name.split(":")[0] for c in chosen if c.name.endswith(f": {what}")}
        assert presets == set(PRESETS), what
    for c in chosen:
        m = c.measure(True, 1)
        assert c.judge(m) in (True, None), (c.name, m)


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


# -- retry: broken models ----------------------------------------------------------------


def test_a_gap_off_by_one_step_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    gap = retry_rules.Intervals.gap
    monkeypatch.setattr(retry_rules.Intervals, "gap", lambda self, failures: gap(self, failures + 1))
    assert judged(named("retry", "mailgun: attempt times, largest gap from the schedule")) is False
    assert judged(named("retry", "mailgun: attempts before giving up")) is False
    assert judged(named("retry", "yahoo behind greylisting: retry 2")) is False


def test_a_lost_retry_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deferred queue drops the envelope it is given the third time: the message
    is never tried again."""
    put = retry_rules.DeferredQueue.put
    seen = {"puts": 0}

    def losing(self: Any, envelope: Any, due: float) -> None:
        seen["puts"] += 1
        if seen["puts"] != 3:
            put(self, envelope, due)

    monkeypatch.setattr(retry_rules.DeferredQueue, "put", losing)
    assert judged(named("retry", "sendmail: attempts before giving up")) is False
    assert judged(named("retry", "sendmail: give-up time after queueing")) is False


def test_postfix_without_its_maximal_backoff_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """maximal_backoff_time ignored: the wait keeps growing with the message's age.
    (Postfix's whole-second rule is watched by tests/test_presets.py: on the preset's
    300 s grid no due time falls within a second of a scan, so it moves no attempt.)"""
    due = retry_rules.PostfixBackoff.next_due

    def uncapped(self: Any, queued_at: float, attempts: int, now: float, dest: Any = None) -> float | None:
        self.maximal = math.inf
        return due(self, queued_at, attempts, now, dest)

    monkeypatch.setattr(retry_rules.PostfixBackoff, "next_due", uncapped)
    assert judged(named("retry", "postfix: attempt times, largest gap from the schedule")) is False
    assert judged(named("retry", "postfix: attempts before giving up")) is False


def test_postfix_without_its_one_second_look_ahead_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    init = retry_rules.DeferredQueue.__init__

    def exact_scans(self: Any, env: Any, every: float, release: Any, whole_seconds: bool = False) -> None:
        init(self, env, every, release, False)

    c = named("retry", "postfix, scans and backoff of 10 s: a retry stamped 1 s past a scan goes at that scan")
    assert vretry.LOOK_AHEAD_RETRY == 140 and judged(c) is True
    vretry.look_ahead_retry.cache_clear()
    monkeypatch.setattr(retry_rules.DeferredQueue, "__init__", exact_scans)
    m = c.measure(True, 1)
    assert c.judge(m) is False and m.value == pytest.approx(150)


def test_exim_without_its_geometric_growth_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    segments = retry_rules.EximRule.parse("F,2h,15m; G,16h,1h,1.0; F,4d,6h").segments
    monkeypatch.setattr(retry_rules.EximRule, "parse", classmethod(lambda cls, text: cls(segments)))
    assert judged(named("retry", "exim: attempt times, largest gap from the schedule")) is False
    assert judged(named("retry", "exim: attempts before giving up")) is False


def test_qmail_squares_shifted_by_one_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    due = retry_rules.Quadratic.next_due
    monkeypatch.setattr(retry_rules.Quadratic, "next_due",
                        lambda self, q, attempts, now, dest=None: due(self, q, attempts + 1, now, dest))
    assert judged(named("retry", "qmail: attempt times, largest gap from the schedule")) is False


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
    c = named("retry", "yahoo behind greylisting: delay at postgrey's 300 s")
    m = c.measure(True, 1)
    assert c.judge(m) is False and m.value == pytest.approx(779.374 + 0.46, abs=1e-6)


def test_the_comparisons_with_reality_are_not_scored() -> None:
    gmail = named("retry", "gmail behind greylisting: delay at postgrey's 300 s")
    outlook = named("retry", "outlook behind greylisting: mean retry gap")
    assert not gmail.scored and not outlook.scored and gmail.note and outlook.note
    m = gmail.measure(True, 1)
    assert gmail.judge(m) is None and m.value > 6 * 3600  # the 7th retry, from the first IP again


# -- concurrency: broken models ----------------------------------------------------------


def test_doubled_positive_feedback_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    value = conc.Feedback.value
    monkeypatch.setattr(conc.Feedback, "value", lambda self, window: 2 * value(self, window))
    assert judged(named("concurrency", "slow start 5 -> 20: rounds until the window is at the limit")) is False
    assert judged(named(
        "concurrency", "slow start 2 -> 10: attempts per round, largest gap from min(initial + n, limit)")) is False


def test_an_initial_window_off_by_one_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conc.PostfixConcurrency, "destination", lambda self: conc.Destination(self.initial + 1))
    assert judged(named("concurrency", "slow start 2 -> 10: rounds until the window is at the limit")) is False
    assert judged(named(
        "concurrency", "slow start 5 -> 20: attempts per round, largest gap from min(initial + n, limit)")) is False


def test_a_cohort_limit_off_by_one_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    init = conc.PostfixConcurrency.__init__

    def one_more(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.cohort_limit += 1

    monkeypatch.setattr(conc.PostfixConcurrency, "__init__", one_more)
    for limit in (1, 2):
        name = f"dead destination, failed_cohort_limit {limit}: attempts before it is dead"
        assert judged(named("concurrency", name)) is False


def test_a_dead_destination_closed_for_the_wrong_time_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Closed 2 s too long: the first probe tried comes 2 s later, past the 1 s allowed."""
    init = conc.PostfixConcurrency.__init__

    def longer(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.throttle_time += 2

    c = named("concurrency", "dead destination: closed for minimal_backoff_time")
    assert 300 <= c.measure(True, 1).value < 301
    vconc.dead_for.cache_clear()
    monkeypatch.setattr(conc.PostfixConcurrency, "__init__", longer)
    assert judged(c) is False


# -- the command ---------------------------------------------------------------------


def test_mailflow_verify_quick_for_both_groups(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(["verify", "--quick", "--only", "retry", "--only", "concurrency"], capsys)
    assert code == 0, out
    assert "FAIL" not in out


def test_the_tolerances_are_stated_and_finite_for_every_scored_case() -> None:
    for c in cases(groups=["retry", "concurrency"]):
        assert c.source
        if c.scored:
            assert math.isfinite(c.tolerance) and c.tolerance >= 0
