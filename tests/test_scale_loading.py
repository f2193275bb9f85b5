"""Big scenarios: read with libyaml, errors worded by the pure-Python loader, linear checks."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from sim.config import yamlfile
from sim.config.generate import internet
from sim.config.loading import default_scenario_path
from sim.config.yamlfile import _FAILED, _c_events, _c_yaml, _expanded_size, _UniqueKeyLoader

needs_libyaml = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")


def pure(text: str) -> Any:
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


@needs_libyaml
def test_libyaml_reads_what_the_pure_loader_reads() -> None:
    default = default_scenario_path().read_text(encoding="utf-8")
    generated = yaml.safe_dump(internet(domains=30, seed=2))
    anchors = "base: &b {workers: 4, lookup: 0.2}\nnodes:\n  - {<<: *b, id: a}\n  - *b\nlist: [*b, *b]\n"
    plain = "a: 1\nb: [1, 2.5, true, null, 2001-12-14, '3', 0x1F, .inf]\nc: {x: {y: []}}\n"
    for text in (default, generated, anchors, plain, "", "---\n", "# nothing\n", "7"):
        fast = _c_yaml(text)
        assert fast is not _FAILED
        assert fast == pure(text)
        if text is not anchors:  # built from events, without composing the document
            assert _c_events(text) == pure(text)


@needs_libyaml
@pytest.mark.parametrize(
    "text",
    [
        "base: &b {a: 1}\nother: *b\n",  # an anchor and an alias
        "a: !!str 5\n",  # an explicit tag
        "<<: {a: 1}\n",  # a merge key
        "{[1]: 2}",  # a key that is a list
        "a: 1\na: 2\n",  # a duplicate key
        "a: 1\n---\nb: 2\n",  # two documents
        "a: [1\n",  # not YAML
    ],
)
def test_the_event_reader_leaves_the_unusual_to_the_composing_readers(text: str) -> None:
    assert _c_events(text) is _FAILED


@needs_libyaml
@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",  # a duplicate key
        "a: &x [*x]\n",  # an alias inside its own anchor
        "a: [1\n",  # not YAML
        "a: \x00\n",  # a character YAML does not allow
        "[" * 5000 + "]" * 5000,  # nested past libyaml's limit
    ],
)
def test_what_libyaml_cannot_read_goes_to_the_pure_loader(text: str) -> None:
    assert _c_yaml(text) is _FAILED


@needs_libyaml
def test_alias_values_counted_as_the_pure_loader_counts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # a holds 4 values (the sequence and 1, 2, 3); b's two aliases of it add 2 x 4, so
    # b holds 1 + 4 + 4 = 9; c's two aliases of b add 2 x 9: in all 8 + 18 = 26 added.
    text = "a: &a [1, 2, 3]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    node = yaml.compose(text, Loader=yaml.CSafeLoader)
    total, distinct = _expanded_size(node)
    assert total - distinct == 26
    monkeypatch.setattr(yamlfile, "MAX_ALIAS_VALUES", 26)
    assert _c_yaml(text) == pure(text)
    monkeypatch.setattr(yamlfile, "MAX_ALIAS_VALUES", 25)
    assert _c_yaml(text) is _FAILED
    with pytest.raises(yaml.YAMLError, match="aliases expand to more than 25 values"):
        pure(text)
