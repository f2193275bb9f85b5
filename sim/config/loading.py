"""Loading scenarios: YAML, ``--set`` overrides, and pydantic errors as one line.

:func:`load_scenario` reads a file, applies ``key.path=value`` overrides and validates;
every problem surfaces as one :class:`ScenarioError` naming the file (or ``--set``), the
key path and what is wrong, so the CLI can print one line and exit 2. Validation ends
with the run's budget (:mod:`.budget`): a run needing more memory than it may use is
refused unless forced, and a source that sends nothing is a :class:`ScenarioWarning`.

YAML is read by :mod:`.yamlfile`."""

from __future__ import annotations

import copy
import re
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .budget import check_budget, idle_warnings
from .compact import expand
from .errors import ScenarioError, ScenarioWarning, key_text
from .faults import FAULT_KINDS
from .nodes import NODE_KINDS
from .references import check_references
from .scenario import LAYOUT_VERSION, Scenario
from .yamlfile import paused_gc, read_yaml


__all__ = ["apply_overrides", "default_scenario_path", "load_scenario", "parse_scenario"]
# The scenarios that ship inside the package (package data), so an installed mailflow
# finds its default scenario wherever it runs; the checkout's topologies/ is not shipped.
SCENARIOS = resources.files(__package__) / "scenarios"


_WORDS = {
    "extra_forbidden": "unknown key",
    "missing": "missing required key",
}


_TAGS = {
    "kind": (*NODE_KINDS, *FAULT_KINDS),
    "dist": ("constant", "exponential", "lognormal", "uniform"),
}


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
        if parts and cur is not None and not isinstance(cur, (dict, list)):
            break  # a bare value written for a mapping (``size: 6KB``): the rest is ours
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


def _validated(data: Any) -> Scenario:
    """The scenario in ``data``, validated and its references checked (no budget).

    Errors name list elements by their id or name where it is unique
    (``topology.nodes[gmail-mx1]``, as ``--set`` selects them), not by position.
    """
    try:
        with paused_gc():
            return _checked(data)
    except ScenarioError as exc:
        raise ScenarioError(readable(exc.path, data), exc.problem) from None


def readable(path: str, data: Any) -> str:
    """``path`` with list positions replaced by the elements' ids or names where unique.

    ``topology.nodes[16].workers`` becomes ``topology.nodes[outlook-mx1].workers``; an
    element without an id or name, or whose id is not unique (a duplicate being
    reported), keeps its position. A path that does not lead anywhere is left alone.
    """
    try:
        keys = _split_path(path) if path else []
    except ScenarioError:
        return path
    parts: list[str] = []
    cur: Any = data
    for key in keys:
        if isinstance(cur, list) and isinstance(key, int) and -len(cur) <= key < len(cur):
            item = cur[key]
            label = _label(cur, item)
            parts.append(f"[{label if label is not None else key}]")
            cur = item
            continue
        if isinstance(key, int):
            parts.append(f"[{key}]")
        else:
            text = key_text(key)
            dotted = "." in text or "[" in text
            parts.append(f"[{text}]" if parts and dotted else (f".{text}" if parts else text))
        # A key the data does not have (a missing one being reported): the rest as given.
        cur = cur.get(key) if isinstance(cur, dict) else None
    return "".join(parts)


def _label(seq: list[Any], item: Any) -> str | None:
    """The id or name that selects ``item`` alone in ``seq``, if any."""
    if not isinstance(item, dict):
        return None
    for field in ("id", "name"):
        value = item.get(field)
        if isinstance(value, str) and value and all(c not in value for c in "[]"):
            same = sum(1 for other in seq if isinstance(other, dict) and other.get(field) == value)
            return value if same == 1 else None
    return None


