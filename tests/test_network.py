"""The world: lowest-latency paths, bottlenecks, loss; SMTP costs; DNS caching."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim import build
from sim.config import SMTPSettings, parse_scenario
from sim.config.errors import ScenarioWarning
from sim.mail.smtp import Dialogues
from sim.world.links import SEGMENT, Link
from sim.world.network import Network
from tests.conftest import node, tiny, tiny_data


def test_path_follows_lowest_latency_not_fewest_hops() -> None:
    data = tiny_data()
    # A direct home-mta link that is slower than going through the router.
    data["topology"]["edges"].append({"a": "home", "b": "mta", "latency": 0.05, "bandwidth": 1e9})
    net = Network(parse_scenario(data))
    p = net.link("home", "mta")
    assert p.hops == ("home", "r", "mta")
    assert p.latency == pytest.approx(0.021)
    assert p.bandwidth == 1.0e6  # the bottleneck of home-r
    assert p.rtt == pytest.approx(0.042)


def test_path_loss_compounds_along_the_path() -> None:
    data = tiny_data()
    data["topology"]["edges"][0]["loss"] = 0.01
    data["topology"]["edges"][1]["loss"] = 0.02
    p = Network(parse_scenario(data)).link("home", "mta")
    assert p.loss == pytest.approx(1 - 0.99 * 0.98)


def test_path_to_itself_is_free() -> None:
    p = Network(tiny()).link("mx", "mx")
    assert (p.latency, p.bandwidth, p.loss) == (0.0, math.inf, 0.0)


def test_round_trip_counts_follow_the_rfc_table() -> None:
    d = Dialogues(SMTPSettings())
    assert d.relay.to_accept + d.relay.quit == 9  # "about 9 with pipelining"
    assert d.submission.to_accept + d.submission.quit == 10  # plus AUTH
    plain = Dialogues(SMTPSettings(pipelining=False))
    assert plain.relay.to_accept + plain.relay.quit == 11  # "about 11 + n", n = 1 ... 11
    tls12 = Dialogues(SMTPSettings(tls_round_trips=2))
    assert tls12.relay.to_accept == d.relay.to_accept + 1


def test_loss_adds_the_expected_retransmission_time() -> None:
    p, rto = 0.02, 1.0
    link = Link(latency=0.01, bandwidth=1e6, loss=p, hops=("a", "b"), rto=rto)
    gen = np.random.default_rng(1)
    size, rounds = 100 * SEGMENT, 9
    times = np.array([link.time(rounds, size, gen) for _ in range(40_000)])
    base = rounds * 0.02 + size / 1e6
    q = 1 - (1 - p) ** 2
    expected = base + rounds * q * rto + 100 * p * 0.02
    assert times.min() >= base - 1e-12
    assert times.mean() == pytest.approx(expected, rel=0.02)
    # No loss: exact, and no random numbers are consumed.
    clean = Link(0.01, 1e6, 0.0, ("a", "b"))
    assert clean.time(rounds, size, None) == pytest.approx(base)


def test_resolver_caches_for_the_ttl_and_coalesces_concurrent_misses() -> None:
    data = tiny_data()
    data["workload"][0]["start"] = 1000  # keep the MTA quiet: only our queries
    with pytest.warns(ScenarioWarning) as warned:
        model = build(parse_scenario(data))
    assert any("creates no messages" in str(w.message) for w in warned)
    model.start()
    env, resolver = model.env, model.node("dns")
    domain = model.ctx.domains["example.org"]
    done: list[float] = []

    def ask(delay: float) -> object:
        yield env.timeout(delay)
        answer = yield from resolver.lookup(domain, 0.002)
        assert answer == ((10, "mx"),)
        done.append(env.now)

    for delay in (0.0, 0.1, 100.0, 200.0):
        env.process(ask(delay))
    env.run(until=300)
    # First asker resolves (0.2 s + rtt); the second joins that resolution; the third hits
    # the cache (TTL 150 s); the fourth comes after expiry at 150.2 and resolves again.
    assert done == pytest.approx([0.202, 0.202, 100.002, 200.202])
    assert (resolver.queries, resolver.hits) == (4, 1)


def test_domain_without_mx_uses_its_host_as_implicit_mx() -> None:
    data = tiny_data()
    data["domains"][0]["mx"] = []
    data["domains"][0]["host"] = "mx"
    model = build(parse_scenario(data))
    assert model.ctx.domains["example.org"].mx == ((0, "mx"),)
    model.run()
    assert (model.recorder.messages()["status"] == "delivered").all()


def test_resolver_without_cache_resolves_every_time_and_max_ttl_caps() -> None:
    data = tiny_data(duration=1000)
    data["workload"][0]["interarrival"] = 10.0
    node(data, "dns")["cache"] = False
    model = build(parse_scenario(data))
    model.run()
    assert model.node("dns").hits == 0 and model.node("dns").queries == 99
    # With the cache on but capped at 25 s, a query every 10 s hits about 2 of 3 times.
    node(data, "dns").update(cache=True, max_ttl=25)
    model = build(parse_scenario(data))
    model.run()
    r = model.node("dns")
    assert (r.queries, r.hits) == (99, 66)
