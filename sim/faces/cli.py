"""The ``mailflow`` command.

Bad input (a scenario, a ``--set`` override, a flag) is one line on stderr naming the
file or flag, the key and the problem, and exit code 2; never a traceback. Ctrl-C
(SIGINT) or SIGTERM is one line saying what was interrupted and exit code 130 / 143.
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import sys
import warnings
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

# The model, pandas and the rest are imported inside the commands that use them, so
# that `mailflow --help` (and a typo's usage error) starts in a tenth of a second.
if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import Progress, ProgressColumn

    from ..config import Scenario
    from ..simulation import Results

try:  # typer >= 0.20 vendors click; older releases use click itself
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    # With click installed beside typer (dask needs it) mypy sees two distinct classes.
    from click.exceptions import UsageError  # type: ignore[no-redef, assignment, unused-ignore]

app = typer.Typer(
    name="mailflow",
    help="A discrete-event simulator of the Internet's email infrastructure.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain click help: typer's rich panels print flags as "--trace <bool>".
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# No markup: paths and scenario names are printed as they are, brackets and all.
out = Console(markup=False, highlight=False, soft_wrap=True)
err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", metavar="KEY=VALUE", help="Override a scenario key: key.path=value (repeatable)."
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Skip the memory check: accept a run expected to need more memory than it may use.",
    ),
]


def _fail(message: str) -> NoReturn:
    err.print(f"mailflow: {message}".replace("\n", "\\n"))
    raise typer.Exit(2)


def default_out(sc: Scenario, seed: int | None) -> Path:
    """``results/<name>-seed<seed>-<digest8>``, the digest being the run's :func:`run_id`.

    Name and seed keep the folder readable; the digest of the resolved scenario makes
    it unique, so an edited copy of a file, or ``--set``, never lands on another
    scenario's results, while the same scenario spelled differently lands on its own.
    """
    from ..simulation.results import run_id

    used = sc.seed if seed is None else seed
    return Path("results") / f"{sc.name}-seed{used}-{run_id(sc, seed)[:8]}"


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised where the program was, so ``with`` and ``finally`` clean up."""

    def __init__(self, signum: int) -> None:
        # The number is the only argument: SimPy re-raises an exception from a process
        # as ``type(exc)(*exc.args)``, which must give the same exception back.
        super().__init__(signum)
        self.signum = signum


class _Reported(Exception):
    """A command was interrupted and has said so in ``line``; exit with ``code``."""

    def __init__(self, line: str, code: int) -> None:
        super().__init__(line)
        self.line = line
        self.code = code


_received: list[int] = []  # signals turned into Interrupted during this main()


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise Interrupted(signum)


