"""Evaluation jobs created runnable (:mod:`hpcnas.balsam.fastforward`).

The module repeats at creation what Balsam's ``transitions.fast_forward`` does later: the tests
read the installed Balsam's source (no Django set-up) so that an upgrade that changes those steps,
or the states the launcher runs, fails here instead of leaving jobs nobody starts.
"""
from __future__ import annotations

import ast
import importlib.util
import os
from types import SimpleNamespace

import pytest

from hpcnas.analytics.balsam_db import parse_state_history
from hpcnas.balsam import fastforward
from hpcnas.core.errors import UsageError


def _source(module: str) -> str:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, f"{module} is not installed"
    with open(spec.origin, encoding="utf-8") as fh:
        return fh.read()


def _function(module: str, name: str) -> ast.FunctionDef:
    for node in ast.walk(ast.parse(_source(module))):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise AssertionError(f"{module}.{name} not found")


def test_the_installed_balsam_fast_forwards_as_hpcnas_does():
    text = ast.unparse(_function("balsam.core.transitions", "fast_forward"))
    # the three checks (parents, remote stage-in, preprocess) and the directory, nothing else
    for step in ("check_parents", "stage_in_url", "preprocess", "makedirs", "'PREPROCESSED'"):
        assert step in text, f"balsam's fast_forward no longer does {step}"
    models = ast.parse(_source("balsam.core.models"))
    runnable = next(n for n in models.body if isinstance(n, ast.Assign)
                    and any(getattr(t, "id", "") == "RUNNABLE_STATES" for t in n.targets))
    assert "PREPROCESSED" in ast.unparse(runnable), "the launcher no longer runs PREPROCESSED jobs"
    assert _function("balsam.core.models", "history_line").args.args[0].arg == "state"


def _history_line(state: str = "CREATED", message: str = "") -> str:
    """Balsam's ``history_line`` (same format), without its Django import."""
    from datetime import datetime

    return f"\n[{datetime.now().strftime('%m-%d-%Y %H:%M:%S.%f')} {state}] ".rjust(46) + message


def _job(tmp_path, name: str, stage_in_url: str = "") -> SimpleNamespace:
    return SimpleNamespace(working_directory=str(tmp_path / "data" / "wf" / name), stage_in_url=stage_in_url,
                           state="CREATED", state_history=_history_line("CREATED"))


def test_jobs_become_preprocessed_with_their_folder_and_a_history_analytics_reads(tmp_path):
    jobs = [_job(tmp_path, "a"), _job(tmp_path, "b"), _job(tmp_path, "remote", stage_in_url="gsiftp://x/y")]
    fastforward.make_runnable(SimpleNamespace(history_line=_history_line), jobs)
    a, b, remote = jobs
    assert (a.state, b.state, remote.state) == ("PREPROCESSED", "PREPROCESSED", "CREATED")
    assert os.path.isdir(a.working_directory) and os.path.isdir(b.working_directory)
    assert not os.path.exists(remote.working_directory)  # Balsam stages it in first
    steps = parse_state_history(["a"], [a.state_history])
    assert steps["state"].tolist() == ["CREATED", "PREPROCESSED"]
    assert fastforward.MESSAGE in a.state_history


def test_a_folder_this_process_cannot_make_leaves_the_job_created(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    job = _job(tmp_path, "a")
    fastforward.make_runnable(SimpleNamespace(history_line=_history_line), [job])
    assert job.state == "CREATED" and "PREPROCESSED" not in job.state_history


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a folder to another user")
def test_root_gives_the_new_folders_to_the_owner_of_the_data_folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 65534, 65534)  # the launcher's user (nobody), as the test DB's owner is in CI
    path = data / "wf" / "eval-1"
    assert fastforward.make_directory(str(path))
    assert [(os.stat(p).st_uid, os.stat(p).st_gid) for p in (data / "wf", path)] == [(65534, 65534)] * 2


class _Apps:
    def __init__(self, preprocess: str) -> None:
        self.preprocess = preprocess

    def filter(self, name: str) -> "_Apps":
        return self

    def values_list(self, field: str, flat: bool) -> "_Apps":
        assert field == "preprocess" and flat
        return self

    def first(self) -> str:
        return self.preprocess


@pytest.mark.parametrize("knob, preprocess, expected", [
    (None, "", True), ("1", "", True), ("0", "", False), (None, "python pre.py", False),
])
def test_runnable_at_creation_only_without_a_preprocess_step_and_with_the_knob_on(
        monkeypatch, knob, preprocess, expected):
    if knob is None:
        monkeypatch.delenv("HPCNAS_FAST_FORWARD", raising=False)
    else:
        monkeypatch.setenv("HPCNAS_FAST_FORWARD", knob)
    db = SimpleNamespace(ApplicationDefinition=SimpleNamespace(objects=_Apps(preprocess)))
    assert fastforward.runnable_at_creation(db, "HPCNAS_RUN") is expected


def test_a_knob_typo_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("HPCNAS_FAST_FORWARD", "yes")
    with pytest.raises(UsageError, match="HPCNAS_FAST_FORWARD='yes' is neither 0 nor 1"):
        fastforward.runnable_at_creation(SimpleNamespace(), "HPCNAS_RUN")
