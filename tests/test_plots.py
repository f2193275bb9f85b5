"""Plots: each kind from real results or a synthetic frame, the files, the plot command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import sim  # noqa: E402
from sim.faces import plots  # noqa: E402
from sim.faces.cli import main  # noqa: E402
from sim.simulation.stats import t_interval  # noqa: E402
from tests.conftest import node, tiny, tiny_data  # noqa: E402

SWEPT = "topology.nodes[mx].max_connections"


@pytest.fixture(autouse=True)
def _close_figures() -> None:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plots") / "run"
    sim.run(tiny(), seed=3).write(folder)
    return folder


def _cdf_line(ax: plt.Axes, group: str) -> tuple[np.ndarray, np.ndarray]:
    (line,) = [ln for ln in ax.lines if ln.get_gid() == f"cdf:{group}"]
    return np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)


def _censored_frame() -> pd.DataFrame:
    """10 messages: 6 delivered (1..6 s), 2 bounced (at 2 s), 2 still in flight at 100 s."""
    nan = np.nan
    delivered = [1, 2, 3, 4, 5, 6, nan, nan, nan, nan]
    return pd.DataFrame({
        "kind": ["person"] * 5 + ["marketing"] * 5,
        "created": [0.0] * 10,
        "submitted": [0.5] * 10,
        "accepted": [d - 0.1 if d == d else nan for d in delivered],
        "delivered": delivered,
        "retrieved": [nan] * 10,
        "ended": delivered[:6] + [2.0, 2.0, nan, nan],
        "status": pd.Categorical(["delivered"] * 6 + ["bounced"] * 2 + ["in_flight"] * 2),
    })


def test_cdf_ends_at_the_delivered_fraction_of_a_real_run(run_folder: Path) -> None:
    from sim.simulation import Results

    results = Results.read(run_folder)
    ax = plots.cdf(results)
    x, y = _cdf_line(ax, "all")
    m = results.messages
    assert y[-1] == pytest.approx((m["status"] == "delivered").sum() / len(m))
    assert x[-1] == pytest.approx((m["delivered"] - m["created"]).max())
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "delivery time (s)"
    assert ax.get_ylabel() == "fraction of messages delivered"
    assert "3 of 3 delivered" in ax.get_legend().get_texts()[0].get_text()


def test_cdf_competing_and_censored_rows_keep_the_curve_below_one() -> None:
    frame = _censored_frame()
    ax = plots.cdf(frame, horizon=100.0)
    _, y = _cdf_line(ax, "all")
    assert y[-1] == pytest.approx(0.6)  # bounces compete, in-flight rows are censored
    (ext,) = [ln for ln in ax.lines if ln.get_gid() == "open:all"]
    assert list(ext.get_ydata()) == pytest.approx([0.6, 0.8])  # could still reach 0.8
    assert "2 in flight" in ax.get_legend().get_texts()[0].get_text()


def test_cdf_by_group_one_line_per_level() -> None:
    ax = plots.cdf(_censored_frame(), by="kind", horizon=100.0)
    assert _cdf_line(ax, "person")[1][-1] == pytest.approx(1.0)
    assert _cdf_line(ax, "marketing")[1][-1] == pytest.approx(0.2)  # 1 of 5 delivered
    with pytest.raises(plots.PlotError, match="--by nope"):
        plots.cdf(_censored_frame(), by="nope")


def test_plot_cdf_still_works(run_folder: Path) -> None:
    from sim.simulation import Results

    ax = plots.plot_cdf(Results.read(run_folder), by="kind")
    assert ax.get_xlabel() == "delivery time (s)" and ax.lines


def test_legs_bars_labelled_in_seconds(run_folder: Path) -> None:
    from sim.simulation import Results

    results = Results.read(run_folder)
    ax = plots.legs(results)
    assert ax.get_ylabel() == "time (s)" and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == list(plots.JOURNEY)
    times = results.summary().times
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    expected = sorted(round(float(times.loc[leg, s]), 6) for leg in plots.JOURNEY for s in ("p50", "p95"))
    assert heights == pytest.approx(expected)
    labels = {t.get_text() for t in ax.texts}
    assert plots._seconds(float(times.loc["relay", "p95"])) in labels


def test_legs_marks_censored_and_unreached() -> None:
    ax = plots.legs(_censored_frame(), horizon=100.0)
    labels = [t.get_text() for t in ax.texts]
    # Nothing was read: retrieval's percentiles are censored ("> t").
    assert any(text.startswith("> ") for text in labels)
    assert any(p.get_hatch() == "//" for p in ax.patches)


def _series() -> pd.DataFrame:
    rows = []
    for t in np.linspace(0, 300, 31):
        for component in ("mta", "mx"):
            rows.append({"time": t, "component": component, "metric": "queue", "mean": t / 100, "max": t / 50,
                         "value": np.nan})
            rows.append({"time": t, "component": component, "metric": "accepted", "mean": np.nan, "max": np.nan,
                         "value": t})
    return pd.DataFrame(rows)


def test_timeseries_panel_per_metric_line_per_component_outages_shaded() -> None:
    data = tiny_data()
    node(data, "mx")["outages"] = [{"start": 50, "end": 120}, {"start": 200, "end": 210}]
    fig = plots.timeseries(_series(), sim.parse_scenario(data))
    axes = fig.axes
    assert [ax.get_title(loc="left") for ax in axes] == ["queue", "accepted"]
    for ax in axes:
        assert len(ax.lines) == 2  # mta, mx
        assert len(ax.patches) == 2  # the two outage windows
        assert ax.patches[0].get_x() == pytest.approx(50)
    assert axes[0].get_ylabel() == "queue\n(time-average)" and axes[1].get_ylabel() == "accepted\n(value)"
    assert axes[-1].get_xlabel() == "simulated time (s)"
    assert plots.outage_windows(sim.parse_scenario(data)) == {"mx": [(50.0, 120.0), (200.0, 210.0)]}
    with pytest.raises(plots.PlotError, match="no column 'metric'"):
        plots.timeseries(_series().drop(columns="metric"))


def test_scripted_faults_are_shaded_random_ones_are_not() -> None:
    data = tiny_data(faults=[
        {"kind": "node", "nodes": ["mx", "store"], "start": 30, "end": 40},
        {"kind": "link", "a": "r", "b": "mx", "start": 60, "end": 70, "latency": 0.5},
        {"kind": "partition", "nodes": ["home"], "start": 80, "end": 90},
        {"kind": "node", "node": "mta", "random": {"between": 100, "repair": 5}},
    ])
    node(data, "mx")["outages"] = [{"start": 50, "end": 55}]
    sc = sim.parse_scenario(data)
    assert plots.outage_windows(sc) == {
        "mx": [(50.0, 55.0), (30.0, 40.0)], "store": [(30.0, 40.0)], "r~mx": [(60.0, 70.0)], "home": [(80.0, 90.0)],
    }
    fig = plots.timeseries(_series(), sc)
    assert len(fig.axes[0].patches) == 5


def _summary(reps: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for conns in (1, 2, 5, 10):
        for drain in (0, 600):
            for rep in range(reps):
                p95 = 100 / conns + drain / 60 + rng.normal(0, 1)
                rows.append({SWEPT: conns, "drain": drain, "replication": rep, "seed": 100 + rep,
                             "delivery_p50": p95 / 3, "delivery_p95": p95,
                             "delivery_p95_censored": drain == 0 and conns == 1, "bounce_rate": 0.01})
    return pd.DataFrame(rows)


def test_sweep_one_band_per_level_from_t_intervals() -> None:
    frame = _summary()
    ax = plots.sweep(frame, by="drain")
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2
    assert ax.get_xlabel() == SWEPT and ax.get_ylabel() == "delivery_p95 (s)"
    cell = frame[(frame["drain"] == 600) & (frame[SWEPT] == 5)]["delivery_p95"]
    mean, low, high = t_interval(cell)
    line = [ln for ln in ax.lines if ln.get_label().startswith("drain = 600")][0]
    assert line.get_ydata()[2] == pytest.approx(mean)
    vertices = bands[1].get_paths()[0].vertices
    at5 = vertices[np.isclose(vertices[:, 0], 5)][:, 1]
    assert min(at5) == pytest.approx(low) and max(at5) == pytest.approx(high)
    # drain=0 at 1 connection is censored: a hollow marker, explained in the legend.
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("hollow: a lower bound") for t in labels)
    assert not any(
        t.get_text().startswith("hollow")
        for t in plots.sweep(frame.assign(delivery_p95_censored=False), by="drain").get_legend().get_texts()
    )


def test_sweep_defaults_and_bad_columns() -> None:
    frame = _summary().drop(columns="delivery_p95")
    ax = plots.sweep(frame)  # no delivery_p95: the first metric, the first swept column
    assert ax.get_ylabel() == "delivery_p50 (s)" and ax.get_xlabel() == SWEPT
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 1
    assert plots.sweep(frame, metric="bounce_rate").get_ylabel() == "bounce_rate (share of messages)"
    for kwargs, message in (({"metric": "nope"}, "--metric nope"), ({"x": "seed"}, "--x seed"),
                            ({"by": SWEPT}, f"--by {SWEPT}")):
        with pytest.raises(plots.PlotError, match=message.replace("[", r"\[").replace("]", r"\]")):
            plots.sweep(frame, **kwargs)  # type: ignore[arg-type]


def test_topology_kinds_legend_and_latencies() -> None:
    ax = plots.topology(tiny())
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert legend == {"client (1)", "router (1)", "mta (1)", "resolver (1)", "mx (1)", "mailbox (1)"}
    edge_labels = {t.get_text() for t in ax.texts if t.get_text().endswith(" ms")}
    assert edge_labels == {"20 ms", "1 ms", "15 ms", "0.5 ms"}
    assert "latency (ms)" in ax.get_title()


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _is_svg(path: Path) -> bool:
    return b"<svg" in path.read_bytes()[:1000]


def test_plot_command_on_a_run_folder(run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "plots"
    with pytest.raises(SystemExit) as exc:
        main(["plot", str(run_folder), "--by", "kind", "--out", str(out)])
    assert exc.value.code == 0
    captured = capsys.readouterr()
    assert "no timeseries.parquet" in captured.err and len(captured.err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "cdf.png", "cdf.svg", "legs.png", "legs.svg", "topology.png", "topology.svg",
    ]
    assert all(_is_png(p) for p in out.glob("*.png")) and all(_is_svg(p) for p in out.glob("*.svg"))


def test_plot_command_timeseries_when_present(run_folder: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(run_folder, folder)
    _series().to_parquet(folder / "timeseries.parquet")
    out = tmp_path / "plots"
    with pytest.raises(SystemExit) as exc:
        main(["plot", str(folder), "--out", str(out)])
    assert exc.value.code == 0
    assert {p.stem for p in out.iterdir()} == {"cdf", "legs", "timeseries", "topology"}
    assert _is_png(out / "timeseries.png")


def test_plot_command_on_a_sweep_folder(tmp_path: Path) -> None:
    folder = tmp_path / "sweep"
    folder.mkdir()
    _summary().to_parquet(folder / "summary.parquet", index=False)
    out = tmp_path / "plots"
    with pytest.raises(SystemExit) as exc:
        main(["plot", str(folder), "--by", "drain", "--out", str(out)])
    assert exc.value.code == 0
    assert sorted(p.name for p in out.iterdir()) == ["sweep.png", "sweep.svg"]
    assert _is_png(out / "sweep.png") and _is_svg(out / "sweep.svg")


def test_plot_command_bad_input_is_one_line(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "plots")
    assert "not a mailflow results folder" in _one_line_error(capsys, ["plot", str(tmp_path), "--out", out])
    assert "does not exist" in _one_line_error(capsys, ["plot", str(tmp_path / "nope"), "--out", out])
    line = _one_line_error(capsys, ["plot", str(run_folder), "--kind", "pie", "--out", out])
    assert "--kind pie: unknown kind" in line
    line = _one_line_error(capsys, ["plot", str(run_folder), "--by", "colour", "--out", out])
    assert "--by colour: no such column" in line
    line = _one_line_error(capsys, ["plot", str(run_folder), "--kind", "timeseries", "--out", out])
    assert "has no timeseries.parquet" in line
    line = _one_line_error(capsys, ["plot", str(run_folder), "--kind", "sweep", "--out", out])
    assert "is a run folder" in line
    sweep_folder = tmp_path / "sweep"
    sweep_folder.mkdir()
    _summary().to_parquet(sweep_folder / "summary.parquet", index=False)
    line = _one_line_error(capsys, ["plot", str(sweep_folder), "--by", "colour", "--out", out])
    assert "--by colour: not another swept parameter" in line
    line = _one_line_error(capsys, ["plot", str(sweep_folder), "--kind", "cdf", "--out", out])
    assert "is a sweep folder" in line
    assert not (tmp_path / "plots").exists()


def test_render_draws_on_figures_without_pyplot(run_folder: Path, tmp_path: Path) -> None:
    done = plots.render(run_folder, tmp_path / "p", ["cdf"])
    assert [p.name for p in done.files] == ["cdf.png", "cdf.svg"]
    assert isinstance(plots.cdf(sim.simulation.Results.read(run_folder), ax=Figure().add_subplot()), plt.Axes)


def test_cli_does_not_import_matplotlib() -> None:
    code = "import sys, sim.faces.cli; print('matplotlib' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
