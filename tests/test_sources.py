"""docs/sources.md names a source for every default the model uses.

Every field with a default, in every pydantic model reachable from ``sim.config.Scenario``
(every node kind included), must have a row ``| `key` | value | ...`` in the section of
docs/sources.md whose ``Schema:`` line names its model, and the row's value must match
the code's default. A default added without a source fails here; so does a row that
drifts from the code. A few fields are not defaults the model uses; they are listed in
``EXEMPT`` with the reason.
"""

from __future__ import annotations

import math
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from sim.config import Scenario, SMTPSettings
from sim.config.nodes import NODE_TYPES
from sim.mail import smtp
from sim.world.links import SEGMENT

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "docs" / "sources.md"

# (model, field) -> why the field's default needs no source. Keep this short.
EXEMPT: dict[tuple[str, str], str] = {
    ("Scenario", "name"): "names the results folder; no modelling content",
    ("Scenario", "description"): "free text",
    ("Scenario", "seed"): "a random seed; any value is as good as another",
    ("Scenario", "smtp"): "a section: its own keys (SMTPSettings) are checked one by one",
    ("Topology", "edges"): "structure: a one-node world needs no links",
    ("Domain", "outbound"): "an optional reference to a node, no value to source",
    ("Domain", "mailbox"): "an optional reference to a node, no value to source",
    ("Domain", "retrieval"): "an optional section: its own keys (Retrieval) are checked",
    ("Source", "mta"): "an optional reference to a node (default: the domain's outbound)",
    ("Source", "rate"): "one of rate / interarrival / batches must be given: no default",
    ("Source", "interarrival"): "one of rate / interarrival / batches must be given",
    ("Source", "batches"): "one of rate / interarrival / batches must be given",
    ("TimeConstant", "dist"): "the distribution's type tag, not a parameter",
    ("SizeConstant", "dist"): "the distribution's type tag, not a parameter",
    ("Scenario", "version"): "the layout version of the scenario file; no modelling content",
    ("NodeFault", "name"): "a label for the fault; no modelling content",
    ("LinkFault", "name"): "a label for the fault; no modelling content",
    ("Partition", "name"): "a label for the fault; no modelling content",
    ("DeviceFault", "name"): "a label for the fault; no modelling content",
}
EXEMPT.update(
    {(kind.__name__, "region"): "a label saying where a node is; nothing in the model reads it" for kind in NODE_TYPES}
)


def schema_models() -> list[type[BaseModel]]:
    """Every model reachable from Scenario through field annotations, plus every node kind."""
    found: dict[str, type[BaseModel]] = {}

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp.__name__ in found:
                return
            found[tp.__name__] = tp
            for field in tp.model_fields.values():
                visit(field.annotation)
            return
        for arg in typing.get_args(tp):
            visit(arg)

    visit(Scenario)
    for node in NODE_TYPES:
        visit(node)
    return list(found.values())


MODELS = schema_models()


def defaulted_fields() -> list[tuple[str, str, Any]]:
    """(model, field, default) for every field with a default, exemptions left out."""
    out = []
    for model in MODELS:
        for name, field in model.model_fields.items():
            if field.is_required() or (model.__name__, name) in EXEMPT:
                continue
            out.append((model.__name__, name, field.get_default(call_default_factory=True)))
    return out


def sections(text: str) -> list[str]:
    """The page cut at its headings (## and ###)."""
    return re.split(r"^#{2,3} .*$", text, flags=re.M)


def section_of(text: str, model: str) -> str | None:
    """The section whose ``Schema:`` line names ``model``."""
    for part in sections(text):
        for line in part.splitlines():
            if line.startswith("Schema") and f"`{model}`" in line:
                return part
    return None


def rows(section: str) -> dict[str, list[str]]:
    """Table rows keyed by their first cell when it is a single `key`."""
    out = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2:
            m = re.fullmatch(r"`([^`]+)`", cells[0])
            if m:
                out[m.group(1)] = cells[1:]
    return out


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def numbers(cell: str) -> list[float]:
    """The numbers written in a cell (thousands separators allowed)."""
    cell = re.sub(r"(?<=\d)[,_\u202f\u2009](?=\d{3})", "", cell)
    return [float(x) for x in _NUMBER.findall(cell)]


