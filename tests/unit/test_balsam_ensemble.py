"""The serial ensemble entry: the launcher runs it instead of Balsam's script; its exit rule."""
from __future__ import annotations

import sys
from types import SimpleNamespace

from hpcnas.balsam import launch
from hpcnas.balsam.ensemble import workflow_done

EXE = "/venv/lib/python3.11/site-packages/balsam/launcher/serial_mode_timed.py"


def test_launcher_runs_the_hpcnas_ensemble_with_balsams_arguments():
    # the app_cmd Balsam's SerialLauncher builds, moved to a free port
    cmd = f"{sys.executable} {EXE} --time-limit-min=5 --master-address vm:19876 --log-filename x --num-workers 2"
    new = launch.with_ensemble(launch.with_port(cmd, 40001), EXE)
    assert new == (f"{sys.executable} -m hpcnas.balsam.ensemble --time-limit-min=5 --master-address vm:40001 "
                   "--log-filename x --num-workers 2")


class _Jobs:
    def __init__(self, rows, log):
        self.rows, self.log = rows, log

    def filter(self, workflow__contains=None, application__in=None):
        if workflow__contains is not None:
            self.log.append(("filter", workflow__contains))
            return _Jobs([r for r in self.rows if workflow__contains in r[0]], self.log)
        return _Jobs([r for r in self.rows if r[2] in application__in], self.log)

    def exclude(self, state__in):
        return _Jobs([r for r in self.rows if r[1] not in state__in], self.log)

    def exists(self):
        return bool(self.rows)


def _models(rows, log):
    manager = SimpleNamespace(all=lambda: _Jobs(rows, log))
    return SimpleNamespace(BalsamJob=SimpleNamespace(objects=manager),
                           END_STATES=["JOB_FINISHED", "FAILED", "USER_KILLED"])


def test_workflow_done_only_when_its_search_and_every_job_ended():
    log = []
    rows = [("wf1", "JOB_FINISHED", "AMBS"), ("wf1", "USER_KILLED", "HPCNAS_RUN"), ("wf1", "FAILED", "HPCNAS_RUN"),
            ("other", "READY", "HPCNAS_RUN")]
    assert workflow_done(_models(rows, log), "wf1") is True
    assert log == [("filter", "wf1")]
    # a job still RUN_DONE (post-processing) or queued keeps the ensemble alive
    for state in ("RUN_DONE", "PREPROCESSED", "RUNNING", "RESTART_READY", "RUN_TIMEOUT"):
        assert workflow_done(_models(rows + [("wf1", state, "HPCNAS_RUN")], []), "wf1") is False
    # no workflow filter (--consume-all): every job counts
    assert workflow_done(_models(rows, []), None) is False
    # no search job in the workflow: its master runs elsewhere and may submit more -> Balsam's rule
    evals_only = [r for r in rows if r[2] != "AMBS"]
    assert workflow_done(_models(evals_only, []), "wf1") is False
    assert workflow_done(_models([], []), "wf1") is False


def test_mpi_launcher_quits_after_two_idle_loops_once_its_workflow_is_done(monkeypatch):
    """Balsam's MPI launcher waits 10 idle loops; hpcnas's quits after 2 when the workflow is done."""
    done = {"value": False}
    looked = []

    class Base:
        def __init__(self):
            self.exit_counter, self.is_persistent, self.is_active = 0, False, False
            self.jobsource = SimpleNamespace(workflow="wf1")

        def check_exit(self):  # Balsam's: one more idle loop; EXIT_FLAG at 10
            self.exit_counter += 1
            if self.exit_counter == 10:
                module.EXIT_FLAG = True

    module = SimpleNamespace(MPILauncher=Base, EXIT_FLAG=False, logger=SimpleNamespace(info=lambda m: None))
    monkeypatch.setattr(launch, "_workflow_done", lambda wf: looked.append(wf) or done["value"])
    launch._patch_mpi_launcher(module)
    launcher = module.MPILauncher()
    launcher.check_exit()
    assert not module.EXIT_FLAG and looked == []  # 1 idle loop: not yet
    launcher.check_exit()
    assert not module.EXIT_FLAG and looked == ["wf1"]  # 2 loops, the search still has jobs
    done["value"] = True
    launcher.is_active = True
    launcher.check_exit()
    assert not module.EXIT_FLAG  # a run is active: never
    launcher.is_active = False
    launcher.check_exit()
    assert module.EXIT_FLAG and launcher.exit_counter == 4


