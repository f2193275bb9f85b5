"""Loading scenarios: YAML, ``--set`` overrides, and pydantic errors as one line.

:func:`load_scenario` reads a file, applies ``key.path=value`` overrides and validates;
every problem surfaces as one :class:`ScenarioError` naming the file (or ``--set``), the
key path and what is wrong, so the CLI can print one line and exit 2. Validation ends
with the run's budget (:mod:`.budget`): a run needing more memory than it may use is
refused unless forced, and a source that sends nothing is a :class:`ScenarioWarning`.

YAML is read by libyaml (C) where PyYAML has it, a plain document straight from its
events; whatever that cannot read is read again by the pure-Python loader, so every
error is worded and placed as that loader does."""

from __future__ import annotations

import copy
import gc
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .budget import check_budget, idle_warnings
from .compact import expand
from .errors import ScenarioError, ScenarioWarning, key_text
from .nodes import NODE_KINDS
from .references import check_references
from .scenario import LAYOUT_VERSION, Scenario


__all__ = ["apply_overrides", "default_scenario_path", "load_scenario", "paused_gc", "parse_scenario"]
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


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside (restored as it was after).

    Reading, validating and building a big world make millions of objects that all
    live on, and the collector would scan the growing heap again and again: a 10,000-
    domain YAML took 17 s to parse with it and 5 s without (docs/performance.md)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


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


# Values that aliases may add to a document by repeating what their anchors hold. A
# template reused by every node of a big generated world stays far below it; a "billion
# laughs" file of a few KB (aliases of aliases of ...) expands past it at once, and
# would otherwise hang every later step (validation, --set's comparisons) for minutes.
MAX_ALIAS_VALUES = 1_000_000


class _UniqueKeys(yaml.constructor.SafeConstructor):
    """Refuses duplicate keys instead of keeping the last one."""

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


class _UniqueKeyLoader(_UniqueKeys, yaml.SafeLoader):
    """A safe loader that refuses duplicate keys instead of keeping the last one, and
    aliases that expand to more than MAX_ALIAS_VALUES values or refer to themselves."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._expanded = 0  # values aliases have added so far
        self._sizes: dict[int, int] = {}  # id(node) -> values in it, aliases expanded
        self._open: set[str] = set()  # anchors whose node is still being composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        mark: Any = event.start_mark  # the pure-Python loader's yaml.error.Mark
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise yaml.composer.ComposerError(
                    None, None, f"alias *{event.anchor} refers to itself", mark
                )
            target = self.anchors.get(event.anchor)
            if target is not None:  # an undefined alias is PyYAML's own error
                self._expanded += self._size(target)
                if self._expanded > MAX_ALIAS_VALUES:
                    raise yaml.composer.ComposerError(
                        None, None,
                        f"aliases expand to more than {MAX_ALIAS_VALUES:,} values",
                        mark,
                    )
            return super().compose_node(parent, index)
        anchor = getattr(event, "anchor", None)
        if anchor is None:
            return super().compose_node(parent, index)
        self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open.discard(anchor)

    def _size(self, node: yaml.Node) -> int:
        """Values in ``node`` with every alias in it expanded (shared parts counted once
        per use, computed once)."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
        else:
            size = 1
        self._sizes[id(node)] = size
        return size

_CLoader: type | None = None
if getattr(yaml, "__with_libyaml__", False):

    class _CUniqueKeyLoader(_UniqueKeys, yaml.CSafeLoader):
        """libyaml's parser and composer (C), with the same refusal of duplicate keys."""

    _CLoader = _CUniqueKeyLoader


_FAILED = object()


def _c_yaml(text: str) -> Any:
    """``text`` parsed by libyaml, or ``_FAILED`` when it cannot be or anything is wrong.

    libyaml reads a big scenario about ten times faster than the pure-Python loader.
    Its composer runs in C, so the alias limits are checked on the composed graph
    afterwards (the values aliases add are the expanded size less the distinct nodes:
    the count the pure-Python loader keeps). Whatever fails here is read again by the
    pure-Python loader, which words the error (and places it) as it always has.
    """
    if _CLoader is None:
        return _FAILED
    try:
        loader = _CLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if "*" in text:  # without a '*' there is no alias to count
                counted = _expanded_size(node)
                if counted is None or counted[0] - counted[1] > MAX_ALIAS_VALUES:
                    return _FAILED
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except Exception:  # noqa: BLE001 - any failure: the pure-Python loader says what it is
        return _FAILED


