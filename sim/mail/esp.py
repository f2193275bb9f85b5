"""An email service provider (ESP): an MTA that sends for its customers.

Customers hand mail over by the ESP's HTTP API, not by SMTP submission:

- **transactional mail** (a ``rate`` or ``interarrival`` source): one HTTPS request per
  message on a kept-alive connection: one round trip plus the body's transfer, no
  SMTP session. The account may make ``api_rate`` requests a second, a token bucket
  of ``api_burst`` tokens (default: one second's worth) decided when the request is
  made. Over the rate the ESP answers ``429 Too Many Requests`` with ``Retry-After``
  in whole seconds (RFC 6585 4, RFC 9110 10.2.3): the time until the bucket holds a
  token again, rounded up, at least 1 s; the client waits that long once the answer
  has arrived and sends the request again.
- **a campaign** (a ``batches`` source): every recipient in one API call (one request,
  one token, one round trip plus one message body), accepted at once and released to
  the delivery agents at ``send_rate`` messages a second, a message being one
  recipient (as Amazon SES counts its sending rate). The account's slots are
  ``B + n / send_rate`` (n = 0, 1, ...; B is when a campaign found no slot left in
  the future); campaign recipients take them in order, and one is released at
  ``max(its slot, its domain's next slot)`` under ``max_msg_rate`` (messages an hour
  per recipient domain, PowerMTA's directive: a domain's slots ``3600 / max_msg_rate``
  s apart). A recipient waiting for its domain does not hold back the ones behind it.
  Transactional mail is never held behind a campaign.
- **an ESP that is down or out of reach**: the request fails: no answer (a silent
  host, or no path: the client waits its ``connect_timeout``), or ``503 Service
  Unavailable`` from the ESP's load balancer after one round trip (a host that
  refuses). The client tries again after ``min(U x 2^k, max_backoff)`` seconds (its
  k-th failure, U uniform on [0, 1) from the source's ``backoff`` stream: the AWS
  SDKs' standard retry mode, full jitter) and after ``max_attempts`` failed attempts
  gives up: the application knows the mail was not sent, and the rows end
  ``bounced``, reason ``API request failed``. 429s are the account's rate, not a
  failure: they do not count against ``max_attempts``.

Delivery is the MTA's (``sim.mail.mta.MTA``, extended here): an ESP node takes every
MTA key, so presets, retry schedules, concurrency limits and sending IPs apply. Timed
hand-overs (an API answer arriving, a client's retry, a campaign's releases) are data
in one heap with one runner (:class:`Timeline`): one event a distinct time, none per
message waiting.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy

from ..config import EspNode
from ..config.workload import API_CONNECT_TIMEOUT
from ..core.component import Context, registers
from ..core.faults import Failure
from ..core.records import BOUNCED, TOO_LARGE, Message
from .domains import Domain
from .mta import MTA, SUBMISSION
from .smtp import INTERRUPTED, NO_ANSWER, Outcome, Phase, Reply

if TYPE_CHECKING:
    from .senders import TrafficSource

__all__ = ["API_ACCEPTED", "API_FAILED", "ESP", "PAYLOAD_TOO_LARGE", "TOO_MANY_REQUESTS",
           "UNAVAILABLE", "Timeline"]

# HTTP answers of the API (the attempts table's hop 0 for mail handed to an ESP).
API_ACCEPTED = Reply(202, "", "Accepted", Phase.DATA)
TOO_MANY_REQUESTS = Reply(429, "", "Too Many Requests", Phase.DATA)
# A message over the ESP's size limit is refused as a request too large (RFC 9110
# 15.5.14); the enhanced code says why, as the SMTP refusal would.
PAYLOAD_TOO_LARGE = Reply(413, "5.3.4", "Content Too Large", Phase.DATA, reason=TOO_LARGE)
# A down ESP behind its load balancer: no healthy backend (RFC 9110 15.6.4); the
# enhanced code says why, as PAYLOAD_TOO_LARGE's does (RFC 3463 X.3.2: not accepting).
UNAVAILABLE = Reply(503, "4.3.2", "Service Unavailable", Phase.CONNECT)
API_FAILED = "API request failed"  # the reason of rows an API client gave up on

_TIMEOUT, _REFUSED = Outcome.TIMEOUT, Outcome.REFUSED

_DELIVERED, _DEFERRED, _BOUNCED = Outcome.DELIVERED, Outcome.DEFERRED, Outcome.BOUNCED
_INTERRUPTED = Outcome.INTERRUPTED

Rows = tuple[Message, ...]  # one API request's recipients (one row each)
# An API request: its rows, the client's node, whether it is a campaign, the source
# that made it (its retry settings; None for a direct call) and its failures so far.
Request = tuple[Rows, str, bool, "TrafficSource | None", int]


class Timeline:
    """Actions at exact times: a heap and one runner that sleeps while it is empty."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.heap: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._seq = itertools.count()
        self._idle: simpy.Event | None = None
        self._until = math.inf  # when the sleeping runner wakes
        self._started = False

    def at(self, t: float, action: Callable[[Any], None], arg: Any) -> None:
        """Call ``action(arg)`` at time ``t`` (equal times in the order given)."""
        heapq.heappush(self.heap, (t, next(self._seq), action, arg))
        if not self._started:
            self._started = True
            self.env.process(self._run())
        elif t < self._until and self._idle is not None and not self._idle.triggered:
            self._idle.succeed()  # sooner than the runner meant to wake

    def _run(self) -> Generator[simpy.Event, Any, None]:
        env, heap = self.env, self.heap
        while True:
            if not heap:
                self._idle = env.event()
                yield self._idle
                self._idle = None
                continue
            due = heap[0][0]
            if due > env.now:
                # Something sooner may be added while this sleeps: wake for it too.
                self._idle, self._until = env.event(), due
                yield env.timeout(due - env.now) | self._idle
                self._idle, self._until = None, math.inf
                continue
            _, _, action, arg = heapq.heappop(heap)
            action(arg)


