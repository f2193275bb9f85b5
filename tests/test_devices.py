"""Recipients' devices: polling arithmetic and the mix of protocols."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim import run
from sim.mail.devices import next_poll
from sim.config import parse_scenario
from tests.conftest import tiny_data


@given(
    t=st.floats(0, 1e6, allow_nan=False),
    interval=st.floats(1, 1e4),
    fraction=st.floats(0, 0.999),
)
def test_next_poll_is_the_first_check_at_or_after_t(t: float, interval: float, fraction: float) -> None:
    phase = fraction * interval
    check = next_poll(t, phase, interval)
    assert check >= t - 1e-9 * max(1.0, t)
    assert check - t < interval + 1e-6 * max(1.0, t)
    cycles = (check - phase) / interval
    assert abs(cycles - round(cycles)) < 1e-6


def test_next_poll_examples() -> None:
    assert next_poll(100.0, 30.0, 600.0) == 630.0
    assert next_poll(630.0, 30.0, 600.0) == 630.0
    assert next_poll(10.0, 30.0, 600.0) == 30.0


def mixed(imap: float, pop3: float, webmail: float, duration: float = 20_000) -> dict:
    data = tiny_data(duration=duration, drain=5000)
    data["workload"][0]["interarrival"] = 2.0
    data["domains"][0]["users"] = 5000
    data["domains"][0]["retrieval"] = {
        "client": "home",
        "imap": {"share": imap, "poll_interval": 600},
        "pop3": {"share": pop3, "poll_interval": 1800},
        "webmail": {"share": webmail},
    }
    return data


def test_webmail_sees_mail_at_once() -> None:
    m = run(parse_scenario(mixed(0, 0, 1))).messages
    # One HTTPS round trip on the store-home path (0.0355 s one way) plus 10 kB at 1 MB/s.
    assert (m["retrieved"] - m["delivered"]).to_numpy() == pytest.approx(0.071 + 0.01)


def test_polling_waits_half_an_interval_on_average() -> None:
    # Random phases: the wait for the next check is uniform on [0, interval).
    m = run(parse_scenario(mixed(1, 0, 0))).messages
    session = 7 * 0.071 + 0.01
    wait = (m["retrieved"] - m["delivered"] - session).to_numpy()
    assert wait.min() >= -1e-9 and wait.max() < 600
    assert wait.mean() == pytest.approx(300, rel=0.05)


def test_protocol_shares_follow_the_mix() -> None:
    m = run(parse_scenario(mixed(0.5, 0.25, 0.25))).messages
    wait = (m["retrieved"] - m["delivered"]).to_numpy()
    fast = np.mean(wait < 0.1)  # webmail only
    assert fast == pytest.approx(0.25, abs=0.03)
    assert np.mean(wait > 600) == pytest.approx(0.25 * 1200 / 1800, abs=0.03)  # POP3 past 600 s


def test_retrieval_after_the_horizon_is_not_recorded() -> None:
    data = mixed(1, 0, 0, duration=1000)
    data["drain"] = 0
    m = run(parse_scenario(data)).messages
    delivered = m[m["status"] == "delivered"]
    assert delivered["retrieved"].isna().any()
    assert (delivered["retrieved"].dropna() <= 1000).all()
    assert not math.isnan(delivered["retrieved"].max())


def test_person_uniforms_are_uniform_independent_and_stable() -> None:
    from scipy import stats

    from sim.mail.devices import person_uniforms

    pairs = np.array([person_uniforms(12345, p) for p in range(20_000)])
    for column in pairs.T:
        assert stats.kstest(column, "uniform").pvalue > 1e-3
    assert abs(np.corrcoef(pairs.T)[0, 1]) < 0.03
    # Neighbours share nothing: no output of one person reappears for the next.
    firsts, seconds = pairs[:, 0], pairs[:, 1]
    assert not np.isin(seconds[:-1], firsts[1:]).any()
    assert abs(np.corrcoef(seconds[:-1], firsts[1:])[0, 1]) < 0.03
    assert person_uniforms(12345, 7) == person_uniforms(12345, 7)
    assert person_uniforms(12345, 7) != person_uniforms(54321, 7)


def test_a_person_keeps_one_device_across_messages() -> None:
    data = mixed(0.5, 0.5, 0)
    data["domains"][0]["users"] = 3  # few people, many messages each
    m = run(parse_scenario(data)).messages.dropna(subset=["retrieved"])
    fetch = {600: 7 * 0.071 + 0.01, 1800: 9 * 0.071 + 0.01}  # IMAP, POP3 sessions
    for _, mine in m.groupby("recipient_person"):
        assert len(mine) > 1000
        # One protocol and one phase per person: every check time sits on one grid.
        grids = [
            {round((t - f) % interval, 6) % interval for t in mine["retrieved"]}
            for interval, f in fetch.items()
        ]
        assert min(len(g) for g in grids) == 1


def test_protocols_left_out_have_no_share() -> None:
    from sim.config import Retrieval

    only = Retrieval.model_validate({"client": "c", "imap": {"share": 1}})
    assert (only.pop3.share, only.webmail.share) == (0, 0)
    default = Retrieval.model_validate({"client": "c"})
    assert (default.imap.share, default.pop3.share, default.webmail.share) == (0.5, 0.1, 0.4)
