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