@registers(EspNode)
class ESP(MTA):
    """An MTA for customers: HTTP API in, campaigns paced, many sending IPs."""

    def __init__(self, ctx: Context, spec: EspNode) -> None:
        super().__init__(ctx, spec)
        self.spec: EspNode = spec
        # An ESP ends bounces at its bounce processing instead of mailing them (sim.mail.dsn).
        self.processes_bounces = True
        self.timeline = Timeline(ctx.env)
        rate = spec.api_rate
        self._burst = float(spec.api_burst or (math.ceil(rate) if rate is not None else 0))
        self._tokens = self._burst
        self._filled = 0.0  # when the bucket was last topped up
        self._slots: dict[Domain, float] = {}  # each recipient domain's next free slot
        # The send rate's slots, account-wide: slot n is base + n / send_rate (computed
        # from the base, never summed, so that slot k is exactly k / send_rate on).
        self._base = 0.0
        self._taken = 0
        self.pending = 0  # rows in an API request, waiting to retry it, or to be released
        self.requests = 0
        self.throttled = 0  # 429 answers
        self.gave_up = 0  # rows whose client gave the request up (the ESP down or out of reach)
        self.crashes = 0  # crashes so far: a request made before one is never answered
        self.campaigns = 0

    # -- the API --------------------------------------------------------------------

    def submit(
        self, msg: Message, client: str, cc: tuple[Message, ...] = (), outbox: Any = None
    ) -> None:
        """One API request for ``msg`` (and its further recipients ``cc``) from the
        source ``outbox`` (its retry settings)."""
        self._request(((msg, *cc), client, False, outbox, 0))

    def campaign(
        self, rows: list[tuple[Message, tuple[Message, ...]]], client: str, outbox: Any = None
    ) -> None:
        """One API call hands the whole campaign over."""
        every = tuple(m for msg, cc in rows for m in (msg, *cc))
        if every:
            self.campaigns += 1
            self._request((every, client, True, outbox, 0))

    def _take_token(self, now: float) -> float:
        """Take a token: 0 when there was one, else the Retry-After (whole seconds)."""
        rate = self.spec.api_rate
        if rate is None:
            return 0.0
        tokens = min(self._burst, self._tokens + (now - self._filled) * rate)
        self._filled = now
        # A whole token, to within rounding: refills of rate x gap summed in floating
        # point fall an ulp short (0.1 s apart at 10/s would read 0.99999...).
        if tokens >= 1.0 - 1e-9:
            self._tokens = max(0.0, tokens - 1.0)
            return 0.0
        self._tokens = tokens
        return max(1.0, math.ceil((1.0 - tokens) / rate))

    def _request(self, req: Request) -> None:
        rows, client, campaign, source, failed = req
        env, rec = self.env, self.recorder
        now = env.now
        first = rows[0]
        if first.attempts == 0:  # a new request, not a retry: the rows are the ESP's now
            self.pending += len(rows)
        first.attempts += 1
        self.requests += 1
        for m in rows:
            rec.held(m.id, self.code)
        link = self.network.link(client, self.id)
        gen = self._loss if link.loss > 0.0 else None
        if not self.up or (self._reach and not link.up):
            self._unreachable(req, link, gen, now)
            return
        # One round trip on the kept-alive connection, with the body (a campaign's
        # template once; the recipient list is small beside it).
        end = now + link.time(1, first.size, gen)
        wait = self._take_token(now)
        if wait:
            self.throttled += 1
            self.timeline.at(end, self._throttled, (req, now, wait))
        else:
            self.timeline.at(end, self._answered, (rows, client, campaign, now, req, self.crashes))

    def _unreachable(self, req: Request, link: Any, gen: Any, now: float) -> None:
        """The ESP is down or out of reach: no answer within the client's connect
        timeout, or (a down host that refuses) 503 from its load balancer after one
        round trip."""
        source = req[3]
        src = self.recorder.nodes.code(req[1])
        for m in req[0]:  # the client still has them: nothing got through
            self.recorder.held(m.id, src)
        silent = not link.up or self.down_reply.silent
        if silent:
            timeout = source.api_timeout if source is not None else API_CONNECT_TIMEOUT
            self.timeline.at(now + timeout, self._failed, (req, now, NO_ANSWER, _TIMEOUT))
        else:
            self.timeline.at(now + link.time(1, 0, gen), self._failed, (req, now, UNAVAILABLE, _DEFERRED))

    def _failed(self, arg: tuple[Request, float, Reply, Outcome]) -> None:
        """A request failed: the client backs off and tries again, or after its last
        attempt gives up (the rows bounce: the application was told)."""
        (rows, client, campaign, source, failed), start, reply, outcome = arg
        rec, now = self.recorder, self.env.now
        src = rec.nodes.code(client)
        failed += 1
        attempts = source.max_attempts if source is not None else 1
        last = failed >= attempts
        for m in rows:
            rec.attempt(m.id, SUBMISSION, rows[0].attempts, 1, src, self.code, start, now,
                        reply, _BOUNCED if last else outcome)
        if last:
            for m in rows:
                rec.ended(m.id, BOUNCED, now, API_FAILED)
            self.pending -= len(rows)
            self.bounced += len(rows)
            self.gave_up += len(rows)
            return
        assert source is not None
        for m in rows:
            rec.held(m.id, src)
        # The AWS SDKs' standard mode: full jitter on 2^k seconds, capped.
        wait = min(source.jitter() * 2.0**failed, source.max_backoff)
        self.timeline.at(now + wait, self._request, (rows, client, campaign, source, failed))

    def _throttled(self, arg: tuple[Request, float, float]) -> None:
        """The 429 has arrived: the client holds the rows and tries again later."""
        req, start, wait = arg
        rows, client = req[0], req[1]
        rec, now = self.recorder, self.env.now
        src = rec.nodes.code(client)
        for m in rows:
            rec.attempt(m.id, SUBMISSION, rows[0].attempts, 1, src, self.code, start, now,
                        TOO_MANY_REQUESTS, _DEFERRED, final=False)
            rec.held(m.id, src)
        self.timeline.at(now + wait, self._request, req)

    def fail(self, failure: Failure) -> None:
        """As an MTA's; a crash also breaks the API requests in progress (``crashes``)."""
        if failure.crash:
            self.crashes += 1
        super().fail(failure)

    def _answered(self, arg: tuple[Rows, str, bool, float, Request, int]) -> None:
        """The request is answered: 202 and the rows are queued (or refused as too large).
        If the ESP crashed since it was made, the connection broke instead: the client,
        who heard no answer, backs off and tries again (``_failed``)."""
        rows, client, campaign, start, req, crashes = arg
        if crashes != self.crashes:
            self._failed((req, start, INTERRUPTED, _INTERRUPTED))
            return
        rec, now, active = self.recorder, self.env.now, self.active
        src = rec.nodes.code(client)
        tries = rows[0].attempts
        self.pending -= len(rows)
        if rows[0].size > self.spec.message_size_limit:
            for m in rows:
                rec.attempt(m.id, SUBMISSION, tries, 1, src, self.code, start, now,
                            PAYLOAD_TOO_LARGE, _BOUNCED, final=True)
                rec.ended(m.id, BOUNCED, now, PAYLOAD_TOO_LARGE.reason)
            self.bounced += len(rows)
            return
        for m in rows:
            m.queued = now
            m.attempts = 0  # delivery attempts count from here
            rec.queued(m.id, now, self.code)
            if rec.tracing:
                rec.attempt(m.id, SUBMISSION, tries, 1, src, self.code, start, now,
                            API_ACCEPTED, _DELIVERED, final=False)
        spec = self.spec
        space = self.space
        if space is not None:
            space.used += sum(m.size for m in rows)
        if not campaign or (spec.send_rate is None and spec.max_msg_rate is None):
            for envelope in (self._split(rows) if not campaign else ((m,) for m in rows)):
                self._admit(envelope)
        else:
            self._pace(rows, now)
        if self._active_level is not None:
            self._active_level.set(now, len(active.items))

    def _pace(self, rows: Rows, start: float) -> None:
        """Release a campaign's rows at the send rate and each domain's hourly limit.

        Rows take the account's send-rate slots in order (after any earlier campaign's);
        a row whose domain's next slot is later waits for it, without holding back the
        rows behind it (each domain is a queue of its own, as in PowerMTA)."""
        rate, hourly = self.spec.send_rate, self.spec.max_msg_rate
        gap = 3600.0 / hourly if hourly is not None else 0.0
        slots, at = self._slots, self.timeline.at
        self.pending += len(rows)
        if rate is not None and self._base + self._taken / rate <= start:
            self._base, self._taken = start, 0  # the slots had run out: start afresh
        for m in rows:
            if rate is None:
                t = start
            else:
                t = self._base + self._taken / rate
                self._taken += 1
            if hourly is not None:
                t = max(t, slots.get(m.domain, t))
                slots[m.domain] = t + gap
            at(t, self._release_row, m)

    def _release_row(self, msg: Message) -> None:
        self.pending -= 1
        self._admit((msg,))  # a campaign row is a message of its own
        if self._active_level is not None:
            self._active_level.set(self.env.now, len(self.active.items))

    def _lose_disk(self, reason: str) -> None:
        """The MTA's queues, and the campaign rows accepted and waiting for their
        release slot (the API's requests still unanswered are the clients')."""
        super()._lose_disk(reason)
        heap = self.timeline.heap
        waiting = [entry for entry in heap if entry[2] == self._release_row]
        if waiting:
            heap[:] = [entry for entry in heap if entry[2] != self._release_row]
            heapq.heapify(heap)
            self.pending -= len(waiting)
            self._lose([entry[3] for entry in waiting], reason)

    # -- the books -------------------------------------------------------------------

    def holding(self) -> int:
        """The MTA's messages and those in API requests, retries and campaign releases."""
        return super().holding() + self.pending

    def stats(self) -> dict[str, float]:
        """The MTA's counters and the API's."""
        return {
            **super().stats(),
            "api_requests": self.requests,
            "throttled": self.throttled,
            "api_gave_up": self.gave_up,
            "campaigns": self.campaigns,
        }
