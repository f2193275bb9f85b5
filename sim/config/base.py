"""What every scenario model shares: no unknown keys, no booleans for numbers, finite limits.

Limits keep every valid scenario finite: each worker is a process, each message a row."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


__all__ = ["Int", "MAX_MESSAGES", "MAX_TIME", "MIN_RATE", "MAX_USERS", "MAX_WORKERS", "NodeId", "Num", "SAFE_NAME", "Strict"]


def _no_bool(value: Any) -> Any:
    # YAML reads yes/no/on/off as booleans and pydantic's lax mode would turn them into
    # 1 and 0: a typo would become a silent parameter.
    if isinstance(value, bool):
        raise ValueError("Input should be a number, not a boolean")
    return value


Num = Annotated[float, BeforeValidator(_no_bool)]
Int = Annotated[int, BeforeValidator(_no_bool)]

# Limits that keep a run finite: each worker is a process, each message a row.
MAX_WORKERS = 100_000
MAX_TIME = 1e9  # seconds (about 32 years): the bound of every time in a scenario
MIN_RATE = 1 / MAX_TIME  # messages/s: a Poisson source's mean gap is then a valid time
MAX_MESSAGES = 1_000_000_000
MAX_USERS = 2**32 - 1
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class Strict(BaseModel):
    """Base of every scenario model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


NodeId = Annotated[str, Field(min_length=1)]
