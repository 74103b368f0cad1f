"""Job-script templates rendered as text (Cobalt for Theta / ThetaGPU, Slurm, PBS) + ``bash -n``."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from hpcnas.balsam.render import (
    LaunchRequest,
    jobscripts_dir,
    render_job_script,
    template_context,
)
from hpcnas.core.errors import HpcnasError

ENV = dict(balsam_bin="/opt/venv/bin", balsam_db_path="/home/u/testdb", pg_bin="/usr/lib/pg/bin")


def directives(script: str, prefix: str) -> list[str]:
    """Scheduler directives, checked to all precede the first command (schedulers stop there)."""
    found, seen_command = [], False
    for line in script.splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith(prefix):
            assert not seen_command, f"directive after a command: {line!r}"
            found.append(stripped[len(prefix):].strip())
        elif stripped and not stripped.startswith("#"):
            seen_command = True
    return found


def launcher_line(script: str) -> str:
    lines = [l for l in script.splitlines() if "-m hpcnas.balsam.launch" in l]
    assert len(lines) == 1, script
    return lines[0]


def bash_syntax_ok(script: str, tmp_path) -> None:
    path = tmp_path / "job.sh"
    path.write_text(script)
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_theta_cobalt_script(tmp_path):
    req = LaunchRequest(nodes=128, time_minutes=60, queue="default", job_mode="mpi",
                        project="datascience", wf_filter="TEST")
    script = render_job_script("theta.cobalt.tmpl", req, **ENV)
    assert script.startswith("#!/bin/bash\n")
    assert directives(script, "#COBALT") == [
        "-A datascience", "-n 128", "-q default", "-t 60", "--attrs enable_ssh=1"]
    assert "export PATH=/opt/venv/bin:/usr/lib/pg/bin:$PATH" in script
    assert "source balsamactivate /home/u/testdb" in script
    assert launcher_line(script).endswith(
        "-m hpcnas.balsam.launch --wf-filter=TEST --job-mode=mpi --time-limit-minutes=58")
    assert "--gpus-per-node" not in script
    bash_syntax_ok(script, tmp_path)


def test_thetagpu_cobalt_script(tmp_path):
    req = LaunchRequest(nodes=2, time_minutes=30, queue="full-node", job_mode="serial",
                        project="myproj", sched_flags="--attrs filesystems=home,grand")
    script = render_job_script("thetagpu.cobalt.tmpl", req, **ENV)
    assert directives(script, "#COBALT") == [
        "-A myproj", "-n 2", "-q full-node", "-t 30", "--attrs filesystems=home,grand"]
    line = launcher_line(script)
    assert "--consume-all --job-mode=serial --time-limit-minutes=28 --gpus-per-node=8" in line
    assert "aprun" not in script and "module unload" not in script
    bash_syntax_ok(script, tmp_path)


def test_slurm_script(tmp_path):
    req = LaunchRequest(nodes=4, time_minutes=45, queue="normal", job_mode="mpi",
                        project="acct1", wf_filter="HPS")
    script = render_job_script("slurm.tmpl", req, **ENV)
    assert directives(script, "#SBATCH") == [
        "--account=acct1", "--partition=normal", "--nodes=4", "--exclusive", "--time=45"]
    assert 'export SLURM_HOSTS="$(scontrol show hostnames "$SLURM_JOB_NODELIST"' in script
    assert "--wf-filter=HPS --job-mode=mpi --time-limit-minutes=43 &" in launcher_line(script)
    assert "trap '_forward TERM' TERM" in script
    bash_syntax_ok(script, tmp_path)


def test_slurm_script_without_account_and_short_walltime(tmp_path):
    req = LaunchRequest(nodes=1, time_minutes=2, queue="debug")
    script = render_job_script("slurm.tmpl", req, **ENV)
    assert directives(script, "#SBATCH") == [
        "--partition=debug", "--nodes=1", "--exclusive", "--time=2"]
    # the launcher always gets at least one minute
    assert "--time-limit-minutes=1 &" in launcher_line(script)
    bash_syntax_ok(script, tmp_path)


def test_pbs_script_walltime_and_hostfile(tmp_path):
    req = LaunchRequest(nodes=3, time_minutes=90, queue="prod", project="p", job_mode="mpi")
    script = render_job_script("pbs.tmpl", req, **ENV)
    assert directives(script, "#PBS") == [
        "-A p", "-q prod", "-l select=3:ncpus=1", "-l place=scatter", "-l walltime=01:30:00", "-j oe"]
    assert 'export COBALT_NODEFILE="$PBS_NODEFILE"' in script
    bash_syntax_ok(script, tmp_path)


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(jobscripts_dir(), "templates"))))
def test_every_template_renders_and_parses(name, tmp_path):
    req = LaunchRequest(nodes=1, time_minutes=10, queue="q", sched_flags="--foo")
    script = render_job_script(name, req, **ENV)
    assert "{{" not in script and "{%" not in script
    assert re.search(r"source balsamactivate /home/u/testdb", script)
    bash_syntax_ok(script, tmp_path)


def test_context_matches_balsam_keys():
    ctx = template_context(LaunchRequest(nodes=1, time_minutes=5, queue="q"), default_project="dp", **ENV)
    # the keys Balsam 0.5's ScriptTemplate.qlaunch_to_dict + get_balsam_env produce
    assert set(ctx) == {"project", "queue", "nodes", "time_minutes", "job_mode", "wf_filter",
                        "sched_flags", "balsam_bin", "balsam_db_path", "pg_bin"}
    assert ctx["project"] == "dp" and ctx["wf_filter"] == "consume-all"


@pytest.mark.parametrize("kwargs, match", [
    (dict(nodes=0, time_minutes=5, queue="q"), "nodes must be >= 1"),
    (dict(nodes=1, time_minutes=0, queue="q"), "wall time"),
    (dict(nodes=1, time_minutes=5, queue="q", job_mode="pipes"), "job mode"),
    (dict(nodes=1, time_minutes=5, queue=""), "queue"),
])
def test_bad_requests_are_one_line_errors(kwargs, match):
    with pytest.raises(HpcnasError, match=match) as info:
        render_job_script("slurm.tmpl", LaunchRequest(**kwargs), **ENV)
    assert "\n" not in str(info.value)


def test_unknown_template_names_the_choices():
    with pytest.raises(HpcnasError, match="slurm.tmpl"):
        render_job_script("nope.tmpl", LaunchRequest(nodes=1, time_minutes=5, queue="q"), **ENV)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash missing")
def test_slurm_hosts_line_feeds_balsam_worker_detection(tmp_path):
    """The SLURM_HOSTS line of the script yields the host list Balsam's setup_SLURM splits."""
    script = render_job_script("slurm.tmpl", LaunchRequest(nodes=2, time_minutes=5, queue="q"), **ENV)
    line = next(l for l in script.splitlines() if l.startswith("export SLURM_HOSTS="))
    fake = tmp_path / "scontrol"
    fake.write_text('#!/bin/sh\n[ "$1 $2 $3" = "show hostnames n[01-02]" ] && printf "n01\\nn02\\n"\n')
    fake.chmod(0o755)
    out = subprocess.run(
        ["bash", "-c", f'{line}; printf "%s" "$SLURM_HOSTS"'],
        env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "SLURM_JOB_NODELIST": "n[01-02]"},
        capture_output=True, text=True, check=True,
    ).stdout
    assert out.split() == ["n01", "n02"]