def _checked(data: Any) -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError("", "a scenario must be a mapping of keys to values")
    version = data.get("version", LAYOUT_VERSION)
    if isinstance(version, int) and not isinstance(version, bool) and version != LAYOUT_VERSION:
        # Checked before anything else: a file of another layout fails everywhere else too.
        raise ScenarioError(
            "version",
            f"scenario layout version {version} is unknown; this mailflow reads version "
            f"{LAYOUT_VERSION} only (the only layout so far)",
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise ScenarioError(_path_of(first["loc"], data), _problem(first) + more) from None
    check_references(scenario)
    return scenario


def parse_scenario(
    data: Any, *, force: bool = False, max_memory: int | None = None, source: str | None = None
) -> Scenario:
    """Validate a scenario given as plain data (e.g. parsed YAML) and check references.

    A run expected to need more than ``max_memory`` bytes (default: half of this
    machine's RAM) is refused unless ``force``. Sources that send nothing are reported
    with ``warnings.warn`` (a :class:`ScenarioWarning`, attributed to ``source``).
    """
    data, _ = expand(data, [], source)  # a generate: block, a topology file
    scenario = _validated(data)
    if not force:
        check_budget(scenario, max_memory)
    _warn(idle_warnings(scenario), source, data)
    return scenario


def _warn(found: list[ScenarioWarning], source: str | None, data: Any) -> None:
    for warning in found:
        warning = ScenarioWarning(readable(warning.path, data), warning.problem, warning.source)
        # stacklevel 3: the caller of parse_scenario / load_scenario, not this module.
        warnings.warn(warning.located(source) if source else warning, stacklevel=3)


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
            value = read_yaml(text, "value")
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


def load_scenario(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    *,
    force: bool = False,
    max_memory: int | None = None,
) -> Scenario:
    """Read, override and validate a scenario file; no path means the default scenario.

    Overrides (``key.path=value``) are applied before validation, so they can also mend
    a file. Raises ScenarioError (a ValueError) naming the file (or ``--set``), the key
    path and the problem. A run expected to need more than ``max_memory`` bytes (default:
    half of this machine's RAM) is refused unless ``force``; sources that send nothing
    are reported with ``warnings.warn`` (:class:`ScenarioWarning`).
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
        data = read_yaml(text, "file")
    except ScenarioError as exc:
        raise exc.located(source) from None
    data, overrides = expand(data, overrides or [], source, file.parent)  # generate:, topology file
    if not overrides:
        try:
            scenario = _validated(data)
            if not force:
                check_budget(scenario, max_memory)
        except ScenarioError as exc:
            raise exc.located(source) from None
        _warn(idle_warnings(scenario), source, data)
        return scenario
    if not isinstance(data, dict):
        raise ScenarioError("", "a scenario must be a mapping of keys to values", source)
    where = f"--set (on {source})"
    try:
        merged = apply_overrides(copy.deepcopy(data), overrides)
    except ScenarioError as exc:
        raise exc.located(where) from None
    try:
        scenario = _validated(merged)
    except ScenarioError as exc:
        # Blame the file when the overrides left the faulty key as the file has it (and
        # the file is faulty on its own); otherwise the overrides brought the fault in.
        try:
            _validated(data)
        except ScenarioError:
            if _value_at(data, exc.path) == _value_at(merged, exc.path):
                raise exc.located(source) from None
        raise exc.located(where) from None

    def file_alone() -> Scenario | None:
        try:
            return _validated(data)
        except ScenarioError:
            return None

    if not force:
        try:
            check_budget(scenario, max_memory)
        except ScenarioError as exc:
            # The file is to blame if it is over budget on its own; else the overrides.
            original = file_alone()
            try:
                if original is not None:
                    check_budget(original, max_memory)
            except ScenarioError:
                raise exc.located(source) from None
            raise exc.located(where) from None
    found = idle_warnings(scenario)
    if found:
        original = file_alone()
        own = {str(w) for w in idle_warnings(original)} if original is not None else set()
        for warning in found:
            _warn([warning], source if str(warning) in own else where, merged)
    return scenario


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
        elif isinstance(cur, list) and isinstance(key, str):
            found = [x for x in cur if isinstance(x, dict) and key in (x.get("id"), x.get("name"))]
            if len(found) != 1:
                return _MISSING
            cur = found[0]
        elif isinstance(cur, dict) and key in cur:
            cur = cur[key]
        else:
            return _MISSING
    return cur
