"""Commands on a known results.csv: search curve, top-k, throughput, utilization, bad input."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hpcnas.analytics.cli import main
from hpcnas.analytics.experiment import experiment_from_results
from hpcnas.analytics.search import search_curve
from hpcnas.evaluator.base import DONE, FAILED, TIMEOUT, EvalResult

T0 = 1_700_000_000.0

# (x, objective, status, submit, start, end) -- file order differs from completion order
ROWS = [
    (1, 0.5, DONE, 0, 0, 30),
    (2, 0.2, DONE, 0, 0, 10),
    (3, None, FAILED, 0, 10, 20),
    (4, 0.3, DONE, 20, 25, 40),
    (5, 0.9, DONE, 30, 35, 50),
    (6, None, TIMEOUT, 40, 40, 60),
]


@pytest.fixture
def outdir(tmp_path):
    results = [
        EvalResult(job_id=f"j{x}", config={"x": x, "opt": "adam" if x % 2 else "sgd"},
                   objective=obj, status=st, submit_time=T0 + sub, start_time=T0 + sta,
                   end_time=T0 + end, worker=f"w{x % 2}", error="boom" if obj is None else None)
        for x, obj, st, sub, sta, end in ROWS
    ]
    pd.DataFrame([r.to_row() for r in results]).to_csv(tmp_path / "results.csv", index=False)
    with open(tmp_path / "search.json", "w") as fh:
        json.dump({"search": "random", "evaluator": "local", "num_workers": 2}, fh)
    return tmp_path


def test_search_curve_from_known_results(outdir):
    exp = experiment_from_results(str(outdir))
    curve = search_curve(exp.results)
    assert curve["job_id"].tolist() == ["j2", "j3", "j1", "j4", "j5", "j6"]
    assert curve["elapsed_s"].tolist() == [10, 20, 30, 40, 50, 60]
    best = curve["best"].tolist()
    assert best[:5] == [0.2, 0.2, 0.5, 0.5, 0.9] and best[5] == 0.9
    assert np.isnan(curve["objective"].iloc[1])


def test_search_command_writes_files_and_summary(outdir, tmp_path, capsys):
    out = tmp_path / "an"
    assert main(["search", str(outdir), "-o", str(out)]) == 0
    summary = json.loads((out / "search_summary.json").read_text())
    assert summary["best_objective"] == 0.9
    assert summary["best_config"] == {"x": 5, "opt": "adam"}
    assert summary["best_at_evaluation"] == 5
    assert summary["best_at_elapsed_s"] == 50
    assert summary["num_failed"] == 2
    assert (out / "search.png").stat().st_size > 5000
    assert "best objective 0.9" in capsys.readouterr().out


def test_minimize_picks_lowest(outdir, tmp_path):
    out = tmp_path / "an"
    assert main(["search", str(outdir), "-o", str(out), "--minimize"]) == 0
    assert json.loads((out / "search_summary.json").read_text())["best_objective"] == 0.2


def test_topk_table(outdir, tmp_path, capsys):
    out = tmp_path / "an"
    assert main(["topk", str(outdir / "results.csv"), "-k", "3", "-o", str(out)]) == 0
    table = pd.read_csv(out / "topk.csv")
    assert table["rank"].tolist() == [1, 2, 3]
    assert table["objective"].tolist() == [0.9, 0.5, 0.3]
    assert table["x"].tolist() == [5, 1, 4]
    assert table["duration"].tolist() == [15, 30, 15]
    rows = json.loads((out / "topk.json").read_text())["rows"]
    assert rows[0]["opt"] == "adam" and rows[0]["job_id"] == "j5"
    printed = capsys.readouterr().out
    assert "j5" in printed and "adam" in printed


def test_throughput_counts(outdir, tmp_path):
    out = tmp_path / "an"
    assert main(["throughput", str(outdir), "-o", str(out)]) == 0
    s = json.loads((out / "throughput.json").read_text())
    assert s["totals"] == {"done": 4, "error": 1, "timeout": 1}
    assert s["wall_seconds"] == 60
    assert s["done_per_minute"] == pytest.approx(4.0)
    curve = pd.read_csv(out / "throughput.csv")
    assert curve.loc[curve["kind"] == "done", "elapsed_s"].tolist() == [10, 30, 40, 50]


def test_utilization_of_workers_from_search_json(outdir, tmp_path):
    out = tmp_path / "an"
    assert main(["utilization", str(outdir), "-o", str(out)]) == 0
    s = json.loads((out / "utilization.json").read_text())
    # 2 workers over [0, 60]: busy = 30+10+10+15+15+20 = 100 worker-seconds of 120
    assert s["nodes"] == 2 and s["nodes_source"] == "num_workers in search.json"
    assert s["utilization_percent"] == pytest.approx(100 * 100 / 120)
    # j4 waited [20,25), j5 [30,35); idle then is launch latency
    assert s["idle_node_seconds"]["launch latency"] == pytest.approx(5.0 + 5.0)
    assert s["idle_node_seconds"]["no runnable job"] == pytest.approx(20.0 - 10.0)
    assert (out / "utilization.png").stat().st_size > 5000
    assert len(pd.read_csv(out / "utilization.csv")) > 3


def test_nodes_option_overrides(outdir, tmp_path):
    out = tmp_path / "an"
    assert main(["utilization", str(outdir), "--nodes", "4", "-o", str(out)]) == 0
    s = json.loads((out / "utilization.json").read_text())
    assert s["nodes"] == 4 and s["utilization_percent"] == pytest.approx(100 * 100 / 240)


def test_compare_two_experiments(outdir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    df = pd.read_csv(outdir / "results.csv")
    df["objective"] = df["objective"] * 2
    df.to_csv(other / "results.csv", index=False)
    out = tmp_path / "cmp"
    assert main(["compare", f"A={outdir}", f"B={other}", "-o", str(out)]) == 0
    rows = json.loads((out / "compare.json").read_text())["experiments"]
    assert [r["label"] for r in rows] == ["A", "B"]
    assert [r["best_objective"] for r in rows] == [0.9, 1.8]
    assert rows[1]["nodes"] == 2  # inferred peak of concurrent evaluations (no search.json)
    assert (out / "compare_search.png").exists() and (out / "compare_utilization.png").exists()


def test_compare_rejects_repeated_labels(outdir, tmp_path, capsys):
    assert main(["compare", f"A={outdir}", f"A={outdir}", "-o", str(tmp_path / "c")]) == 2
    assert "labels repeat" in capsys.readouterr().err


def test_report_embeds_every_figure(outdir, tmp_path):
    out = tmp_path / "rep"
    assert main(["report", str(outdir), "-o", str(out)]) == 0
    page = (out / "report.html").read_text()
    # search, parallel coordinates, objective vs parameter, utilization, throughput; 4 successful
    # evaluations are too few for an importance: a note instead of its figure
    assert page.count('src="data:image/png;base64,') == 5
    assert "parameter importance needs at least 10 successful evaluations; this experiment has 4" in page
    assert page.index("<h2>Search</h2>") < page.index("<h2>Parameters</h2>") < page.index(
        "<h2>Node utilization</h2>") < page.index("<h2>Throughput</h2>")
    assert "http://" not in page and "https://" not in page
    assert "Top 4 configurations" in page
    assert "<th>num_workers</th><td>2</td>" in page and "<th>search</th><td>random</td>" in page


# ------------------------------------------------------------------ bad input


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_results_of_another_format(tmp_path, capsys):
    path = tmp_path / "results.csv"
    path.write_text("x,y,score,when\n1,2,0.5,3.0\n")
    assert main(["search", str(path), "-o", str(tmp_path / "o")]) == 2
    err = _err(capsys)
    assert "not an hpcnas results.csv" in err and "job_id" in err


def test_old_deephyper_results_are_read(tmp_path, capsys):
    """Issue 14: a DeepHyper 0.2 results.csv (bare names, elapsed_sec) is read, not refused."""
    path = tmp_path / "results.csv"
    path.write_text("x,y,objective,elapsed_sec\n1,2,0.5,3.0\n")
    assert main(["search", str(path), "-o", str(tmp_path / "o")]) == 0
    assert "best objective 0.5" in capsys.readouterr().out


def test_results_not_a_csv(tmp_path, capsys):
    path = tmp_path / "results.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    assert main(["topk", str(path), "-o", str(tmp_path / "o")]) == 2
    assert "hpcnas" in _err(capsys)


def test_non_numeric_time(outdir, tmp_path, capsys):
    df = pd.read_csv(outdir / "results.csv")
    df["end_time"] = df["end_time"].astype(object)
    df.loc[2, "end_time"] = "yesterday"
    df.to_csv(outdir / "results.csv", index=False)
    assert main(["search", str(outdir), "-o", str(tmp_path / "o")]) == 2
    err = _err(capsys)
    assert "line 4" in err and "end_time" in err


def test_missing_experiment(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BALSAM_DB_PATH", raising=False)
    assert main(["search", str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 2
    assert "does not exist" in _err(capsys)
    assert main(["utilization", "-o", str(tmp_path / "o")]) == 2
    assert "no experiment given" in _err(capsys)


def test_empty_results(tmp_path, capsys):
    (tmp_path / "results.csv").write_text(
        "p:x,job_id,objective,status,error,submit_time,start_time,end_time,duration,worker\n")
    assert main(["utilization", str(tmp_path), "-o", str(tmp_path / "o")]) == 2
    assert "no job that ran" in _err(capsys)
    assert main(["search", str(tmp_path), "-o", str(tmp_path / "o")]) == 2
    assert "no evaluation yet" in _err(capsys)


def test_bad_k(outdir, tmp_path, capsys):
    assert main(["topk", str(outdir), "-k", "0", "-o", str(tmp_path / "o")]) == 2
    assert "-k must be at least 1" in _err(capsys)


def test_bad_nodes_and_zero_length_runs(outdir, tmp_path, capsys):
    assert main(["utilization", str(outdir), "--nodes", "-3", "-o", str(tmp_path / "o")]) == 2
    assert "--nodes must be a positive" in _err(capsys)
    df = pd.read_csv(outdir / "results.csv")
    df["end_time"] = df["start_time"]
    df.to_csv(outdir / "results.csv", index=False)
    assert main(["utilization", str(outdir), "-o", str(tmp_path / "o")]) == 2
    assert "no job has both a start and a later end time" in _err(capsys)


def test_label_of_a_results_file_is_its_directory(outdir):
    assert experiment_from_results(str(outdir / "results.csv")).label == outdir.name


def test_console_script_exit_code_and_one_line(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "results.csv"
    bad.write_text("a,b\n1,2\n")
    proc = subprocess.run([sys.executable, "-m", "hpcnas.analytics.cli", "search", str(bad),
                           "-o", str(tmp_path / "o")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpcnas: error: ")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["search", "topk"])
def test_a_short_row_is_named_in_one_line(outdir, tmp_path, command, capsys):
    with open(outdir / "results.csv", "a") as fh:
        fh.write("3,adam,j9\n")  # a row cut short: pandas fills the missing cells with NaN
    assert main([command, str(outdir), "-o", str(tmp_path / "o")]) == 2
    err = _err(capsys)
    assert err.endswith("has 1 line(s) that are not rows (line 8: 3 cells, the header has 13): resuming the "
                        "search once moves them to results.csv.damaged; or correct them"), err


def test_a_utf8_byte_order_mark_is_accepted(outdir, tmp_path, capsys):
    path = outdir / "results.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert main(["topk", str(outdir), "-o", str(tmp_path / "o")]) == 0
    assert "j5" in capsys.readouterr().out


def test_output_into_a_closed_pipe_exits_quietly(outdir, tmp_path):
    """``hpcnas-analytics topk DIR | head -1``: the reader is gone before the table is written."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # every write gets EPIPE, as after head -1 has exited
    try:
        proc = subprocess.run([sys.executable, "-m", "hpcnas.analytics.cli", "topk", str(outdir),
                               "-o", str(tmp_path / "o")], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.stderr == "", proc.stderr
    assert proc.returncode == 141  # what a shell reports for a writer killed by SIGPIPE
