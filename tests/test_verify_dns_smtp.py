"""The dns and smtp verification cases (sim/verification/dns.py, smtp.py): each fails
on a model broken in one rule (tests/verify_breaks.py); that they pass on the model as
it is, tests/test_verify_quick.py checks (the full set's two extra DNS loads: make
verify)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sim.mail.dns import Resolver
from sim.mail.policies import SizeLimit
from sim.mail.smtp import DialogueCost, Dialogues, Phase
from sim.verification import Case, Measured, cases
from tests.conftest import cli
from tests.verify_breaks import breaks


def case_starting(group: str, start: str) -> Case:
    """The case of ``group`` whose name starts with ``start``."""
    found = [c for c in cases(quick=False, groups=[group]) if c.name.startswith(start)]
    assert len(found) == 1, start
    return found[0]


def ttl_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer cached for ever."""
    original = Resolver._resolved

    def broken(self: Resolver, domain: Any, event: Any, began: float) -> None:
        original(self, domain, event, began)
        if domain.index in self._cache:
            self._cache[domain.index] = (math.inf, self._cache[domain.index][1])

    monkeypatch.setattr(Resolver, "_resolved", broken)


def ttl_from_the_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """The TTL counted from when the resolution began, not from the answer."""
    original = Resolver._resolved

    def broken(self: Resolver, domain: Any, event: Any, began: float) -> None:
        original(self, domain, event, began)
        if domain.index in self._cache:
            expiry, answer = self._cache[domain.index]
            self._cache[domain.index] = (expiry - (self.env.now - began), answer)

    monkeypatch.setattr(Resolver, "_resolved", broken)


def ttl_short(monkeypatch: pytest.MonkeyPatch, share: float = 0.1) -> None:
    """Every answer (positive or negative, after its cap) cached ``share`` less long."""
    original = Resolver._resolved

    def broken(self: Resolver, domain: Any, event: Any, began: float) -> None:
        original(self, domain, event, began)
        if domain.index in self._cache:
            expiry, answer = self._cache[domain.index]
            now = self.env.now
            self._cache[domain.index] = (now + (1 - share) * (expiry - now), answer)

    monkeypatch.setattr(Resolver, "_resolved", broken)


def resolver_changed(**attrs: float) -> Callable[[pytest.MonkeyPatch], None]:
    """A resolver whose attributes are set to ``attrs`` after it is built."""

    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        original = Resolver.__init__

        def broken(self: Resolver, *args: Any) -> None:
            original(self, *args)
            for key, value in attrs.items():
                setattr(self, key, value if not isinstance(value, str) else getattr(self, value))

        monkeypatch.setattr(Resolver, "__init__", broken)

    return patch


NO_LOOKUP_TIME = tuple(f"cache hit fraction, λT = {lt:g}, no lookup time" for lt in (0.25, 1, 4, 16))


@breaks("dns", *NO_LOOKUP_TIME)
def test_an_answer_cached_for_ever_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    ttl_ignored(monkeypatch)


@breaks("dns", "cache hit fraction, λ = 1/s, TTL 4 s, lookup mean 1 s")
def test_a_ttl_counted_from_the_query_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    ttl_from_the_query(monkeypatch)


@breaks("dns", "cache hit fraction, TTL 86400 s capped at 3 s")
def test_a_ttl_cap_ignored_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver_changed(max_ttl=math.inf)(monkeypatch)


@breaks("dns", "negative-cache hit fraction, NXDOMAIN, SOA min 10 s capped at 5 s")
def test_the_negative_cap_taken_from_the_positive_one_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver_changed(max_negative_ttl="max_ttl")(monkeypatch)  # type: ignore[arg-type]


DNS_CASES = tuple(c.name for c in cases(quick=False, groups=["dns"]))


