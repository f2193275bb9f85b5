"""The queueing cases (sim/verification/queueing.py): the unbroken model passes each at
the quick sample, and a deliberately broken model (an agent or a scanner off by one, a
service drawn slow or with the wrong variance, a level that misses changes) fails it.

The broken runs use smaller worlds (fewer customers, two replications): each break
moves its figure far past the tolerance, so a small sample tells."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from sim.config import parse_scenario
from sim.core.monitors import Level
from sim.mail.mta import MTA
from sim.mail.mx import MX
from sim.simulation.lifecycle import run
from sim.verification import Case, cases, queueing
from tests.conftest import tiny_data


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    """No run shared with another test (a broken model must run afresh)."""
    queueing.clear()
    yield
    queueing.clear()


def the_case(name: str) -> Case:
    """The queueing case whose name starts with ``name``."""
    found = [c for c in cases(groups=["queueing"]) if c.name.startswith(name)]
    assert len(found) == 1, [c.name for c in found]
    return found[0]


def shrink(monkeypatch: pytest.MonkeyPatch, world: str, customers: int = 15_000, reps: int = 2) -> None:
    """The quick run of ``world`` with fewer customers and replications."""
    small = dataclasses.replace(queueing.WORLDS[world], customers=(customers, customers), reps=(reps, reps))
    monkeypatch.setitem(queueing.WORLDS, world, small)


def judged(name: str) -> bool | None:
    """Run the case ``name`` on the quick set's footing and judge it."""
    c = the_case(name)
    return c.judge(c.measure(True, 1))


def test_references_by_hand() -> None:
    # a = 3.2, c = 4: P(wait) = 21.845 / 36.627 = 0.5964, Wq = 0.5964 / 0.8.
    assert queueing.erlang_c(4, 3.2, 1.0) == pytest.approx(0.5964, abs=1e-4)
    assert queueing.erlang_c_wait(4, 3.2, 1.0) == pytest.approx(0.7455, abs=1e-4)
    # M/M/1: P(wait) = rho, Wq = rho / (mu - lam); M/D/1 at 0.8: 0.8 / (2 * 0.2) = 2.
    assert queueing.erlang_c(1, 0.5, 1.0) == pytest.approx(0.5)
    assert queueing.erlang_c_wait(1, 0.9, 1.0) == pytest.approx(9.0)
    assert queueing.pollaczek_khinchine_wait(0.8, 1.0, 1.0) == pytest.approx(2.0)
    # P-K with exponential service (E[S^2] = 2) is M/M/1.
    assert queueing.pollaczek_khinchine_wait(0.5, 1.0, 2.0) == pytest.approx(queueing.erlang_c_wait(1, 0.5, 1.0))


def test_the_quick_set_has_loads_up_to_0_8_and_the_full_set_adds_heavy_loads() -> None:
    # That the quick set passes is tests/test_verify_quick.py's (it runs every group once).
    quick = cases(quick=True, groups=["queueing"])
    assert len(quick) == 19
    assert not any("ρ 0.9" in c.name for c in quick)
    full = {c.name for c in cases(groups=["queueing"])}
    assert "MTA delivery agents, M/M/4 at ρ 0.95: mean wait in queue" in full
    assert "MX content scanners, M/M/4 at ρ 0.95: mean wait in queue" in full


def test_the_same_seed_gives_the_same_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    shrink(monkeypatch, "mm1-50", customers=3000)
    c = the_case("MTA delivery agents, M/M/1 at ρ 0.5: mean wait")
    first = c.measure(True, 5)
    queueing.clear()
    assert c.measure(True, 5) == first
    assert c.measure(True, 6) != first


def spec_changed(monkeypatch: pytest.MonkeyPatch, kind: type[Any], **changes: Any) -> None:
    """``kind`` (MTA or MX) starts with ``changes`` to its node's keys (a model that
    staffs the wrong number of workers)."""
    start = kind.start

    def broken(self: Any) -> None:
        update = {k: f(getattr(self.spec, k)) for k, f in changes.items()}
        self.spec = self.spec.model_copy(update=update)
        start(self)

    monkeypatch.setattr(kind, "start", broken)


def session_time_replaced(monkeypatch: pytest.MonkeyPatch, make: Callable[[Any], Callable[[], float]]) -> None:
    """Every MTA draws its session time from ``make(the MTA's own draw)``."""
    init = MTA.__init__

    def broken(self: MTA, *args: Any) -> None:
        init(self, *args)
        if self._session_time is not None:
            self._session_time = make(self._session_time)

    monkeypatch.setattr(MTA, "__init__", broken)


