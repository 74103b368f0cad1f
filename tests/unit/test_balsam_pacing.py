"""Balsam's pace knobs (:mod:`hpcnas.balsam.pacing`): what they replace must exist in the installed Balsam.

hpcnas shortens Balsam's polling periods by replacing a function and three classes of Balsam in
its own processes. A Balsam release that renamed them, or moved the loop elsewhere, would make
the knobs do nothing without any error: these tests read the installed Balsam's source (no
Django set-up, no DB) and fail in that case.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys

import pytest

from hpcnas.balsam import pacing
from hpcnas.core.errors import UsageError


def _tree(module: str) -> ast.Module:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, f"{module} is not installed"
    with open(spec.origin, encoding="utf-8") as fh:
        return ast.parse(fh.read())


def _top_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _find(tree: ast.AST, kind: type, name: str) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, kind) and node.name == name:
            return node
    raise AssertionError(f"{name} not found")


def _calls(node: ast.AST) -> set[str]:
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            out.add(func.id if isinstance(func, ast.Name) else ast.unparse(func))
    return out


def test_every_name_hpcnas_patches_exists_in_the_installed_balsam():
    trees = {m: _top_names(_tree(m)) for m in {m for m, _ in pacing.PATCHED}}
    missing = [f"{m}.{a}" for m, a in pacing.PATCHED if a not in trees[m]]
    assert missing == []


def test_the_transition_loop_hpcnas_replaces_is_the_one_with_balsams_5_s_period():
    tree = _tree("balsam.core.transitions")
    loop = _find(tree, ast.FunctionDef, "_main")
    assert "refresh_period = 5" in ast.unparse(loop)  # the period hpcnas's knob replaces
    assert "_main" in _calls(_find(tree, ast.FunctionDef, "main"))  # looked up by name: the patch applies


def test_the_serial_loops_hpcnas_replaces_hold_balsams_1_s_sleeps():
    tree = _tree("balsam.launcher.serial_mode_timed")
    assert "time.sleep(1)" in ast.unparse(_find(_find(tree, ast.ClassDef, "JobSource"), ast.FunctionDef, "run"))
    assert "time.sleep(1.0)" in ast.unparse(_find(_find(tree, ast.ClassDef, "StatusUpdater"), ast.FunctionDef, "run"))
    worker = _find(tree, ast.ClassDef, "Worker")
    assert "time.sleep(1)" in ast.unparse(_find(worker, ast.FunctionDef, "main"))
    for method in ("poll_processes", "start_jobs", "exit"):  # what hpcnas's worker loop calls
        _find(worker, ast.FunctionDef, method)
    # the master builds its job source and status updater by their module-level names
    master_init = _find(_find(tree, ast.ClassDef, "Master"), ast.FunctionDef, "__init__")
    assert {"BalsamJobSource", "BalsamDBStatusUpdater"} <= _calls(master_init)


def test_the_ensemble_module_installs_the_paced_classes():
    code = ("import os; os.environ['BALSAM_DB_PATH']='/nonexistent'\n"
            "from hpcnas.balsam import pacing\n"
            "from types import SimpleNamespace as N\n"
            "class JS: pass\nclass SU: pass\nclass W: pass\n"
            "stm = N(BalsamJobSource=JS, BalsamDBStatusUpdater=SU, Worker=W)\n"
            "pacing.install_serial(stm)\n"
            "print(issubclass(stm.BalsamJobSource, JS) and stm.BalsamJobSource is not JS,"
            " issubclass(stm.BalsamDBStatusUpdater, SU), issubclass(stm.Worker, W) and stm.Worker is not W)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "True", "True"], out.stderr


@pytest.mark.parametrize("value", ["0", "-1", "fast"])
def test_a_bad_knob_is_one_line_naming_it(monkeypatch, value):
    monkeypatch.setenv("HPCNAS_WORKER_S", value)
    with pytest.raises(UsageError, match="HPCNAS_WORKER_S=.* is not a positive number of seconds"):
        pacing.worker_period()


@pytest.mark.parametrize("name, value, says", [
    ("HPCNAS_WORKER_LOST_S", "0", "is not a positive number of seconds"),
    ("HPCNAS_ENSEMBLE_IDLE_S", "soon", "is not a number >= 0"),
    ("HPCNAS_FORK_SERVER", "yes", "is neither 0 nor 1"),
])
def test_every_launcher_knob_is_checked_before_the_launcher_starts(monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)
    from hpcnas.balsam import launch

    with pytest.raises(UsageError, match=f"environment variable {name}='{value}' {says}") as err:
        launch.check_knobs()
    assert "\n" not in str(err.value)


def test_knobs_default_and_override(monkeypatch):
    for name in ("HPCNAS_TRANSITION_S", "HPCNAS_JOBSOURCE_S", "HPCNAS_STATUS_BATCH_S", "HPCNAS_WORKER_S"):
        monkeypatch.delenv(name, raising=False)
    assert (pacing.transition_period(), pacing.jobsource_period(), pacing.status_batch_period(),
            pacing.worker_period()) == (0.5, 0.05, 0.05, 0.05)
    monkeypatch.setenv("HPCNAS_TRANSITION_S", "5")
    assert pacing.transition_period() == 5.0
    assert os.environ["HPCNAS_TRANSITION_S"] == "5"


def test_the_launcher_refuses_a_bad_knob_with_one_line(monkeypatch, capsys):
    from hpcnas.balsam import launch

    monkeypatch.setenv("HPCNAS_TRANSITION_S", "soon")
    assert launch.main(["--wf-filter", "x", "--job-mode", "serial"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HPCNAS_TRANSITION_S='soon' is not a positive number of seconds" in err


def _fake_stm():
    import queue as queue_mod
    import threading
    from types import SimpleNamespace

    class BalsamJobSource:
        def __init__(self):
            self._exit_flag, self.queue, self.prefetch_depth, self.fetches = threading.Event(), queue_mod.Queue(), 3, []

        def _acquire_jobs(self, n):
            self.fetches.append(n)
            if len(self.fetches) == 2:
                self._exit_flag.set()
            return [f"job{len(self.fetches)}"]

        def _on_exit(self):
            self.exited = True

    class BalsamDBStatusUpdater:
        def __init__(self):
            self.queue, self.batches = queue_mod.Queue(), []

        def perform_updates(self, updates):
            self.batches.append(list(updates))

        def _on_exit(self):
            pass

    log = SimpleNamespace(info=lambda msg: None)
    return SimpleNamespace(BalsamJobSource=BalsamJobSource, BalsamDBStatusUpdater=BalsamDBStatusUpdater,
                           Worker=type("Worker", (), {}), connections=SimpleNamespace(close_all=lambda: None),
                           logger=log)


def test_paced_job_source_and_status_updater_keep_balsams_behaviour(monkeypatch):
    import time

    monkeypatch.setenv("HPCNAS_JOBSOURCE_S", "0.05")
    monkeypatch.setenv("HPCNAS_STATUS_BATCH_S", "0.05")
    monkeypatch.setattr(pacing.signal, "signal", lambda *a: None)  # keep pytest's own SIGINT handler
    stm = _fake_stm()
    pacing.install_serial(stm)
    source = stm.BalsamJobSource()
    started = time.monotonic()
    source.run()  # fetches up to prefetch_depth minus what is queued, every period, until the exit flag
    assert source.fetches == [3, 2] and source.exited and time.monotonic() - started < 5
    assert [source.queue.get_nowait() for _ in range(2)] == ["job1", "job2"]

    updater = stm.BalsamDBStatusUpdater()
    for item in ({"started": ["a"]}, {"done": ["a"]}, "exit"):
        updater.queue.put(item)
    updater.run()  # what arrives within one batch period is written together; "exit" ends it
    assert updater.batches == [[{"started": ["a"]}, {"done": ["a"]}, "exit"]]


def test_serial_worker_asks_only_for_the_jobs_its_node_has_room_for():
    """Balsam asks for --worker-prefetch-count (64) jobs whatever runs: the first worker took a
    whole search's jobs and the other nodes of the allocation stayed idle."""
    from hpcnas.balsam.pacing import jobs_to_request

    assert jobs_to_request(64, 0.0, [], None) == 1  # first contact: one job, to learn its packing
    assert jobs_to_request(64, 0.0, [], 0.25) == 4  # packing 4, empty node
    assert jobs_to_request(64, 0.5, [0.25], 0.25) == 1
    assert jobs_to_request(64, 1.0, [], 0.25) == 0  # full: nothing more
    assert jobs_to_request(64, 0.75, [0.25], 0.25) == 0  # the cached job fills it
    assert jobs_to_request(64, 0.001, [], 0.001) == 64  # a master on 1/1000: the prefetch bounds it
    assert jobs_to_request(2, 0.0, [0.25, 0.25], 0.25) == 0
