"""Parameter importance and the parameter plots on known results (log scale, choices, conditions, failures)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hpcnas.analytics import output
from hpcnas.analytics.cli import main
from hpcnas.analytics.experiment import experiment_from_results
from hpcnas.analytics.params import MIN_ROWS, Param, parameter_importance, parameter_table

T0 = 1_700_000_000.0
SPACE = {"hyperparameters": [
    {"name": "lr", "type": "uniform_float", "lower": 1e-5, "upper": 1e-1, "log": True},
    {"name": "units", "type": "uniform_int", "lower": 1, "upper": 64, "log": False},
    {"name": "noise", "type": "uniform_float", "lower": 0.0, "upper": 1.0, "log": False},
    {"name": "optimizer", "type": "categorical", "choices": ["sgd", "adam", "rms"]},
    {"name": "momentum", "type": "uniform_float", "lower": 0.0, "upper": 0.9, "log": False},
    {"name": "fixed", "type": "constant", "value": 3},
]}


def write_results(path, n: int = 120, seed: int = 0, space: bool = True) -> pd.DataFrame:
    """The objective follows log10(lr) and the optimizer; noise does not matter; momentum is
    active only with sgd; every 10th evaluation failed (half with DeepHyper's ``F`` mark)."""
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-5, -1, n)
    opt = rng.choice(["sgd", "adam", "rms"], n)
    objective = -(np.log10(lr) + 3) ** 2 + np.where(opt == "adam", 2.0, 0.0) + rng.normal(0, 0.05, n)
    status = np.where(np.arange(n) % 10 == 9, "FAILED", "DONE")
    obj = pd.Series(objective, dtype=object)
    obj[status == "FAILED"] = ""
    obj[np.arange(n) % 20 == 19] = "F_crashed"
    end = T0 + np.arange(n) + 1.0
    df = pd.DataFrame({
        "p:lr": lr, "p:units": rng.integers(1, 65, n), "p:noise": rng.uniform(0, 1, n), "p:optimizer": opt,
        "p:momentum": np.where(opt == "sgd", rng.uniform(0, 0.9, n), np.nan), "p:fixed": 3,
        "p:arch": [json.dumps([int(i), int(i) % 3]) for i in range(n)],
        "job_id": [f"j{i}" for i in range(n)], "objective": obj, "status": status, "error": "",
        "submit_time": end - 1.0, "start_time": end - 0.9, "end_time": end, "duration": 0.9, "worker": "w",
    })
    df.to_csv(path / "results.csv", index=False)
    info = {"search": "random", "num_workers": 1}
    if space:
        info["problem"] = {"kind": "hp", "space": SPACE}
    (path / "search.json").write_text(json.dumps(info))
    return df


@pytest.fixture
def exp(tmp_path):
    write_results(tmp_path)
    return experiment_from_results(str(tmp_path))


def test_failure_marks_and_empty_objectives_are_failed(exp):
    assert (exp.results["status"] == "FAILED").sum() == 12
    assert exp.results["objective"].isna().sum() == 12


def test_parameter_table_kinds_scales_and_notes(exp, tmp_path):
    params, notes = parameter_table(exp.results, exp.info)
    by = {p.name: p for p in params}
    assert list(by) == ["lr", "units", "noise", "optimizer", "momentum"]
    assert by["lr"].log and not by["units"].log and not by["noise"].log
    assert by["optimizer"].kind == "categorical" and by["optimizer"].levels == ["sgd", "adam", "rms"]
    momentum = by["momentum"].values
    assert np.isnan(momentum[exp.results["p:optimizer"] != "sgd"]).all()
    assert np.isfinite(momentum[exp.results["p:optimizer"] == "sgd"]).all()
    assert notes == ["left out, one value only: fixed",
                     "left out, more than 30 distinct values (architecture sequences?): arch"]
    scaled = by["lr"].scaled()
    assert np.nanmin(scaled) == 0.0 and np.nanmax(scaled) == 1.0
    assert 0.3 < np.nanmedian(scaled) < 0.7  # log-uniform values spread evenly on a log axis

    # without the space in search.json: log scale and kinds come from the values
    other = tmp_path / "nospace"
    other.mkdir()
    write_results(other, space=False)
    bare = experiment_from_results(str(other))
    by2 = {p.name: p for p in parameter_table(bare.results, bare.info)[0]}
    assert by2["lr"].log and not by2["noise"].log and not by2["units"].log
    assert by2["optimizer"].levels == ["adam", "rms", "sgd"]


