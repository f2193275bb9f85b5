"""The one error bad input produces: where it is (file, key path) and what is wrong."""

from __future__ import annotations

from typing import Any, Self

__all__ = ["ScenarioError", "ScenarioWarning", "key_text"]


class _Located:
    """Where a problem is (file, key path) and what it is, printed as one line."""

    def __init__(self, path: str, problem: str, source: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.source = source
        super().__init__(str(self))  # type: ignore[call-arg]  # Exception.__init__ in the subclasses

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}{self.problem}"

    def located(self, source: str) -> Self:
        """The same problem, attributed to a file (or to the ``--set`` option)."""
        return type(self)(self.path, self.problem, source)


class ScenarioError(_Located, ValueError):
    """A problem with a scenario: where it is (file, key path) and what is wrong."""


class ScenarioWarning(_Located, UserWarning):
    """Something valid but probably unmeant (a source that sends nothing), located like
    a :class:`ScenarioError`; the run goes ahead."""


def key_text(item: Any) -> str:
    """A key as it can be printed in a one-line error."""
    text = str(item)
    # A key with a newline or other control character must not break the one-line error.
    return text if text.isprintable() else repr(text)
