"""Queueing theory check: an MTA with c delivery workers is an M/M/c queue.

Poisson arrivals, exponential sizes over a fixed bandwidth with zero latency give
exponential session times, so the mean wait in the active queue must match Erlang C.
"""

from __future__ import annotations


import pytest

from sim import run
from sim.config import parse_scenario
from sim.verification.queueing import erlang_c, erlang_c_wait  # the references verify uses
from tests.conftest import node, tiny_data

C, LAM, MU = 4, 2.4, 1.0  # workers, arrivals/s, sessions/s per worker (rho = 0.6)
# 400k messages: over 8 seeds, 150k gave a spread (sd) of 2.2% in the mean wait, so
# 400k puts the 5% tolerance near 3.8 sd: a fair test, not a lucky seed.
DURATION = 400_000 / LAM
BANDWIDTH = 1.0e6  # bytes/s, so a 1 MB mean size is a 1 s mean session


def mmc_world(seed: int, duration: float) -> dict:
    data = tiny_data(duration=duration, drain=0, seed=seed)
    node(data, "mta").update(workers=C, smtpd_workers=1000)
    node(data, "dns").update(lookup=0)
    node(data, "mx").update(max_connections=10_000, workers=1000, processing=0)
    for edge in data["topology"]["edges"]:
        edge["latency"] = 0
        edge["bandwidth"] = 1e15
    data["topology"]["edges"][3]["bandwidth"] = BANDWIDTH  # r-mx: the only bottleneck
    src = data["workload"][0]
    src.pop("interarrival")
    src.update(rate=LAM, size={"dist": "exponential", "mean": BANDWIDTH / MU})
    return data


def test_erlang_c_by_hand() -> None:
    # a = 3.2, c = 4: P(wait) = 21.845 / 36.627 = 0.5964, Wq = 0.5964 / 0.8.
    assert erlang_c_wait(4, 3.2, 1.0) == pytest.approx(0.7455, abs=1e-4)
    # a = 2.4, c = 4: P(wait) = 3.456 / 12.04 = 0.2870, Wq = 0.2870 / 1.6.
    assert erlang_c(C, LAM, MU) == pytest.approx(0.2870, abs=1e-4)


def test_mta_mean_queue_wait_matches_erlang_c() -> None:
    m = run(parse_scenario(mmc_world(seed=2024, duration=DURATION))).messages
    done = m.dropna(subset=["accepted"])
    done = done[done["created"] > 1_000]  # past the warm-up from an empty system
    service = done["size"] / BANDWIDTH
    wait = done["accepted"] - done["submitted"] - service
    assert len(done) > 390_000
    assert wait.min() > -1e-9
    assert service.mean() == pytest.approx(1 / MU, rel=0.01)
    assert (wait > 1e-9).mean() == pytest.approx(erlang_c(C, LAM, MU), rel=0.05)
    assert wait.mean() == pytest.approx(erlang_c_wait(C, LAM, MU), rel=0.05)
