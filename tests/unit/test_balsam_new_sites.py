"""Polaris, Aurora (PBS Pro + Cray PALS) and Perlmutter, Frontier (Slurm): settings, job scripts, submit."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from hpcnas.balsam import sites
from hpcnas.balsam.render import LaunchRequest, read_template, render_template_text, template_context
from hpcnas.balsam.settings import balsam_default_settings, install_site
from hpcnas.balsam.submit_script import script_path, submit_command, submit_environment, submit_script
from hpcnas.core.errors import HpcnasError

NEW = ["polaris", "aurora", "perlmutter", "frontier"]
ENV = dict(balsam_bin="/home/u/venv/bin", balsam_db_path="/home/u/db", pg_bin="/usr/lib/pg/bin")
EXPECTED = {
    "polaris": ("HpcnasPalsCommand", "THETA_GPU", 32, "qsub"),
    "aurora": ("HpcnasPalsCommand", "THETA_GPU", 104, "qsub"),
    "perlmutter": ("HpcnasSrunCommand", "SLURM", 128, "sbatch"),
    "frontier": ("HpcnasSrunCommand", "SLURM", 56, "sbatch"),
}


def render(name: str, nodes: int = 2, minutes: int = 90, queue: str = "debug", project: str = "proj",
           environ: dict | None = None) -> str:
    site = sites.get_site(name)
    ctx = template_context(LaunchRequest(nodes=nodes, time_minutes=minutes, queue=queue, job_mode="mpi",
                                         project=project, wf_filter="WF"), **ENV)
    return render_template_text(read_template(site.template), {**ctx, **submit_environment(environ or {})})


def directives(script: str, prefix: str) -> list[str]:
    return [l[len(prefix):].strip() for l in script.splitlines() if l.startswith(prefix)]


@pytest.mark.parametrize("name", NEW)
def test_new_site_settings(name, tmp_path):
    site = sites.get_site(name)
    values = site.settings()
    template, detection, cores, submit = EXPECTED[name]
    assert (values["MPI_RUN_TEMPLATE"], values["WORKER_DETECTION_TYPE"], values["SERIAL_CORES_PER_NODE"]) == (
        template, detection, cores)
    assert submit_command(values) == submit
    assert site.launch_example.startswith("https://docs.")
    path = install_site(site, balsam_home=str(tmp_path))
    written = json.loads(open(path).read())
    assert set(balsam_default_settings()) <= set(written) and written["HPCNAS_SITE"] == name
    assert (tmp_path / written["JOB_TEMPLATE"]).read_text() == read_template(site.template)


def test_slurm_sites_bind_cores_and_old_sites_submit_through_balsam():
    assert sites.PERLMUTTER.settings()["HPCNAS_SRUN_CPU_BIND"] == "cores"
    assert sites.FRONTIER.settings()["HPCNAS_SRUN_CPU_BIND"] == "cores"
    for old in ("theta", "thetagpu", "slurm"):
        assert submit_command(sites.get_site(old).settings()) is None


@pytest.mark.parametrize("name", NEW)
def test_balsam_setup_cli_writes_the_new_machines(name, tmp_path, capsys):
    from hpcnas.cli.main import main

    assert main(["balsam-setup", "--machine", name, "--balsam-home", str(tmp_path)]) == 0
    assert f"for machine '{name}'" in capsys.readouterr().out
    assert json.loads((tmp_path / "settings.json").read_text())["MPI_RUN_TEMPLATE"] == EXPECTED[name][0]


def test_polaris_script_directives_and_forwarded_environment(tmp_path):
    script = render("polaris", environ={"VIRTUAL_ENV": "/home/u/my env", "PYTHONPATH": "/home/u/pkg:/x"})
    assert directives(script, "#PBS") == [
        "-A proj", "-q debug", "-l select=2:system=polaris", "-l place=scatter", "-l walltime=01:30:00",
        "-l filesystems=home:eagle", "-j oe"]
    lines = script.splitlines()
    assert "source '/home/u/my env/bin/activate'" in lines
    assert "export PYTHONPATH=/home/u/pkg:/x" in lines
    # PALS mpiexec is recorded before the virtualenv goes first on PATH
    assert lines.index('export HPCNAS_MPIRUN="${HPCNAS_MPIRUN:-$(command -v mpiexec)}"') < lines.index(
        "source '/home/u/my env/bin/activate'") < lines.index("export PATH=/home/u/venv/bin:/usr/lib/pg/bin:$PATH")
    assert 'export COBALT_NODEFILE="$PBS_NODEFILE"' in lines
    assert "-m hpcnas.balsam.launch --wf-filter=WF --job-mode=mpi --time-limit-minutes=88 &" in script
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_aurora_script_and_conda_env():
    script = render("aurora", nodes=4, minutes=30, environ={"CONDA_PREFIX": "/soft/conda/envs/hps"})
    assert "-l select=4" in directives(script, "#PBS") and "-l filesystems=home:flare" in directives(script, "#PBS")
    assert "conda activate /soft/conda/envs/hps" in script.splitlines()
    assert "PYTHONPATH" not in script
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_perlmutter_and_frontier_scripts():
    perl = render("perlmutter", queue="regular", environ={"PYTHONPATH": "/global/u/pkg"})
    assert directives(perl, "#SBATCH") == [
        "--account=proj", "--qos=regular", "--constraint=cpu", "--nodes=2", "--exclusive", "--time=90"]
    assert "export PYTHONPATH=/global/u/pkg" in perl.splitlines()
    front = render("frontier", queue="batch", environ={"HPCNAS_ACTIVATE": "source ~/envs/hps.sh"})
    assert directives(front, "#SBATCH")[:2] == ["--account=proj", "--partition=batch"]
    assert "source ~/envs/hps.sh" in front.splitlines()
    for script in (perl, front):
        assert 'export SLURM_HOSTS="$(scontrol show hostnames' in script
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def _run_prologue(script: str, path_dirs: list[str], tmp_path) -> subprocess.CompletedProcess:
    """Run the script up to the PATH line (where the launcher is recorded)."""
    lines = script.splitlines()
    end = next(i for i, l in enumerate(lines) if l.startswith("export PATH="))
    body = "\n".join(lines[:end + 1]) + '\nprintf "%s" "$HPCNAS_MPIRUN"\n'
    return subprocess.run(["bash", "-c", body], env={"PATH": ":".join(path_dirs), "HOME": str(tmp_path)},
                          capture_output=True, text=True, cwd=tmp_path)


def test_pbs_script_refuses_the_virtualenvs_mpiexec(tmp_path):
    venv = tmp_path / "venv" / "bin"
    pals = tmp_path / "pals" / "bin"
    for folder in (venv, pals):
        folder.mkdir(parents=True)
        (folder / "mpiexec").write_text("#!/bin/sh\n")
        (folder / "mpiexec").chmod(0o755)
    env = dict(ENV, balsam_bin=str(venv))
    ctx = template_context(LaunchRequest(nodes=1, time_minutes=10, queue="debug"), **env)
    script = render_template_text(read_template("polaris.pbs.tmpl"), ctx)
    ok = _run_prologue(script, [str(pals), str(venv), "/usr/bin", "/bin"], tmp_path)
    assert ok.returncode == 0 and ok.stdout == str(pals / "mpiexec")
    bad = _run_prologue(script, [str(venv), "/usr/bin", "/bin"], tmp_path)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "no Cray PALS mpiexec" in bad.stderr


def test_submit_script_runs_the_scheduler_and_reports_failure_in_one_line(tmp_path):
    record = tmp_path / "args"
    qsub = tmp_path / "qsub"
    qsub.write_text(f'#!/bin/sh\necho "$@" > {record}\necho 1234.polaris-pbs-01\n')
    qsub.chmod(0o755)
    path = script_path(str(tmp_path / "db"), "WF")
    assert path == str(tmp_path / "db" / "qsubmit" / "hpcnas-WF.sh")
    assert submit_script(str(qsub), "#!/bin/bash\ntrue\n", path) == "1234.polaris-pbs-01"
    assert record.read_text().split() == [path] and open(path).read() == "#!/bin/bash\ntrue\n"
    qsub.write_text("#!/bin/sh\necho 'qsub: Unknown queue' >&2\nexit 3\n")
    with pytest.raises(HpcnasError, match="qsub: Unknown queue") as info:
        submit_script(str(qsub), "x", path)
    assert "\n" not in str(info.value)
    with pytest.raises(HpcnasError, match="cannot run"):
        submit_script(str(tmp_path / "nope"), "x", path)


def test_balsam_submit_dry_run_polaris_renders_the_pbs_script(monkeypatch, tmp_path, capsys):
    from hpcnas.cli.main import main

    monkeypatch.setenv("HOME", str(tmp_path))
    install_site(sites.POLARIS, balsam_home=str(tmp_path / ".balsam"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "qsub").write_text("#!/bin/sh\nexit 99\n")
    (bindir / "qsub").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("BALSAM_DB_PATH", "/data/mydb")
    monkeypatch.setenv("PYTHONPATH", "/home/u/pkg")
    monkeypatch.setenv("VIRTUAL_ENV", "/home/u/venv")
    code = main(["balsam-submit", "hps", "ambs", "-w", "WF", "-n", "3", "-t", "60", "-q", "debug", "-A", "P",
                 "--job-mode", "mpi", "--problem", "hpcnas.benchmark.polynome2.Problem",
                 "--run", "hpcnas.benchmark.polynome2.run", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "would run: qsub SCRIPT" in out and "submit-launch" not in out
    assert "#PBS -l select=3:system=polaris" in out and "source /home/u/venv/bin/activate" in out
    assert "export PYTHONPATH=/home/u/pkg" in out and "source balsamactivate /data/mydb" in out


def test_balsam_submit_direct_sites_qsub_the_rendered_script_and_undo_on_failure(monkeypatch, tmp_path):
    """``submit`` with ``direct``: search job created, script submitted by qsub, job removed if qsub fails."""
    from types import SimpleNamespace

    import hpcnas.balsam.apps as apps
    from hpcnas.cli.balsam_submit_cmd import submit

    deleted = []
    job = SimpleNamespace(delete=lambda: deleted.append(True))
    monkeypatch.setattr(apps, "register_apps", lambda db=None, **kw: {})
    monkeypatch.setattr(apps, "create_search_job", lambda *a, **kw: job)
    db = SimpleNamespace(BalsamJob=SimpleNamespace(objects=SimpleNamespace(
        filter=lambda **kw: SimpleNamespace(count=lambda: 0))))
    plan = SimpleNamespace(workflow="WF", application="AMBS", search_args_text="--evaluator balsam",
                           job_name="search", node_packing_count=1, wall_minutes=60,
                           submit_launch=["balsam-must-not-run"])
    qsub = tmp_path / "qsub"
    qsub.write_text("#!/bin/sh\necho 77.pbs\n")
    qsub.chmod(0o755)
    path = script_path(str(tmp_path / "db"), "WF")
    assert submit(plan, db, (str(qsub), "#!/bin/bash -l\n", path)) == "77.pbs"
    assert open(path).read() == "#!/bin/bash -l\n" and not deleted
    qsub.write_text("#!/bin/sh\necho 'qsub: would exceed queue limit' >&2\nexit 1\n")
    with pytest.raises(HpcnasError, match="would exceed queue limit"):
        submit(plan, db, (str(qsub), "#!/bin/bash -l\n", path))
    assert deleted == [True]


def test_balsam_submit_hands_sched_flags_that_look_like_options_to_submit_launch():
    """``--sched-flags=--no-kill`` reached ``balsam submit-launch --sched-flags --no-kill``,
    which Balsam's parser refused ('expected one argument')."""
    from balsam.scripts.cli import make_parser

    from hpcnas.cli.balsam_submit_cmd import make_plan, parse_submit

    args, rest = parse_submit("hps", "random", [
        "-w", "wf1", "-n", "4", "-t", "8", "-q", "debug", "--sched-flags=--no-kill",
        "--job-mode", "serial", "--problem", "hpcnas.benchmark.polynome2.Problem",
        "--run", "hpcnas.benchmark.polynome2.run"])
    plan = make_plan("hps", "random", args, rest)
    parsed = make_parser().parse_args(plan.submit_launch[1:])
    assert parsed.sched_flags == "--no-kill" and parsed.nodes == 4
