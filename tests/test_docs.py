"""Docs cannot go stale: their examples are executed here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import sim
from sim.config import parse_scenario

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), flags=re.S)


def test_complete_scenario_example_runs() -> None:
    examples = [b for b in blocks(ROOT / "docs" / "scenario.md", "yaml") if "topology:" in b]
    assert len(examples) == 1
    sc = parse_scenario(yaml.safe_load(examples[0]))
    kinds = {n.kind for n in sc.topology.nodes}
    assert kinds == {"client", "router", "mta", "resolver", "mx", "mailbox", "relay", "esp", "authoritative"}
    res = sim.run(sc)
    counts = res.summary(dsn=True).counts  # every row: the stores hold the DSNs too
    assert counts["delivered"] > 500
    # ... but for those the ESP's bounce processing took.
    processed = res.stats["esp"]["beta-esp"]["bounces_processed"]
    assert counts["delivered"] == sum(b["stored"] for b in res.stats["mailbox"].values()) + processed
    assert counts["in_flight"] == 0  # the drain is long enough, as the example says


def test_every_yaml_block_parses() -> None:
    for doc in DOCS:
        for block in blocks(doc, "yaml"):
            yaml.safe_load(block)


PYTHON = [(doc.name, i, b) for doc in DOCS for i, b in enumerate(blocks(doc, "python"))]


@pytest.mark.parametrize("name, index, code", PYTHON, ids=[f"{n}-{i}" for n, i, _ in PYTHON])
def test_python_examples_run(
    name: str, index: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write results write them here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    exec(compile(code, f"{name}[{index}]", "exec"), {"__name__": "__doc_example__"})
