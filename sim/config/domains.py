"""Domains: who owns which MX hosts and mailbox stores, and how their people read mail."""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, field_validator, model_serializer, model_validator

from .base import MAX_TIME, MAX_USERS, Int, NodeId, Num, Strict
from .nodes import Greylisting
from .quota import Quota
from .reading import Reading
from .units import Seconds


__all__ = ["Access", "Asleep", "DNSFailure", "Device", "DeviceType", "Domain", "MXChange", "MXRecord", "Retrieval"]


class MXRecord(Strict):
    host: NodeId
    preference: Int = Field(ge=0, le=65535)


class DNSFailure(Strict):
    """A window of time during which resolutions of a domain's MX records SERVFAIL."""

    start: Seconds = Field(ge=0, le=MAX_TIME)
    end: Seconds = Field(ge=0, le=MAX_TIME)

    @model_validator(mode="after")
    def _ordered(self) -> DNSFailure:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


class MXChange(Strict):
    """From ``at`` on, the zone answers the domain's MX query with these records (a
    migration to another provider); resolvers serve what they cached until it expires."""

    at: Seconds = Field(ge=0, le=MAX_TIME)
    mx: list[MXRecord] = Field(description="the new MX records; [] leaves the host (implicit MX) or nothing")
    mx_ttl: Seconds | None = Field(None, ge=0, le=MAX_TIME, description="the new records' TTL; default: unchanged")


class Device(Strict):
    """A share of a domain's people who read mail with one protocol."""

    share: Num = Field(ge=0)
    poll_interval: Seconds = Field(600, ge=1, le=MAX_TIME, description="Thunderbird checks every 10 min")
    phase: Seconds | None = Field(
        None, ge=0, le=MAX_TIME, description="seconds into the cycle of every device's checks; default random"
    )

    @model_validator(mode="after")
    def _phase_in_cycle(self) -> Device:
        if self.phase is not None and self.phase >= self.poll_interval:
            raise ValueError(f"phase ({self.phase}) must be below poll_interval")
        return self


Access = Literal["imap", "pop3", "webmail"]


