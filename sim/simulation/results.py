"""What a run produced, and how it is written: the tables with their provenance.

A run's folder (``messages.parquet``, ``attempts.parquet`` when traced, ``run.json``)
is written whole or not at all: the files go into a temporary folder beside the target
and the folder is renamed into place, so an interrupted or failed write leaves the
previous results (or nothing) behind, never a mixture. One writer at a time holds a
lock beside the target; a second one is refused.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import signal
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FunctionType, MethodType, TracebackType
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .._version import __version__
from ..config import Scenario
from ..core.rng import STREAMS
from .summary import Summary, summarize

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock, the renames still keep folders whole
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "PROVENANCE_PACKAGES", "RESULT_FILES", "Results", "ResultsFolder", "ResultsFolderError",
    "describe_hook", "run_id",
]

PROVENANCE_PACKAGES = ("simpy", "numpy", "networkx", "pandas", "pyarrow", "pydantic")

# What a run's folder may hold. A folder holding anything else is not ours to replace.
RESULT_FILES = frozenset({"messages.parquet", "attempts.parquet", "timeseries.parquet", "run.json"})


def _version_of(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _config(scenario: Scenario, seed: int | None) -> dict[str, Any]:
    """The resolved scenario as plain data, with the seed the run uses."""
    config = scenario.model_dump(mode="json")
    config["seed"] = scenario.seed if seed is None else seed
    return config


def run_id(scenario: Scenario, seed: int | None = None, hook: str | None = None) -> str:
    """The identity of a run: a SHA-256 of the resolved scenario and the seed.

    The digest is taken over the validated scenario (after ``--set``), dumped as
    canonical JSON with ``seed`` set to the seed the run uses, so it is the digest of
    ``run.json``'s ``scenario``: two runs with equal ids give equal results, however
    their files and overrides were spelled. A run changed by a hook (``hook``, from
    :func:`describe_hook`) is another run: its id mixes the hook in.
    """
    config = _config(scenario, seed)
    if hook is not None:
        config = {"scenario": config, "hook": hook}
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def describe_hook(hook: Callable[..., object]) -> str:
    """A hook's name and a fingerprint of what it does, for a hooked run's provenance.

    The fingerprint covers the hook's code, the literals it names (``"acme-mx"``,
    ``False``), the values it closes over or was bound to (a loop variable, a
    ``functools.partial``'s arguments, a callable object's attributes), recursively; so
    hooks that differ in any of these get different run ids, and the same hook gets the
    same id in every session. What it reads from elsewhere (a global changed between
    runs) is not covered, which run.json says.
    """
    name = getattr(hook, "__qualname__", None) or type(hook).__qualname__
    module = getattr(hook, "__module__", None) or type(hook).__module__
    digest = hashlib.sha256()
    _fingerprint(hook, digest, set())
    return f"{module}.{name}#{digest.hexdigest()[:12]}"


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _fingerprint(obj: object, digest: Any, seen: set[int]) -> None:
    """Feed what ``obj`` is and does into ``digest`` (no memory addresses)."""
    if id(obj) in seen:
        digest.update(b"<cycle>")
        return
    if len(seen) > 10_000:  # a hook holding a big object: enough has been seen of it
        digest.update(b"<more>")
        return
    seen.add(id(obj))
    if isinstance(obj, (str, bytes, int, float, bool, type(None))):
        digest.update(repr(obj).encode())
    elif isinstance(obj, CodeType):
        digest.update(obj.co_code)
        digest.update(repr(obj.co_names).encode())
        for const in obj.co_consts:
            _fingerprint(const, digest, seen)
    elif isinstance(obj, functools.partial):
        for part in (obj.func, obj.args, obj.keywords):
            _fingerprint(part, digest, seen)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        digest.update(type(obj).__name__.encode())
        for item in sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj:
            _fingerprint(item, digest, seen)
    elif isinstance(obj, dict):
        for key in sorted(obj, key=repr):
            _fingerprint(key, digest, seen)
            _fingerprint(obj[key], digest, seen)
    elif isinstance(obj, (FunctionType, MethodType)):
        func = obj.__func__ if isinstance(obj, MethodType) else obj
        if isinstance(obj, MethodType):
            _fingerprint(obj.__self__, digest, seen)
        if not isinstance(func, FunctionType):
            # A method whose function is not Python code (SimPy's ``env.all_of`` is a
            # class bound as a method): what it is, by name.
            digest.update(f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', '')}".encode())
            return
        _fingerprint(func.__code__, digest, seen)
        _fingerprint(func.__defaults__, digest, seen)
        for cell in func.__closure__ or ():
            try:
                _fingerprint(cell.cell_contents, digest, seen)
            except ValueError:  # an empty cell
                digest.update(b"<empty>")
    elif isinstance(obj, type):
        digest.update(f"{obj.__module__}.{obj.__qualname__}".encode())
    else:
        # A callable object or a value it holds: its type, its attributes, its __call__.
        cls = type(obj)
        digest.update(f"{cls.__module__}.{cls.__qualname__}".encode())
        attributes = getattr(obj, "__dict__", None)
        if attributes is not None:
            _fingerprint(attributes, digest, seen)
        else:
            digest.update(_ADDRESS.sub("", repr(obj)).encode())
        call = getattr(cls, "__call__", None)
        if isinstance(call, FunctionType):
            _fingerprint(call, digest, seen)


def _read_table(path: Path) -> pd.DataFrame:
    """A table as the run made it: categories come back as Python strings (object), as
    the recorder builds them, not as Arrow-backed strings."""
    frame = pd.read_parquet(path)
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            categories = pd.Index(list(column.cat.categories), dtype=object)
            frame[name] = column.cat.rename_categories(categories)
    return frame


def _write_parquet(frame: pd.DataFrame, path: Path, provenance: dict[str, Any], index: bool) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=index)
    extra = {b"mailflow": json.dumps(provenance).encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    pq.write_table(table, path)


class ResultsFolderError(Exception):
    """A folder that cannot take a run's results: other files, another run's results, a writer."""

    def __init__(self, folder: Path, problem: str, overwrite_helps: bool = False) -> None:
        self.folder = folder
        self.problem = problem
        self.overwrite_helps = overwrite_helps  # True: passing overwrite would allow it
        hint = "; pass overwrite=True to replace them" if overwrite_helps else ""
        super().__init__(f"{folder}: {problem}{hint}")


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back (they are delivered afterwards) around a few renames."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _remove(path: Path) -> None:
    """Remove a file, a symlink or a folder tree, whichever ``path`` is; missing is fine."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