def test_mm4_fails_with_an_agent_short(monkeypatch: pytest.MonkeyPatch) -> None:
    shrink(monkeypatch, "mm4-80")
    spec_changed(monkeypatch, MTA, workers=lambda c: c - 1)  # M/M/3 at a = 3.2: unstable
    assert judged("MTA delivery agents, M/M/4 at ρ 0.8: mean wait") is False
    assert judged("MTA delivery agents, M/M/4 at ρ 0.8: P(wait > 0)") is False


def test_mm1_fails_with_a_session_10_percent_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    shrink(monkeypatch, "mm1-50", customers=20_000)
    session_time_replaced(monkeypatch, lambda draw: lambda: 1.1 * draw())  # rho 0.55: Wq +22 %
    assert judged("MTA delivery agents, M/M/1 at ρ 0.5: mean wait") is False
    assert judged("MTA delivery agents, M/M/1 at ρ 0.5: P(wait > 0)") is False


def test_md1_fails_when_the_constant_session_is_drawn_exponential(monkeypatch: pytest.MonkeyPatch) -> None:
    shrink(monkeypatch, "md1-80")
    gen = np.random.default_rng(3)
    session_time_replaced(monkeypatch, lambda draw: lambda: float(gen.exponential(draw())))  # M/M/1: Wq 4
    assert judged("MTA session_time constant, M/D/1 at ρ 0.8: mean wait") is False


def test_mg1_fails_when_the_session_variance_is_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    shrink(monkeypatch, "mg1-70")
    session_time_replaced(monkeypatch, lambda draw: lambda: 1.0)  # M/D/1 at 0.7: Wq 1.17, not 2.05
    assert judged("MTA session_time log-normal σ 0.75, M/G/1 at ρ 0.7: mean wait") is False


def test_mx_fails_with_a_scanner_too_many(monkeypatch: pytest.MonkeyPatch) -> None:
    shrink(monkeypatch, "mx2-80")
    spec_changed(monkeypatch, MX, workers=lambda c: c + 1)  # M/M/3 at a = 1.6: Wq 0.19, not 1.78
    assert judged("MX content scanners, M/M/2 at ρ 0.8: mean wait") is False


def test_little_fails_when_a_level_skips_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    # A guard that treats 0 as "nothing to record" (``if n: level.set(now, n)``): a
    # queue that empties still reads 1 until it next grows, so the time-average of the
    # waiting line is well above lambda W.
    shrink(monkeypatch, "mm4-80")
    set_level = Level.set

    def skips_zero(self: Level, now: float, value: float) -> None:
        if value:
            set_level(self, now, value)

    monkeypatch.setattr(Level, "set", skips_zero)
    assert judged("MTA delivery agents, M/M/4 at ρ 0.8: Little, (active_queue") is False


def test_little_fails_when_a_level_counts_a_change_from_the_one_before(monkeypatch: pytest.MonkeyPatch) -> None:
    # An off-by-one in the step function: the new value counted from the previous
    # change instead of from now. The busy servers' average drifts up by the share of
    # time spent before a rise (sessions 1.5 %, scanners by a third).
    shrink(monkeypatch, "mm4-80")
    shrink(monkeypatch, "mx2-80")
    set_level = Level.set

    def late(self: Level, now: float, value: float) -> None:
        self.value = value
        set_level(self, now, value)

    monkeypatch.setattr(Level, "set", late)
    assert judged("MTA delivery agents, M/M/4 at ρ 0.8: Little, sessions") is False
    assert judged("MX content scanners, M/M/2 at ρ 0.8: Little, (scan_queue") is False
    assert judged("MX content scanners, M/M/2 at ρ 0.8: Little, scanners_busy") is False


def test_session_time_is_spent_after_the_dot_and_absent_changes_nothing() -> None:
    data = tiny_data(duration=1000, drain=100)
    plain = run(parse_scenario(data), trace=True).attempts
    assert plain is not None
    for item in data["topology"]["nodes"]:
        if item["id"] == "mta":
            item["session_time"] = {"dist": "constant", "value": 2.5}
    slow = run(parse_scenario(data), trace=True).attempts
    assert slow is not None
    relay = (plain["src"] == "mta") & (plain["dst"] == "mx")
    assert relay.sum() > 5
    took = (slow["end"] - slow["start"])[relay.to_numpy()].to_numpy()
    before = (plain["end"] - plain["start"])[relay].to_numpy()
    assert took == pytest.approx(before + 2.5)
    # The submission (hop 0) is the smtpd side: untouched.
    sub = (plain["hop"] == 0).to_numpy()
    assert (slow["end"] - slow["start"]).to_numpy()[sub] == pytest.approx((plain["end"] - plain["start"]).to_numpy()[sub])
