"""sim.core.timers: sleepers off SimPy's schedule wake in exactly SimPy's order."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core.counting import CountingEnvironment
from simpy.events import NORMAL

from sim.core.timers import Timers

# Whole seconds and zero: waits that end at the same instant as other events, where only
# SimPy's tie-breaker (priority, then event number) decides the order.
delays = st.lists(st.integers(min_value=0, max_value=4).map(float), min_size=0, max_size=6)


def _world(
    env: simpy.Environment, sleepers: list[list[float]], others: list[list[float]], timers: Timers | None
) -> list[tuple[float, str, float]]:
    """Sleepers (via ``timers``, or as SimPy processes when it is None) and ordinary
    processes, each noting when it wakes (and what SimPy's schedule has next then);
    ordinary processes also start sleepers late and fire zero-delay events, so that
    waits are made in the middle of the run."""
    log: list[tuple[float, str, float]] = []

    def woke(name: str, i: int) -> None:
        # An event made between waking and the next wait: it must take its number
        # before the next wait does, as with a process.
        log.append((env.now, f"{name}.{i}", env.peek()))
        event = env.event()
        event.callbacks.append(lambda _, n=f"{name}.{i}.then": log.append((env.now, n, env.peek())))
        event.succeed()

    def sleeper_gen(name: str, waits: list[float]) -> Generator[float, None, None]:
        for i, d in enumerate(waits):
            yield d
            woke(name, i)

    def as_process(name: str, waits: list[float]) -> Generator[simpy.Event, Any, None]:
        for i, d in enumerate(waits):
            yield env.timeout(d)
            woke(name, i)

    def start(name: str, waits: list[float]) -> None:
        if timers is None:
            env.process(as_process(name, waits))
        else:
            timers.start(sleeper_gen(name, waits))

    def other(name: str, waits: list[float]) -> Generator[simpy.Event, Any, None]:
        for i, d in enumerate(waits):
            yield env.timeout(d)
            log.append((env.now, f"{name}.{i}", env.peek()))
            if i == 1:
                start(f"{name}-late", list(reversed(waits)))
            event = env.event()
            event.callbacks.append(lambda _, n=f"{name}.{i}.now": log.append((env.now, n, env.peek())))
            event.succeed()

    for k, waits in enumerate(sleepers):
        start(f"s{k}", waits)
    for k, waits in enumerate(others):
        env.process(other(f"o{k}", waits))
    env.run()
    return log


@settings(max_examples=200, deadline=None)
@given(st.lists(delays, max_size=8), st.lists(delays, max_size=4))
def test_sleepers_wake_in_simpys_own_order(sleepers: list[list[float]], others: list[list[float]]) -> None:
    env = simpy.Environment()
    expected = _world(env, sleepers, others, None)
    env2 = simpy.Environment()
    assert _world(env2, sleepers, others, Timers(env2)) == expected


def test_fractional_waits_end_where_a_timeout_would() -> None:
    # now + delay, as SimPy computes it: 0.1 + 0.2 is not 0.3.
    waits = [0.1, 0.2, 1e-9, 3.7, 1e6]
    env = simpy.Environment()
    expected = _world(env, [waits, waits[::-1]], [[0.3, 0.0, 0.30000000000000004]], None)
    env2 = simpy.Environment()
    got = _world(env2, [waits, waits[::-1]], [[0.3, 0.0, 0.30000000000000004]], Timers(env2))
    assert got == expected
    assert [t for t, _, _ in got] == [t for t, _, _ in expected]


def test_only_the_next_wait_is_in_simpys_schedule() -> None:
    env = simpy.Environment()
    timers = Timers(env)
    woke: list[float] = []

    def sleeper(first: float) -> Generator[float, None, None]:
        yield first
        woke.append(env.now)
        yield 1000.0
        woke.append(env.now)

    for k in range(1000):
        timers.start(sleeper(1.0 + k))
    env.run(until=0.5)  # every sleeper has started and waits
    assert len(timers) == 1000
    # SimPy's schedule holds the first wait, and the stopped run's own marker.
    assert [key[:3] for key in env._queue if key[1] == 1] == [(1.0, 1, 1001)]  # type: ignore[attr-defined]
    assert len(env._queue) == 2  # type: ignore[attr-defined]
    env.run()
    assert woke == sorted(woke) and len(woke) == 2000 and len(timers) == 0


def test_event_counts_are_a_processs() -> None:
    # A wait is a timeout, a start an Initialize, an end a process's end event.
    counted = []
    for use_timers in (False, True):
        env = CountingEnvironment()
        _world(env, [[1.0, 2.0], [0.0]], [[1.0]], Timers(env) if use_timers else None)
        counted.append(env.scheduled)
    assert counted[0] == counted[1] > 0


def _against_processes(make: Any) -> None:
    """Run ``make(env, start)`` with sleepers and with processes: the same log, event
    count, errors (type, message, cause) and clock, the run continued after each error."""
    outcomes = []
    for use_timers in (True, False):
        env = CountingEnvironment()
        timers = Timers(env)
        log: list[tuple[float, str, float]] = []

        def start(sleeper: Generator[float, None, None], env: CountingEnvironment = env,
                  timers: Timers = timers) -> None:
            if use_timers:
                timers.start(sleeper)
                return

            def as_process() -> Generator[simpy.Event, Any, None]:
                try:
                    d = next(sleeper)
                    while True:
                        try:
                            timeout = env.timeout(d)
                        except ValueError as exc:
                            d = sleeper.throw(exc)
                            continue
                        yield timeout
                        d = next(sleeper)
                except StopIteration:
                    return

            env.process(as_process())

        make(env, start, log)
        errors = []
        for _ in range(5):
            try:
                env.run()
                break
            except Exception as exc:  # noqa: BLE001 - compared below
                errors.append((type(exc), str(exc), type(exc.__cause__), env.now))
        outcomes.append((log, errors, env.scheduled, env.now))
    assert outcomes[0] == outcomes[1]


def test_an_error_in_a_sleeper_is_a_processs_error() -> None:
    def make(env: simpy.Environment, start: Any, log: list[tuple[float, str, float]]) -> None:
        def sleeper(name: str, fail_at: int | None, step: float) -> Generator[float, None, None]:
            for i in range(3):
                yield step
                if i == fail_at:
                    raise KeyError(name)
                log.append((env.now, f"{name}.{i}", env.peek()))

        for name, fail_at, step in (("a", 0, 1.0), ("b", None, 1.0), ("c", 1, 1.5), ("d", None, 0.5)):
            start(sleeper(name, fail_at, step))

    _against_processes(make)


def test_a_negative_wait_is_raised_in_the_sleeper_as_simpy_raises_it() -> None:
    def make(env: simpy.Environment, start: Any, log: list[tuple[float, str, float]]) -> None:
        def careful() -> Generator[float, None, None]:
            try:
                yield -1.0
            except ValueError as exc:
                log.append((env.now, str(exc), env.peek()))
            yield 2.0
            log.append((env.now, "careful woke", env.peek()))

        def careless() -> Generator[float, None, None]:
            yield 1.0
            yield -3.0

        start(careful())
        start(careless())

    _against_processes(make)


def test_a_sleeper_that_yields_an_event_is_told_so() -> None:
    env = simpy.Environment()
    timers = Timers(env)

    def wrong() -> Generator[Any, None, None]:
        yield env.timeout(1)

    timers.start(wrong())
    with pytest.raises(TypeError, match="a sleeper yields delays in seconds, not <Timeout"):
        env.run()


def test_a_wait_enters_simpys_schedule_as_a_timeout_would() -> None:
    # The canary for SimPy's private key layout: (time, priority, event number, event).
    env = simpy.Environment()
    timers = Timers(env)

    def sleeper() -> Generator[float, None, None]:
        yield 2.5

    timers.start(sleeper())
    env.step()  # its start: the wait takes its number now
    timeout = env.timeout(2.5)  # the next number
    entries = sorted(env._queue, key=lambda entry: entry[:3])  # type: ignore[attr-defined]
    (at, priority, number, event), (t_at, t_priority, t_number, t_event) = entries
    assert t_event is timeout
    assert (at, priority, number + 1) == (t_at, t_priority, t_number) == (2.5, NORMAL, number + 1)
    assert event is not timeout and event.callbacks and event.ok


def test_timers_refuse_an_environment_without_simpys_schedule() -> None:
    class Elsewhere:
        pass

    with pytest.raises(TypeError, match="SimPy 4's Environment"):
        Timers(Elsewhere())  # type: ignore[arg-type]
