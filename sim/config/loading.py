"""Loading scenarios: YAML, ``--set`` overrides, and pydantic errors as one line.

:func:`load_scenario` reads a file, applies ``key.path=value`` overrides and validates;
every problem surfaces as one :class:`ScenarioError` naming the file (or ``--set``), the
key path and what is wrong, so the CLI can print one line and exit 2."""

from __future__ import annotations

import copy
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .errors import ScenarioError, key_text
from .nodes import NODE_KINDS
from .references import check_references
from .scenario import Scenario


__all__ = ["apply_overrides", "default_scenario_path", "load_scenario", "parse_scenario"]
# The scenarios that ship inside the package (package data), so an installed mailflow
# finds its default scenario wherever it runs; the checkout's topologies/ is not shipped.
SCENARIOS = resources.files(__package__) / "scenarios"


_WORDS = {
    "extra_forbidden": "unknown key",
    "missing": "missing required key",
}


_TAGS = {"kind": NODE_KINDS, "dist": ("constant", "exponential", "lognormal", "uniform")}


def _is_tag(cur: Any, item: Any) -> bool:
    """Whether ``item`` is the tag a discriminated union put into an error location."""
    if not isinstance(cur, dict) or not isinstance(item, str):
        return False
    return any(item in tags and cur.get(field) == item for field, tags in _TAGS.items())


def _path_of(loc: tuple[Any, ...], data: Any) -> str:
    """Render a pydantic error location as a key path, dropping union tags.

    Discriminated unions put the tag ('mta', 'lognormal') into the location; walking the
    input alongside tells real keys from tags.
    """
    parts: list[str] = []
    cur = data
    tag_seen: object = None  # the mapping whose union tag was already skipped
    for item in loc:
        if isinstance(item, int) and isinstance(cur, list) and 0 <= item < len(cur):
            parts.append(f"[{item}]")
            cur = cur[item]
        elif cur is not tag_seen and _is_tag(cur, item):
            tag_seen = cur  # a key of the same name further on is a real key
            continue
        elif isinstance(item, str) and parts and ("." in item or "[" in item):
            parts.append(f"[{key_text(item)}]")  # a domain name: as --set would select it
            cur = cur.get(item) if isinstance(cur, dict) else None
        else:
            parts.append(f".{key_text(item)}" if parts else key_text(item))
            cur = cur.get(item) if isinstance(cur, dict) else None
    return "".join(parts)


def _problem(err: ErrorDetails) -> str:
    kind = err["type"]
    if kind in _WORDS:
        return _WORDS[kind]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if kind.startswith(("union_tag", "literal")) or "input" not in err:
        return msg
    value = err["input"]
    if isinstance(value, (dict, list)):
        return msg
    return f"{msg} (got {value!r})"


