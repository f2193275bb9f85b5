"""The mail model, in the message's order.

``senders`` (traffic sources) -> ``smtp`` (replies, phases, dialogue costs) -> ``mta``
(submission, delivery agents; ``esp``: an MTA taking mail by HTTP API; ``relay``: one
that takes mail over SMTP and delivers it on) with ``retry`` (schedules, the deferred
queue), ``concurrency`` (how many attempts a destination gets) and ``dsn`` (bounces as
mail) -> ``dns`` (caching resolvers; ``authoritative``: the name servers a miss walks
to) -> ``server`` and ``policies`` (how a receiving
server answers) -> ``mx`` -> ``mailbox`` -> ``devices`` (retrieval). ``domains`` holds
each domain's facts in one object.

Importing this package registers every node kind's component.
"""

from . import (
    authoritative, devices, dns, domains, esp, mailbox, mta, mx, policies, relay, retry, senders, server, smtp,
)

__all__ = [
    "authoritative",
    "devices",
    "dns",
    "domains",
    "esp",
    "mailbox",
    "mta",
    "mx",
    "policies",
    "relay",
    "retry",
    "senders",
    "server",
    "smtp",
]