# ------------------------------------------------------- hpcnas balsam-submit (no DB)
def _submit_env(monkeypatch, tmp_path, machine="slurm"):
    """HOME with the site installed and a fake submit command on PATH (dry runs never call it)."""
    from hpcnas.balsam.settings import install_site
    from hpcnas.balsam.sites import get_site

    monkeypatch.setenv("HOME", str(tmp_path))
    install_site(get_site(machine), balsam_home=str(tmp_path / ".balsam"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for exe in ("sbatch", "qsub"):
        (bindir / exe).write_text("#!/bin/sh\nexit 99\n")
        (bindir / exe).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("BALSAM_DB_PATH", "/data/mydb")


SUBMIT = ["balsam-submit", "hps", "ambs", "-w", "WF", "-t", "30", "-q", "debug",
          "--problem", "hpcnas.benchmark.polynome2.Problem", "--run", "hpcnas.benchmark.polynome2.run"]


def _hpcnas(argv, capsys):
    from hpcnas.cli.main import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_balsam_submit_dry_run_prints_plan_and_slurm_script(monkeypatch, tmp_path, capsys):
    _submit_env(monkeypatch, tmp_path)
    code, out, err = _hpcnas(SUBMIT + ["-n", "2", "--job-mode", "serial", "--num-evals-per-node", "4",
                                       "--max-evals", "50", "--kappa", "0.5", "--dry-run"], capsys)
    assert code == 0, err
    # 2 nodes x 4 slots, the search job takes one slot of its node
    assert "-> 7 worker(s)" in out
    assert ("AMBS --evaluator balsam --problem hpcnas.benchmark.polynome2.Problem --run "
            "hpcnas.benchmark.polynome2.run --num-evals-per-node 4 --max-evals 50 --kappa 0.5") in out
    assert "submit-launch -n 2 -t 30 -q debug -A '' --job-mode serial --wf-filter WF" in out
    assert "#SBATCH --nodes=2" in out and "source balsamactivate /data/mydb" in out
    assert "-m hpcnas.balsam.launch --wf-filter=WF --job-mode=serial --time-limit-minutes=28" in out


def test_balsam_submit_dry_run_theta_mpi(monkeypatch, tmp_path, capsys):
    _submit_env(monkeypatch, tmp_path, machine="theta")
    code, out, err = _hpcnas(SUBMIT + ["-n", "9", "-A", "proj", "--job-mode", "mpi", "--num-nodes-per-eval", "2",
                                       "--num-ranks-per-node", "4", "--num-threads-per-rank", "16", "--dry-run"], capsys)
    assert code == 0, err
    assert "mpi mode: 9 node(s) minus 1 for the search job = 8 node(s) / 2 node(s) per eval -> 4 worker(s)" in out
    assert "--num-nodes-per-eval 2 --num-ranks-per-node 4 --num-threads-per-rank 16" in out
    assert "#COBALT -A proj" in out and "#COBALT -n 9" in out


@pytest.mark.parametrize("extra, message", [
    (["-n", "0", "--job-mode", "serial"], "-n/--nodes must be at least 1"),
    (["-n", "1", "--job-mode", "mpi"], "no room for evaluations"),
    (["-n", "2", "--job-mode", "serial", "--num-ranks-per-node", "2"], "serial job mode runs only 1-node 1-rank"),
    (["-n", "2", "--job-mode", "serial", "--num-threads-per-rank", "2"], "needs --job-mode mpi"),
    (["-n", "2", "--job-mode", "pipes"], "invalid choice"),
    (["-n", "2", "--job-mode", "serial", "--kappa", "x"], "--kappa: invalid float"),
    (["-n", "2", "--job-mode", "serial", "--evaluator", "local"], "always uses --evaluator balsam"),
])
def test_balsam_submit_rejects_bad_input_in_one_line(monkeypatch, tmp_path, capsys, extra, message):
    _submit_env(monkeypatch, tmp_path)
    code, out, err = _hpcnas(SUBMIT + extra + ["--dry-run"], capsys)
    assert code == 2
    assert message in err and err.count("\n") == 1, err


def test_balsam_submit_checks_problem_scheduler_and_search(monkeypatch, tmp_path, capsys):
    _submit_env(monkeypatch, tmp_path)
    bad_problem = [a.replace("polynome2.Problem", "polynome2.Nope") for a in SUBMIT]
    code, _, err = _hpcnas(bad_problem + ["-n", "2", "--job-mode", "serial", "--dry-run"], capsys)
    assert code == 2 and "cannot import problem" in err
    code, _, err = _hpcnas(["balsam-submit", "hps", "nosuch"] + SUBMIT[3:] + ["-n", "2", "--job-mode", "serial"], capsys)
    assert code == 2 and "no Balsam app runs 'hps nosuch'" in err
    monkeypatch.setenv("PATH", "/nonexistent")
    code, _, err = _hpcnas(SUBMIT + ["-n", "2", "--job-mode", "serial"], capsys)
    assert code == 2 and "submit command 'sbatch'" in err and "balsam-setup --machine" in err
    # a dry run only warns (previewing a Theta job script on a laptop is fine)
    code, out, err = _hpcnas(SUBMIT + ["-n", "2", "--job-mode", "serial", "--dry-run"], capsys)
    assert code == 0 and "warning: the submit command 'sbatch'" in err and "#SBATCH" in out


def test_balsam_submit_without_active_db_is_one_line_error(monkeypatch, tmp_path, capsys):
    _submit_env(monkeypatch, tmp_path)
    monkeypatch.delenv("BALSAM_DB_PATH")
    code, _, err = _hpcnas(SUBMIT + ["-n", "2", "--job-mode", "serial"], capsys)
    assert code == 2 and "no active Balsam DB" in err


# ------------------------------------------------------- launcher entry helpers
def test_launcher_moves_ensemble_master_to_a_free_port(monkeypatch):
    from hpcnas.balsam import launch

    cmd = "python serial_mode_timed.py --time-limit-min=5 --master-address vm:19876 --log-filename x.log"
    assert launch.with_port(cmd, 40001) == cmd.replace("vm:19876", "vm:40001")
    monkeypatch.delenv("HPCNAS_ENSEMBLE_PORT", raising=False)
    import socket

    port = launch.ensemble_port(socket.gethostname())
    assert port != 19876 and 1024 < port < 65536
    assert launch.ensemble_port("some-other-node") == 19876
    monkeypatch.setenv("HPCNAS_ENSEMBLE_PORT", "23456")
    assert launch.ensemble_port(socket.gethostname()) == 23456


def test_balsam_submit_job_script_uses_the_postgres_of_the_db(monkeypatch, tmp_path, capsys):
    """Issue 14: the job script's PATH gets the binaries of the DB's PG_VERSION, not PATH's first."""
    from hpcnas.balsam.pg_binaries import installed_dirs, major_version

    _submit_env(monkeypatch, tmp_path)
    dirs = installed_dirs(os.environ["PATH"])
    assert dirs, "no Postgres binaries on this machine"
    target = dirs[-1]  # the wheel's when installed: another version than PATH's first on Debian
    db = tmp_path / "db"
    (db / "balsamdb").mkdir(parents=True)
    (db / "server-info").write_text("{}")
    (db / "balsamdb" / "PG_VERSION").write_text(major_version(target) + "\n")
    monkeypatch.setenv("BALSAM_DB_PATH", str(db))
    code, out, err = _hpcnas(SUBMIT + ["-n", "2", "--job-mode", "serial", "--dry-run"], capsys)
    assert code == 0, err
    line = [l for l in out.splitlines() if l.startswith("export PATH=")][0]
    pg_bin = line.split(":")[1]
    assert major_version(pg_bin) == major_version(target), line
