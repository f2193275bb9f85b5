"""Recipients' devices: IMAP and POP3 clients that poll, and webmail that shows at once.

Each of a domain's people reads with one protocol (drawn once per person from the
domain's shares) and, for polling protocols, checks at a fixed phase in the polling
cycle (drawn once per person). Retrieval time is then a formula, not an event loop:
the next check at or after delivery, plus the fetch session on the path from the
mailbox store to the person's device.
"""

from __future__ import annotations

import math

import numpy as np

from .records import Message
from .scenario import Retrieval
from .smtp import Dialogues, session_time
from .topology import Path

__all__ = ["IMAP", "POP3", "PROTOCOLS", "Readers", "WEBMAIL", "next_poll"]

PROTOCOLS = ("imap", "pop3", "webmail")
IMAP, POP3, WEBMAIL = range(3)


def next_poll(t: float, phase: float, interval: float) -> float:
    """The first check at or after ``t`` of a device polling every ``interval`` from ``phase``."""
    if t <= phase:
        return phase
    return phase + math.ceil((t - phase) / interval) * interval


class Readers:
    """The people of one domain and the devices they read mail with."""

    def __init__(
        self,
        spec: Retrieval,
        users: int,
        path: Path,
        dialogues: Dialogues,
        gen: np.random.Generator,
        horizon: float,
    ) -> None:
        shares = np.array([spec.imap.share, spec.pop3.share, spec.webmail.share], dtype=float)
        self.protocol = gen.choice(3, size=users, p=shares / shares.sum()).astype(np.uint8)
        self.interval = (spec.imap.poll_interval, spec.pop3.poll_interval, 0.0)
        # A person's checks sit at a fixed point of the cycle, spread evenly over it
        # unless the scenario pins it; kept as a fraction of the cycle.
        self.phase = gen.random(users)
        self.fixed = tuple(
            None if d.phase is None else d.phase / d.poll_interval for d in (spec.imap, spec.pop3)
        ) + (None,)
        self.path = path
        self.rounds = (dialogues.imap, dialogues.pop3, dialogues.webmail)
        self.rto = dialogues.settings.rto
        self.gen = gen
        self.horizon = horizon

    def retrieved_at(self, msg: Message, delivered: float) -> float:
        """When the recipient's device has ``msg``, or NaN if after the run's horizon."""
        proto = int(self.protocol[msg.user])
        if proto == WEBMAIL:
            t = delivered
        else:
            interval = self.interval[proto]
            fraction = self.fixed[proto]
            if fraction is None:
                fraction = float(self.phase[msg.user])
            t = next_poll(delivered, fraction * interval, interval)
        path = self.path
        t += session_time(
            path, self.rounds[proto], msg.size, self.rto, self.gen if path.loss > 0.0 else None
        )
        return t if t <= self.horizon else math.nan
