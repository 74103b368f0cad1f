"""The Balsam job runner in-process (no DB) and the evaluator's user errors without a DB."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hpcnas.balsam.apps import RUNNER_APP, SEARCH_APPS, app_commands
from hpcnas.balsam.job_runner import main
from hpcnas.balsam.jobs import EXIT_FAILED, MARKER, encode_config
from hpcnas.core.errors import HpcnasError

RF = "tests.support.run_functions."


def markers(out: str) -> list[dict]:
    return [json.loads(l[len(MARKER):]) for l in out.splitlines() if l.startswith(MARKER)]


@pytest.fixture(autouse=True)
def no_balsam(monkeypatch):
    for key in ("BALSAM_JOB_ID", "BALSAM_DB_PATH", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(key, raising=False)


def test_success_prints_one_report(capsys):
    assert main([RF + "quadratic", encode_config({"x": 3.0})]) == 0
    (report,) = markers(capsys.readouterr().out)
    assert report["status"] == "DONE" and report["objective"] == -9.0 and report["rank"] == 0 and report["host"]


def test_failure_exits_with_the_non_retried_code(capsys):
    assert main([RF + "raise_error", encode_config({})]) == EXIT_FAILED
    (report,) = markers(capsys.readouterr().out)
    assert report["status"] == "FAILED" and "boom from the run function" in report["error"]


def test_timeout_stops_a_hanging_run_function(capsys):
    assert main([RF + "hang", encode_config({}), "--timeout", "0.3"]) == EXIT_FAILED
    (report,) = markers(capsys.readouterr().out)
    assert report["status"] == "TIMEOUT" and report["objective"] is None


def test_only_rank_zero_reports(capsys, monkeypatch):
    monkeypatch.setenv("PMI_RANK", "1")
    assert main([RF + "quadratic", encode_config({"x": 1.0})]) == 0
    assert markers(capsys.readouterr().out) == []


def test_runner_as_a_module_keeps_nasty_strings():
    text = '"; rm -rf ~; echo "'
    proc = subprocess.run([sys.executable, "-m", "hpcnas.balsam.job_runner", RF + "with_metadata",
                           encode_config({"x": 2.0, "text": text})], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (report,) = markers(proc.stdout)
    assert report["objective"] == 2.0 and report["metadata"] == {"epochs": 3, "m": {"epochs": 3}}  # m: the m:epochs column


def test_apps_cover_every_search_and_the_runner():
    apps = app_commands("/opt/py/bin/python")
    assert set(apps) == set(SEARCH_APPS) | {RUNNER_APP}
    assert apps["AMBS"][0] == "/opt/py/bin/python -m hpcnas.cli.main hps ambs"
    assert apps["AGEBO"][0].endswith("nas agebo")
    assert apps[RUNNER_APP][0] == "/opt/py/bin/python -m hpcnas.balsam.job_runner"


def test_evaluator_without_active_db_is_a_one_line_error(monkeypatch):
    from hpcnas.evaluator.base import create_evaluator

    with pytest.raises(HpcnasError, match="no active Balsam DB: run `source balsamactivate DB`"):
        create_evaluator("balsam", RF + "quadratic", num_workers=1)
    monkeypatch.setenv("BALSAM_DB_PATH", "/nonexistent/db")
    with pytest.raises(HpcnasError, match="is not a Balsam DB"):
        create_evaluator("balsam", RF + "quadratic", num_workers=1)


def test_cli_search_without_db_exits_2_with_one_line():
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    proc = subprocess.run(
        [sys.executable, "-m", "hpcnas.cli.main", "hps", "random", "--evaluator", "balsam", "--problem",
         "hpcnas.benchmark.polynome2.Problem", "--run", "hpcnas.benchmark.polynome2.run", "--max-evals", "2"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("hpcnas: error: no active Balsam DB")


def test_unreachable_db_falls_back_to_the_output_marker(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BALSAM_JOB_ID": "00000000-0000-0000-0000-000000000001",
           "BALSAM_DB_PATH": str(tmp_path / "no-such-db")}
    proc = subprocess.run([sys.executable, "-m", "hpcnas.balsam.job_runner", RF + "quadratic",
                           encode_config({"x": 2.0})], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr  # the evaluation succeeded; only the DB write failed
    (report,) = markers(proc.stdout)
    assert report["objective"] == -4.0
    assert "could not store the result in the Balsam DB" in proc.stderr
