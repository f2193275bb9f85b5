"""Presets of real MTAs, ESPs and providers: plain data merged under an MTA node's keys
(``PRESETS``); the big receivers' limits, merged under an MX node's (``MX_PRESETS``).

An MTA node with ``preset: NAME`` starts from the keys below, then its own keys, then
``--set`` (conventions: preset first). A mapping the node gives (``retry``) is merged
key by key into the preset's, except that a ``retry`` with its own shape (``rule``,
``intervals`` or ``quadratic``) replaces the preset's whole. Every value is sourced in
docs/sources.md ("Presets"); where only a give-up time is published the intervals are
an assumption and say so there.

``queue_run_delay: 0`` means no scan grid: the MTA schedules each deferred message for
its own due time (qmail, Exchange, the ESPs and providers); otherwise the deferred queue
is scanned every ``queue_run_delay`` (Postfix's qmgr, Exim's and sendmail's queue
runners).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MX_PRESETS", "PRESETS", "RETRY_SHAPES", "with_preset"]

PRESETS: dict[str, dict[str, Any]] = {
    # Postfix 3.x defaults (postconf(5)); the backoff rule is src/qmgr/qmgr_active.c.
    "postfix": {
        "queue_run_delay": "300s",
        "minimal_backoff_time": "300s",
        "maximal_backoff_time": "4000s",
        "maximal_queue_lifetime": "5d",
    },
    # Exim's default configuration (src/src/configure.default) and its queue runner
    # started as `exim -bd -q30m`.
    "exim": {
        "queue_run_delay": "30m",
        "retry": {"rule": "F,2h,15m; G,16h,1h,1.5; F,4d,6h"},
    },
    # sendmail: queue runs every hour (-q1h), Timeout.queuereturn 5d; MinQueueAge 30m is
    # an assumption (sendmail's default is 0; under -q1h both give the same retries).
    "sendmail": {
        "queue_run_delay": "1h",
        "retry": {"intervals": ["30m"], "give_up": "5d"},
    },
    # qmail-send: next retry at birth + (isqrt(age) + 20)^2 (= 400 n^2), queuelifetime 7d.
    "qmail": {
        "queue_run_delay": 0,
        "retry": {"quadratic": "400s", "give_up": "7d"},
    },
    # Exchange Server: QueueGlitchRetryCount 4 at QueueGlitchRetryInterval 1m, then
    # TransientFailureRetryCount 6 at TransientFailureRetryInterval 5m, then
    # OutboundConnectionFailureRetryInterval 10m; MessageExpirationTimeout 2d.
    "exchange": {
        "queue_run_delay": 0,
        "retry": {"intervals": ["1m", "1m", "1m", "1m", "5m", "5m", "5m", "5m", "5m", "5m", "10m"],
                  "give_up": "2d"},
    },
    # RFC 5321 4.5.4.1: two attempts in the first hour (at least 30 min apart), then one
    # every two hours (the lower end of "two or three"), give up at 5 days.
    "rfc5321": {
        "queue_run_delay": 0,
        "retry": {"intervals": ["30m", "2h"], "give_up": "5d"},
    },
    # ESPs: their published retry windows. SendGrid and SES publish only the give-up
    # time: gaps from 5 min doubling up to 1 h are an assumption (docs/sources.md).
    # The ESPs send from many IPs, but how many is each account's own: a node sets `ips`.
    "sendgrid": {
        "queue_run_delay": 0,
        "retry": {"intervals": ["5m"], "factor": 2, "max_interval": "1h", "give_up": "72h"},
    },
    "mailgun": {
        "queue_run_delay": 0,
        "retry": {"intervals": ["10m", "15m", "30m", "1h", "2h", "4h"], "give_up": "8h"},
    },
    "sparkpost": {
        "queue_run_delay": 0,
        "retry": {"intervals": ["20m"], "factor": 2, "give_up": "72h"},
    },
    "ses": {
        "queue_run_delay": 0,
        "retry": {"intervals": ["5m"], "factor": 2, "max_interval": "1h", "give_up": "14h"},
    },
    # The big providers' outbound MTAs as measured from the receiving side (Pagani et
    # al., DSN 2016): the gaps between the measured retry times; what follows them and
    # the give-up times are assumptions (docs/sources.md). Gmail's retries came from 7
    # addresses; the others' counts were not reported (one unless a node sets `ips`).
    "gmail": {
        "queue_run_delay": 0,
        "ips": 7,
        # retries at 6:02, 29:02, 56:36, 98:44 after the first attempt
        "retry": {"intervals": [362, 1380, 1654, 2528], "factor": 1.5, "give_up": "2d"},
    },
    "yahoo": {
        "queue_run_delay": 0,
        # retries at 2:07, 5:39, 12:58, 27:16
        "retry": {"intervals": [127, 212, 439, 858], "factor": 2, "max_interval": "1h", "give_up": "5d"},
    },
    "outlook": {
        "queue_run_delay": 0,
        # a retry every 1-4 min: the middle, 150 s
        "retry": {"intervals": [150], "give_up": "1d"},
    },
}

# Receivers: an MX node's `preset`. The big providers publish
# their reply codes and their advice, never their thresholds: every number here is a
# labelled assumption (docs/sources.md, "Receiver presets"); the shape is the same for
# the three: limits per hour per sending IP, a new IP's limit growing with the volume
# accepted from it (about x2 a day at full use: (1 + 0.03)^24 = 2.03, the ESPs'
# warm-up tables), a cap on sessions per IP, and messages per connection where the
# provider has said so (Yahoo: 20).
MX_PRESETS: dict[str, dict[str, Any]] = {
    "gmail": {
        "rate_limits": {
            "reply": "gmail",
            "anvil_rate_time_unit": "1h",
            "smtpd_client_connection_count_limit": 20,
            "smtp_accept_max_per_connection": 100,
            "reputation": {"base": 100, "growth": 0.03, "ceiling": 50_000},
        },
    },
    "yahoo": {
        "rate_limits": {
            "reply": "yahoo",
            "anvil_rate_time_unit": "1h",
            "smtpd_client_connection_count_limit": 10,
            "smtp_accept_max_per_connection": 20,
            "reputation": {"base": 50, "growth": 0.03, "ceiling": 20_000},
        },
    },
    "outlook": {
        "rate_limits": {
            "reply": "outlook",
            "anvil_rate_time_unit": "1h",
            "smtpd_client_connection_count_limit": 20,
            "reputation": {"base": 50, "growth": 0.03, "ceiling": 30_000},
        },
    },
}

RETRY_SHAPES = ("rule", "intervals", "quadratic")  # a retry block with one of these has its own shape


def with_preset(data: dict[str, Any], presets: dict[str, dict[str, Any]] = PRESETS) -> dict[str, Any]:
    """A node's raw keys with its preset's merged under them (unknown names untouched:
    the ``preset`` field's own validation names the known ones). An MTA's ``retry``
    mapping is merged key by key unless it has its own shape; an MX's blocks
    (``rate_limits`` and the ``reputation`` in it) are merged key by key at every level,
    so that ``--set ...rate_limits.reputation.history=...`` keeps the preset's rule."""
    name = data.get("preset")
    if not isinstance(name, str) or name not in presets:
        return data
    if presets is not PRESETS:
        return _deep(presets[name], data)
    merged = dict(PRESETS[name])
    for key, value in data.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict):
            own_shape = any(value.get(shape) is not None for shape in RETRY_SHAPES)
            merged[key] = value if own_shape else {**base, **value}
        else:
            merged[key] = value
    return merged


def _deep(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged onto ``base``, mappings key by key at every level."""
    merged = dict(base)
    for key, value in over.items():
        under = merged.get(key)
        merged[key] = _deep(under, value) if isinstance(under, dict) and isinstance(value, dict) else value
    return merged
