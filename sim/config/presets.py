"""Presets of real MTAs, ESPs and providers: plain data merged under an MTA node's keys.

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

__all__ = ["PRESETS", "RETRY_SHAPES", "with_preset"]

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
    # sendmail: queue runs every hour (-q1h), MinQueueAge 30m, Timeout.queuereturn 5d.
    "sendmail": {
        "queue_run_delay": "1h",
        "retry": {"intervals": ["30m"], "give_up": "5d"},
    },
    # qmail-send: next retry at birth + (isqrt(age) + 20)^2 (= 400 n^2), queuelifetime 7d.
    "qmail": {
        "queue_run_delay": 0,
        "retry": {"quadratic": "400s", "give_up": "7d"},
    },
    # Exchange Server: TransientFailureRetryCount 6 at TransientFailureRetryInterval
    # 5m, then OutboundConnectionFailureRetryInterval 10m; MessageExpirationTimeout 2d.
    "exchange": {
        "queue_run_delay": 0,
        "retry": {"intervals": ["5m", "5m", "5m", "5m", "5m", "5m", "10m"], "give_up": "2d"},
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

RETRY_SHAPES = ("rule", "intervals", "quadratic")  # a retry block with one of these has its own shape


def with_preset(data: dict[str, Any]) -> dict[str, Any]:
    """An MTA node's raw keys with its preset's merged under them (unknown names untouched:
    the ``preset`` field's own validation names the known ones)."""
    name = data.get("preset")
    if not isinstance(name, str) or name not in PRESETS:
        return data
    merged = dict(PRESETS[name])
    for key, value in data.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict):
            own_shape = any(value.get(shape) is not None for shape in RETRY_SHAPES)
            merged[key] = value if own_shape else {**base, **value}
        else:
            merged[key] = value
    return merged
