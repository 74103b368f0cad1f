"""Analytics on a real Balsam DB (real Postgres, jobs created with Balsam's ORM).

Jobs get crafted ``state_history`` texts with known timelines; the utilization, throughput
and bad-input figures are then checked exactly. The DB belongs to an ordinary user
(``balsam_env`` fixture); the analytics run both as that user and as the test process's
own user (root in CI), which reaches the DB as its owner with the password in server-info.
"""
from __future__ import annotations

import json
import os
import socket
import sys

import pandas as pd
import pytest

from hpcnas.analytics.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC

MAKE_JOBS = """
import json, sys
from datetime import datetime, timezone
from hpcnas.balsam.connect import connect
models = connect().models
spec = json.loads(sys.argv[1])
def line(t, s):
    stamp = datetime.fromtimestamp(t, tz=timezone.utc).strftime(models.TIME_FMT)
    return f"\\n[{stamp} {s}] ".rjust(46) + "crafted"
jobs = [models.BalsamJob(name=j["name"], workflow=spec["workflow"], application="",
        num_nodes=j.get("num_nodes", 1), ranks_per_node=j.get("ranks_per_node", 1),
        node_packing_count=j.get("node_packing_count", 1), state=j["history"][-1][1],
        state_history="".join(line(t, s) for t, s in j["history"])) for j in spec["jobs"]]
models.BalsamJob.objects.bulk_create(jobs)
print("created", len(jobs))
"""


def make_jobs(env, workflow: str, jobs: list[dict]) -> None:
    spec = json.dumps({"workflow": workflow, "jobs": jobs})
    out = env.run([sys.executable, "-c", MAKE_JOBS, spec]).stdout
    assert f"created {len(jobs)}" in out


def h(*steps):
    return [[T0 + t, s] for t, s in steps]


# 4 nodes: A takes 2 nodes [0,100); B and C packed 2 per node [0,50); D 1 node [50,80) after
# waiting [20,50). Busy: 3 on [0,80), 2 on [80,100) -> 280 of 400 node-seconds = 70 %.
FOUR_NODES = [
    {"name": "A", "num_nodes": 2, "ranks_per_node": 4,
     "history": h((0, "CREATED"), (0, "PREPROCESSED"), (0, "RUNNING"), (100, "RUN_DONE"),
                  (101, "JOB_FINISHED"))},
    {"name": "B", "node_packing_count": 2,
     "history": h((0, "CREATED"), (0, "RUNNING"), (50, "RUN_DONE"), (50, "JOB_FINISHED"))},
    {"name": "C", "node_packing_count": 2,
     "history": h((0, "CREATED"), (0, "RUNNING"), (50, "RUN_ERROR"), (51, "FAILED"))},
    {"name": "D", "history": h((20, "CREATED"), (20, "PREPROCESSED"), (50, "RUNNING"),
                               (80, "RUN_TIMEOUT"))},
]


@pytest.fixture
def four_nodes(balsam_env, balsam_workflow):
    make_jobs(balsam_env, balsam_workflow, FOUR_NODES)
    return balsam_workflow