def _expanded_size(root: yaml.Node) -> tuple[int, int] | None:
    """Values in the document with every alias expanded, and distinct nodes; None if an
    alias refers to a node that contains it. One walk: a shared node is sized once."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()  # nodes entered and not yet sized: the path from the root
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            open_.discard(key)
            continue
        if key in sizes:
            continue
        open_.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in open_:
                return None
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)], len(sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class _Unusual(Exception):
    """Something the event reader leaves to the composing readers (an anchor, a tag...)."""


_NO_KEY = object()
_MERGE = "tag:yaml.org,2002:merge"


def _c_events(text: str) -> Any:
    """``text`` built from libyaml's events, or ``_FAILED`` if anything is unusual.

    Composing the whole document first (what ``yaml.load`` does) holds a node, with two
    position marks, for every value at once: 460 MB for a 10,000-domain world whose
    data take under 100 MB. Building the values as the events come holds only the data.
    Plain documents only: an anchor, an alias, an explicit tag, a merge key, a key
    that is not a scalar, a duplicate key or a second document is left to
    :func:`_c_yaml` (and errors to the pure-Python loader). Scalars are resolved and
    constructed by the same resolver and constructors as the composing readers.
    """
    if _CLoader is None:
        return _FAILED
    try:
        loader = _CLoader(text)
        try:
            return _from_events(loader)
        finally:
            loader.dispose()
    except Exception:  # noqa: BLE001 - unusual or wrong: the composing readers decide
        return _FAILED


def _from_events(loader: Any) -> Any:
    ev = yaml.events
    loader.get_event()  # the stream's start
    if loader.check_event(ev.StreamEndEvent):
        return None  # no document at all
    loader.get_event()  # the document's start
    constructors, resolve = loader.yaml_constructors, loader.resolve
    stack: list[list[Any]] = []  # [container, key waiting for its value] per open level
    while True:
        event = loader.get_event()
        scalar = isinstance(event, ev.ScalarEvent)
        if isinstance(event, (ev.ScalarEvent, ev.CollectionStartEvent)):
            if event.anchor is not None or event.tag not in (None, "!"):
                raise _Unusual
        if scalar:
            tag = resolve(yaml.ScalarNode, event.value, event.implicit)
            if tag == _MERGE:
                raise _Unusual
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
            value = constructors[tag](loader, node)
        elif isinstance(event, ev.MappingStartEvent):
            stack.append([{}, _NO_KEY])
            continue
        elif isinstance(event, ev.SequenceStartEvent):
            stack.append([[], _NO_KEY])
            continue
        elif isinstance(event, ev.CollectionEndEvent):
            value = stack.pop()[0]
        else:
            raise _Unusual  # an alias
        if not stack:
            break
        level = stack[-1]
        into = level[0]
        if isinstance(into, list):
            into.append(value)
        elif level[1] is _NO_KEY:
            if not scalar or value in into:
                raise _Unusual  # a list or mapping as a key, or a duplicate key
            level[1] = value
        else:
            into[level[1]] = value
            level[1] = _NO_KEY
    loader.get_event()  # the document's end
    if not loader.check_event(ev.StreamEndEvent):
        raise _Unusual  # a second document: the composing readers refuse it
    return value


def _yaml(text: str, what: str) -> Any:
    """Parse YAML; any problem becomes a one-line ScenarioError."""
    with paused_gc():
        fast = _FAILED
        if "&" not in text and "*" not in text:  # no anchor and no alias: build from events
            fast = _c_events(text)
        if fast is _FAILED:
            fast = _c_yaml(text)
    if fast is not _FAILED:
        return fast
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.reader.ReaderError as exc:
        # A character YAML does not allow (a NUL byte, say): say where it is.
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        problem = f"character {_char_name(exc.character)} is not allowed"
        if what == "file":
            raise ScenarioError(f"line {line}, column {column}", f"invalid YAML: {problem}") from None
        where = f" at line {line}, column {column}" if "\n" in text else f" at column {column}"
        raise ScenarioError("", f"invalid YAML: {problem}{where}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None and what == "file" else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ScenarioError(where, f"invalid YAML: {problem}") from None
    except RecursionError:
        raise ScenarioError("", "invalid YAML: nested too deeply") from None
    except (ValueError, TypeError) as exc:  # e.g. an integer of more than 4300 digits
        raise ScenarioError("", f"invalid YAML: {str(exc).splitlines()[0]}") from None


def _char_name(char: Any) -> str:
    """A character as a one-line error can show it: U+0000 (NUL) and the like."""
    code = char if isinstance(char, int) else ord(char) if isinstance(char, str) and char else 0
    names = {0: " (NUL)", 0x7F: " (DEL)", 0xFEFF: " (BOM)"}
    return f"U+{code:04X}{names.get(code, '')}"


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
        data = _yaml(text, "file")
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
