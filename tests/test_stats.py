"""The statistics room: estimators against hand-worked and independent references."""

from __future__ import annotations

import math

import lifelines  # an independent survival-analysis implementation (dev extra, tests only)
import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim.faces.cli import main
from sim.simulation import leg_times, summarize
from sim.simulation.stats import (
    aalen_johansen,
    batch_means,
    cumulative_incidence,
    kaplan_meier,
    percentile,
    restricted_mean,
    t_interval,
    unresolved_mass,
)
from sim.simulation.summary import leg_outcomes, mail

# Six rows, worked by hand (1 delivered, 2 bounced, 0 censored); ties at t = 2.
#
#   row:      a  b  c  d  e  f
#   time:     1  2  2  2  3  4
#   event:    1  1  2  0  1  0
#
#   t  at risk  events     S(t) (any event)        CIF_1 += S(t-) d_1 / n       CIF_2
#   1     6     1 (1)      1 - 1/6        = 5/6    1 * 1/6          -> 1/6        0
#   2     5     2 (1, 2)   5/6 (1 - 2/5)  = 1/2    5/6 * 1/5        -> 1/3        1/6
#   3     2     1 (1)      1/2 (1 - 1/2)  = 1/4    1/2 * 1/2        -> 7/12       1/6
#   4     1     0          1/4                                         7/12       1/6
#
# (d, censored at 2, is at risk at 2 and leaves after it.) Check: 7/12 + 1/6 + 1/4 = 1.
# Open mass at the end: S(4) = 1/4, so CIF_1 can reach at most 7/12 + 1/4 = 5/6.
# Treating the bounce as censoring instead (naive 1 - KM) gives 1 - 5/6 * 4/5 * 1/2 =
# 2/3 at t = 3: more than 7/12, the overstatement competing risks are about.
# Restricted mean to 5 of 1 - CIF_1: 1 + 5/6 + 2/3 + 5/12 + 5/12 = 10/3.
# Given delivery: deliveries weigh 1/6, 1/6, 1/4 at t = 1, 2, 3, so the mean is
# (1/6 + 2/6 + 3/4) / (7/12) = 15/7.
SIX_T = [1.0, 2.0, 2.0, 2.0, 3.0, 4.0]
SIX_E = [1, 1, 2, 0, 1, 0]


def test_six_rows_worked_by_hand() -> None:
    cif = cumulative_incidence(SIX_T, SIX_E, 1)
    assert list(cif["time"]) == [1.0, 2.0, 3.0, 4.0]  # the three rows at t = 2 are one step
    assert cif["cif"].to_numpy() == pytest.approx([1 / 6, 1 / 3, 7 / 12, 7 / 12])
    assert cumulative_incidence(SIX_T, SIX_E, 2)["cif"].to_numpy() == pytest.approx([0, 1 / 6, 1 / 6, 1 / 6])
    assert kaplan_meier(SIX_T, np.array(SIX_E) != 0)["survival"].to_numpy() == pytest.approx(
        [5 / 6, 1 / 2, 1 / 4, 1 / 4]
    )
    naive = 1 - kaplan_meier(SIX_T, np.array(SIX_E) == 1)["survival"]
    assert naive.iloc[2] == pytest.approx(2 / 3)
    mass = unresolved_mass(SIX_T, SIX_E)
    assert mass == pytest.approx(1 / 4)
    together, open_mass = aalen_johansen(SIX_T, SIX_E, 1)  # the same from one sort
    pd.testing.assert_frame_equal(together, cif)
    assert open_mass == mass

    assert percentile(cif, 1 / 6, mass) == (1.0, False)  # reached exactly at a step
    assert percentile(cif, 0.25, mass) == (2.0, False)
    assert percentile(cif, 0.5, mass) == (3.0, False)
    assert percentile(cif, 0.8, mass) == (4.0, True)  # 7/12 < 0.8 <= 5/6: "> 4"
    value, flagged = percentile(cif, 0.9, mass)  # above 5/6: not reached
    assert math.isnan(value) and not flagged

    rm = restricted_mean(cif, 5.0, mass)
    assert rm.value == pytest.approx(10 / 3) and rm.horizon == 5.0 and rm.partial
    given_event = restricted_mean(cif, 5.0, mass, given_event=True)
    assert given_event.value == pytest.approx(15 / 7) and given_event.partial


