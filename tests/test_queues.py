"""WorkQueue and Slots: first come, first served, as simpy.Store and Resource."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import simpy

from sim.core.queues import Slots, WorkQueue


def test_work_queue_serves_items_and_workers_in_order() -> None:
    env = simpy.Environment()
    queue: WorkQueue[str] = WorkQueue(env)
    got: list[tuple[float, str, str]] = []

    def worker(name: str, service: float) -> Any:
        while True:
            item = queue.items.popleft() if queue.items else (yield queue.wait())
            got.append((env.now, name, item))
            yield env.timeout(service)

    env.process(worker("w1", 3.0))
    env.process(worker("w2", 3.0))

    def producer() -> Any:
        yield env.timeout(1.0)
        for item in "abc":
            queue.put(item)
        yield env.timeout(1.0)
        queue.put("d")

    env.process(producer())
    env.run(until=20)
    # a and b go to the idle workers in the order they began waiting; c waits for w1.
    assert got == [(1.0, "w1", "a"), (1.0, "w2", "b"), (4.0, "w1", "c"), (4.0, "w2", "d")]
    assert len(queue) == 0


def test_slots_admit_up_to_capacity_then_hand_over_in_order() -> None:
    env = simpy.Environment()
    slots = Slots(env, capacity=2)
    spans: dict[str, tuple[float, float]] = {}

    def user(name: str, arrive: float, hold: float) -> Any:
        yield env.timeout(arrive)
        yield from slots.acquire()
        start = env.now
        yield env.timeout(hold)
        slots.release()
        spans[name] = (start, env.now)

    for name, arrive, hold in [("a", 0, 5), ("b", 1, 2), ("c", 2, 1), ("d", 2.5, 1)]:
        env.process(user(name, arrive, hold))
    env.run()
    assert spans == {"a": (0, 5), "b": (1, 3), "c": (3, 4), "d": (4, 5)}
    assert slots.busy == 0


def test_a_staffed_queue_hires_on_demand_and_serves_as_a_started_pool_would() -> None:
    # The same work as above, served by workers the queue starts itself: no process
    # before the first item, at most two, and the same times (a and b at once, c when
    # the first worker is free, d at 4 too).
    env = simpy.Environment()
    queue: WorkQueue[str] = WorkQueue(env)
    got: list[tuple[float, str]] = []

    def worker(first: simpy.Event) -> Any:
        waiting: simpy.Event | None = first
        while True:
            if waiting is None and queue.items:
                item = queue.items.popleft()
            else:
                item = yield (waiting or queue.wait())
                waiting = None
            got.append((env.now, item))
            yield env.timeout(3.0)

    queue.staff(2, lambda first: env.process(worker(first)))

    def producer() -> Any:
        yield env.timeout(1.0)
        assert queue.hired == 0
        for item in "abc":
            queue.put(item)
        assert queue.hired == 2 and list(queue.items) == ["c"]
        yield env.timeout(1.0)
        queue.put("d")

    env.process(producer())
    env.run(until=20)
    assert got == [(1.0, "a"), (1.0, "b"), (4.0, "c"), (4.0, "d")]
    assert queue.hired == 2


def test_a_staffed_queue_hands_a_requeued_item_to_a_new_hire_first() -> None:
    env = simpy.Environment()
    queue: WorkQueue[str] = WorkQueue(env)
    firsts: list[object] = []
    queue.staff(3, lambda first: firsts.append(first.value))
    queue.put("a")
    queue.requeue("b")
    assert firsts == ["a", "b"] and not queue.items
    queue.put("c")
    queue.put("d")  # the pool is full and nobody waits: it queues
    queue.requeue("e")
    assert firsts == ["a", "b", "c"] and list(queue.items) == ["e", "d"]


def serve(rest: bool, arrivals: list[float], service: list[float], quit: list[float], workers: int) -> list[float]:
    """When each item's service starts, with the QUIT after each item spent in a
    timeout (``rest=False``, the plain way) or by resting (``WorkQueue.wait(free)``)."""
    env = simpy.Environment()
    queue: WorkQueue[int] = WorkQueue(env)
    started = [float("nan")] * len(arrivals)

    def worker(first: simpy.Event) -> Any:
        waiting: simpy.Event | None = first
        free = 0.0
        while True:
            if waiting is None and queue.items:
                if free > env.now:
                    yield env.timeout(free - env.now)
                    free = 0.0
                    continue
                item = queue.items.popleft()
            else:
                got = yield (waiting or queue.wait(free))
                waiting, free = None, 0.0
                if got is None:
                    continue
                item = got
            started[item] = env.now
            yield env.timeout(service[item])
            if rest:
                free = env.now + quit[item]
            else:
                yield env.timeout(quit[item])

    queue.staff(workers, lambda first: env.process(worker(first)))

    def source() -> Any:
        for i, t in enumerate(arrivals):
            yield env.timeout(t - env.now)
            queue.put(i)

    env.process(source())
    env.run()
    return started


@pytest.mark.parametrize("seed", range(6))
def test_resting_workers_serve_exactly_as_workers_spending_their_quit(seed: int) -> None:
    # A busy pool (load near 1, QUITs a fifth of a service) so that every case comes up:
    # work put while all rest, a worker free sooner than a resting one, ties.
    rng = np.random.default_rng(seed)
    n, workers = 3000, 3
    arrivals = np.cumsum(rng.exponential(1.0, n)).tolist()
    service = rng.exponential(2.5, n).tolist()
    quit = rng.exponential(0.5, n).tolist()
    plain = serve(False, arrivals, service, quit, workers)
    rested = serve(True, arrivals, service, quit, workers)
    assert rested == plain
    waited = np.array(plain) - np.array(arrivals)
    assert (waited > 0).mean() > 0.3  # the pool was busy: the test saw queueing
