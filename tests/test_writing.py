"""Results are written whole or not at all, by one writer, and interrupts leave nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import sim
from sim.faces.cli import Interrupted
from sim.simulation import results as results_module
from sim.simulation.results import ResultsFolder, ResultsFolderError, run_id
from tests.conftest import cli, tiny

ROOT = Path(__file__).resolve().parent.parent




def mailflow(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """``python -m sim`` in a subprocess, importing this checkout whatever the cwd."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "sim", *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def assert_whole(folder: Path) -> dict[str, object]:
    """A results folder whose files belong together: same run, rows as counted."""
    meta = json.loads((folder / "run.json").read_text())
    table = pq.read_table(folder / "messages.parquet")
    provenance = json.loads(table.schema.metadata[b"mailflow"])
    assert provenance["run_id"] == meta["run_id"]
    summary = meta["summary"]  # of people's and applications' mail: DSN rows left out
    assert table.num_rows == summary["counts"]["created"] + summary["dsn_rows"]
    return meta  # type: ignore[no-any-return]


def siblings(folder: Path) -> list[str]:
    """What else is beside the folder: temporary folders, set-aside folders, locks."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name != folder.name)


# --- identity ------------------------------------------------------------------------


def test_run_id_is_the_digest_of_the_recorded_scenario(tmp_path: Path) -> None:
    res = sim.run(tiny(), seed=3)
    folder = res.write(tmp_path / "out")
    meta = json.loads((folder / "run.json").read_text())
    canonical = json.dumps(meta["scenario"], sort_keys=True, separators=(",", ":"))
    assert meta["run_id"] == res.run_id == hashlib.sha256(canonical.encode()).hexdigest()
    provenance = json.loads(pq.read_table(folder / "messages.parquet").schema.metadata[b"mailflow"])
    assert provenance["run_id"] == meta["run_id"]
    # The seed is part of it, whether it comes from the file or from the caller.
    assert run_id(tiny(), 3) == run_id(tiny(seed=3)) != run_id(tiny(), 4)


# --- the Python API ------------------------------------------------------------------


def test_rewrite_replaces_the_folder_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sim.run(tiny(), seed=3, trace=True).write(out)
    assert (out / "attempts.parquet").exists()
    # The same run untraced would drop the trace: that needs overwrite (see below).
    sim.run(tiny(), seed=3).write(out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["messages.parquet", "run.json"]
    assert_whole(out)
    assert siblings(out) == []


def test_another_runs_results_need_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = sim.run(tiny(), seed=3).write(out)
    before = (first / "run.json").read_text()
    other = sim.run(tiny(), seed=4)
    with pytest.raises(ResultsFolderError, match="another scenario or seed") as info:
        other.write(out)
    assert info.value.overwrite_helps and "overwrite=True" in str(info.value)
    assert (out / "run.json").read_text() == before
    other.write(out, overwrite=True)
    assert assert_whole(out)["run_id"] == other.run_id


def test_folder_with_other_files_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ResultsFolderError, match="not mailflow results") as info:
        sim.run(tiny(), seed=3).write(out, overwrite=True)
    assert not info.value.overwrite_helps
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("where", ["_fsync_tree", "_write_parquet"])
def test_interrupted_write_keeps_the_previous_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    out = tmp_path / "out"
    sim.run(tiny(), seed=3).write(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(results_module, where, interrupt)
    with pytest.raises(KeyboardInterrupt):
        sim.run(tiny(), seed=4).write(out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert siblings(out) == []


def test_failed_rename_puts_the_previous_results_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    sim.run(tiny(), seed=3).write(out)
    before = (out / "run.json").read_text()
    real = os.rename

    def rename(src: str | Path, dst: str | Path) -> None:
        if ".mailflow-tmp-" in Path(src).name:  # the new folder into place
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(results_module.os, "rename", rename)
    with pytest.raises(OSError):
        sim.run(tiny(), seed=4).write(out, overwrite=True)
    assert (out / "run.json").read_text() == before
    assert siblings(out) == []


def test_fresh_write_leaves_no_folder_when_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(results_module, "_fsync_tree", interrupt)
    with pytest.raises(KeyboardInterrupt):
        sim.run(tiny(), seed=3).write(tmp_path / "new" / "deeper" / "out")
    assert list(tmp_path.iterdir()) == []  # the parents it made are gone too


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    out = tmp_path / "out"
    identity = run_id(tiny(), 3)
    with ResultsFolder(out, identity):
        with pytest.raises(ResultsFolderError, match=rf"another mailflow run \(pid {os.getpid()}\)"):
            with ResultsFolder(out, identity):
                pass
    with ResultsFolder(out, identity) as folder:  # released: free again
        folder.write(sim.run(tiny(), seed=3))
    assert siblings(out) == []


def test_a_killed_writer_does_not_block(tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sys, time; from sim.simulation.results import ResultsFolder\n"
            "claim = ResultsFolder(sys.argv[1], 'x').__enter__()\n"
            "(claim._parent / '.out.mailflow-tmp-1x2').mkdir()  # as if killed mid-write\n"
            "print('locked', flush=True); time.sleep(60)",
            str(out),
        ],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(ResultsFolderError, match=rf"pid {holder.pid}"):
            sim.run(tiny(), seed=3).write(out)
        holder.kill()
        holder.wait(timeout=10)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert siblings(out) == [".out.lock", ".out.mailflow-tmp-1x2"]  # what the dead writer left
    sim.run(tiny(), seed=3).write(out)
    assert_whole(out)
    assert siblings(out) == []


# --- the command line ----------------------------------------------------------------


def test_out_with_another_scenarios_results_needs_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    assert cli(["run", "--out", str(out), "--set", "duration=960"], capsys)[0] == 0
    before = (out / "run.json").read_text()
    # The same resolved scenario, spelled differently: rewritten silently.
    code, _, err = cli(["run", "--out", str(out), "--set", "duration=960", "--set", "seed=1"], capsys)
    assert (code, err) == (0, "")
    rewritten = (out / "run.json").read_text()
    assert json.loads(rewritten)["run_id"] == json.loads(before)["run_id"]

    code, out_text, err = cli(["run", "--out", str(out), "--set", "duration=961"], capsys)
    assert code == 2 and out_text == ""  # refused before running: no summary
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mailflow: --out {out}: holds the results of another scenario or seed")
    assert lines[0].endswith("; pass --overwrite to replace them")
    assert (out / "run.json").read_text() == rewritten

    code, _, _ = cli(["run", "--out", str(out), "--set", "duration=961", "--overwrite"], capsys)
    assert code == 0 and assert_whole(out)["scenario"]["duration"] == 961  # type: ignore[index]


def test_out_with_other_files_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "thesis.tex").write_text("")
    code, _, err = cli(["run", "--out", str(tmp_path), "--set", "duration=960", "--overwrite"], capsys)
    assert code == 2
    assert err.strip() == (
        f"mailflow: --out {tmp_path}: holds files that are not mailflow results ('thesis.tex'); "
        "choose another folder"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


def test_concurrent_runs_to_one_folder(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    procs = [
        mailflow("run", "--out", str(out), "--seed", str(seed), "--set", "duration=1000", "--overwrite", cwd=tmp_path)
        for seed in (1, 2, 3)
    ]
    try:
        finished = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert any(code == 0 for code, _, _ in finished), finished
    for code, _, err in finished:
        assert "Traceback" not in err
        if code != 0:
            assert code == 2
            # The pid when the holder has written it (a run that asks between the
            # holder's lock and its write reads an empty lock file).
            assert re.fullmatch(
                rf"mailflow: --out {re.escape(str(out))}: another mailflow run( \(pid \d+\))? is writing "
                r"results there; wait for it or choose another folder", err.strip()), err
            assert len(err.strip().splitlines()) == 1
    meta = assert_whole(out)
    assert meta["seed"] in (1, 2, 3)
    back = pd.read_parquet(out / "messages.parquet")
    assert len(back) == meta["summary"]["counts"]["created"] + meta["summary"]["dsn_rows"]  # type: ignore[index]
    assert siblings(out) == []


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_says_so_and_writes_nothing(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    out = tmp_path / "new" / "long"
    proc = mailflow("run", "--out", str(out), "--set", "duration=100000", cwd=tmp_path)
    try:
        # Wait until the run has claimed its folder (its lock appears), then a little more
        # so that the signal lands in the middle of the simulation.
        deadline = time.monotonic() + 60
        while not (out.parent / ".long.lock").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        time.sleep(1.0)
        assert proc.poll() is None
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == code, stderr
    assert stderr == (
        f"mailflow: run of default interrupted by {sig.name}; nothing was written to {out}\n"
    )
    assert stdout == ""
    assert list(tmp_path.iterdir()) == []  # not the folder, not its parents, no lock


def test_interrupt_while_writing_leaves_the_previous_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "r"
    assert cli(["run", "--out", str(out), "--set", "duration=960"], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def terminated(folder: Path) -> None:  # as if SIGTERM came with the files on disk
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(results_module, "_fsync_tree", terminated)
    code, _, err = cli(["run", "--out", str(out), "--set", "duration=961", "--overwrite"], capsys)
    assert code == 143
    assert err == f"mailflow: run of default interrupted by SIGTERM; nothing was written to {out}\n"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert siblings(out) == []


def test_a_hooked_run_is_another_run(tmp_path: Path) -> None:
    # A what-if made with a hook must not pass for (and silently replace) the plain run.
    plain = sim.run(tiny())
    down = sim.run(tiny(), hook=lambda model: model.node("mx").set_up(False))
    other = sim.run(tiny(), hook=lambda model: model.node("mx").set_up(True))
    assert len({plain.run_id, down.run_id, other.run_id}) == 3
    out = tmp_path / "r"
    plain.write(out)
    with pytest.raises(ResultsFolderError, match="another scenario or seed"):
        down.write(out)
    down.write(out, overwrite=True)
    meta = json.loads((out / "run.json").read_text())
    assert "test_a_hooked_run_is_another_run.<locals>.<lambda>#" in meta["hook"]
    assert "hook_note" in meta
    assert meta["run_id"] == down.run_id


def test_a_run_without_trace_does_not_drop_a_trace(tmp_path: Path) -> None:
    out = tmp_path / "r"
    sim.run(tiny(), trace=True).write(out)
    with pytest.raises(ResultsFolderError, match="attempts table"):
        sim.run(tiny()).write(out)
    assert (out / "attempts.parquet").exists()
    sim.run(tiny(), trace=True).write(out)  # the same run traced again: rewritten silently
    sim.run(tiny()).write(out, overwrite=True)
    assert not (out / "attempts.parquet").exists()


class Down:
    """A callable hook object."""

    def __init__(self, host: str) -> None:
        self.host = host

    def __call__(self, model: object) -> None:
        model.node(self.host).set_up(False)  # type: ignore[attr-defined]


def test_hooks_that_differ_in_what_they_close_over_are_different_runs() -> None:
    from functools import partial

    from sim.simulation.results import describe_hook

    def down(model: object, host: str) -> None:
        model.node(host).set_up(False)  # type: ignore[attr-defined]

    loop = [describe_hook(lambda m: m.node(host).set_up(False)) for host in ("mx", "store")]
    assert loop[0] != loop[1]  # the loop variable is in the fingerprint
    assert describe_hook(partial(down, host="mx")) != describe_hook(partial(down, host="mx2"))
    assert describe_hook(Down("mx")) != describe_hook(Down("mx2"))
    assert describe_hook(Down("mx")) == describe_hook(Down("mx"))  # no memory addresses
    assert " at 0x" not in describe_hook(Down("mx"))


def test_a_hook_that_keeps_the_model_is_described() -> None:
    """A hook whose closure holds the model (a test keeping it to look at later): the
    fingerprint walks the model, whose SimPy environment has methods that are classes
    (``env.all_of``), and still gives one stable name."""
    kept: list[object] = []

    def hook(model: object) -> None:
        kept.append(model)

    first = sim.run(tiny(), hook=hook).hook
    assert first is not None and first.endswith(tuple("0123456789abcdef")) and "#" in first