class ResultsFolder:
    """One writer's claim on a results folder, as a context manager.

    Entering creates the missing parent folders, takes the lock beside the folder
    (``.NAME.lock``, refused while another live process holds it; the kernel drops the
    lock of a killed process, so a stale lock file never blocks) and checks what the
    folder holds: nothing, or this run's results, or (with ``overwrite``) another run's
    results. :meth:`write` then replaces the folder whole. Leaving releases the lock
    and removes the parents it created if nothing was written.
    """

    def __init__(
        self, folder: str | Path, run_id: str, overwrite: bool = False, trace: bool | None = None
    ) -> None:
        self.folder = Path(folder)
        self.run_id = run_id
        self.overwrite = overwrite
        self.trace = trace  # False: this run writes no attempts table (None: not known)
        self._lock: int | None = None
        self._created: list[Path] = []
        self._written = False

    @property
    def _parent(self) -> Path:
        return self.folder.absolute().parent

    @property
    def _name(self) -> str:
        return self.folder.absolute().name

    @property
    def _lock_path(self) -> Path:
        return self._parent / f".{self._name}.lock"

    def __enter__(self) -> ResultsFolder:
        if not self._name or self._name in (".", ".."):
            raise ResultsFolderError(self.folder, "is not a folder name results can be written to")
        self._make_parents()
        try:
            self._acquire()
            self.check()
            self._remove_leftovers()
        except BaseException:
            self._release(remove_parents=True)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._release(remove_parents=not self._written)

    def _make_parents(self) -> None:
        missing: list[Path] = []
        for parent in [self._parent, *self._parent.parents]:
            if parent.exists():
                break
            missing.append(parent)
        self._parent.mkdir(parents=True, exist_ok=True)
        self._created = missing  # deepest first, the order to remove them in

    def _acquire(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        while True:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise ResultsFolderError(self.folder, self._holder()) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self._lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            # The holder released and removed the file between our open and our lock:
            # this lock is on a file nobody else sees any more. Try the new one.
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock = fd

    def _holder(self) -> str:
        try:
            pid = self._lock_path.read_text().strip()
        except OSError:
            pid = ""
        who = f"another mailflow run (pid {pid})" if pid.isdigit() else "another mailflow run"
        return f"{who} is writing results there; wait for it or choose another folder"

    def _release(self, remove_parents: bool) -> None:
        if self._lock is not None:
            # Unlink while still holding the lock; a waiter that opened the old file sees
            # that its inode is gone (see _acquire) and starts again.
            self._lock_path.unlink(missing_ok=True)
            os.close(self._lock)
            self._lock = None
        if remove_parents:
            for parent in self._created:
                try:
                    parent.rmdir()
                except OSError:  # not empty any more (someone else wrote there): keep it
                    break
            self._created = []

    def check(self) -> None:
        """Raise :class:`ResultsFolderError` unless the folder may take this run's results."""
        folder = self.folder
        if folder.is_symlink():
            # Replacing it would replace the link, not the folder it points to.
            raise ResultsFolderError(folder, "is a symbolic link; give the folder it points to")
        if folder.exists() and not folder.is_dir():
            raise ResultsFolderError(folder, "exists and is not a folder")
        if not folder.exists():
            return
        names = {p.name for p in folder.iterdir()}
        strangers = sorted(names - RESULT_FILES)
        if strangers:
            raise ResultsFolderError(
                folder,
                f"holds files that are not mailflow results ({strangers[0]!r}"
                f"{f' and {len(strangers) - 1} more' if len(strangers) > 1 else ''}); "
                "choose another folder",
            )
        if not names:
            return
        previous = self._previous_run_id()
        if self.overwrite:
            return
        if previous == self.run_id:
            if self.trace is False and "attempts.parquet" in names:
                raise ResultsFolderError(
                    folder,
                    "holds this run's attempts table (attempts.parquet), which a run without "
                    "--trace would not write; pass --trace to keep it",
                    overwrite_helps=True,
                )
            return
        what = f"run {previous[:8]}" if previous else "a run of unknown identity"
        raise ResultsFolderError(
            folder,
            f"holds the results of another scenario or seed ({what}; this is run {self.run_id[:8]})",
            overwrite_helps=True,
        )

    def _previous_run_id(self) -> str | None:
        try:
            meta = json.loads((self.folder / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        found = meta.get("run_id") if isinstance(meta, dict) else None
        return found if isinstance(found, str) else None

    def _remove_leftovers(self) -> None:
        # Temporary and set-aside folders of this target are only ever made under the
        # lock, which we now hold: any still there belong to a process that was killed.
        pattern = re.compile(rf"\.{re.escape(self._name)}\.mailflow-(tmp|old)-[^.]+")
        for entry in self._parent.iterdir():
            if pattern.fullmatch(entry.name):
                _remove(entry)

    def _fresh(self, kind: str) -> Path:
        """A new empty folder beside the target (same file system, so renames are atomic).

        ``os.mkdir`` rather than ``tempfile.mkdtemp``: the folder becomes the results
        folder, so it takes the user's umask, not mkdtemp's owner-only mode.
        """
        while True:
            path = self._parent / f".{self._name}.mailflow-{kind}-{os.getpid()}x{secrets.token_hex(4)}"
            try:
                path.mkdir()
                return path
            except FileExistsError:  # pragma: no cover - 32 random bits collided
                continue

    def write(self, results: Results) -> Path:
        """Write ``results`` into a temporary folder and rename it into place."""
        if self._lock is None and fcntl is not None:
            raise RuntimeError("ResultsFolder.write outside its with block")
        if results.run_id != self.run_id:
            raise ValueError(f"these results are run {results.run_id[:8]}, the folder was claimed for {self.run_id[:8]}")
        tmp = self._fresh("tmp")
        try:
            results._write_files(tmp)
            self._replace(tmp)
        except BaseException:
            _remove(tmp)
            raise
        return self.folder

    @property
    def written(self) -> bool:
        """Whether this claim's results are in place (an interrupt after that lost nothing)."""
        return self._written

    def _replace(self, tmp: Path) -> None:
        # Signals wait until both renames are done: the folder is never missing for long,
        # and an interrupted run never leaves the previous results set aside.
        with _signals_held():
            if not os.path.lexists(self.folder):
                os.rename(tmp, self.folder)
                self._written = True  # while signals wait, so an interrupt cannot miss it
                return
            aside = self._fresh("old")
            os.rename(self.folder, aside / "previous")
            try:
                os.rename(tmp, self.folder)
            except BaseException:
                os.rename(aside / "previous", self.folder)
                _remove(aside)
                raise
            self._written = True
            _remove(aside)


def _fsync_tree(folder: Path) -> None:
    """Flush the files to disk before the rename publishes them (ext4 and friends may
    otherwise show a renamed folder whose files are still empty after a crash)."""
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


@dataclass
class Results:
    """What a run produced: the message table (and attempts, when traced), config and seed."""

    scenario: Scenario
    seed: int
    messages: pd.DataFrame
    wall_time: float
    stats: dict[str, Any] = field(default_factory=dict)
    version: str = __version__
    attempts: pd.DataFrame | None = None
    hook: str | None = None  # describe_hook() of the hook that changed the run, if any
    timeseries: pd.DataFrame | None = None  # sampled levels, when asked (sample_every)

    def summary(self, by: str | None = None, warmup: float = 0.0, dsn: bool = False) -> Summary:
        """Counts by status and delivery-time statistics per leg, overall or per group.

        ``by`` names a column to group by, e.g. ``"kind"`` or ``"recipient_domain"``;
        ``warmup`` leaves out messages created before it (seconds); DSN rows (bounces
        and delay warnings) count only with ``dsn=True``. Rows still open at the
        horizon are censored there (docs/results.md, "Statistics").
        """
        return summarize(self.messages, by, horizon=self.scenario.horizon, warmup=warmup, dsn=dsn)

    @property
    def run_id(self) -> str:
        """The run's identity: a digest of the resolved scenario and the seed (:func:`run_id`)."""
        return run_id(self.scenario, self.seed, self.hook)

    def metadata(self) -> dict[str, Any]:
        """Everything needed to reproduce the run: config, seed, versions, wall time."""
        return {
            "mailflow_version": self.version,
            "run_id": self.run_id,
            "seed": self.seed,
            # How the seed became random draws (sim.core.rng): another scheme, other values.
            "streams": STREAMS,
            "scenario": _config(self.scenario, self.seed),
            "wall_time_s": self.wall_time,
            "horizon_s": self.scenario.horizon,
            "python": platform.python_version(),
            # numpy does not promise the same Generator streams across versions, and
            # networkx breaks ties between equal paths: both belong to the provenance.
            "versions": {name: _version_of(name) for name in PROVENANCE_PACKAGES},
            "traced": self.attempts is not None,
            "sampled": self.timeseries is not None,
            "hook": self.hook,
            **(
                {"hook_note": "a hook changed this run between build and start: the scenario "
                 "and seed alone do not reproduce it"}
                if self.hook is not None
                else {}
            ),
            "summary": self.summary().to_dict(),
            "components": self.stats,
        }

    @classmethod
    def read(cls, folder: str | Path) -> Results:
        """Load a run's results back from its folder (``messages.parquet``, ``run.json``,
        ``attempts.parquet`` if it was traced and ``timeseries.parquet`` if sampled).

        Raises ``FileNotFoundError`` if the folder holds no run, ``ValueError`` if its
        ``run.json`` is not one mailflow wrote.
        """
        from ..config import parse_scenario  # the description layer, for the scenario

        path = Path(folder)
        meta_file = path / "run.json"
        if not meta_file.is_file() or not (path / "messages.parquet").is_file():
            raise FileNotFoundError(f"{path}: no run here (run.json and messages.parquet)")
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            config = dict(meta["scenario"])
            seed = int(meta["seed"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{meta_file}: not a mailflow run.json ({exc})") from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a scenario's warnings were shown when it ran
            scenario = parse_scenario(config, force=True)
        attempts_file = path / "attempts.parquet"
        timeseries_file = path / "timeseries.parquet"
        return cls(
            scenario,
            seed,
            _read_table(path / "messages.parquet"),
            float(meta.get("wall_time_s", 0.0)),
            meta.get("components", {}),
            version=str(meta.get("mailflow_version", "")),
            attempts=_read_table(attempts_file) if attempts_file.is_file() else None,
            hook=meta.get("hook"),
            timeseries=_read_table(timeseries_file) if timeseries_file.is_file() else None,
        )

    def write(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write ``messages.parquet``, ``attempts.parquet`` (if traced),
        ``timeseries.parquet`` (if sampled) and ``run.json``.

        The folder is replaced whole, or left as it was if writing fails. A folder that
        holds another run's results (another scenario or seed) is replaced only with
        ``overwrite=True``; one that holds other files never is. Raises
        :class:`ResultsFolderError` for such a folder or while another process writes it.
        """
        with ResultsFolder(out, self.run_id, overwrite, self.attempts is not None) as folder:
            return folder.write(self)

    def _write_files(self, folder: Path) -> None:
        """The files of a run, into ``folder`` (which exists and is empty)."""
        meta = self.metadata()
        provenance = {k: meta[k] for k in ("mailflow_version", "run_id", "seed", "scenario")}
        _write_parquet(self.messages, folder / "messages.parquet", provenance, index=True)
        if self.attempts is not None:
            _write_parquet(self.attempts, folder / "attempts.parquet", provenance, index=False)
        if self.timeseries is not None:
            _write_parquet(self.timeseries, folder / "timeseries.parquet", provenance, index=False)
        (folder / "run.json").write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
        _fsync_tree(folder)