def test_events_may_be_names_and_order_does_not_matter() -> None:
    names = np.array(["delivered", "delivered", "bounced", "in_flight", "delivered", "censored"])
    by_name = cumulative_incidence(SIX_T, names, "delivered")
    pd.testing.assert_frame_equal(by_name, cumulative_incidence(SIX_T, SIX_E, 1))
    order = np.random.default_rng(0).permutation(6)
    shuffled = cumulative_incidence(np.array(SIX_T)[order], np.array(SIX_E)[order], 1)
    pd.testing.assert_frame_equal(shuffled, cumulative_incidence(SIX_T, SIX_E, 1))
    assert unresolved_mass(SIX_T, names) == pytest.approx(1 / 4)


# Freireich et al. (1963), 6-MP arm, as in Kleinbaum & Klein and Gehan (1965); * censored.
GEHAN = "6 6 6 6* 7 9* 10 10* 11* 13 16 17* 19* 20* 22 23 25* 32* 32* 34* 35*".split()


def test_kaplan_meier_reproduces_the_6mp_textbook_values() -> None:
    t = [float(x.rstrip("*")) for x in GEHAN]
    observed = [not x.endswith("*") for x in GEHAN]
    km = kaplan_meier(t, observed).set_index("time")["survival"]
    expected = {6: 0.857, 7: 0.807, 10: 0.753, 13: 0.690, 16: 0.627, 22: 0.538, 23: 0.448}
    for time, s in expected.items():
        assert km[time] == pytest.approx(s, abs=5e-4), time
    assert km[9] == km[7] and km[35] == km[23]  # censored times do not step the curve
    # As a cumulative incidence with nothing competing: 1 - KM.
    cif = cumulative_incidence(t, observed, True)
    assert cif["cif"].to_numpy() == pytest.approx(1 - km.to_numpy())
    assert percentile(km.reset_index(), 0.5, unresolved_mass(t, observed)) == (23.0, False)  # median 23


def redistribute_to_the_right(t: np.ndarray, e: np.ndarray) -> list[tuple[float, int, float]]:
    """Efron's estimator, by brute force: each censored row hands its weight, equally,
    to every row with a later time. The Aalen-Johansen weights are the same."""
    order = np.lexsort((e == 0, t))  # at equal times, events before censorings
    t, e = t[order], e[order]
    w = np.full(len(t), 1.0 / len(t))
    for i in range(len(t)):
        if e[i] == 0:
            later = t > t[i]
            if later.any():
                w[later] += w[i] / later.sum()
            w[i] = 0.0 if later.any() else w[i]
    return [(float(a), int(b), float(c)) for a, b, c in zip(t, e, w, strict=True)]


def test_aalen_johansen_matches_redistribution_to_the_right() -> None:
    rng = np.random.default_rng(11)
    t = rng.integers(0, 15, 120).astype(float)  # many ties
    e = rng.choice([0, 1, 2, 3], 120, p=[0.3, 0.4, 0.2, 0.1])
    weights = redistribute_to_the_right(t, e)
    for k in (1, 2, 3):
        cif = cumulative_incidence(t, e, k)
        brute = [sum(w for ti, ei, w in weights if ei == k and ti <= time) for time in cif["time"]]
        assert cif["cif"].to_numpy() == pytest.approx(brute, abs=1e-12), k
    # And all causes together make up 1 - KM of any event, at every time.
    total = sum(cumulative_incidence(t, e, k)["cif"].to_numpy() for k in (1, 2, 3))
    assert total == pytest.approx(1 - kaplan_meier(t, e != 0)["survival"].to_numpy(), abs=1e-12)


def test_aalen_johansen_recovers_a_known_cumulative_incidence() -> None:
    # Delivery at rate a competes with bounce at rate b; censoring uniform on (0, 3):
    # the true CIF of delivery is a / (a + b) (1 - exp(-(a + b) t)). Treating bounces
    # as censoring (1 - KM) would estimate 1 - exp(-a t) instead, far off.
    rng = np.random.default_rng(5)
    n, a, b = 40_000, 1.0, 0.5
    t1, t2, c = rng.exponential(1 / a, n), rng.exponential(1 / b, n), rng.uniform(0, 3, n)
    t = np.minimum.reduce([t1, t2, c])
    e = np.where(t == c, 0, np.where(t1 < t2, 1, 2))
    cif = cumulative_incidence(t, e, 1)
    naive = kaplan_meier(t, e == 1)
    for at in (0.25, 0.5, 1.0, 2.0):
        i = np.searchsorted(cif["time"], at, side="right") - 1
        truth = a / (a + b) * (1 - math.exp(-(a + b) * at))
        assert cif["cif"].iloc[i] == pytest.approx(truth, abs=0.01), at
    assert 1 - naive["survival"].iloc[i] > truth + 0.1  # at t = 2 the naive estimate is far off


