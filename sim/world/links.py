"""What traffic between two nodes sees: latency, bottleneck bandwidth, loss, and time.

A :class:`Link` summarises the lowest-latency path between two nodes. Every dialogue in
the model (SMTP, LMTP, DNS, POP3, IMAP) is costed here: ``n`` round trips plus a
transfer of ``nbytes`` over the bottleneck. Packet loss delays, it does not drop: TCP
retransmits. Each control round trip loses a packet with probability 1 - (1 - p)^2 and
then waits one retransmission timeout; each lost data segment costs one more round trip
(fast retransmit).

The loss draws come from the stream of the component that spends the time (passed as
``gen``), so a lossy link changes no other component's draws.

A path with an edge marked ``shared: true`` names those edges (``Link.shared``): a body
crossing it takes its share of their bandwidth (``sim.world.sharing``). A pair with no
path left (links down, a partition) has a link that is not ``up``: nothing crosses it,
its latency is infinite and its bandwidth zero, so a client that forgot to ask fails
loudly instead of crossing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .sharing import SharedEdge

__all__ = ["Link", "SEGMENT"]

SEGMENT = 1460  # TCP payload bytes per segment on a 1500-byte MTU path


class Link:
    """The lowest-latency path from ``hops[0]`` to ``hops[-1]``, summarised."""

    __slots__ = ("latency", "bandwidth", "loss", "hops", "rto", "up", "shared", "unshared")

    def __init__(
        self, latency: float, bandwidth: float, loss: float, hops: tuple[str, ...], rto: float = 1.0,
        up: bool = True, shared: tuple[SharedEdge, ...] = (), unshared: float = float("inf"),
    ) -> None:
        self.latency = latency  # one-way, seconds
        self.bandwidth = bandwidth  # bottleneck, bytes/s
        self.loss = loss  # probability that a packet is lost somewhere on the path
        self.hops = hops
        self.rto = rto  # retransmission timeout, seconds
        # False: no path joins the two ends (links down, a partition); nothing crosses,
        # and a client that tries waits out its timeout as for a host that does not answer.
        self.up = up
        # The path's edges marked shared (empty: a transfer has the bottleneck to itself)
        # and the bottleneck of its other edges, which caps a transfer's share.
        self.shared = shared
        self.unshared = unshared

    @property
    def rtt(self) -> float:
        """Round-trip time."""
        return 2.0 * self.latency

    def time(self, round_trips: int, nbytes: float, gen: np.random.Generator | None) -> float:
        """Seconds for ``round_trips`` exchanges plus ``nbytes`` of data.

        ``gen`` draws the retransmissions on a lossy link; it is not used on a loss-free
        one, so loss-free timelines are exact and consume no random numbers.
        """
        t = round_trips * 2.0 * self.latency
        if nbytes:
            t += nbytes / self.bandwidth
        p = self.loss
        if p > 0.0 and gen is not None:
            lost_control = gen.binomial(round_trips, 1.0 - (1.0 - p) ** 2) if round_trips else 0
            segments = -(-int(nbytes) // SEGMENT)
            lost_data = gen.binomial(segments, p) if segments else 0
            t += lost_control * self.rto + lost_data * 2.0 * self.latency
        return t

    def __repr__(self) -> str:
        return (
            f"Link({'-'.join(self.hops)}, latency={self.latency}, "
            f"bandwidth={self.bandwidth}, loss={self.loss})"
        )
