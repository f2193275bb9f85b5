"""Concurrency: the Postfix preset's per-destination scheduler against the rules of
Postfix's SCHEDULER_README ("Concurrency scheduling"; docs/verification.md,
"Concurrency").

The references are the README's rules written out here, independent of
``sim.mail.concurrency``:

- slow start: the window starts at ``initial_destination_concurrency``; each delivery
  the site answered adds the positive feedback 1/window, and a whole unit (hysteresis 1)
  opens one more slot, up to ``destination_concurrency_limit``. Where every attempt
  takes the same time, the attempts go in rounds and round n has min(initial + n,
  limit) of them;
- dead destination: each failed session adds 1/window to the failed-cohort count and
  takes the negative feedback 1/window off (a whole unit closes one slot); when the
  count reaches ``destination_concurrency_failed_cohort_limit`` the destination is dead
  and what waits for it is deferred untried.

Every attempt in these worlds is timed to binary fractions, so the cases are exact:
tolerance 0 in attempts (the time a dead destination stays closed: the 0.1 s spacing of
the probes that find it open).

The worlds draw nothing at random, so ``--seed`` changes no figure here, and each world
runs once per process (``lru_cache``), shared by the cases that read it.
"""

from __future__ import annotations

import math
from collections import deque
from functools import lru_cache
from typing import Any

from .case import Measured, case
from .retry import world
from .worlds import edge, node

__all__ = ["dead_attempts", "dead_for", "readme_dead_attempts", "readme_rounds", "slow_start_rounds"]

README = "Postfix SCHEDULER_README, Concurrency scheduling (postconf(5) defaults)"


def readme_rounds(count: int, initial: int, limit: int) -> list[int]:
    """Attempts per round for ``count`` messages at once, every attempt as long as every
    other, under feedback 1/window: round n has min(initial + n, limit)."""
    rounds, left, n = [], count, 0
    while left > 0:
        k = min(initial + n, limit, left)
        rounds.append(k)
        left -= k
        n += 1
    return rounds


def readme_dead_attempts(count: int, workers: int, initial: int, cohort_limit: int) -> int:
    """Attempts made to a destination that never answers before it is dead: the
    attempts fail in the order they started; after each failure the rules of the README
    run, then waiting mail starts while the window has room."""
    window, failure, cohorts = initial, 0.0, 0.0
    running: deque[int] = deque(range(min(initial, workers, count)))
    started = len(running)
    while running:
        running.popleft()  # the oldest attempt times out
        cohorts += 1 / window
        if cohorts >= cohort_limit:
            return started
        failure -= 1 / window
        step = 1 / window
        while failure - step / 2 < 0:
            window -= 1
            failure += 1
        window = max(window, 1)
        while len(running) < min(window, workers) and started < count:
            running.append(started)
            started += 1
    return started


def _world(count: int, **mta: Any) -> dict[str, Any]:
    """``count`` messages at t=10 to one domain whose MX takes exactly 1 s per attempt:
    the MTA-MX path is 1/32 s one way, 8 round trips and 7,000 bytes at 16,000 B/s to
    the 250 after "." (0.9375 s), then QUIT; one look-up of 0.25 s, then cached."""
    data = world("postfix", drain=2000)
    data["duration"] = 20
    data["workload"][0].update(batches=[{"at": 10, "count": count}], size=7000)
    data["domains"][0]["mx_ttl"] = 150
    edge(data, "r", "mta")["latency"] = 0.0
    edge(data, "mta", "dns")["latency"] = 0.0
    edge(data, "r", "mx").update(latency=1 / 32, bandwidth=16_000)
    node(data, "dns")["lookup"] = 0.25
    node(data, "mta").update({"workers": 50, "smtpd_workers": count, **mta})
    return data


@lru_cache(maxsize=None)
def slow_start_rounds(count: int, initial: int, limit: int) -> tuple[int, ...]:
    """Run ``count`` messages at once: acceptances per 1-s round."""
    from ..config import parse_scenario
    from ..simulation import run

    data = _world(count, initial_destination_concurrency=initial, destination_concurrency_limit=limit)
    m = run(parse_scenario(data)).messages
    q = float(m["submitted"].min())
    if (m["status"] != "delivered").any():
        return ()
    rounds = [int(math.floor(a - q - 0.25 - 0.9375 + 0.5)) for a in m["accepted"]]
    counts = [0] * (max(rounds) + 1)
    for r in rounds:
        counts[r] += 1
    return tuple(counts)