def expected_numbers(default: Any) -> list[float]:
    """The numbers a row's value cell must show for ``default``."""
    if isinstance(default, bool) or default is None:
        return []
    if isinstance(default, (int, float)):
        return [float(default)]
    if isinstance(default, BaseModel):
        out: list[float] = []
        for name in type(default).model_fields:
            out += expected_numbers(getattr(default, name))
        return out
    return []


def shows(cell: str, default: Any) -> bool:
    """Whether a value cell states ``default``."""
    if isinstance(default, bool):
        return ("true" if default else "false") in cell.lower()
    written = numbers(cell)
    return all(any(math.isclose(w, x, rel_tol=1e-9) for w in written)
               for x in expected_numbers(default))


TEXT = SOURCES.read_text()
FIELDS = defaulted_fields()


def test_schema_walk_reaches_every_model() -> None:
    names = {m.__name__ for m in MODELS}
    expected = {
        "Scenario", "SMTPSettings", "Topology", "Edge", "Domain", "MXRecord", "Retrieval",
        "Device", "Source", "Batch", "Outage", *(f"{kind}{dist}" for kind in ("Time", "Size")
        for dist in ("Constant", "Exponential", "LogNormal", "Uniform")),
        *(n.__name__ for n in NODE_TYPES),
    }
    assert expected <= names
    assert len(FIELDS) > 30  # a walk that silently found nothing would pass everything


@pytest.mark.parametrize("model, key, default", FIELDS, ids=[f"{m}.{k}" for m, k, _ in FIELDS])
def test_every_default_has_a_sourced_row(model: str, key: str, default: Any) -> None:
    section = section_of(TEXT, model)
    assert section is not None, f"docs/sources.md has no section with 'Schema: `{model}`'"
    table = rows(section)
    assert key in table, f"docs/sources.md, section of {model}: no row for `{key}`"
    cells = table[key]
    assert len(cells) >= 3 and all(cells[:3]), f"{model}.{key}: the row needs value, meaning, source"
    assert shows(cells[0], default), (
        f"{model}.{key}: the row says {cells[0]!r}, the code's default is {default!r}"
    )


def test_exemptions_are_real_defaults() -> None:
    """An exemption for a field that is gone or has no default is stale."""
    by_name = {m.__name__: m for m in MODELS}
    for model, key in EXEMPT:
        field = by_name[model].model_fields.get(key)
        assert field is not None and not field.is_required(), f"stale exemption {model}.{key}"


def test_replies_are_sourced() -> None:
    section = section_of(TEXT, "Reply")
    assert section is not None
    for name in ("ACCEPTED", "UNKNOWN_USER", "TOO_BIG", "BUSY", "NO_ANSWER", "CONNECTION_REFUSED",
                 "INTERRUPTED"):
        reply = getattr(smtp, name)
        status = f"{reply.code} {reply.enhanced}" if reply.code else reply.enhanced
        assert f"`{status}` {reply.text}" in section, name


def test_round_trips_are_sourced() -> None:
    section = section_of(TEXT, "Dialogues")
    assert section is not None
    table = rows(section)
    d = smtp.Dialogues(SMTPSettings())
    totals = {
        "relay": d.relay.to_accept + d.relay.quit,
        "submission": d.submission.to_accept + d.submission.quit,
        "lmtp": d.lmtp.to_accept + d.lmtp.quit,
        "imap": d.imap,
        "pop3": d.pop3,
        "webmail": d.webmail,
        "imap_idle": d.imap_idle,
    }
    for name, total in totals.items():
        assert name in table, f"no row for `{name}`"
        assert shows(table[name][0], total), f"`{name}`: {table[name][0]} != {total}"


def test_segment_size_is_sourced() -> None:
    section = section_of(TEXT, "Edge")
    assert section is not None
    assert shows(rows(section)["SEGMENT"][0], SEGMENT)


def test_docs_cite_no_file_outside_the_repository() -> None:
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        assert "email-facts" not in text and "facts §" not in text, f"{doc.name} cites email-facts.md"