def test_importance_ranks_what_the_objective_follows(exp):
    params, _ = parameter_table(exp.results, exp.info)
    imp = parameter_importance(params, exp.results["objective"].to_numpy(dtype=float))
    table = imp.table.set_index("parameter")
    assert imp.rows == 108 and imp.r2 > 0.8
    assert list(imp.table["parameter"][:2]) == ["lr", "optimizer"]
    assert table.loc["lr", "importance"] > 0.5
    assert table.loc["optimizer", "importance"] > 0.1
    assert abs(table.loc["noise", "importance"]) < 0.05 and abs(table.loc["units", "importance"]) < 0.05


def test_too_few_rows_and_flat_objectives_give_a_note():
    p = Param("x", "numeric", np.arange(12, dtype=float))
    few = np.r_[np.arange(MIN_ROWS - 1, dtype=float), [np.nan] * 3]
    assert parameter_importance([p], few) == (f"parameter importance needs at least {MIN_ROWS} successful "
                                              f"evaluations; this experiment has {MIN_ROWS - 1}")
    assert "objectives that differ" in parameter_importance([p], np.ones(12))
    assert "none does" in parameter_importance([], np.arange(12.0))


def test_params_command_with_too_few_rows_prints_the_note(tmp_path, capsys):
    df = write_results(tmp_path, n=8)
    assert df["status"].eq("DONE").sum() == 8
    assert main(["params", str(tmp_path), "-o", str(tmp_path / "o")]) == 0
    out = capsys.readouterr()
    assert "parameter importance needs at least 10 successful evaluations; this experiment has 8" in out.out
    assert out.err == ""
    summary = json.loads((tmp_path / "o" / "importance.json").read_text())
    assert summary["importance"] is None and summary["figures"] == ["parallel.png", "params.png"]
    assert not (tmp_path / "o" / "importance.png").exists()


def test_report_with_importance(tmp_path):
    write_results(tmp_path)
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "rep")]) == 0
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 6
    assert 'alt="parameter importance"' in page and 'alt="parallel coordinates"' in page
    assert "left out, one value only: fixed" in page
    assert page.index("search curve") < page.index("parameter importance") < page.index("node utilization")


@pytest.fixture
def figures(monkeypatch):
    """The figures the plots save, kept open for inspection."""
    saved = {}
    real = output.save_figure

    def keep(fig, path):
        saved[path.rsplit("/", 1)[-1]] = fig
        return real(fig, path)

    monkeypatch.setattr(output, "save_figure", keep)
    monkeypatch.setattr("matplotlib.pyplot.close", lambda fig=None: None)
    return saved


def test_plots_draw_every_evaluation_failed_ones_apart(exp, tmp_path, figures):
    from matplotlib.collections import LineCollection

    assert main(["params", str(exp.source.split("'")[1].rsplit("/", 1)[0]), "-o", str(tmp_path / "p")]) == 0
    for name in ("importance.png", "parallel.png", "params.png"):
        assert (tmp_path / "p" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    bars = figures["importance.png"].axes[0]
    assert [t.get_text() for t in bars.get_yticklabels()][-2:] == ["optimizer", "lr"]  # best at the top

    par = figures["parallel.png"].axes[0]
    lines = [c for c in par.collections if isinstance(c, LineCollection)][0]
    assert len(lines.get_segments()) == 120
    colors = lines.get_colors()
    red = np.array([0.839, 0.153, 0.157])  # tab:red
    assert sum(np.allclose(c[:3], red, atol=0.01) for c in colors) == 12
    labels = [t.get_text() for t in par.get_xticklabels()]
    assert labels[:2] == ["lr", "optimizer"] and labels[-1] == "objective"
    texts = [t.get_text() for t in par.texts]
    assert "failed (12)" in texts and "n/a" in texts and "log" in texts

    grid = figures["params.png"].axes
    by_title = {ax.get_title(): ax for ax in grid if ax.get_title()}
    assert by_title["lr"].get_xscale() == "log"
    assert [t.get_text() for t in by_title["optimizer"].get_xticklabels()] == ["sgd", "adam", "rms"]
    momentum = [t for t in by_title if t.startswith("momentum")][0]
    assert momentum.startswith("momentum (") and momentum.endswith(" inactive)")
    failed = [ln for ln in by_title["lr"].lines if ln.get_marker() == "x"][0]
    assert len(failed.get_xdata()) == 12