@breaks("dns", *DNS_CASES)
def test_a_ttl_10_percent_short_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each case's tolerance is tight enough to see a TTL 10 % short (at λT = 16 the
    figure moves by 0.006 only)."""
    ttl_short(monkeypatch)


def test_the_dns_cases_give_the_same_numbers_for_the_same_seed() -> None:
    c = case_starting("dns", "cache hit fraction, λ = 1/s")
    assert c.measure(True, 3) == c.measure(True, 3)


def dialogues_changed(monkeypatch: pytest.MonkeyPatch, change: Callable[[Dialogues], None]) -> None:
    """Every :class:`Dialogues` changed by ``change`` once built."""
    original = Dialogues.__init__

    def broken(self: Dialogues, settings: Any) -> None:
        original(self, settings)
        change(self)

    monkeypatch.setattr(Dialogues, "__init__", broken)


SMTP_CASES = [c.name for c in cases(groups=["smtp"])]
RETRIEVAL = ("POP3 session", "IMAP poll session", "IMAP IDLE push")
REFUSED_AT_MAIL = "relay to 3 recipients refused at MAIL FROM (552 5.3.4), no PIPELINING: lookup + 7 RTT"
ENVELOPED = tuple(n for n in SMTP_CASES if not n.startswith(RETRIEVAL) and n != REFUSED_AT_MAIL)


@breaks("smtp", *ENVELOPED)
def test_an_envelope_a_round_trip_longer_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """MAIL+RCPT+DATA one round trip longer in every SMTP and LMTP dialogue (an exchange
    counted twice), accepted or refused at RCPT: one round trip, whatever the number of
    recipients. (DialogueCost derives each further recipient's cost from the envelope,
    1 with PIPELINING: that is kept as it was, or a 3-recipient pipelined dialogue would
    grow by 3.)"""

    def longer(d: Dialogues) -> None:
        for name in ("relay", "submission", "lmtp"):
            c = getattr(d, name)
            cost = DialogueCost(c.connect, c.hello, c.envelope + 1, c.data, c.quit)
            cost.per_rcpt = c.per_rcpt
            setattr(d, name, cost)

    dialogues_changed(monkeypatch, longer)


@breaks("smtp", "POP3 session: 9 RTT + S/B")
def test_a_pop3_session_a_round_trip_longer_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    dialogues_changed(monkeypatch, lambda d: setattr(d, "pop3", d.pop3 + 1))


@breaks("smtp", "IMAP poll session: 7 RTT + S/B")
def test_an_imap_session_a_round_trip_longer_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    dialogues_changed(monkeypatch, lambda d: setattr(d, "imap", d.imap + 1))


@breaks("smtp", "IMAP IDLE push: one way + 2 RTT + S/B")
def test_an_idle_push_a_round_trip_longer_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    dialogues_changed(monkeypatch, lambda d: setattr(d, "imap_idle", d.imap_idle + 1))


@breaks("smtp", "relay to 3 recipients, PIPELINING: lookup + 8 RTT + S/B",
        "relay to 3 recipients, no PIPELINING: lookup + 12 RTT + S/B")
def test_a_round_trip_too_many_per_recipient_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each further RCPT a round trip more than the protocol's: with PIPELINING one of
    its own (RFC 2920 ignored), without it two."""
    init = DialogueCost.__init__

    def broken(self: DialogueCost, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.per_rcpt += 1

    monkeypatch.setattr(DialogueCost, "__init__", broken)


@breaks("smtp", REFUSED_AT_MAIL)
def test_a_size_refusal_counted_at_rcpt_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIZE checked at RCPT instead of MAIL FROM: the 552 comes after the RCPTs (8 + 2
    round trips without PIPELINING), not after MAIL (7)."""
    monkeypatch.setattr(SizeLimit, "phase", Phase.RCPT)


def test_the_smtp_cases_cover_every_dialogue() -> None:
    assert len(SMTP_CASES) == 15


def test_the_reality_rows_are_comparisons_with_a_note_and_a_source() -> None:
    rows = cases(groups=["reality"])
    assert len(rows) == 11  # 8 on the provider-share world, 3 on the default scenario
    for c in rows:
        assert not c.scored and c.note and c.source
        assert c.judge(Measured(0.0, 0.0, 0.0)) is None  # whatever it measures (test_verify_quick runs them)


def test_verify_out_draws_a_plot_per_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = cli(["verify", "--quick", "--only", "smtp", "--out", str(tmp_path)], capsys)
    assert code == 0
    for ext in ("png", "svg"):
        assert (tmp_path / f"verify-smtp.{ext}").stat().st_size > 1000