def inverted_cdf(x: np.ndarray, q: float) -> float:
    """numpy's inverted_cdf, except where n q is an integer up to rounding: numpy then
    sometimes takes the next order statistic (0.29 * 100 is 28.999999999999996); the
    definition (the smallest x with ECDF(x) >= q) takes the k-th."""
    k = len(x) * q
    if abs(k - round(k)) < 1e-9:
        return float(np.sort(x)[int(round(k)) - 1])
    return float(np.quantile(x, q, method="inverted_cdf"))


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 30).map(float), st.sampled_from([1, 1, 1, 2, 3])), min_size=1, max_size=60
    ),
    q=st.floats(0.001, 1.0),
)
def test_without_censoring_the_cif_is_the_empirical_cdf(rows: list[tuple[float, int]], q: float) -> None:
    t = np.array([r[0] for r in rows])
    e = np.array([r[1] for r in rows])
    n = len(t)
    cif = cumulative_incidence(t, e, 1)
    expected = [np.sum((t <= time) & (e == 1)) / n for time in cif["time"]]
    assert cif["cif"].to_numpy() == pytest.approx(expected, abs=1e-12)
    assert unresolved_mass(t, e) == pytest.approx(0.0, abs=1e-12)
    # A row that never delivers has an infinite delivery time: the percentile of the
    # CIF is then numpy's, and an infinite one is "not reached".
    x = np.where(e == 1, t, np.inf)
    want = inverted_cdf(x, q)
    value, flagged = percentile(cif, q, 0.0)
    assert not flagged
    if math.isinf(want):
        assert math.isnan(value)
    else:
        assert value == want
    if (e == 1).all():  # nothing competing: the plain mean, restricted or not
        assert restricted_mean(cif, 31.0).value == pytest.approx(t.mean())
    if (e == 1).any():
        assert restricted_mean(cif, 31.0, given_event=True).value == pytest.approx(t[e == 1].mean())


def test_t_interval_matches_scipy() -> None:
    x = np.random.default_rng(2).normal(10, 3, 17)
    for level in (0.9, 0.95, 0.99):
        mean, low, high = t_interval(x, level)
        want = scipy.stats.t.interval(level, len(x) - 1, loc=x.mean(), scale=scipy.stats.sem(x))
        assert mean == pytest.approx(x.mean())
        assert (low, high) == pytest.approx(want)
    one = t_interval([4.0])
    assert one[0] == 4.0 and math.isnan(one[1]) and math.isnan(one[2])
    with pytest.raises(ValueError, match="level"):
        t_interval(x, 95)


def test_batch_means_are_a_t_interval_of_the_batches() -> None:
    x = np.arange(103, dtype=float)  # 3 left out at the start, 10 batches of 10
    mean, low, high = batch_means(x, 10)
    batches = x[3:].reshape(10, 10).mean(axis=1)
    assert (mean, low, high) == pytest.approx(t_interval(batches))
    assert mean == pytest.approx(batches.mean()) and low < mean < high
    with pytest.raises(ValueError, match="cannot make"):
        batch_means(x[:5], 10)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        kaplan_meier([1.0, float("nan")], [1, 0])
    with pytest.raises(ValueError, match="negative"):
        cumulative_incidence([-1.0], [1])
    with pytest.raises(ValueError, match="same length"):
        cumulative_incidence([1.0, 2.0], [1])
    with pytest.raises(ValueError, match="q must be"):
        percentile(cumulative_incidence(SIX_T, SIX_E), 0.0)
    empty = cumulative_incidence([], [])
    assert empty.empty and math.isnan(percentile(empty, 0.5)[0])


# --- the single-run summary -------------------------------------------------------

NAN = float("nan")


def table(rows: list[dict[str, float | str]]) -> pd.DataFrame:
    cols = ("created", "submitted", "accepted", "delivered", "retrieved", "ended")
    return pd.DataFrame([{c: r.get(c, NAN) for c in (*cols, "status")} for r in rows])


