"""The dns and smtp verification cases (sim/verification/dns.py, smtp.py): each passes
on the model as it is and fails on a model broken in one rule."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli

from sim.mail.dns import Resolver
from sim.mail.smtp import DialogueCost, Dialogues
from sim.verification import Case, cases


def the_case(group: str, start: str) -> Case:
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


DNS_BROKEN = [
    ("cache hit fraction, λT = 1,", ttl_ignored),
    ("cache hit fraction, λT = 4,", ttl_ignored),
    ("cache hit fraction, λ = 1/s, TTL 4 s", ttl_from_the_query),
    ("cache hit fraction, TTL 86400 s capped", resolver_changed(max_ttl=math.inf)),
    ("negative-cache hit fraction", resolver_changed(max_negative_ttl="max_ttl")),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("start, breaks", DNS_BROKEN, ids=[s for s, _ in DNS_BROKEN])
def test_a_dns_case_passes_and_fails_on_a_broken_resolver(
    start: str, breaks: Callable[[pytest.MonkeyPatch], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = the_case("dns", start)
    assert c.judge(c.measure(True, 1)) is True
    breaks(monkeypatch)
    assert c.judge(c.measure(True, 1)) is False


def test_the_dns_cases_give_the_same_numbers_for_the_same_seed() -> None:
    c = the_case("dns", "cache hit fraction, λ = 1/s")
    assert c.measure(True, 3) == c.measure(True, 3)


def one_round_trip_more(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every dialogue one round trip longer: an exchange counted twice."""
    original = Dialogues.__init__

    def broken(self: Dialogues, settings: Any) -> None:
        original(self, settings)
        for name in ("relay", "submission", "lmtp"):
            d = getattr(self, name)
            # The envelope: in every SMTP dialogue, accepted or refused at RCPT.
            setattr(self, name, DialogueCost(d.connect, d.hello, d.envelope + 1, d.data, d.quit))
        self.pop3 += 1
        self.imap += 1
        self.imap_idle += 1

    monkeypatch.setattr(Dialogues, "__init__", broken)


SMTP_CASES = [c.name for c in cases(groups=["smtp"])]


@pytest.mark.parametrize("name", SMTP_CASES)
def test_an_smtp_case_passes_and_fails_with_a_round_trip_more(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    c = the_case("smtp", name)
    assert c.judge(c.measure(True, 1)) is True
    one_round_trip_more(monkeypatch)
    assert c.judge(c.measure(True, 1)) is False


def test_the_smtp_cases_cover_every_dialogue() -> None:
    assert len(SMTP_CASES) == 12


def test_the_reality_rows_are_comparisons_with_a_note_and_a_source() -> None:
    rows = cases(groups=["reality"])
    assert len(rows) == 11  # 8 on the provider-share world, 3 on the default scenario
    for c in rows:
        assert not c.scored and c.note and c.source
        assert c.judge(c.measure(True, 1)) is None


def test_verify_out_draws_a_plot_per_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = cli(["verify", "--quick", "--only", "smtp", "--out", str(tmp_path)], capsys)
    assert code == 0
    for ext in ("png", "svg"):
        assert (tmp_path / f"verify-smtp.{ext}").stat().st_size > 1000
