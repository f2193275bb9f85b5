"""Bookkeeping: one recorder for everything a run observes, kept as columns.

Components report what happens to a message through the :class:`Recorder`'s methods
(created, queued, attempt, accepted, delivered, retrieved, ended); nothing else writes
the columns. Each table's columns are declared once (:data:`MESSAGE_COLUMNS`,
:data:`ATTEMPT_COLUMNS`): the arrays, their initial values and the DataFrame's column
types all come from that declaration.

A message in flight is a small :class:`Message` with ``__slots__``; its observable
fields go straight into the columns (``array.array``, row id = message id, grown by
doubling) when they happen, so a message cut off by the end of the run still has its
times so far, and when it ends nothing of it is kept but its row. The attempts table
(one row per attempt at one server) is kept only when tracing is asked for; otherwise
reporting an attempt writes the final reply and nothing more.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ..mail.smtp import Reply

__all__ = [
    "ACCESS",
    "ACTIONS",
    "ATTEMPT_COLUMNS",
    "BOUNCED",
    "Column",
    "DELAYED",
    "DOMAIN_NOT_FOUND",
    "DELIVERED",
    "DISK_LOSS",
    "DISCARDED",
    "DSN_KIND",
    "REPLY_KIND",
    "EXPIRED",
    "Envelope",
    "FAILED",
    "FOLDERS",
    "IN_FLIGHT",
    "INTERRUPTED",
    "KINDS",
    "LOST",
    "MESSAGE_COLUMNS",
    "NO_MAIL",
    "Labels",
    "Message",
    "OUTCOMES",
    "REASONS",
    "Recorder",
    "STATUSES",
    "TOO_LARGE",
    "UNKNOWN_RECIPIENT",
]

STATUSES = ("in_flight", "delivered", "bounced", "lost")
IN_FLIGHT, DELIVERED, BOUNCED, LOST = range(4)
# Kinds of rows (docs/results.md); reply rows are made by reading (sim.mail.reading).
KINDS = ("person", "transactional", "marketing", "spam", "dsn", "reply")
DSN_KIND = KINDS.index("dsn")
REPLY_KIND = KINDS.index("reply")
# What a DSN row reports (RFC 3464 2.3.3 Action): a failure, or a delay warning.
ACTIONS = ("failed", "delayed")
FAILED, DELAYED = range(2)
# What one attempt at one server came to (the attempts table's `outcome`).
OUTCOMES = ("delivered", "bounced", "try_next", "deferred", "refused", "timeout", "interrupted", "lost")
DISK_LOSS = OUTCOMES.index("lost")  # no attempt: the row's copy went with a node's disk
# Why a message ended other than delivered (the `reason` column).
TOO_LARGE = "message too large"
UNKNOWN_RECIPIENT = "unknown recipient"
EXPIRED = "queue lifetime expired"
DISCARDED = "discarded by content filter"
INTERRUPTED = "session interrupted"
NO_MAIL = "domain receives no mail"  # a DSN to a domain with no MX (sim.mail.dsn)
DOMAIN_NOT_FOUND = "domain not found"  # NXDOMAIN for the recipient's domain (sim.mail.dns)
# Refused or dropped by a receiver's content checks (sim.mail.content).
SPAM_REJECTED = "rejected as spam"
DMARC_POLICY = "DMARC policy"
SPAM_DISCARDED = "discarded as spam"
REASONS = (TOO_LARGE, UNKNOWN_RECIPIENT, EXPIRED, DISCARDED, NO_MAIL, DOMAIN_NOT_FOUND,
           SPAM_REJECTED, DMARC_POLICY, SPAM_DISCARDED)
# Where a delivered row went in its mailbox (the `folder` column); JUNK is written when a
# receiver junks a row, INBOX is every other delivered row (filled in when the table is made).
FOLDERS = ("inbox", "junk")
# How the device that first had a delivered row reads mail (the `access` column).
ACCESS = ("imap", "pop3", "webmail")
INBOX, JUNK = range(2)

NAN = float("nan")
# No person: a person index is below a domain's users (at most 2**32 - 1), so the
# largest 32-bit value is free to mean "not recorded" in a 4-byte column.
NO_PERSON = 2**32 - 1


class Message:
    """A message in flight: what its handlers need to route it, nothing more.

    ``domain`` and ``sender`` are the recipient's and the sender's runtime domain
    objects (``sim.mail.domains.Domain``); ``attempts`` counts delivery attempts by the
    sending server that holds it (the MTA, or a relay further on); ``queued`` is when
    that server first queued it (its queue lifetime counts from there); ``hop`` is the
    attempts-table hop by which it reached that server (0: submitted to its MTA), so
    that server's own sessions are hop ``hop + 1`` however deep it sits in a chain.
    """

    __slots__ = ("id", "domain", "user", "size", "sender", "queued", "attempts", "hop")
    # A class attribute, not a slot: a DSN is a subclass (sim.mail.dsn.Notice) that says
    # True, so no message in flight pays 8 bytes for the flag.
    null_sender: ClassVar[bool] = False  # MAIL FROM:<> (a DSN): never bounced again

    def __init__(self, id: int, domain: Any, user: int, size: float, sender: Any) -> None:
        self.id = id
        self.domain = domain
        self.user = user  # recipient's index among the domain's users
        self.size = size
        self.sender = sender
        self.queued = NAN
        self.attempts = 0
        self.hop = 0

    def twin(self) -> Message:
        """A second copy of this row (same class: a DSN stays a DSN), for the server
        that took it when a session was cut after its final "."; each copy counts its
        own hops and attempts from here."""
        other = object.__new__(type(self))
        other.id, other.domain, other.user, other.size = self.id, self.domain, self.user, self.size
        other.sender, other.queued, other.attempts, other.hop = self.sender, self.queued, self.attempts, self.hop
        return other


# The sending MTA's unit of work: the rows (recipients) of one message for one
# destination, at most its recipient limit; one SMTP transaction with a RCPT each. A
# plain tuple: a one-recipient message costs one small tuple, nothing more.
Envelope = tuple[Message, ...]


class Labels:
    """Interns strings (SMTP replies, reasons, node ids) as small integer codes; 0 is ''."""

    def __init__(self, names: tuple[str, ...] = ()) -> None:
        self.names: list[str] = [""]
        self._codes: dict[str, int] = {"": 0}
        for name in names:
            self.code(name)

    def code(self, name: str) -> int:
        """The code for ``name``, assigning the next one on first use."""
        c = self._codes.get(name)
        if c is None:
            c = self._codes[name] = len(self.names)
            self.names.append(name)
        return c


@dataclass(frozen=True)
class Column:
    """One column of a table: its array type, its value until written, what it holds.

    ``values`` says how the codes become a DataFrame column: ``None`` (numbers as they
    are), a tuple of category names (codes index it), or the name of a list of names
    the recorder keeps (a :class:`Labels` table, whose code 0 is missing, or the
    scenario's domains, whose codes index them).
    """

    name: str
    typecode: str
    initial: float | int
    values: tuple[str, ...] | str | None = None
    zero_is_missing: bool = True  # for Labels; False where the codes index the names
    nullable: bool = False  # a number whose initial value means missing (a nullable integer column)


MESSAGE_COLUMNS = (
    Column("message_id", "q", -1),
    Column("parent_id", "q", -1, nullable=True),  # a DSN's: the row it reports on; a reply's: the one answered
    Column("sender_domain", "I", 0, "domains", zero_is_missing=False),
    Column("recipient_domain", "I", 0, "domains", zero_is_missing=False),
    Column("recipient_person", "I", 0),
    # Who wrote the row, when recorded (a reply: the person answering; a source with
    # contacts: the person it drew); NO_PERSON: not recorded, the sender is the one
    # sim.mail.dsn.sender_person names.
    Column("sender_person", "I", NO_PERSON, nullable=True),
    Column("kind", "B", 0, KINDS),
    Column("action", "b", -1, ACTIONS),  # a DSN's (RFC 3464 Action); -1: missing
    Column("size", "d", NAN),
    Column("created", "d", NAN),
    Column("submitted", "d", NAN),
    Column("accepted", "d", NAN),
    Column("delivered", "d", NAN),
    Column("retrieved", "d", NAN),  # the first of the recipient's devices has it
    Column("synced", "d", NAN),  # every one of the recipient's devices has it (NaN: one never will)
    Column("read", "d", NAN),  # the recipient first looks at it
    Column("ended", "d", NAN),
    Column("status", "B", IN_FLIGHT, STATUSES),
    Column("attempts", "I", 0),
    Column("deferrals", "I", 0),
    Column("final_reply", "I", 0, "replies"),
    Column("reason", "I", 0, "reasons"),
    Column("mx_host", "I", 0, "nodes"),
    Column("where", "I", 0, "nodes"),
    Column("access", "b", -1, ACCESS),  # how the device that first had it reads mail; -1: none
    Column("folder", "b", -1, FOLDERS),  # a delivered row's; -1: not delivered
    Column("copies", "B", 0),  # times put into a mailbox (filled in at the end): 2 or more is a duplicate
)

ATTEMPT_COLUMNS = (
    Column("id", "q", -1),
    Column("hop", "B", 0),
    Column("attempt", "I", 0),
    Column("host_order", "B", 0),
    Column("src", "I", 0, "nodes"),
    Column("dst", "I", 0, "nodes"),
    Column("start", "d", NAN),
    Column("end", "d", NAN),
    Column("reply", "H", 0, nullable=True),  # 0: no reply came (a timeout)
    Column("enhanced", "I", 0, "enhanced"),
    Column("outcome", "B", 0, OUTCOMES),
)

FIRST_ROWS = 1024


class _Table:
    """Growable typed columns for one table; rows are appended, never removed.

    ``rows`` is how many rows to make room for at once (the run's expected messages):
    a table that grows by doubling holds up to twice the rows it needs, and the copy
    of each column made at the end comes on top of that.
    """

    def __init__(self, columns: tuple[Column, ...], rows: int = FIRST_ROWS) -> None:
        self.columns = columns
        self.n = 0
        self.released = False
        self.capacity = max(FIRST_ROWS, rows)
        self.arrays: dict[str, array[Any]] = {
            c.name: array(c.typecode, [c.initial]) * self.capacity for c in columns
        }

    def grow(self) -> None:
        """Make room for a quarter more rows (the new rows hold the columns' initial
        values): amortized O(1) a row, and at most a quarter of the columns unused."""
        more = max(FIRST_ROWS, self.capacity // 4)
        for c in self.columns:
            self.arrays[c.name].extend(array(c.typecode, [c.initial]) * more)
        self.capacity += more

    def frame(self, labels: dict[str, list[str] | tuple[str, ...]], release: bool = False) -> pd.DataFrame:
        """The table as a DataFrame, columns typed as declared.

        ``release`` hands the columns over: each array is freed as soon as its column
        is made, so that the end of a run does not hold every column twice; the table
        cannot be read again.
        """
        if self.released:
            raise RuntimeError("the table's columns were handed over to a DataFrame already")
        n = self.n
        data: dict[str, Any] = {}
        for c in self.columns:
            a = self.arrays[c.name]
            # numpy reads array's C type codes with the platform's own sizes, so the
            # buffer is read right wherever it was written.
            values = np.frombuffer(a, dtype=np.dtype(c.typecode), count=n)
            if c.values is None and c.nullable:
                data[c.name] = pd.arrays.IntegerArray(values.copy(), mask=values == c.initial)
            elif c.values is None:
                data[c.name] = values.copy()
            elif isinstance(c.values, tuple):
                data[c.name] = pd.Categorical.from_codes(
                    values.astype(np.int32), categories=pd.Index(list(c.values), dtype=object)
                )
            else:
                # Code 0 ('' while running) is "none": missing in the frame. Every label
                # the run knew is a category, used or not, so that runs of one scenario
                # share their categories and concatenate cleanly.
                names = list(labels[c.values])
                shift = 1 if c.zero_is_missing else 0
                data[c.name] = pd.Categorical.from_codes(
                    values.astype(np.int32) - shift,
                    categories=pd.Index(names[shift:], dtype=object),
                )
            del values  # the view pins the array's buffer
            if release:
                self.arrays[c.name] = array(c.typecode)
        self.released = release
        # copy=False: every column above is a copy already; pandas would copy them all
        # once more, together, to put same-typed columns into one block.
        return pd.DataFrame(data, copy=False)


class Recorder:
    """The run's one recorder: the messages table and, when tracing, the attempts table."""

    def __init__(
        self, domains: list[str], nodes: list[str] | None = None, trace: bool = False, rows: int = 0
    ) -> None:
        """``rows``: the messages the run is expected to create (room is made for them
        at once; more are taken as they come)."""
        self.domains = domains
        self.replies = Labels()
        self.reasons = Labels(REASONS)
        # Node ids (for mx_host, where, src and dst), all known from the start so that
        # every run of a scenario has the same categories, traced or not.
        self.nodes = Labels(tuple(nodes or ()))
        self.enhanced = Labels()
        self.tracing = trace
        self._messages = _Table(MESSAGE_COLUMNS, rows)
        self._attempts = _Table(ATTEMPT_COLUMNS) if trace else None
        # Live copies of a row that its status does not count (a duplicate after the
        # final "."): kept only for the rare rows that have them, so in_flight() counts
        # every copy. An in-flight row's status counts one live copy, an ended row's none.
        self.spare: dict[int, int] = {}
        # How a copy ended while another lived (status, time, reason), by row.
        self._copy_ends: dict[int, tuple[int, float, str]] = {}
        self.forks = 0  # copies made so far (sessions cut after "." that reached the server)
        # Deliveries of a row beyond its first (a duplicate's), by row: ``copies`` is
        # 1 for a row ever delivered plus these, filled in when the table is made.
        self._more: dict[int, int] = {}
        # Looks planned when a row was stored that its loss undid, by recipient domain.
        self.unread: dict[int, int] = {}
        self._bind()

    def _bind(self) -> None:
        # Hot columns as attributes: one attribute load per write instead of a dict lookup.
        a = self._messages.arrays
        self._mid, self._sender, self._recipient = a["message_id"], a["sender_domain"], a["recipient_domain"]
        self._person, self._kind, self._size = a["recipient_person"], a["kind"], a["size"]
        self._created, self._submitted, self._accepted = a["created"], a["submitted"], a["accepted"]
        self._delivered, self._retrieved, self._ended = a["delivered"], a["retrieved"], a["ended"]
        # The last hop's, written once per stored row (sim.mail.devices.Readers.stored).
        self._synced, self._read, self._access = a["synced"], a["read"], a["access"]
        self._status, self._attempt_count, self._deferrals = a["status"], a["attempts"], a["deferrals"]
        self._reply, self._reason, self._mx_host, self._where = (
            a["final_reply"], a["reason"], a["mx_host"], a["where"]
        )

    def __len__(self) -> int:
        return self._messages.n

    # -- what components report -----------------------------------------------------

    def created(
        self, t: float, sender: int, rcpt: int, person: int, kind: int, size: float, message: int = -1
    ) -> int:
        """A message (one recipient's row) is made at ``t``; returns its row id.

        ``message`` is the row id of the message's first recipient when this row is a
        further recipient of the same message (its ``message_id``); -1 for a first row.
        """
        table = self._messages
        mid = table.n
        if mid == table.capacity:
            table.grow()
            self._bind()
        table.n = mid + 1
        self._mid[mid] = mid if message < 0 else message
        self._sender[mid] = sender
        self._recipient[mid] = rcpt
        self._person[mid] = person
        self._kind[mid] = kind
        self._size[mid] = size
        self._created[mid] = t
        return mid

    def notice(self, t: float, parent: int, person: int, size: float, action: int) -> int:
        """A DSN about row ``parent`` is made at ``t`` (RFC 3464); returns its row id.

        It goes back to the parent's sender: its recipient domain is the parent's sender
        domain, and so is its sender domain (the reporting MTA is the one that sent the
        parent for that domain); ``person`` is who sent the parent (sim.mail.dsn).
        """
        sender = self._sender[parent]
        mid = self.created(t, sender, sender, person, DSN_KIND, size)
        a = self._messages.arrays
        a["parent_id"][mid] = parent
        a["action"][mid] = action
        return mid

    def reply(self, t: float, parent: int, sender: int, rcpt: int, person: int, writer: int, size: float) -> int:
        """A reply to row ``parent`` is made at ``t`` by person ``writer`` of domain
        ``sender`` (indexes), to ``person`` of ``rcpt``; returns its row id."""
        mid = self.created(t, sender, rcpt, person, REPLY_KIND, size)
        a = self._messages.arrays
        a["parent_id"][mid] = parent
        a["sender_person"][mid] = writer
        return mid

    def wrote(self, mid: int, person: int) -> None:
        """Row ``mid`` was written by ``person`` of its sender domain (a source that
        draws its writers, for their contacts): DSNs and replies go back to them."""
        self._messages.arrays["sender_person"][mid] = person

    def writer(self, mid: int) -> int:
        """The person recorded as having written row ``mid`` (a reply's), or -1: none
        recorded (``sim.mail.dsn.who_sent`` then names the sender)."""
        writer = self._messages.arrays["sender_person"][mid]
        return -1 if writer == NO_PERSON else writer

    def message_of(self, mid: int) -> int:
        """The ``message_id`` of row ``mid`` (its first recipient's row)."""
        return self._mid[mid]

    def held(self, mid: int, node: int) -> None:
        """The message is now in the hands of ``node`` (a node code), e.g. waiting to submit."""
        if self._status[mid] == IN_FLIGHT:  # (a delivered row's duplicate goes unseen)
            self._where[mid] = node

    def queued(self, mid: int, t: float, node: int) -> None:
        """The sending MTA ``node`` (a node code) has accepted the submission at ``t``."""
        self._submitted[mid] = t
        self._where[mid] = node

    def attempting(self, mid: int, attempts: int) -> None:
        """The sending MTA starts delivery attempt number ``attempts``."""
        self._attempt_count[mid] = attempts

    def deferred(self, mid: int) -> None:
        """The sending MTA put the message into its deferred queue (once more)."""
        self._deferrals[mid] += 1

    def replied(self, mid: int, reply: Reply) -> None:
        """The sending MTA heard ``reply`` for the message (its ``final_reply`` so far)."""
        self._reply[mid] = self.replies.code(reply.line)

    def same_reply(self, mid: int, other: int) -> None:
        """Row ``mid`` is told what row ``other`` was told last (mail deferred because its
        destination died keeps the reply that closed it)."""
        reply = self._reply[other]
        if reply:  # a cause that heard nothing yet leaves the row as it was
            self._reply[mid] = reply

    def attempt(
        self,
        mid: int,
        hop: int,
        attempt: int,
        order: int,
        src: int,
        dst: int,
        start: float,
        end: float,
        reply: Reply,
        outcome: int,
        final: bool = True,
    ) -> None:
        """One attempt at one server ended with ``reply`` and ``outcome`` (an OUTCOMES index).

        ``final`` marks a reply the message's ``final_reply`` shows (server-to-server
        replies, and refusals at submission); only with tracing on is a row kept.
        """
        if final:
            self._reply[mid] = self.replies.code(reply.line)
        if self._attempts is not None:
            self._row(mid, hop, attempt, order, src, dst, start, end, reply.code,
                      self.enhanced.code(reply.enhanced), outcome)

    def disk_loss(self, mid: int, node: int, hop: int, attempt: int, t: float) -> None:
        """With tracing, a row of the attempts table saying that row ``mid``'s copy went
        with the disk of ``node`` (a node code) at ``t``: the attempt it never made there
        (hop ``hop``, ``attempt``, host_order 0, ``node`` to itself), no reply, outcome
        ``lost`` (the fault's effect on the message, after its attempts in a journey)."""
        if self._attempts is not None:
            self._row(mid, hop, attempt, 0, node, node, t, t, 0, 0, DISK_LOSS)

    def _row(
        self, mid: int, hop: int, attempt: int, order: int, src: int, dst: int, start: float, end: float,
        code: int, enhanced: int, outcome: int,
    ) -> None:
        table = self._attempts
        assert table is not None
        i = table.n
        if i == table.capacity:
            table.grow()
        table.n = i + 1
        a = table.arrays
        a["id"][i] = mid
        a["hop"][i] = hop
        a["attempt"][i] = attempt
        a["host_order"][i] = order
        a["src"][i] = src
        a["dst"][i] = dst
        a["start"][i] = start
        a["end"][i] = end
        a["reply"][i] = code
        a["enhanced"][i] = enhanced
        a["outcome"][i] = outcome

    def session(self, mid: int, node: int) -> None:
        """The sending MTA holds a session for the message with server ``node``."""
        self._mx_host[mid] = node

    def accepted(self, mid: int, t: float, node: int) -> None:
        """The receiving server ``node`` answered 250 to the message's data at ``t`` (a
        duplicate's copy accepted after the row was delivered changes nothing)."""
        if self._status[mid] == IN_FLIGHT:  # (a delivered row's times are its first copy's)
            self._accepted[mid] = t
            self._where[mid] = node

    def delivered(self, mid: int, t: float) -> bool:
        """The message is in its recipient's mailbox: it ends delivered. A further copy
        of a row delivered already adds to its ``copies`` and leaves the row as it was
        (False: not the first copy)."""
        if self.spare and self._status[mid] == DELIVERED and mid in self.spare:
            self._more[mid] = self._more.get(mid, 0) + 1
            self._end_copy(mid)  # a duplicate: the row stays delivered, as first
            return False
        self._delivered[mid] = t
        self.ended(mid, DELIVERED, t)
        return True

    def split(self, mid: int) -> None:
        """Row ``mid`` now has one live copy more (a session was cut after its final "."
        had reached the server: the server has it, and the client, never told, keeps its
        own). Each copy goes on to an end of its own (``ended``)."""
        self.spare[mid] = self.spare.get(mid, 0) + 1
        self.forks += 1

    def unsplit(self, mid: int) -> None:
        """Undo ``split``: the server refused the copy it was offered."""
        self._end_copy(mid)
        self.forks -= 1

    def vanished(self, mid: int) -> None:
        """A copy made by ``split`` never reached its server after all (the server
        crashed before the "." on its way arrived): it ends without an end of its own.
        If it was the row's last live copy, the row ends as its other copy did."""
        self.forks -= 1
        if mid in self.spare:
            self._end_copy(mid)
        elif self._status[mid] == IN_FLIGHT:
            status, t, reason = self._copy_ends.pop(mid)
            self.ended(mid, status, t, reason)

    def _end_copy(self, mid: int) -> None:
        left = self.spare[mid] - 1
        if left:
            self.spare[mid] = left
        else:
            del self.spare[mid]

    def destroyed(self, mid: int, t: float, reason: str, device: bool = False) -> None:
        """A delivered row's copies are gone: in its mailbox (the store lost its disk before
        the row was retrieved: ``retrieved`` is cleared), or with ``device`` on the
        recipient's devices that alone held it (``sim.mail.device_loss``: it had been
        retrieved, and ``retrieved`` stays). It becomes lost, its delivered time kept. The
        one status change after delivery the books allow, once; a row with a copy still
        on its way stays delivered (that copy will reach the mailbox). A look planned for
        after ``t`` (reading) never happens: ``read`` is emptied."""
        if self._status[mid] != DELIVERED:
            raise RuntimeError(f"message {mid} destroyed while {STATUSES[self._status[mid]]}")
        if self.spare.get(mid):
            return
        self._status[mid] = LOST
        self._ended[mid] = t
        if not device:  # no device ever had it: nor every device, nor a first one
            self._retrieved[mid] = NAN
            self._synced[mid] = NAN
            self._access[mid] = -1
        read = self._read
        if not read[mid] <= t:  # a look planned for after the loss never happens
            if read[mid] == read[mid]:  # it was planned: one row fewer read in its domain
                domain = self._recipient[mid]
                self.unread[domain] = self.unread.get(domain, 0) + 1
            read[mid] = NAN
        self._reason[mid] = self.reasons.code(reason)

    def junk(self, mid: int) -> None:
        """A receiver's filter put the row in the junk folder (it is delivered there)."""
        self._messages.arrays["folder"][mid] = JUNK

    def junked(self, mid: int) -> bool:
        """Whether a receiver's filter put row ``mid`` in the junk folder."""
        return self._messages.arrays["folder"][mid] == JUNK

    def read_at(self, mid: int) -> float:
        """When the recipient first looks at row ``mid`` (NaN: not within the run, or
        not at all)."""
        return self._read[mid]

    def retrieved_by(self, mid: int, t: float) -> bool:
        """Whether row ``mid``'s device had fetched it by ``t`` (a retrieval computed for
        a later time has not happened yet)."""
        return bool(self._retrieved[mid] <= t)  # NaN compares false

    def kind_of(self, mid: int) -> int:
        """Row ``mid``'s kind (an index of ``KINDS``)."""
        return self._kind[mid]

    def retrieved(self, mid: int, t: float) -> None:
        """The recipient's first device has the message (NaN: not within the run)."""
        self._retrieved[mid] = t

    def synced(self, mid: int, t: float) -> None:
        """Every one of the recipient's devices has the message (NaN: not within the
        run, or one never will: a POP3 device took it off the server first)."""
        self._synced[mid] = t

    def read(self, mid: int, t: float) -> None:
        """The recipient first looks at the message (NaN: not within the run)."""
        self._read[mid] = t

    def access(self, mid: int, code: int) -> None:
        """How the device that first had the message reads mail (an index of ``ACCESS``)."""
        self._access[mid] = code

    def ended(self, mid: int, status: int, t: float, reason: str = "") -> None:
        """Record how and when message ``mid`` ended; then it can be dropped.

        A row with more than one live copy (``split``) ends only when its last copy
        does: a copy delivered makes it delivered at once (``delivered``); a copy that
        bounces or is lost while another lives ends only itself."""
        if self.spare and mid in self.spare and status != DELIVERED:
            self._end_copy(mid)
            self._copy_ends[mid] = (status, t, reason)  # the row's end if its last copy vanishes
            return
        if self._status[mid] != IN_FLIGHT:
            # A message ending twice would break the books; fail loudly, never quietly.
            raise RuntimeError(f"message {mid} ended twice ({STATUSES[self._status[mid]]})")
        self._status[mid] = status
        self._ended[mid] = t
        self._where[mid] = 0
        if reason:
            self._reason[mid] = self.reasons.code(reason)

    # -- reading ----------------------------------------------------------------------

    def status(self, mid: int) -> str:
        """A message's status now."""
        return STATUSES[self._status[mid]]

    def in_flight(self) -> int:
        """How many messages have not ended: every live copy counted (a duplicate's too)."""
        status = np.frombuffer(self._status, dtype=np.uint8, count=self._messages.n)
        return int(np.count_nonzero(status == IN_FLIGHT)) + sum(self.spare.values())

    def _labels(self) -> dict[str, list[str] | tuple[str, ...]]:
        return {
            "domains": self.domains,
            "replies": self.replies.names,
            "reasons": self.reasons.names,
            "nodes": self.nodes.names,
            "enhanced": self.enhanced.names,
        }

    def messages(self, release: bool = False) -> pd.DataFrame:
        """The messages table: one row per message, indexed by its row id ``id``.

        ``release`` frees the recorder's columns as the frame is made (the run is over
        and nothing will read them again): the end of a run then holds one copy.
        """
        table = self._messages
        if release:
            # The hot attributes hold the columns too: point them at empty arrays first,
            # so that each column is freed as soon as the frame has its copy.
            full = table.arrays
            table.arrays = {c.name: array(c.typecode) for c in table.columns}
            self._bind()
            table.arrays = full
        frame = table.frame(self._labels(), release)
        frame.index.name = "id"
        # A delivered row not junked is in the inbox: filled in here, not at each delivery.
        codes = frame["folder"].cat.codes.to_numpy()
        delivered = frame["delivered"].notna().to_numpy()
        frame["folder"] = pd.Categorical.from_codes(
            np.where(delivered, np.where(codes == JUNK, JUNK, INBOX), -1),
            categories=pd.Index(list(FOLDERS), dtype=object),
        )
        copies = delivered.astype(np.uint8)  # (not written at each delivery either)
        for mid, more in self._more.items():
            copies[mid] += more
        frame["copies"] = copies
        return frame

    def attempts(self, release: bool = False) -> pd.DataFrame | None:
        """The attempts table (tracing only): one row per attempt at one server."""
        if self._attempts is None:
            return None
        return self._attempts.frame(self._labels(), release)