@contextlib.contextmanager
def _signals_as_exceptions() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` while the command runs.

    SIGTERM would otherwise kill the process on the spot, with no chance to remove a
    half-written folder; SIGINT gets the same treatment so both report the same way.
    The previous handlers come back afterwards (tests call :func:`main` in-process).
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    wanted = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, _raise_interrupted) for s in wanted}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def _count(n: int, noun: str) -> str:
    """``1 source``, ``2 sources``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _load(scenario: Path | None, sets: list[str] | None, force: bool = False) -> Scenario:
    from ..config import ScenarioError, ScenarioWarning, load_scenario

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ScenarioWarning)
        try:
            sc = load_scenario(scenario, sets or [], force=force)
        except ScenarioError as exc:
            _fail(str(exc))
    for warning in caught:
        if issubclass(warning.category, ScenarioWarning):
            err.print(f"mailflow: warning: {warning.message}".replace("\n", "\\n"))
        else:  # not ours: let Python show it as usual
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return sc


def _out_dir(text: str) -> Path:
    # Path("") is the current folder: an empty --out (an unset shell variable, say)
    # would scatter results there.
    if not text.strip():
        raise typer.BadParameter("an empty path; give a folder")
    return Path(text)


def _version(value: bool) -> None:
    if value:
        from .._version import __version__

        out.print(f"mailflow {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """A discrete-event simulator of the Internet's email infrastructure."""


def _fmt(x: float) -> str:
    """Seconds to about four significant figures, so the table fits 80 columns."""
    if x != x:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}" if abs(x) >= 100 else f"{x:.2f}"


def _device_losses(by_access: dict[str, dict[str, float]]) -> str:
    """One line: rows lost with devices and devices lost, by access method."""
    rows = sum(int(v["rows_lost"]) for v in by_access.values())
    each = ", ".join(
        f"{access} {int(v['devices_lost']):,} ({int(v['rows_lost']):,} rows)" for access, v in by_access.items()
    )
    return f"lost with devices: {rows:,} rows; devices lost by access: {each}"


def _store_refusals(stores: dict[str, dict[str, float]]) -> str | None:
    """One line: the RCPTs full mailboxes and full stores refused (None: none did)."""
    keys = (("refused_quota_temporary", "452 4.2.2"), ("refused_quota_permanent", "552 5.2.2"),
            ("refused_store_full", "452 4.3.1"))
    totals = {reply: sum(int(s.get(key, 0)) for s in stores.values()) for key, reply in keys}
    if not any(totals.values()):
        return None
    each = ", ".join(f"{reply} x{n:,}" for reply, n in totals.items() if n)
    full = sum(int(s.get("full_mailboxes", 0)) for s in stores.values())
    return f"refused for room at the stores: {each}; mailboxes full at the end: {full:,} (docs/quotas.md)"


def print_summary(results: Results, console: Console = out) -> None:
    """Print a run's counts by status and its per-leg delivery times as tables."""
    import pandas as pd
    from rich.table import Table

    from ..simulation.summary import FLAGGED

    summary = results.summary()
    assert isinstance(summary.counts, pd.Series)  # not grouped
    counts = Table(title=f"{results.scenario.name} (seed {results.seed})", title_justify="left")
    counts.add_column("status")
    counts.add_column("messages", justify="right")
    counts.add_column("share", justify="right")
    total = int(summary.counts.loc["created"])
    for status, n in summary.counts.items():
        share = "" if status == "created" else f"{(n / total if total else 0):.2%}"
        counts.add_row(str(status), f"{int(n):,}", share)
    console.print(counts)
    devices = results.stats.get("device_loss")
    if devices:  # a run with device faults: what went with the lost devices
        console.print(_device_losses(devices), highlight=False)
    refusals = _store_refusals(results.stats.get("mailbox", {}))
    if refusals is not None:  # quotas or store sizes at work
        console.print(refusals, highlight=False)

    # Censored statistics print as "> t" (rmean as "~m"), unreached percentiles as
    # "n/r": summary.shown_times applies the rules, the note under the table says them.
    shown = summary.shown_times(_fmt)
    times = Table(title="times (seconds)", title_justify="left")
    times.add_column("leg", no_wrap=True)
    for col in ("count", "censored", *FLAGGED):
        times.add_column(col, justify="right")
    for leg, row in shown.iterrows():
        times.add_row(
            str(leg),
            f"{int(row['count']):,}",
            f"{int(row['censored']):,}",
            # "> t" is one value: a narrow table must not wrap it at its space.
            *(str(row[c]).replace("> ", ">\u00a0") for c in FLAGGED),
        )
    console.print(times)
    console.print(summary.note(), style="dim", highlight=False)
    if summary.access is not None and len(summary.access) > 1:  # one access method says nothing new
        split = Table(title="retrieval by the first device's access (rows retrieved)", title_justify="left")
        for col in ("access", "rows", "share", "mean", "p50", "p95"):
            split.add_column(col, justify="left" if col == "access" else "right")
        for access, row in summary.access.iterrows():
            split.add_row(
                str(access), f"{int(row['rows']):,}", f"{row['share']:.1%}", *(_fmt(row[c]) for c in ("mean", "p50", "p95"))
            )
        console.print(split)


@app.command("run")
def run_command(
    scenario: Annotated[
        Path | None,
        typer.Argument(
            metavar="SCENARIO", help="Scenario YAML file (default: the scenario shipped with mailflow).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", metavar="INT", help="Random seed (default: the scenario's).", min=0),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="DIR", parser=_out_dir, help="Folder for messages.parquet and run.json."
        ),
    ] = None,
    sets: SetOption = None,
    trace: Annotated[
        bool,
        typer.Option("--trace", help="Also write attempts.parquet: one row per attempt at one server."),
    ] = False,
    force: ForceOption = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace results of another scenario or seed in --out."),
    ] = False,
    sample_every_text: Annotated[
        str | None,
        typer.Option(
            "--sample-every", metavar="DURATION",
            help="Also write timeseries.parquet: queue lengths, sessions and the like, "
            "time-averaged over a grid of this step (seconds, or with a unit: 15m, 1h).",
        ),
    ] = None,
    timeseries: Annotated[
        bool,
        typer.Option("--timeseries", help="Write timeseries.parquet with 100 points over the run."),
    ] = False,
) -> None:
    """Run a scenario, print a summary and write the results."""
    from ..config import ScenarioError, default_scenario_path
    from ..config.budget import check_budget
    from ..core.monitors import MAX_POINTS
    from ..simulation.results import ResultsFolder, ResultsFolderError, run_id

    sc = _load(scenario, sets, force)
    sample_every = _duration_flag("--sample-every", sample_every_text)
    if sample_every is None and timeseries:
        sample_every = sc.horizon / 100
    if sample_every is not None and not 0.0 < sample_every < float("inf"):
        _fail(f"--sample-every {sample_every:g}: give a positive number of seconds")
    if sample_every is not None and sc.horizon / sample_every > MAX_POINTS:
        _fail(f"--sample-every {sample_every:g}: {sc.horizon / sample_every:,.0f} points over "
              f"the run ({sc.horizon:g} s); at most {MAX_POINTS:,}")
    if trace and not force:
        try:
            check_budget(sc, trace=True)
        except ScenarioError as exc:
            _fail(str(exc.located(str(scenario) if scenario else str(default_scenario_path()))))
    identity = run_id(sc, seed)
    folder = out_dir if out_dir is not None else default_out(sc, seed)
    target: ResultsFolder | None = None
    try:
        with contextlib.ExitStack() as stack:
            # Claimed before a long run, not after it: a folder that cannot take the
            # results, or that another run is writing, is refused at once.
            try:
                target = stack.enter_context(ResultsFolder(folder, identity, overwrite, trace))
            except ResultsFolderError as exc:
                hint = "; pass --overwrite to replace them" if exc.overwrite_helps else ""
                _fail(f"--out {folder}: {exc.problem}{hint}")
            except OSError as exc:
                _fail(f"--out {folder}: cannot write results: {exc.strerror or exc}")
            results = _simulate(sc, seed, trace, sample_every)
            try:  # written before the summary is printed: a reader that stops early loses nothing
                target.write(results)
            except OSError as exc:
                _fail(f"--out {folder}: cannot write results: {exc.strerror or exc}")
            print_summary(results, _wide_console())
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        name = signal.Signals(signum).name
        if target is not None and target.written:
            line = f"mailflow: interrupted by {name} after the results were written to {folder}"
        else:
            line = f"mailflow: run of {sc.name} interrupted by {name}; nothing was written to {folder}"
        raise _Reported(line, 128 + signum) from None
    out.print(
        f"{len(results.messages):,} rows (recipient deliveries, DSNs included) in "
        f"{results.wall_time:.2f} s wall; "
        f"results in {folder}/ (messages.parquet, {'attempts.parquet, ' if trace else ''}"
        f"{'timeseries.parquet, ' if sample_every is not None else ''}run.json)",
        soft_wrap=True,
    )



def _duration_flag(flag: str, text: str | None) -> float | None:
    """A flag's duration: seconds, or a number with a unit (``15m``); one line if bad."""
    if text is None:
        return None
    from ..config.units import parse_duration

    try:
        return float(parse_duration(text.strip()))
    except ValueError as exc:
        _fail(f"{flag} {text}: {exc}")
        raise  # not reached: _fail exits


def _progress_bar(title: str, fields: str, clock: ProgressColumn) -> Progress:
    """A progress bar on stderr, shown only when stderr is a terminal, gone when done."""
    from rich.progress import BarColumn, Progress, TextColumn

    return Progress(
        TextColumn(title),
        BarColumn(),
        TextColumn(fields),
        clock,
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )

def _simulate(sc: Scenario, seed: int | None, trace: bool, sample_every: float | None = None) -> Results:
    """Run with a progress bar on stderr when it is a terminal."""
    from rich.progress import TimeElapsedColumn

    from ..simulation import run

    with _progress_bar("simulating", "{task.fields[clock]}", TimeElapsedColumn()) as bar:
        task = bar.add_task("run", total=sc.horizon, clock="")

        def advance(now: float, created: int) -> None:
            bar.update(task, completed=now, clock=f"t={now:,.0f} s, {created:,} messages")

        return run(sc, seed=seed, progress=advance, trace=trace, sample_every=sample_every)


@app.command("validate")
def validate_command(
    scenario: Annotated[
        Path | None,
        typer.Argument(
            metavar="SCENARIO", help="Scenario YAML file (default: the scenario shipped with mailflow)."
        ),
    ] = None,
    sets: SetOption = None,
    force: ForceOption = False,
) -> None:
    """Check a scenario file without running it."""
    sc = _load(scenario, sets, force)
    out.print(
        f"{scenario if scenario is not None else sc.name}: ok ({_count(len(sc.topology.nodes), 'node')}, "
        f"{_count(len(sc.domains), 'domain')}, {_count(len(sc.workload), 'source')})"
    )


@app.command("show")
def show_command(
    scenario: Annotated[
        Path | None,
        typer.Argument(
            metavar="SCENARIO", help="Scenario YAML file (default: the scenario shipped with mailflow)."
        ),
    ] = None,
    sets: SetOption = None,
    force: ForceOption = False,
) -> None:
    """Print the effective scenario as YAML: overrides applied, validated, defaults filled in."""
    sc = _load(scenario, sets, force)
    out.print(dump_scenario(sc), end="")


@app.command("generate")
def generate_command(
    domains: Annotated[int, typer.Option("--domains", metavar="N", help="Mail domains in all.")] = 20,
    seed: Annotated[int, typer.Option("--seed", metavar="INT", help="The world's seed (and the run's).")] = 0,
    regions: Annotated[
        int, typer.Option("--regions", metavar="R", help="Regions (the first R of the table in docs/generate.md).")
    ] = 4,
    rate: Annotated[
        float | None, typer.Option("--rate", metavar="PER_S", help="Messages per second in all (default 10).")
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", metavar="TIME", help="How long the sources send: 3600, 2h, 1d (default 1h).")
    ] = None,
    drain: Annotated[
        str | None, typer.Option("--drain", metavar="TIME", help="Simulated time after the sources stop (default 30m).")
    ] = None,
    users: Annotated[
        int | None, typer.Option("--users", metavar="N", help="People in all (default 1000 a domain).")
    ] = None,
    transactional_share: Annotated[
        float | None,
        typer.Option("--transactional-share", metavar="SHARE", help="Share of legitimate messages sent by ESPs for applications (default 0.2)."),
    ] = None,
    campaign_share: Annotated[
        float | None,
        typer.Option("--campaign-share", metavar="SHARE", help="Share of legitimate messages sent in ESP campaigns (default 0.1)."),
    ] = None,
    spam_share: Annotated[
        float | None,
        typer.Option("--spam-share", metavar="SHARE", help="Share of all messages that are spam (default 0.45)."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", metavar="NAME", help="The scenario's name (default internet-N).")] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", metavar="FILE", help="Where to write the scenario (default: standard output).")
    ] = None,
    expand: Annotated[
        bool, typer.Option("--expand", help="Write every node, domain and source out (for editing) instead of a generate: block."),
    ] = False,
) -> None:
    """Write a generated Internet as a scenario: compact (a generate: block) or expanded."""
    from ..config import ScenarioError
    from ..config.compact import generate_spec  # heavy modules only when generating
    from ..config.generate import compact, to_yaml, world

    given = {
        "domains": domains, "seed": seed, "regions": regions, "rate": rate, "duration": duration,
        "drain": drain, "users": users, "transactional_share": transactional_share,
        "campaign_share": campaign_share, "spam_share": spam_share,
    }
    block = {k: v for k, v in given.items() if v is not None}
    try:
        spec = generate_spec(block)
    except ScenarioError as exc:
        flag = "--" + exc.path.removeprefix("generate.").split(".")[0].replace("_", "-")
        if exc.path == "generate":  # a rule between parameters: name the flags it is about
            named = [f"--{k.replace('_', '-')}" for k in block if re.search(rf"\b{k}\b", exc.problem)]
            flag = ", ".join(named) if named else "generate"
        _fail(f"{flag}: {exc.problem}")
    if name is not None:
        from ..config.base import SAFE_NAME

        if not re.fullmatch(SAFE_NAME, name):
            _fail(f"--name: {name!r}: use letters, digits, '.', '_' and '-' (it names the results folder)")
    data = world(spec) if expand else compact(spec)
    if name is not None:
        data["name"] = name
    text = to_yaml(data, compact=not expand)
    if out_file is None:
        out.print(text, end="")
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"--out {out_file}: cannot write: {exc.strerror or exc}")
    form = "expanded" if expand else "compact, expanded when loaded"
    err.print(f"wrote {out_file} ({spec.domains:,} domain{'s' if spec.domains != 1 else ''}, seed {spec.seed}; {form})")


@app.command("plot")
def plot_command(
    results: Annotated[
        Path,
        typer.Argument(metavar="RESULTS", help="A run folder (run.json, messages.parquet) or a sweep folder (summary.parquet)."),
    ],
    out_dir: Annotated[
        Path,
        typer.Option("--out", metavar="DIR", parser=_out_dir, help="Folder for the plots (PNG and SVG)."),
    ],
    kinds: Annotated[
        list[str] | None,
        typer.Option(
            "--kind", metavar="KIND",
            help="cdf, legs, timeseries, topology (run) or sweep (sweep folder); repeatable. "
            "Default: cdf, legs, topology (+ timeseries if present), or sweep.",
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", metavar="COLUMN", help="cdf: a messages column to group by; sweep: a swept parameter."),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option("--metric", metavar="NAME", help="sweep: the metric (default delivery_p95)."),
    ] = None,
    x: Annotated[
        str | None,
        typer.Option("--x", metavar="KEY", help="sweep: the swept parameter on the x axis (default the first)."),
    ] = None,
) -> None:
    """Plot a run's or a sweep's results into DIR as PNG and SVG."""
    from .plots import PlotError, render  # matplotlib only when plotting

    try:
        done = render(results, out_dir, kinds, by=by, metric=metric, x=x)
    except PlotError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"--out {out_dir}: cannot write plots: {exc.strerror or exc}")
    for note in done.notes:
        err.print(f"mailflow: note: {note}")
    names = sorted({p.stem for p in done.files}, key=[p.stem for p in done.files].index)
    out.print(f"{len(done.files)} files in {out_dir}/ ({', '.join(names)}; .png and .svg)")


def dump_scenario(sc: Scenario) -> str:
    """A validated scenario as YAML that loads back to the same scenario."""
    import yaml

    class NoAliasDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: object) -> bool:
            return True

    data = sc.model_dump(mode="json", context={"resolved": True})  # a preset's keys too
    # Block style, keys in the schema's order; no anchors, so the output reads alone.
    return yaml.dump(data, Dumper=NoAliasDumper, sort_keys=False, allow_unicode=True)


def _read_run(folder: Path) -> Results:
    """A run folder's results, or a one-line error (exit 2)."""
    from ..config import ScenarioError
    from ..simulation import Results

    try:
        return Results.read(folder)
    except FileNotFoundError:
        _fail(f"{folder}: not a run folder (no run.json and messages.parquet)")
    except (ScenarioError, ValueError, OSError) as exc:
        _fail(f"{folder}: cannot read the run: {str(exc) or type(exc).__name__}")


def _wide_console() -> Console:
    """``out``, or when stdout is not a terminal a console wide enough for the tables."""
    if out.is_terminal:
        return out
    return Console(markup=False, highlight=False, soft_wrap=True, width=160)


@app.command("trace")
def trace_command(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run's results folder.")],
    id: Annotated[
        int, typer.Option("--id", metavar="N", help="The message row (its id in messages.parquet).")
    ],
) -> None:
    """Print one message's journey: its row, then every attempt at every server in order."""
    from .trace import print_journey

    results = _read_run(run_dir)
    if id not in results.messages.index:
        n = len(results.messages)
        _fail(f"--id {id}: no such message in {run_dir} (ids 0 to {n - 1})" if n else
              f"--id {id}: {run_dir} has no messages")
    print_journey(results, id, _wide_console())


def _digits(reference: float, tolerance: float) -> int:
    """Significant digits that show a value to within a tenth of ``tolerance`` (4 at least)."""
    ratio = abs(reference) / tolerance if 0 < tolerance < math.inf else math.nan
    if not (0 < ratio < math.inf):  # no tolerance, no reference, or beyond a double
        return 4
    return max(4, min(15, math.ceil(math.log10(ratio)) + 2))


@app.command("verify")
def verify_command(
    quick: Annotated[
        bool, typer.Option("--quick", help="Exact cases and loads up to 0.8, small samples (about two minutes).")
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", parser=_out_dir,
                     help="Also write the table (verification.csv, .json) and the plots (verify-<group>.png, .svg)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Base seed of the cases' runs.")] = 1,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", metavar="GROUP",
                     help="Only these groups (repeat the flag): queueing, retry, concurrency, dns, smtp, reality."),
    ] = None,
) -> None:
    """Check the model against theory, documented schedules and measured reality:
    one row per case with its reference and source, the simulated value with its 95%
    interval, the tolerance and pass/fail; exit code 1 if any case fails."""
    from rich.table import Table

    from ..verification import GROUPS, run_cases, table

    for group in only or ():
        if group not in GROUPS:
            _fail(f"--only {group}: no such group (groups: {', '.join(GROUPS)})")
    if out_dir is not None:  # before the run, which may take minutes: a bad folder fails now
        if out_dir.exists() and not out_dir.is_dir():
            _fail(f"--out {out_dir}: not a folder")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            _fail(f"--out {out_dir}: cannot make the folder ({err.strerror or err})")
        probe = out_dir / ".verify-probe"
        try:  # a folder that exists but takes no files fails now too
            probe.touch()
            probe.unlink()
        except OSError as err:
            _fail(f"--out {out_dir}: cannot write in the folder ({err.strerror or err})")
    console = _wide_console()

    def done(o: Any) -> None:
        mark = "compare" if o.passed is None else "pass" if o.passed else "FAIL"
        console.print(f"  {o.case.group}: {o.case.name} ... {mark} ({o.wall_s:.1f} s)", highlight=False)

    outcomes = run_cases(quick=quick, seed=seed, groups=only, done=done)
    frame = table(outcomes)
    shown = Table(title=f"mailflow verify{' --quick' if quick else ''} (seed {seed})", title_justify="left")
    for col in ("group", "case", "reference", "simulated (95% CI)", "n", "tolerance", "result", "source"):
        shown.add_column(col, justify="right" if col in ("reference", "n", "tolerance") else "left")
    for _, row in frame.iterrows():
        digits = _digits(row["reference"], row["tolerance"])
        ci = f"{row['simulated']:.{digits}g} [{row['ci_low']:.{digits}g}, {row['ci_high']:.{digits}g}]"
        tol = "-" if row["result"] == "compare" else f"±{row['tolerance']:.3g}"
        result = row["result"] if not row["error"] else f"FAIL ({row['error']})"
        shown.add_row(row["group"], row["case"], f"{row['reference']:.{digits}g} {row['unit']}", ci, str(row["n"]),
                      tol, result, row["source"])
    console.print(shown)
    for _, row in (frame[frame["note"] != ""] if len(frame) else frame).iterrows():  # how to read a comparison: what differs, and why
        console.print(f"{row['group']}: {row['case']}: {row['note']}", style="dim", highlight=False)
    failed = int((frame["result"] == "FAIL").sum()) if len(frame) else 0
    scored = int((frame["result"] != "compare").sum()) if len(frame) else 0
    if scored or not len(frame):
        console.print(f"{scored - failed} of {scored} cases pass; {len(frame) - scored} comparisons with reality",
                      highlight=False)
    else:
        console.print(f"{len(frame)} comparisons with reality (not scored)", highlight=False)
    if scored:  # the rule of docs/verification.md, How to read: a pass must not be the seed's luck
        judged = frame[frame["result"] != "compare"]
        narrow = int(((judged["ci_high"] - judged["ci_low"]) / 2 <= judged["tolerance"]).sum())
        console.print(f"judged on the simulated value; {narrow} of {scored} cases' 95% intervals are within ± their "
                      "tolerance (a wider one: the sample is too small to tell)", highlight=False)
    if not len(frame):
        console.print("no case ran: nothing was verified", highlight=False)
        failed = 1
    for group in only or GROUPS:  # a group asked for that ran nothing verified nothing
        if len(frame) and not (frame["group"] == group).any():
            console.print(f"{group}: no case ran", highlight=False)
            failed = 1
    if out_dir is not None:
        for group in GROUPS:  # a figure of an earlier run's group would sit beside this run's table
            for suffix in (".png", ".svg"):
                (out_dir / f"verify-{group}{suffix}").unlink(missing_ok=True)
        frame.to_csv(out_dir / "verification.csv", index=False)
        frame.to_json(out_dir / "verification.json", orient="records", indent=1)
        from ..verification.plots import draw

        if len(frame):
            draw(frame, out_dir)  # verify-<group>.png and .svg: simulated against reference
    if failed:
        raise typer.Exit(1)


@app.command("compare")
def compare_command(
    a: Annotated[Path, typer.Argument(metavar="A", help="A run folder, or a sweep folder (summary.parquet).")],
    b: Annotated[Path, typer.Argument(metavar="B", help="Another run folder, or another sweep folder.")],
) -> None:
    """Set two runs side by side (counts, leg times with B - A and B / A, scenario
    differences), or two sweeps' per-point means."""
    from .trace import print_comparison, print_sweep_comparison

    kinds = [_folder_kind(a), _folder_kind(b)]
    if kinds[0] != kinds[1]:
        _fail(f"{a} is a {kinds[0]} folder and {b} a {kinds[1]} folder; compare runs with runs, sweeps with sweeps")
    if kinds[0] == "sweep":
        frames = [_read_sweep(a), _read_sweep(b)]
        try:
            print_sweep_comparison(frames[0], frames[1], (str(a), str(b)), _wide_console())
        except ValueError as exc:
            _fail(f"{a} or {b}: {exc}")
        return
    print_comparison(_read_run(a), _read_run(b), (str(a), str(b)), _wide_console(), _fmt)


def _folder_kind(folder: Path) -> str:
    if not folder.is_dir():
        _fail(f"{folder}: no such folder")
    if (folder / "run.json").is_file():
        return "run"
    if (folder / "summary.parquet").is_file():
        return "sweep"
    _fail(f"{folder}: not a run folder (run.json, messages.parquet) or a sweep folder (summary.parquet)")


def _read_sweep(folder: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_parquet(folder / "summary.parquet")
    except (OSError, ValueError) as exc:
        _fail(f"{folder}: cannot read summary.parquet: {exc}")


GridOption = Annotated[
    list[str] | None,
    typer.Option(
        "--grid", metavar="KEY=V1,V2", help="Sweep a key over values; all combinations (repeatable)."
    ),
]
ZipOption = Annotated[
    list[str] | None,
    typer.Option("--zip", metavar="KEY=V1,V2", help="Keys whose values vary together (repeatable)."),
]


@app.command("sweep")
def sweep_command(
    scenario: Annotated[
        Path | None,
        typer.Argument(
            metavar="SCENARIO",
            help="Scenario YAML file, or a sweep YAML file (scenario, grid, ...); "
            "default: the scenario shipped with mailflow.",
        ),
    ] = None,
    grids: GridOption = None,
    zips: ZipOption = None,
    sets: SetOption = None,
    replications: Annotated[
        int | None,
        typer.Option("--replications", metavar="R", min=1, help="Runs per point (default 1)."),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", parser=_out_dir, help="Folder of the sweep (default results/<name>-sweep)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", metavar="N", min=0, help="Local worker processes (0: this process; default: CPUs)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", metavar="ADDRESS", help="Use a running Dask scheduler (tcp://host:port)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Run only the runs whose folder is missing in --out.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the sweep already in --out (its runs and summary).")
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option("--seed", metavar="INT", min=0, help="Base seed (default: the scenario's)."),
    ] = None,
) -> None:
    """Run a scenario over a grid of parameters with replications (on Dask)."""
    from rich.table import Table

    from ..config import default_scenario_path

    from ..experiment import (
        MAIN_METRICS, SweepError, SweepFile, load_sweep_file, parse_axis, point_table, sweep,
    )

    try:
        if scenario is None:
            spec = SweepFile(scenario=default_scenario_path())
        elif _is_sweep_file(scenario):
            spec = load_sweep_file(scenario)
        else:
            spec = SweepFile(scenario=scenario)
        grid, zipped = dict(spec.grid), dict(spec.zip)
        for flag, texts, axis in (("--grid", grids, grid), ("--zip", zips, zipped)):
            for text in texts or []:
                key, values = parse_axis(text, flag)
                if key in axis:
                    raise SweepError(f"{flag} {key}: given twice")
                axis[key] = values
        # Flags win over the sweep file; --set adds to its set.
        sc = _load(spec.scenario, [*spec.sets, *(sets or [])])
        folder = out_dir if out_dir is not None else Path("results") / f"{sc.name}-sweep"
        with _sweep_progress() as progress:
            summary = sweep(
                sc, grid=grid, zip=zipped,
                replications=replications if replications is not None else spec.replications or 1,
                out=folder, workers=workers, scheduler=scheduler, resume=resume,
                seed=seed if seed is not None else spec.seed, progress=progress, overwrite=overwrite,
            )
    except SweepError as exc:
        _fail(str(exc))
    except KeyboardInterrupt as exc:
        # Finished runs are whole folders already: --resume picks up from them.
        name = signal.Signals(getattr(exc, "signum", signal.SIGINT)).name
        raise _Reported(
            f"mailflow: sweep interrupted by {name}; finished runs are kept, continue with --resume",
            128 + getattr(exc, "signum", signal.SIGINT),
        ) from None
    params = [*grid, *zipped]
    # Long form (one line per point and metric): fits 80 columns however many keys vary.
    shown = Table(title=f"{sc.name}: mean and 95% t interval over replications", title_justify="left")
    for name, justify in (("point", "left"), ("runs", "right"), ("metric", "left"), ("mean", "right"), ("95% CI", "right")):
        shown.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in point_table(summary, params).to_dict("records"):
        point = ", ".join(f"{p}={row[p]}" for p in params) or sc.name
        for i, metric in enumerate(MAIN_METRICS):
            mean, low, high = row[metric], row[f"{metric}_low"], row[f"{metric}_high"]
            interval = "-" if low != low else f"[{_fmt(low)}, {_fmt(high)}]"
            # ~: a replication's value could still move (rows in flight at the end);
            # (k of n): the statistic was out of reach in the other replications.
            shown_mean = ("~" if row[f"{metric}_censored"] else "") + _fmt(mean)
            if row[f"{metric}_valid"] < row["n"]:
                shown_mean += f" ({row[f'{metric}_valid']} of {row['n']})"
            shown.add_row(point if i == 0 else "", str(row["n"]) if i == 0 else "", metric, shown_mean, interval)
        shown.add_section()
    out.print(shown)
    out.print("~: a replication's value could still move (rows in flight at the end); "
              "(k of n): out of reach in the other replications")
    failed = int((summary["status"] != "ok").sum())
    out.print(f"{len(summary)} runs, {failed} failed; results in {folder}/ (summary.parquet, runs/, sweep.json)")
    if failed:
        err.print(f"mailflow: {failed} of {len(summary)} runs failed; see the error column of {folder}/summary.parquet")
        raise typer.Exit(1)


def _is_sweep_file(path: Path) -> bool:
    """A sweep file is a YAML mapping with sweep keys and no scenario keys."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # load_scenario will say what is wrong with it
    return isinstance(data, dict) and "topology" not in data and bool({"grid", "zip", "scenario"} & set(data))


@contextlib.contextmanager
def _sweep_progress() -> Iterator[Callable[[int, int, int], None]]:
    """A progress bar of runs (done, failed, ETA) on stderr when it is a terminal."""
    from rich.progress import TimeRemainingColumn

    with _progress_bar(
        "sweep", "{task.completed}/{task.total} runs, {task.fields[failed]} failed", TimeRemainingColumn()
    ) as bar:
        task = bar.add_task("sweep", total=None, failed=0)

        def advance(done: int, failed: int, total: int) -> None:
            bar.update(task, completed=done, total=total, failed=failed)

        yield advance


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage errors become one line and exit code 2; SIGINT / SIGTERM one
    line and exit code 130 / 143."""
    command = typer.main.get_command(app)
    _received.clear()
    try:
        with _signals_as_exceptions():
            code = command.main(args=argv, prog_name="mailflow", standalone_mode=False)
    except _Reported as exc:
        err.print(exc.line, markup=False)
        sys.exit(exc.code)
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `mailflow`: show the help
            out.print(exc.format_message(), markup=False, highlight=False)
            sys.exit(0)
        message = exc.format_message().replace("\n", " ")
        if not message:  # older click printed the help itself
            sys.exit(0)
        where = exc.ctx.command_path if exc.ctx is not None else "mailflow"
        err.print(f"{where}: {message}", markup=False)
        sys.exit(2)
    except typer.Abort:
        err.print("mailflow: aborted", markup=False)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:  # between commands, outside typer's own handling
        _received.append(getattr(exc, "signum", signal.SIGINT))
        code = 130
    if code == 130 and _received:
        # Typer turns an interrupt outside a command's own handling into a silent 130.
        name = signal.Signals(_received[-1]).name
        err.print(f"mailflow: interrupted by {name}", markup=False)
        sys.exit(128 + _received[-1])
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
