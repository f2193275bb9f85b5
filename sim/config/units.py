"""Durations and sizes written with units: ``90s``, ``5m``, ``2h``, ``4d``, ``35ms``; ``10MB``, ``1GiB``.

A plain number is seconds or bytes, as before. Sizes follow the usual convention: the
SI prefixes are powers of ten (``kB``/``KB`` = 10^3, ``MB`` = 10^6, ``GB`` = 10^9,
``TB`` = 10^12) and the IEC ones powers of two (``KiB`` = 2^10, ``MiB`` = 2^20,
``GiB`` = 2^30, ``TiB`` = 2^40). Units are case-sensitive: ``m`` is minutes and ``Mb``
(megabit) is refused rather than guessed.

The converters are pydantic before-validators; a value they cannot read raises a
ValueError whose text becomes the one-line error naming the key and the value.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = [
    "Bytes", "DURATION_UNITS", "SIZE_UNITS", "Seconds", "SizeNum", "parse_duration", "parse_size",
]

DURATION_UNITS: dict[str, int | Decimal] = {
    "ms": Decimal("0.001"), "s": 1, "m": 60, "h": 3600, "d": 86400,
}
SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
}

# A number (as YAML or Python would write it) followed by an optional unit.
_QUANTITY = re.compile(r"\s*([+-]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*")


def _no_bool(value: Any) -> None:
    # YAML reads yes/no/on/off as booleans and pydantic's lax mode would turn them into
    # 1 and 0: a typo would become a silent parameter.
    if isinstance(value, bool):
        raise ValueError("Input should be a number, not a boolean")


def _quantity(text: str, units: dict[str, Any], kind: str, spelled: str) -> Decimal | float:
    """``text`` in the base unit: exact (``1.1MB`` is 1,100,000 bytes) unless absurdly large."""
    m = _QUANTITY.fullmatch(text)
    if m is None:
        raise ValueError(f"Input should be a valid number of {kind}, optionally with a unit ({spelled})")
    number, unit = m.groups()
    if unit and unit not in units:
        raise ValueError(f"unknown unit {unit!r} for {kind} (use {spelled})")
    try:
        amount = Decimal(number.replace("_", ""))
    except InvalidOperation:  # pragma: no cover - the pattern only admits numbers
        raise ValueError(f"expected a number of {kind}") from None
    factor = units[unit] if unit else 1
    if abs(amount.adjusted()) > 30:
        # Far outside every bound: a float (maybe inf or 0) lets the field's own bound
        # report it, where exact arithmetic would overflow or build a giant integer.
        return float(amount) * float(factor)
    return amount * Decimal(factor)


def parse_duration(value: Any) -> Any:
    """A duration in seconds: numbers pass through, ``'90s'``, ``'5m'``, ``'35ms'`` convert."""
    _no_bool(value)
    if not isinstance(value, str):
        return value
    return float(_quantity(value, DURATION_UNITS, "seconds", "ms, s, m, h or d"))


def parse_size(value: Any) -> Any:
    """A size in bytes: numbers pass through, ``'10MB'``, ``'1GiB'`` convert."""
    _no_bool(value)
    if not isinstance(value, str):
        return value
    amount = _quantity(value, SIZE_UNITS, "bytes", "B, kB, MB, GB, TB, KiB, MiB, GiB or TiB")
    if isinstance(amount, float):
        return amount
    # Whole bytes stay integers so integer fields (message_size_limit) accept them.
    return int(amount) if amount == amount.to_integral_value() else float(amount)


Seconds = Annotated[float, BeforeValidator(parse_duration)]
SizeNum = Annotated[float, BeforeValidator(parse_size)]
Bytes = Annotated[int, BeforeValidator(parse_size)]
