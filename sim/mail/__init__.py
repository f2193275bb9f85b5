"""The mail model, in the message's order.

``senders`` (traffic sources) -> ``smtp`` (replies, phases, dialogue costs) -> ``mta``
(submission, delivery agents) with ``retry`` (schedules, concurrency, the deferred
queue) -> ``dns`` (caching resolvers) -> ``server`` and ``policies`` (how a receiving
server answers) -> ``mx`` -> ``mailbox`` -> ``devices`` (retrieval). ``domains`` holds
each domain's facts in one object.

Importing this package registers every node kind's component.
"""

from . import devices, dns, domains, mailbox, mta, mx, policies, retry, senders, server, smtp

__all__ = [
    "devices",
    "dns",
    "domains",
    "mailbox",
    "mta",
    "mx",
    "policies",
    "retry",
    "senders",
    "server",
    "smtp",
]