def test_utilization_exact_figures(balsam_env, four_nodes, tmp_path, capsys):
    out = tmp_path / "u"
    rc = main(["utilization", "--db", balsam_env.db_path, "--workflow", four_nodes,
               "--nodes", "4", "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    s = json.loads((out / "utilization.json").read_text())
    assert s["nodes"] == 4 and s["num_runs"] == 4
    assert s["wall_seconds"] == pytest.approx(100.0)
    assert s["busy_node_seconds"] == pytest.approx(280.0)
    assert s["utilization_percent"] == pytest.approx(70.0)
    assert s["idle_node_seconds"] == pytest.approx({"launch latency": 30.0,
                                                    "no runnable job": 90.0})
    curve = pd.read_csv(out / "utilization.csv")
    assert curve["elapsed_s"].round(6).tolist() == [0, 20, 50, 80, 100]
    assert curve["busy_nodes"].tolist() == [3, 3, 3, 2, 0]
    assert curve["running_jobs"].tolist() == [3, 3, 2, 1, 0]
    assert curve["waiting_jobs"].tolist() == [0, 1, 0, 0, 0]
    gaps = pd.read_csv(out / "utilization_gaps.csv")
    assert gaps["cause"].tolist() == ["no runnable job", "launch latency", "no runnable job"]
    assert (out / "utilization.png").stat().st_size > 10_000


def test_mpi_job_mode_gives_whole_nodes(balsam_env, four_nodes, tmp_path):
    out = tmp_path / "u"
    assert main(["utilization", "--db", balsam_env.db_path, "--workflow", four_nodes,
                 "--nodes", "4", "--job-mode", "mpi", "-o", str(out)]) == 0
    s = json.loads((out / "utilization.json").read_text())
    # B and C now take a node each: busy 4 on [0,50), 3 on [50,80), 2 on [80,100) = 330
    assert s["busy_node_seconds"] == pytest.approx(330.0)
    assert s["utilization_percent"] == pytest.approx(82.5)


def test_throughput_counts_per_kind(balsam_env, four_nodes, tmp_path):
    out = tmp_path / "t"
    assert main(["throughput", "--db", balsam_env.db_path, "--workflow", four_nodes,
                 "-o", str(out)]) == 0
    s = json.loads((out / "throughput.json").read_text())
    assert s["totals"] == {"done": 2, "error": 1, "timeout": 1}
    assert s["wall_seconds"] == pytest.approx(100.0)


def test_cli_as_the_db_owner_with_active_db(balsam_env, four_nodes):
    out = os.path.join(balsam_env.base, f"out-{four_nodes}")
    proc = balsam_env.run([sys.executable, "-m", "hpcnas.analytics.cli", "utilization",
                           "--workflow", four_nodes, "--nodes", "4", "-o", out])
    assert "70.00% of 4 nodes" in proc.stdout
    with open(os.path.join(out, "utilization.json")) as fh:
        assert json.load(fh)["busy_node_seconds"] == pytest.approx(280.0)


def test_report_from_db_and_results(balsam_env, four_nodes, tmp_path):
    results = tmp_path / "results.csv"
    pd.DataFrame({"p:x": [1, 2], "job_id": ["a", "b"], "objective": [0.1, 0.7],
                  "status": ["DONE", "DONE"], "submit_time": [T0, T0],
                  "start_time": [T0, T0], "end_time": [T0 + 50, T0 + 100]}).to_csv(results,
                                                                                    index=False)
    out = tmp_path / "r"
    assert main(["report", str(tmp_path), "--db", balsam_env.db_path, "--workflow", four_nodes,
                 "--nodes", "4", "-o", str(out)]) == 0
    page = (out / "report.html").read_text()
    # search, parallel coordinates, objective vs parameter, utilization, throughput (2 evaluations:
    # a note instead of the importance)
    assert page.count("data:image/png;base64,") == 5
    assert json.loads((out / "search_summary.json").read_text())["best_objective"] == 0.7
    assert json.loads((out / "utilization.json").read_text())["utilization_percent"] == \
        pytest.approx(70.0)


def test_live_state_of_a_workflow_is_read_again(balsam_env, four_nodes, tmp_path):
    """``serve DB_DIR --workflow WF``: the DB is read every interval, so jobs that ran since show up."""
    import time

    from hpcnas.analytics.cli import build_parser
    from hpcnas.analytics.serve import state_from_args

    args = build_parser().parse_args(["serve", balsam_env.db_path, "--workflow", four_nodes,
                                      "--nodes", "4", "--interval", "0.05"])
    state = state_from_args(args, str(tmp_path / "live"))
    first = state.current()
    assert "70.0% of 4 nodes busy over 100.0 s (--nodes, 4 runs)" in first.html
    assert "no objectives" in first.html and set(first.images) == {"utilization.png"}
    make_jobs(balsam_env, four_nodes, [{"name": "E", "num_nodes": 4, "history": h(
        (100, "CREATED"), (100, "RUNNING"), (200, "RUN_DONE"))}])
    deadline = time.monotonic() + 60
    while "5 runs" not in state.current().html and time.monotonic() < deadline:
        time.sleep(0.05)
    # busy 280 node-seconds on [0, 100) and 400 on [100, 200): 680 of 800
    assert "85.0% of 4 nodes busy over 200.0 s (--nodes, 5 runs)" in state.current().html


def test_live_state_waits_for_a_workflow_to_appear(balsam_env, balsam_workflow, tmp_path, capsys):
    """Started before the search created its jobs: a warning, the page says why, then shows them."""
    import time

    from hpcnas.analytics.cli import build_parser
    from hpcnas.analytics.serve import state_from_args

    args = build_parser().parse_args(["serve", f"balsam:{balsam_workflow}", "--db", balsam_env.db_path,
                                      "--nodes", "4", "--interval", "0.05"])
    state = state_from_args(args, str(tmp_path / "live"))
    warning = capsys.readouterr().err.strip()
    assert warning.startswith(f"hpcnas-analytics: warning: unknown workflow '{balsam_workflow}'")
    assert len(warning.splitlines()) == 1
    assert state.label == balsam_workflow and "unknown workflow" in state.current().html
    make_jobs(balsam_env, balsam_workflow, FOUR_NODES)
    deadline = time.monotonic() + 60
    while "busy over" not in state.current().html and time.monotonic() < deadline:
        time.sleep(0.05)
    html = state.current().html
    assert "70.0% of 4 nodes busy over 100.0 s" in html and "unknown workflow" not in html


# ------------------------------------------------------------------ bad input


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_unknown_workflow(balsam_env, four_nodes, tmp_path, capsys):
    rc = main(["utilization", "--db", balsam_env.db_path, "--workflow", "no-such-wf",
               "-o", str(tmp_path)])
    assert rc == 2
    err = _one_line(capsys)
    assert "unknown workflow 'no-such-wf'" in err and "choose one of" in err


def test_misspelt_workflow_is_named_first(balsam_env, four_nodes, tmp_path, capsys):
    """However many workflows the DB holds, the listing starts with the ones spelt like the ask."""
    rc = main(["utilization", "--db", balsam_env.db_path, "--workflow", four_nodes[:-1] + "#",
               "-o", str(tmp_path)])
    assert rc == 2
    err = _one_line(capsys)
    assert err.split("choose one of ", 1)[1].startswith(f"{four_nodes} (")


def test_workflow_whose_jobs_never_ran(balsam_env, balsam_workflow, tmp_path, capsys):
    make_jobs(balsam_env, balsam_workflow,
              [{"name": "w", "history": h((0, "CREATED"), (1, "PREPROCESSED"))}])
    rc = main(["utilization", "--db", balsam_env.db_path, "--workflow", balsam_workflow,
               "-o", str(tmp_path)])
    assert rc == 2
    assert "has 1 job(s) but none has run yet" in _one_line(capsys)


def test_empty_workflow_name(balsam_env, tmp_path, capsys):
    assert main(["utilization", "--db", balsam_env.db_path, "--workflow", "",
                 "-o", str(tmp_path)]) == 2
    assert "--workflow is empty" in _one_line(capsys)


def test_db_not_running(balsam_env, tmp_path, capsys):
    # a copy of the DB directory's server-info pointing at a port where no server listens
    dead = tmp_path / "dead-db"
    dead.mkdir()
    with open(os.path.join(balsam_env.db_path, "server-info")) as fh:
        info = json.load(fh)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        info["port"] = sock.getsockname()[1]
    (dead / "server-info").write_text(json.dumps(info))
    rc = main(["utilization", "--db", str(dead), "--workflow", "x", "-o", str(tmp_path)])
    assert rc == 2
    err = _one_line(capsys)
    assert "is not running" in err and "balsam server --start" in err


def test_not_a_db_directory(tmp_path, capsys):
    assert main(["utilization", "--db", str(tmp_path), "--workflow", "x",
                 "-o", str(tmp_path / "o")]) == 2
    assert "not a Balsam DB directory" in _one_line(capsys)


def test_compare_two_workflows(balsam_env, four_nodes, balsam_workflow, tmp_path):
    other = balsam_workflow + "b"
    # the same jobs, but D runs [50,100): 3 nodes busy to the end, 300 of 400 node-seconds
    jobs = [dict(j) for j in FOUR_NODES]
    jobs[3] = {"name": "D", "history": h((20, "CREATED"), (50, "RUNNING"), (100, "RUN_DONE"))}
    make_jobs(balsam_env, other, jobs)
    out = tmp_path / "cmp"
    assert main(["compare", f"slow=balsam:{four_nodes}", f"fast=balsam:{other}", "--db",
                 balsam_env.db_path, "--nodes", "4", "-o", str(out)]) == 0
    rows = json.loads((out / "compare.json").read_text())["experiments"]
    assert [r["label"] for r in rows] == ["slow", "fast"]
    assert [r["utilization_percent"] for r in rows] == pytest.approx([70.0, 75.0])
    assert (out / "compare_utilization.png").stat().st_size > 10_000
    assert not (out / "compare_search.png").exists()  # no objectives in a DB-only comparison


def test_search_needs_results_not_only_the_db(balsam_env, four_nodes, tmp_path, capsys):
    assert main(["search", "--db", balsam_env.db_path, "--workflow", four_nodes,
                 "-o", str(tmp_path)]) == 2
    err = _one_line(capsys)
    assert "'search' needs objectives" in err and "results.csv" in err