def test_ensemble_jobs_do_not_inherit_the_rank_of_the_ensemble_step(monkeypatch):
    """The serial ensemble is task i of an srun/mpirun step on node i; its jobs must not see
    that rank (the job runner reports from rank 0 only: evaluations on node 2+ never reported)."""
    from hpcnas.balsam import job_runner
    from hpcnas.balsam.ensemble import job_environ

    step = {"SLURM_PROCID": "2", "SLURM_LOCALID": "0", "PMI_RANK": "2", "PMI_FD": "7", "PMI_SIZE": "3",
            "PMIX_RANK": "2", "OMPI_COMM_WORLD_RANK": "2", "ALPS_APP_PE": "2", "MPI_LOCALRANKID": "0",
            "PALS_RANKID": "2", "PALS_NODEID": "2"}  # PALS: mpiexec on Polaris / Aurora
    keep = {"SLURM_JOB_ID": "17", "SLURM_JOB_NODELIST": "vnode[1-3]", "BALSAM_DB_PATH": "/db", "PATH": "/bin"}
    env = job_environ({**step, **keep})
    assert env == keep
    for name in step:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**step, **keep}.items():
        monkeypatch.setenv(name, value)
    assert job_runner.mpi_rank() == 2  # what an evaluation saw before
    for name in set(step) - set(env):
        monkeypatch.delenv(name)
    assert job_runner.mpi_rank() == 0


def test_worker_watch_names_a_silent_worker_and_the_jobs_it_was_running():
    """A worker that dies with its node never reports its jobs: they stayed RUNNING for ever."""
    from hpcnas.balsam.ensemble import LOST_RETCODE, WorkerWatch

    watch = WorkerWatch(lost_after=20)
    watch.saw({"source": "vnode2", "started": ["a", "b"], "done": [], "error": []}, now=100)
    watch.saw({"source": "vnode3", "started": ["c"], "done": [], "error": []}, now=100)
    watch.saw({"source": "vnode2", "started": [], "done": ["a"], "error": []}, now=101)
    watch.saw({"source": "vnode3", "started": [], "done": [], "error": [["c", 1, "boom"]]}, now=115)
    assert watch.lost(now=119) == {}
    assert watch.lost(now=122) == {"vnode2": {"b"}}
    assert watch.lost(now=200) == {"vnode3": set()}  # silent too, but nothing left running
    assert watch.lost(now=300) == {}  # each worker is reported once
    msg = WorkerWatch.error_message("vnode2", {"b"}, 21)
    assert msg["error"] == [("b", LOST_RETCODE, msg["error"][0][2])] and "vnode2" in msg["error"][0][2]
    assert msg["started"] == [] and msg["done"] == []


def test_the_ensemble_srun_step_survives_a_node_and_other_commands_are_unchanged():
    from hpcnas.balsam.launch import surviving_node_loss
    from hpcnas.balsam.mpi_commands import plugin_class

    class W:
        def __init__(self, id):
            self.id = id
            self.num_nodes = 1

    srun = surviving_node_loss(plugin_class("HpcnasSrunCommand")())
    line = srun([W("vnode1"), W("vnode2")], app_cmd="python -m hpcnas.balsam.ensemble", num_ranks=2,
                ranks_per_node=1, envs={}, cpu_affinity="none")
    assert line.startswith("srun --nodes 2 --nodelist vnode1,vnode2 ") and " --no-kill " in line, line
    other = object.__new__(plugin_class("HpcnasPalsCommand"))
    assert surviving_node_loss(other) is other