def test_leg_outcomes_censor_open_rows_and_compete_bounces_and_losses() -> None:
    m = table([
        {"created": 0, "submitted": 1, "accepted": 2, "delivered": 3, "retrieved": 10, "ended": 3, "status": "delivered"},
        {"created": 0, "submitted": 1, "accepted": 2, "delivered": 3, "ended": 3, "status": "delivered"},  # not yet read
        {"created": 5, "submitted": 6, "ended": 50, "status": "bounced"},
        {"created": 5, "submitted": 6, "accepted": 7, "delivered": 8, "ended": 40, "status": "lost"},  # destroyed later
        {"created": 80, "submitted": 81, "status": "in_flight"},
    ])
    o = leg_outcomes(m, "delivery", horizon=100)
    assert o["event"].tolist() == [1, 1, 2, 1, 0]
    assert o["duration"].tolist() == [3, 3, 45, 3, 20]  # the open row: 100 - 80
    o = leg_outcomes(m, "retrieval", horizon=100)  # only the rows delivered began it
    assert o.index.tolist() == [0, 1, 3]
    assert o["event"].tolist() == [1, 0, 3] and o["duration"].tolist() == [7, 97, 32]
    o = leg_outcomes(m, "relay", horizon=100)
    assert o["event"].tolist() == [1, 1, 2, 1, 0] and o["duration"].tolist() == [1, 1, 44, 1, 19]


def test_summary_flags_what_open_rows_could_move() -> None:
    # Nine rows: six delivered in 1..6 s, three still in flight, created late
    # (censored at 100 - 95 = 5 s, 100 - 92 = 8 s, 100 - 90 = 10 s). The CIF climbs by
    # 1/9 at 1..5 s (5/9 >= 0.5 first at 5 s), then by 4/9 * 1/3 at 6 s to 19/27; the
    # open mass 8/27 could carry it to 1, past 0.95, but only beyond 10 s.
    delivered: list[dict[str, float | str]] = [
        {"created": 0, "delivered": i, "ended": i, "status": "delivered"} for i in range(1, 7)
    ]
    rows = delivered + [{"created": c, "status": "in_flight"} for c in (95, 92, 90)]
    s = summarize(table(rows), horizon=100)
    row = s.times.loc["delivery"]
    assert (row["count"], row["censored"]) == (6, 3)
    assert (row["p50"], row["p50_censored"]) == (5.0, False)  # reached within the data
    assert (row["p95"], row["p95_censored"]) == (10.0, True)  # only the open rows could reach it
    # The max is at least the 10 s the longest-open row has waited: "> 10", not "> 6".
    assert row["rmean_censored"] and row["max_censored"] and row["max"] == 10.0
    shown = s.shown_times()
    assert shown.loc["delivery", "p95"] == "> 10.000"
    assert shown.loc["delivery", "rmean"].startswith("~")
    assert shown.loc["relay", "p50"] == "-"  # nobody was submitted: no relay statistics
    assert "restricted to the horizon (100 s)" in str(s)
    # Everything settled, one in eight bounced: p95 can never be reached.
    bounced: list[dict[str, float | str]] = [
        {"created": 0, "ended": 2.5, "status": "bounced"},
        {"created": 0, "delivered": 7, "ended": 7, "status": "delivered"},
    ]
    settled = summarize(table(delivered + bounced), horizon=100)
    row = settled.times.loc["delivery"]
    assert math.isnan(row["p95"]) and not row["p95_censored"] and row["p50"] == 4.0
    assert settled.shown_times().loc["delivery", "p95"] == "n/r"
    assert row["rmean"] == pytest.approx(4.0) and not row["rmean_censored"]


# The default scenario's one-device-per-person mix before it had devices (issue 11):
# every person polls (or reads webmail), so retrieval waits minutes and a cut-off run
# drops the long waits. Today's default mostly pushes, and waits seconds.
POLLING = {
    "gmail.com": {"imap": {"share": 0.35, "poll_interval": 900}, "pop3": {"share": 0.05}, "webmail": {"share": 0.6}},
    "outlook.com": {"imap": {"share": 0.5, "poll_interval": 1800}, "pop3": {"share": 0.05, "poll_interval": 1800},
                    "webmail": {"share": 0.45}},
    "yahoo.com": {"imap": {"share": 0.4, "poll_interval": 900}, "pop3": {"share": 0.1}, "webmail": {"share": 0.5}},
    "acme.example": {"imap": {"share": 0.8}, "pop3": {"share": 0.1}, "webmail": {"share": 0.1}},
}


