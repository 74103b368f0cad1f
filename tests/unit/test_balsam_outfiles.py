"""A Balsam job run again keeps its earlier attempts' .out files; the evaluator names the .out file."""
from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

from hpcnas.balsam import launch, outfiles
from hpcnas.balsam.evaluator import BalsamEvaluator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_an_out_file_opened_again_keeps_the_earlier_attempts(tmp_path) -> None:
    path = tmp_path / "job.out"
    for attempt in ("first", "second", "third"):
        with outfiles.keeping_open(str(path), "wb") as fh:
            fh.write(attempt.encode())
    assert path.read_text() == "third"
    assert [open(p).read() for p in outfiles.previous_attempts(str(path))] == ["first", "second"]
    assert outfiles.previous_attempts(str(path)) == [f"{path}.1", f"{path}.2"]


def test_only_non_empty_job_out_files_written_anew_are_kept(tmp_path) -> None:
    empty, log, ensemble = tmp_path / "empty.out", tmp_path / "x.log", tmp_path / "ensemble.out"
    empty.write_text("")
    log.write_text("old")
    ensemble.write_text("old")
    for path in (empty, log, ensemble):
        outfiles.keeping_open(str(path), "wb").close()
    assert not any(p.name.endswith((".1",)) for p in tmp_path.iterdir())
    job = tmp_path / "job.out"
    job.write_text("kept")
    outfiles.keeping_open(job, "rb").close()  # reading never moves it
    assert not (tmp_path / "job.out.1").exists()


def test_the_serial_ensemble_opens_job_out_files_keeping_earlier_attempts(tmp_path) -> None:
    # Balsam's serial module configures Django from BALSAM_DB_PATH at import: in a process of
    # its own, so that this test neither needs an earlier test's DB nor leaves settings behind
    check = ("from hpcnas.balsam import ensemble, outfiles; "
             "assert ensemble.serial_module().open is outfiles.keeping_open; print('ok')")
    env = dict(os.environ, BALSAM_DB_PATH=str(tmp_path), PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]
    exe = "/venv/site-packages/balsam/launcher/serial_mode_timed.py"
    cmd = f"{sys.executable} {exe} --time-limit-min=5 --master-address vm:19876"
    assert launch.with_ensemble(cmd, exe) == \
        f"{sys.executable} -m hpcnas.balsam.ensemble --time-limit-min=5 --master-address vm:19876"


def test_balsam_results_name_the_job_out_file(tmp_path) -> None:
    evaluator = BalsamEvaluator.__new__(BalsamEvaluator)
    evaluator.db = SimpleNamespace(settings=SimpleNamespace(BALSAM_WORK_DIRECTORY=str(tmp_path)))
    evaluator._submit_times = {}
    pk = "0123456789abcdef"
    row = {"pk": pk, "name": "eval-j1", "workflow": "wf", "state": "JOB_FINISHED", "state_history": "",
           "data": {}, "num_nodes": 1, "ranks_per_node": 1}
    assert evaluator._result("j1", {"x": 1.0}, row).log is None  # no .out file (yet)
    out = tmp_path / "wf" / "eval-j1_01234567" / "eval-j1.out"
    out.parent.mkdir(parents=True)
    out.write_text("output")
    assert evaluator._result("j1", {"x": 1.0}, row).log == str(out)
