"""Reading scenario YAML: fast for big worlds, exact in its errors.

libyaml (C) reads where PyYAML has it: a plain document (no anchors or aliases) is
built straight from its events, never composed into a node graph (a 10,000-domain file
held a node and two marks per value); a document with anchors goes through libyaml's
composer with the alias limits checked on the graph. Whatever either cannot read, or
finds wrong, is read again by the pure-Python loader, so every error is worded and
placed as that loader does. Duplicate keys are refused on every path, and the cyclic
garbage collector is paused while a document is built (:func:`paused_gc`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from .errors import ScenarioError

__all__ = ["MAX_ALIAS_VALUES", "paused_gc", "read_yaml"]


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


def read_yaml(text: str, what: str) -> Any:
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