def polling_default() -> sim.Scenario:
    """The default scenario with the polling mix above."""
    data = sim.load_scenario().model_dump(mode="json")
    for domain in data["domains"]:
        if domain["name"] in POLLING:
            domain["retrieval"] = {"client": domain["retrieval"]["client"], **POLLING[domain["name"]]}
    return sim.parse_scenario(data)


def test_drain_zero_biased_the_old_mean_and_the_new_one_says_so() -> None:
    # The issue: "with drain=0 the retrieval mean fell from 304 s to 263 s and nothing
    # said so". Mail delivered near the end is read after the horizon, and dropping
    # those rows leaves out the long waits (with the polling mix the issue measured).
    base = polling_default()
    full = sim.run(base)  # drain 1800 s: every delivered row is read before the end
    cut = sim.run(base.model_copy(update={"drain": 0}))
    # The summary is of people's and applications' mail: DSN rows left out (mail()).
    truth = leg_times(mail(full.messages), "retrieval").mean()
    old = leg_times(mail(cut.messages), "retrieval").mean()
    assert old < 0.9 * truth  # the bias the issue measured

    honest = full.summary().times.loc["retrieval"]
    assert honest["censored"] == 0 and not honest["rmean_censored"]
    assert honest["rmean"] == pytest.approx(truth)
    new = cut.summary().times.loc["retrieval"]
    assert new["censored"] > 0 and new["rmean_censored"] and new["max_censored"]
    assert new["rmean"] == pytest.approx(truth, rel=0.02)  # the censoring is accounted for


def test_warmup_leaves_out_early_messages() -> None:
    res = sim.run(sim.load_scenario().model_copy(update={"drain": 0}))
    m = mail(res.messages)  # the summary leaves DSN rows out
    s = res.summary(warmup=600)
    assert s.counts["created"] == (m["created"] >= 600).sum() < len(m)
    alone = summarize(m[m["created"] >= 600], horizon=res.scenario.horizon)
    pd.testing.assert_frame_equal(s.times, alone.times)
    assert "from 600 s on" in str(s) and s.to_dict()["warmup"] == 600
    with pytest.raises(ValueError, match="warmup"):
        res.summary(warmup=-1)


def test_cli_prints_censored_statistics(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--set", "drain=0", "--set", "duration=1200", "--out", f"{tmp_path}/r"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert "rmean" in out and "censored" in out and "restricted to the horizon (1200 s)" in out
    assert "~" in out and "> " in out




def _step(index: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """A right-continuous step function given at ``index``, read at ``at`` (0 before)."""
    where = np.searchsorted(index, at, side="right") - 1
    return np.where(where >= 0, values[np.maximum(where, 0)], 0.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kaplan_meier_and_aalen_johansen_agree_with_lifelines(seed: int) -> None:
    # Continuous times (no ties: lifelines' Aalen-Johansen would jitter tied times),
    # about 25% censored and two competing outcomes, as a run's rows would be.
    rng = np.random.default_rng(seed)
    n = 400
    durations = rng.exponential(10.0, n)
    events = rng.choice([0, 1, 2], size=n, p=[0.25, 0.6, 0.15])
    observed = events == 1

    ours = kaplan_meier(durations, observed)
    theirs = lifelines.KaplanMeierFitter().fit(durations, event_observed=observed).survival_function_
    at = np.sort(durations)
    expect = 1.0 - _step(theirs.index.to_numpy(), 1.0 - theirs.iloc[:, 0].to_numpy(), at)
    got = 1.0 - _step(ours["time"].to_numpy(), 1.0 - ours["survival"].to_numpy(), at)
    np.testing.assert_allclose(got, expect, rtol=0, atol=1e-12)

    for k in (1, 2):
        cif = cumulative_incidence(durations, events, event_of_interest=k)
        fitter = lifelines.AalenJohansenFitter(calculate_variance=False)
        fitter.fit(durations, events, event_of_interest=k)
        ref = fitter.cumulative_density_
        expect = _step(ref.index.to_numpy(), ref.iloc[:, 0].to_numpy(), at)
        got = _step(cif["time"].to_numpy(), cif["cif"].to_numpy(), at)
        np.testing.assert_allclose(got, expect, rtol=0, atol=1e-12)
    # The two incidences and the survival from any outcome add up to one at the end.
    total = sum(float(cumulative_incidence(durations, events, k)["cif"].iloc[-1]) for k in (1, 2))
    assert total + unresolved_mass(durations, events) == pytest.approx(1.0, abs=1e-12)
