"""Sessions in progress, kept so that a fault can cut them.

A session (SMTP between two servers, a submission, an LMTP hand-off) is spent by one
process in one or two timeouts; nothing else knows it is open. When the scenario has
faults that can cut sessions (a crash, a link or a partition that leaves no path), the
run keeps a :class:`Sessions` (``ctx.sessions``; None otherwise, so that a run without
faults pays nothing): the process that holds a session says so when it opens and when
it ends, and a fault interrupts the processes whose sessions it breaks.

A process holds at most one session at a time (a delivery agent, a submission worker, a
scanner), so sessions are kept by process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import simpy

from .faults import Cut

__all__ = ["Sessions"]


class Sessions:
    """The open sessions of a run, by the process holding each: (client node, server node)."""

    __slots__ = ("env", "open", "cuts")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.open: dict[simpy.Process, tuple[str, str]] = {}
        self.cuts = 0  # sessions cut so far

    def opened(self, client: str, server: str) -> None:
        """The active process now holds a session from ``client`` to ``server``."""
        process = self.env.active_process
        if process is not None:
            self.open[process] = (client, server)

    def closed(self) -> None:
        """The active process's session is over (said on every exit path)."""
        process = self.env.active_process
        if process is not None:
            self.open.pop(process, None)

    def __iter__(self) -> Iterator[tuple[simpy.Process, str, str]]:
        for process, (client, server) in list(self.open.items()):
            yield process, client, server

    def cut(self, broken: Callable[[str, str], bool], cause: Cut) -> int:
        """Interrupt every process whose session ``broken(client, server)`` says is
        broken, with ``cause``; each is forgotten at once (its own handler cleans up).
        How many were cut."""
        cut = 0
        for process, client, server in self:
            if broken(client, server) and process.is_alive:
                del self.open[process]
                process.interrupt(cause)
                cut += 1
        self.cuts += cut
        return cut

    def at(self, node: str, what: str = "crash") -> int:
        """Cut every session with ``node`` at either end (the node crashed)."""
        return self.cut(lambda a, b: node in (a, b), Cut(what, node))
