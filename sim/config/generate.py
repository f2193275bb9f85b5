"""Generated worlds: a synthetic Internet of mail domains, for scale runs and benchmarks.

:func:`internet` returns plain scenario data (a dict, as if read from YAML) so it goes
through the same validation as a file and can be saved with ``yaml.safe_dump``. Domain
sizes follow a Zipf law (a few large providers, a long tail of small domains, as in the
provider shares in docs/sources.md, workload); all randomness comes from ``seed``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["internet"]


def internet(
    domains: int = 20,
    rate: float = 50.0,
    duration: float = 3600.0,
    drain: float = 1800.0,
    regions: int = 4,
    seed: int = 0,
) -> dict[str, Any]:
    """Scenario data for ``domains`` domains sending ``rate`` messages/s in total.

    Each domain has its people's client node, an outbound MTA, a resolver, one to three
    MX hosts and a mailbox store, joined to one of ``regions`` exchange points that form
    a full mesh. People send to every domain in proportion to its users.
    """
    if domains < 1 or regions < 1 or rate <= 0:
        raise ValueError("need at least one domain and one region, and a positive rate")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x6E7,)))
    users = np.maximum(1, (20_000 / np.arange(1, domains + 1) ** 1.1).astype(int))
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for r in range(regions):
        nodes.append({"id": f"ix{r}", "kind": "router"})
        for q in range(r):
            edges.append(
                {"a": f"ix{q}", "b": f"ix{r}", "latency": float(rng.uniform(0.01, 0.08))}
            )
    doms: list[dict[str, Any]] = []
    sources: list[dict[str, Any]] = []
    total_users = float(users.sum())
    for i in range(domains):
        d = f"d{i}"
        ix = f"ix{int(rng.integers(regions))}"
        n_mx = int(rng.integers(1, 4))
        nodes += [
            {"id": f"{d}-edge", "kind": "router"},
            {"id": f"{d}-people", "kind": "client"},
            {"id": f"{d}-dns", "kind": "resolver"},
            {"id": f"{d}-mta", "kind": "mta", "resolver": f"{d}-dns", "workers": 50},
            {"id": f"{d}-store", "kind": "mailbox"},
        ]
        nodes += [{"id": f"{d}-mx{k}", "kind": "mx"} for k in range(n_mx)]
        edges += [
            {"a": f"{d}-edge", "b": ix, "latency": float(rng.uniform(0.001, 0.01))},
            {
                "a": f"{d}-people",
                "b": f"{d}-edge",
                "latency": float(rng.uniform(0.005, 0.03)),
                "bandwidth": 2.5e6,
            },
        ]
        for leaf in ["dns", "mta", "store", *(f"mx{k}" for k in range(n_mx))]:
            edges.append({"a": f"{d}-{leaf}", "b": f"{d}-edge", "latency": 0.0003})
        doms.append(
            {
                "name": f"{d}.example",
                "users": int(users[i]),
                "outbound": f"{d}-mta",
                "mx": [{"host": f"{d}-mx{k}", "preference": 10 * (k + 1)} for k in range(n_mx)],
                "mailbox": f"{d}-store",
                "unknown_recipient_rate": 0.005,
                "discard_rate": 0.002,
                "retrieval": {"client": f"{d}-people"},
            }
        )
        sources.append(
            {
                "name": f"{d}-people",
                "kind": "person",
                "client": f"{d}-people",
                "domain": f"{d}.example",
                "rate": float(rate * users[i] / total_users),
            }
        )
    return {
        "name": f"internet-{domains}",
        "description": f"generated: {domains} domains, {rate} messages/s, seed {seed}",
        "seed": seed,
        "duration": duration,
        "drain": drain,
        "topology": {"nodes": nodes, "edges": edges},
        "domains": doms,
        "workload": sources,
    }