class Asleep(Strict):
    """A daily stretch of the domain's local time (its ``utc_offset``) in which a device
    is off or asleep (a phone at night, an office desktop after work): it checks nothing
    and is told nothing, and syncs when it wakes at ``end_hour``. Hours of the day, 0 to
    24 (fractions allowed: 6.5 is 06:30); ``end_hour`` below ``start_hour`` spans midnight.
    Numbers rather than "23:00": YAML reads an unquoted 23:00 as the number 1380."""

    start_hour: Num = Field(ge=0, lt=24, description="local hour the device goes to sleep")
    end_hour: Num = Field(ge=0, lt=24, description="local hour it wakes and syncs")

    @field_validator("start_hour", "end_hour", mode="before")
    @classmethod
    def _an_hour(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("give the local hour as a number (23:30 is 23.5)")
        if isinstance(value, int) and not isinstance(value, bool) and 60 <= value < 1440:
            # YAML 1.1 reads an unquoted 23:00 as sexagesimal: 23 * 60 = 1380.
            raise ValueError(
                f"{value} is not an hour of the day: YAML reads an unquoted 23:00 as {value}; "
                "write the hour as a number (23, or 23.5 for 23:30)"
            )
        return value

    @model_validator(mode="after")
    def _a_stretch(self) -> Asleep:
        if self.start_hour == self.end_hour:
            raise ValueError(f"start_hour and end_hour are both {self.start_hour:g}: give a stretch of the day")
        return self


class DeviceType(Strict):
    """One kind of device a domain's people may have (a phone, a desktop...).

    Each person has a device of this type with probability ``share`` (drawn once per
    person and type from a hash: no memory per person). ``access`` is how it reads mail;
    ``sync`` how an IMAP device learns of new mail (IDLE push or polling; POP3 always
    polls, webmail sees the store at once).
    """

    name: Annotated[str, Field(min_length=1)]
    share: Num = Field(ge=0, le=1, description="probability that a person has one")
    access: Access
    sync: Literal["idle", "poll"] = Field("poll", description="imap: IDLE push or polling; pop3 always polls")
    poll_interval: Seconds = Field(600, ge=1, le=MAX_TIME, description="Thunderbird checks every 10 min")
    phase: Seconds | None = Field(
        None, ge=0, le=MAX_TIME,
        description="seconds into the cycle of every device's checks (idle: its re-issued IDLEs); default random",
    )
    # POP3 only: Thunderbird's account wizard and Outlook 2010+ leave a copy 14 days.
    leave_on_server: bool = Field(True, description="pop3: keep the server copy after download")
    delete_after: Seconds | None = Field(
        1209600, ge=0, le=MAX_TIME, description="pop3 with leave_on_server: remove the server copy after; null: never"
    )
    # IMAP IDLE: the client ends IDLE and issues it again at least every 29 min (RFC 2177
    # section 3); a client cut off from its server notices then and reconnects.
    idle_refresh: Seconds = Field(
        1740, ge=1, le=1800,
        description="idle: seconds between re-issued IDLE commands (RFC 2177: 29 min; at most 30 min, "
        "RFC 3501's autologout)",
    )
    asleep: Asleep | None = Field(None, description="a daily stretch of local time the device is off; none: always on")

    @field_validator("asleep", mode="before")
    @classmethod
    def _a_mapping(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, (dict, Asleep)):
            raise ValueError("give asleep as a mapping: {start_hour: 23, end_hour: 7}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DeviceType:
        if self.sync == "idle" and self.access != "imap":
            raise ValueError(f"sync: idle needs access: imap, not {self.access}")
        pop3_keys = sorted(self.model_fields_set & {"leave_on_server", "delete_after"})
        if pop3_keys and self.access != "pop3":
            raise ValueError(f"{pop3_keys[0]} is for access: pop3 (POP3 removes mail from the server), not {self.access}")
        if "delete_after" in self.model_fields_set and self.delete_after is not None and not self.leave_on_server:
            raise ValueError("delete_after needs leave_on_server: true (without a copy left, the download removes it)")
        # An IDLE client's cycle is its re-issued IDLE, a poller's its polls.
        cycle = "idle_refresh" if self.sync == "idle" else "poll_interval"
        if self.phase is not None and self.phase >= getattr(self, cycle):
            raise ValueError(f"phase ({self.phase}) must be below {cycle}")
        return self

    @model_serializer(mode="wrap")
    def _own_keys(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Dumped (mailflow show, sweeps) without the POP3 keys it does not use, which
        # would read back as given on the wrong access.
        data = handler(self)
        if isinstance(data, dict):
            if self.access != "pop3":
                data.pop("leave_on_server", None)
                data.pop("delete_after", None)
            elif not self.leave_on_server:
                data.pop("delete_after", None)
        return data

    @property
    def cycle(self) -> float:
        """Seconds between the checks its ``phase`` places: re-issued IDLEs or polls."""
        return float(self.idle_refresh if self.sync == "idle" else self.poll_interval)


class Retrieval(Strict):
    """How a domain's people read their mail.

    Either ``devices:`` (each person has each type with its own share; a person who
    draws none has the first type), or the older one-device form ``imap/pop3/webmail``
    (each person has exactly one device, chosen by the shares, normalised). With neither,
    the shares are IMAP 0.5, POP3 0.1 and webmail 0.4; once any protocol is given, the
    ones left out have share 0.
    """

    @model_validator(mode="before")
    @classmethod
    def _left_out_means_unused(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(p in data for p in ("imap", "pop3", "webmail")):
            if data.get("devices") is not None:
                raise ValueError("give either devices: or imap/pop3/webmail shares, not both")
            data = dict(data)
            for protocol in ("imap", "pop3", "webmail"):
                data.setdefault(protocol, {"share": 0})
        return data

    client: NodeId = Field(description="client node where their devices attach")
    imap: Device = Field(default_factory=lambda: Device(share=0.5))
    pop3: Device = Field(default_factory=lambda: Device(share=0.1))
    webmail: Device = Field(default_factory=lambda: Device(share=0.4))
    devices: list[DeviceType] | None = Field(
        None, description="device types people have, each with its own share; replaces imap/pop3/webmail"
    )
    reading: Reading | None = Field(None, description="when people look at their mail and reply; absent: not modelled")

    @model_validator(mode="after")
    def _some_share(self) -> Retrieval:
        if self.devices is not None:
            if not self.devices:
                raise ValueError("devices: is empty; give at least one device type")
            names = [d.name for d in self.devices]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"device type {twice[0]!r} is listed twice")
        elif self.imap.share + self.pop3.share + self.webmail.share <= 0:
            raise ValueError("imap, pop3 and webmail shares are all zero")
        return self

    @model_serializer(mode="wrap")
    def _one_form(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A scenario written with devices: dumps (mailflow show, sweeps) without the older
        # form's default shares, which would read back as both forms at once.
        data = handler(self)
        if self.devices is not None and isinstance(data, dict):
            for protocol in ("imap", "pop3", "webmail"):
                data.pop(protocol, None)
        return data

    def device_types(self) -> tuple[list[DeviceType], bool]:
        """The device types, and whether a person has exactly one of them (the older
        one-device form, chosen by normalised shares) rather than each with its share."""
        if self.devices is not None:
            return self.devices, False
        total = self.imap.share + self.pop3.share + self.webmail.share
        key = tuple((d.share / total, d.poll_interval, d.phase) for d in (self.imap, self.pop3, self.webmail))
        return list(_one_device_types(key)), True


@functools.lru_cache(maxsize=256)
def _one_device_types(key: tuple[tuple[float, float, float | None], ...]) -> tuple[DeviceType, ...]:
    """The older form's three device types for (share, poll_interval, phase) of IMAP,
    POP3 and webmail: made once and shared by every domain that reads alike (a generated
    world's thousands of domains would otherwise each hold three)."""
    return tuple(
        DeviceType(name=name, share=share, access=name, poll_interval=interval, phase=phase)
        for name, (share, interval, phase) in zip(("imap", "pop3", "webmail"), key)
    )


class Domain(Strict):
    name: Annotated[str, Field(min_length=1)]
    users: Int = Field(0, ge=0, le=MAX_USERS, description="people with a mailbox here")
    outbound: NodeId | None = Field(None, description="MTA its senders submit to")
    mx: list[MXRecord] = Field(default_factory=list)
    host: NodeId | None = Field(None, description="A record used as implicit MX (RFC 5321 5.1)")
    mx_ttl: Seconds = Field(3600, ge=0, le=MAX_TIME, description="gmail.com MX TTL")
    mailbox: NodeId | None = None
    unknown_recipient_rate: Num = Field(0.0, ge=0, le=1)
    discard_rate: Num = Field(0.0, ge=0, le=1, description="accepted, silently dropped")
    retrieval: Retrieval | None = None
    quota: Quota | None = Field(None, description="per-mailbox quota; absent: mailboxes never fill")
    utc_offset: Num = Field(
        0, ge=-12, le=14, description="hours ahead of UTC of its people's clocks (daily profiles)"
    )
    # DNS answers that are not MX records (docs/model.md#dns).
    exists: bool = Field(True, description="false: the name does not exist (NXDOMAIN)")
    null_mx: bool = Field(False, description="publishes MX 0 . (RFC 7505): receives no mail")
    negative_ttl: Seconds = Field(
        3600, ge=0, le=MAX_TIME, description="SOA minimum: how long NXDOMAIN and NODATA are cached (RFC 2308)"
    )
    dns_failures: list[DNSFailure] = Field(
        default_factory=list, description="windows in which its MX lookups SERVFAIL"
    )
    # One greylisting table for the domain, whichever of its MX hosts is asked, as a
    # receiver that greylists on several hosts shares one (docs/greylisting.md).
    greylisting: Greylisting | None = Field(
        None, description="postgrey's rules with one table shared by the domain's MX hosts; absent: off"
    )
    # What a receiver's SPF/DKIM/DMARC checks find (sim/mail/content.py).
    dmarc: Literal["none", "quarantine", "reject"] = Field(
        "none", description="its DMARC policy (p=) for mail failing authentication"
    )
    auth_failure_rate: Num = Field(
        0.0, ge=0, le=1, description="share of mail in its name failing SPF and DKIM (spoofed, forwarded)"
    )
    txt_ttl: Seconds = Field(3600, ge=0, le=MAX_TIME, description="TTL of its SPF, DKIM and DMARC records")
    # The zone changing its MX records during the run.
    mx_changes: list[MXChange] = Field(
        default_factory=list, description="times at which the MX records change (a migration)"
    )
    # The zone's authoritative servers (RFC 1035 NS records).
    ns: list[NodeId] = Field(
        default_factory=list, description="its authoritative name servers; empty: the lookup time stands in"
    )

    @model_validator(mode="after")
    def _one_answer(self) -> Domain:
        # A name that does not exist, or publishes a null MX, has no other records.
        what = "exists: false" if not self.exists else "null_mx: true" if self.null_mx else None
        if what is not None:
            if self.mx:
                raise ValueError(f"a domain with {what} has no MX records")
            if self.host is not None:
                raise ValueError(f"a domain with {what} has no host")
            if self.users:
                raise ValueError(f"a domain with {what} has no users")
            if not self.exists and self.null_mx:
                raise ValueError("a domain with exists: false publishes no null MX")
            if self.mx_changes:
                raise ValueError(f"a domain with {what} has no MX changes")
            if not self.exists and self.ns:
                # Its NXDOMAIN comes from the TLD's servers, which are not modelled.
                raise ValueError("a domain with exists: false has no name servers (ns)")
        for before, change in zip(self.mx_changes, self.mx_changes[1:]):
            if change.at <= before.at:
                raise ValueError(f"mx_changes must be in time order: {change.at} follows {before.at}")
        return self

    @property
    def receives(self) -> bool:
        """Whether the domain can receive mail at all (MX records or an A record, now
        or after one of its MX changes)."""
        return bool(self.mx) or self.host is not None or any(c.mx for c in self.mx_changes)

    @property
    def nodata(self) -> bool:
        """Whether the name exists with neither MX nor address records (NODATA)."""
        return self.exists and not self.null_mx and not self.receives

    @property
    def undeliverable(self) -> bool:
        """Whether mail to it bounces at lookup: the name does not exist, has null MX, or
        has no records (NODATA)."""
        return not self.exists or self.null_mx or self.nodata