def parse_scenario(data: Any) -> Scenario:
    """Validate a scenario given as plain data (e.g. parsed YAML) and check references."""
    if not isinstance(data, dict):
        raise ScenarioError("", "a scenario must be a mapping of keys to values")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise ScenarioError(_path_of(first["loc"], data), _problem(first) + more) from None
    check_references(scenario)
    return scenario


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges; its keys may be overridden on purpose
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a key that is a list or mapping", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def _yaml(text: str, what: str) -> Any:
    """Parse YAML; any problem becomes a one-line ScenarioError."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None and what == "file" else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ScenarioError(where, f"invalid YAML: {problem}") from None
    except RecursionError:
        raise ScenarioError("", "invalid YAML: nested too deeply") from None
    except (ValueError, TypeError) as exc:  # e.g. an integer of more than 4300 digits
        raise ScenarioError("", f"invalid YAML: {str(exc).splitlines()[0]}") from None


_TOKEN = re.compile(r"\[([^\]]*)\]|([^.\[\]]+)")


def _split_path(path: str) -> list[str | int]:
    """``topology.nodes[gmail-mta].workers`` -> ['topology', 'nodes', 'gmail-mta', 'workers']."""
    out: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(path):
        gap = path[pos : m.start()]
        if gap not in ("", "."):
            raise ScenarioError(path, "malformed key path")
        pos = m.end()
        if m.group(1) is not None:
            sel = m.group(1)
            out.append(int(sel) if re.fullmatch(r"-?[0-9]+", sel) else sel)
        else:
            out.append(m.group(2))
    if not out or path[pos:] not in ("",):
        raise ScenarioError(path, "malformed key path")
    return out


def _select(seq: list[Any], sel: str | int, where: str) -> int:
    if isinstance(sel, int):
        if not -len(seq) <= sel < len(seq):
            raise ScenarioError(where, f"index {sel} is out of range (length {len(seq)})")
        return sel
    for i, item in enumerate(seq):
        if isinstance(item, dict) and sel in (item.get("id"), item.get("name")):
            return i
    raise ScenarioError(where, f"no element with id or name {sel!r}")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (value parsed as YAML) to raw scenario data.

    List elements are chosen by index (``workload[0]``) or by id/name
    (``topology.nodes[gmail-mta]``). Errors are ScenarioErrors naming the override.
    """
    for item in overrides:
        if "=" not in item:
            raise ScenarioError(item, "expected key.path=value")
        path, _, text = item.partition("=")
        path = path.strip()
        try:
            value = _yaml(text, "value")
        except ScenarioError as exc:
            raise ScenarioError(path, f"value is not valid {exc.problem.removeprefix('invalid ')}") from None
        keys = _split_path(path)
        cur: Any = data
        for depth, key in enumerate(keys):
            last = depth == len(keys) - 1
            where = path
            if isinstance(cur, list):
                idx = _select(cur, key, where)
                if last:
                    cur[idx] = value
                else:
                    cur = cur[idx]
            elif isinstance(cur, dict):
                key = str(key)
                if last:
                    cur[key] = value
                else:
                    if cur.get(key) is None:
                        cur[key] = {}
                    cur = cur[key]
            else:
                raise ScenarioError(where, f"cannot set {key!r} inside a {type(cur).__name__}")
    return data


def default_scenario_path() -> Path:
    """Where the default scenario lives: ``sim/config/scenarios/default.yaml`` in the package."""
    # setuptools installs the package as plain files (a checkout, an editable install
    # or a wheel), so the resource is a real file and its path can be read and printed.
    return Path(str(SCENARIOS / "default.yaml"))


def load_scenario(path: str | Path | None = None, overrides: list[str] | None = None) -> Scenario:
    """Read, override and validate a scenario file; no path means the default scenario.

    Overrides (``key.path=value``) are applied before validation, so they can also mend
    a file. Raises ScenarioError (a ValueError) naming the file (or ``--set``), the key
    path and the problem.
    """
    file = Path(path) if path is not None else default_scenario_path()
    source = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("", "no such file", source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError("", f"cannot read: {exc.__class__.__name__}", source) from None
    try:
        data = _yaml(text, "file")
    except ScenarioError as exc:
        raise exc.located(source) from None
    if not overrides:
        try:
            return parse_scenario(data)
        except ScenarioError as exc:
            raise exc.located(source) from None
    if not isinstance(data, dict):
        raise ScenarioError("", "a scenario must be a mapping of keys to values", source)
    where = f"--set (on {source})"
    try:
        merged = apply_overrides(copy.deepcopy(data), overrides)
    except ScenarioError as exc:
        raise exc.located(where) from None
    try:
        return parse_scenario(merged)
    except ScenarioError as exc:
        # Blame the file when the overrides left the faulty key as the file has it (and
        # the file is faulty on its own); otherwise the overrides brought the fault in.
        try:
            parse_scenario(data)
        except ScenarioError:
            if _value_at(data, exc.path) == _value_at(merged, exc.path):
                raise exc.located(source) from None
        raise exc.located(where) from None


_MISSING = object()


def _value_at(data: Any, path: str) -> Any:
    """The value at a key path in raw data, or a marker if the path leads nowhere."""
    try:
        keys = _split_path(path) if path else []
    except ScenarioError:
        return _MISSING
    cur = data
    for key in keys:
        if isinstance(cur, list) and isinstance(key, int) and -len(cur) <= key < len(cur):
            cur = cur[key]
        elif isinstance(cur, dict) and key in cur:
            cur = cur[key]
        else:
            return _MISSING
    return cur