@lru_cache(maxsize=None)
def dead_attempts(count: int, workers: int, cohort_limit: int) -> int:
    """Run ``count`` messages at once to a destination whose only MX is down: the
    attempts started before the destination could reopen (300 s)."""
    from ..config import parse_scenario
    from ..simulation import run

    data = _world(count, workers=workers, destination_concurrency_failed_cohort_limit=cohort_limit)
    data["drain"] = 300
    result = run(parse_scenario(data), trace=True, hook=lambda model: model.node("mx").set_up(False))
    attempts = result.attempts
    assert attempts is not None  # a traced run
    tries = attempts[(attempts["hop"] == 1) & (attempts["start"] < 300)]
    return len(tries)


PROBE_FROM, PROBE_TO, PROBE_EVERY = 300, 400, 0.1  # probe messages, one each 0.1 s between these times


@lru_cache(maxsize=None)
def dead_for() -> float:
    """How long a dead destination stays closed: 20 messages at once to a domain whose
    only MX is down kill it at T (the first failures' end); then one message each 0.1 s
    arrives from t=300 on. Mail for a dead destination is deferred untried; the first
    probe tried on arrival (its attempt starts within a second; the deferred ones wait
    for a queue scan minutes later) marks the reopening: its arrival less T, which lies
    within 0.1 s after the reopening."""
    from ..config import parse_scenario
    from ..simulation import run

    data = _world(20, workers=8)
    data["duration"], data["drain"] = PROBE_TO, 100
    people = data["workload"][0]
    count = round((PROBE_TO - PROBE_FROM) / PROBE_EVERY)
    data["workload"].append({**people, "name": "probes",
                             "batches": [{"at": PROBE_FROM + k * PROBE_EVERY, "count": 1} for k in range(count)]})
    result = run(parse_scenario(data), trace=True, hook=lambda model: model.node("mx").set_up(False))
    attempts = result.attempts
    assert attempts is not None  # a traced run
    relay = attempts[attempts["hop"] == 1]
    died = float(relay["end"].min())
    first = relay.groupby("id")["start"].min()
    m = result.messages
    probes = m[m["submitted"] >= PROBE_FROM].sort_values("submitted")
    for i, submitted in zip(probes.index, probes["submitted"]):
        if i in first.index and float(first[i]) - float(submitted) < 1.0:
            return float(submitted) - died
    return math.nan


def _register_slow_start(count: int, initial: int, limit: int) -> None:
    reference = readme_rounds(count, initial, limit)
    to_limit = limit - initial
    label = f"slow start {initial} -> {limit}"

    @case("concurrency", f"{label}: rounds until the window is at the limit", "rounds", to_limit, README, 0,
          relative=False, note=f"{count} messages at once, every attempt 1 s: the first round with {limit} attempts")
    def rounds(quick: bool, seed: int) -> Measured:
        counts = slow_start_rounds(count, initial, limit)
        n = next((i for i, c in enumerate(counts) if c >= limit), math.nan)
        return Measured(n, n, n)

    @case("concurrency", f"{label}: attempts per round, largest gap from min(initial + n, limit)", "attempts",
          0, README, 0, relative=False, note=f"{count} messages at once; a round missing or extra counts whole")
    def per_round(quick: bool, seed: int) -> Measured:
        counts = slow_start_rounds(count, initial, limit)
        worst = max(abs(a - b) for a, b in zip(counts, reference)) if counts else count
        for extra in (counts[len(reference):], tuple(reference[len(counts):])):
            worst = max(worst, *extra, 0)
        return Measured(worst, worst, worst)


def _register_dead(count: int, workers: int, cohort_limit: int) -> None:
    reference = readme_dead_attempts(count, workers, 5, cohort_limit)

    @case("concurrency", f"dead destination, failed_cohort_limit {cohort_limit}: attempts before it is dead",
          "attempts", reference, README, 0, relative=False,
          note=f"{count} messages at once, {workers} agents, initial window 5, the only MX down: the rest is "
          "deferred untried")
    def attempts(quick: bool, seed: int) -> Measured:
        n = dead_attempts(count, workers, cohort_limit)
        return Measured(n, n, n)


_register_slow_start(200, 5, 20)
_register_slow_start(60, 2, 10)
_register_dead(20, 8, 1)
_register_dead(20, 8, 2)


# A probe arrives every 0.1 s: the first tried after the destination reopens arrived
# less than 0.1 s after it did (the measured value lies in [300, 300.1)), so 0.1 s is
# the resolution; a throttle time 1 s short or long is 1 s off, a wrong one (e.g. the
# maximal backoff, or none) minutes off.
@case("concurrency", "dead destination: closed for minimal_backoff_time", "s", 300.0,
      README + "; postconf(5) minimal_backoff_time 300 s", PROBE_EVERY, relative=False,
      note="mail arriving while it is dead is deferred untried; the first probe tried on arrival, less the death")
def closed(quick: bool, seed: int) -> Measured:
    value = dead_for()
    return Measured(value, value, value)
