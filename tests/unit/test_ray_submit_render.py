"""ray-submit job scripts as text (and ``bash -n``), job-id parsing and CLI validation."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from hpcnas.cli.main import main
from hpcnas.core.errors import HpcnasError, UsageError
from hpcnas.ray_cluster.render import SCHEDULERS, RayJobSpec, parse_job_id, render_script, submit_command

SEARCH = ["hps", "ambs", "--problem", "tests.support.toy.Problem", "--run", "tests.support.toy.run", "--max-evals", "20"]


def spec(scheduler: str = "slurm", **changes) -> RayJobSpec:
    values = dict(name="EXP", nodes=4, time_minutes=90, queue="prod", scheduler=scheduler, exp_dir="/scratch/u/EXP",
                  search_args=SEARCH + ["--kappa", "1.96"], project="MyProj", python="/envs/x/bin/python",
                  pythonpath=["/home/u/work"], cpus_per_node=64, gpus_per_node=8)
    values.update(changes)
    return RayJobSpec(**values)


def bash_n(text: str, tmp_path) -> None:
    path = tmp_path / "job.sh"
    path.write_text(text)
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_every_script_is_valid_bash_and_runs_the_search_on_ray(scheduler, tmp_path):
    text = render_script(spec(scheduler))
    bash_n(text, tmp_path)
    assert text.startswith("#!/bin/bash\n") and text.endswith("\n")
    assert "export RAY_AUTH_MODE=token" in text and "export RAY_AUTH_TOKEN" in text
    assert 'start --head --node-ip-address="$HEAD_IP" --port="$PORT"' in text
    assert "RAY_OPTIONS=(--num-cpus=64 --num-gpus=8 --block)" in text
    assert 'wait --address "$ADDRESS" --nodes "$NUM_NODES" --timeout 300' in text
    assert "NUM_NODES=4" in text
    assert ('"$PYTHON" -m hpcnas.cli.main hps ambs --problem tests.support.toy.Problem --run tests.support.toy.run '
            '--max-evals 20 --kappa 1.96 --evaluator ray --ray-address "$ADDRESS"') in text
    assert "PYTHON=${HPCNAS_PYTHON:-/envs/x/bin/python}" in text
    assert "export PYTHONPATH=/home/u/work${PYTHONPATH:+:$PYTHONPATH}" in text
    assert "trap cleanup EXIT" in text and 'kill -TERM "$pid"' in text
    assert "ray stop" not in text  # never a machine-wide stop: only this job's processes


def test_slurm_script(tmp_path):
    text = render_script(spec("slurm", scheduler_flags=["--constraint=gpu"]))
    for line in ("#SBATCH --job-name=EXP", "#SBATCH --account=MyProj", "#SBATCH --partition=prod",
                 "#SBATCH --nodes=4", "#SBATCH --time=90", "#SBATCH --output=/scratch/u/EXP/ray-cluster-%j.out",
                 "#SBATCH --constraint=gpu"):
        assert line + "\n" in text
    assert 'mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")' in text
    assert 'srun --nodes=1 --ntasks=1 --overlap --nodelist="$node" "$PYTHON" -m ray.scripts.scripts start --address="$ADDRESS"' in text
    assert "JOB_ID=${SLURM_JOB_ID}" in text


def test_pbs_script_is_polaris_style(tmp_path):
    text = render_script(spec("pbs", scheduler_flags=["-l filesystems=home:eagle"]))
    for line in ("#PBS -N EXP", "#PBS -A MyProj", "#PBS -q prod", "#PBS -l select=4", "#PBS -l walltime=01:30:00",
                 "#PBS -l filesystems=home:eagle", "#PBS -o /scratch/u/EXP/ray-cluster.out"):
        assert line + "\n" in text
    assert 'mapfile -t NODES < <(sort -u "$PBS_NODEFILE")' in text
    assert 'mpiexec -n 1 --ppn 1 --hosts "$node" "$PYTHON" -m ray.scripts.scripts start' in text


def test_cobalt_script_is_thetagpu_style():
    text = render_script(spec("cobalt", project=""))
    for line in ("#COBALT -n 4", "#COBALT -t 90", "#COBALT -q prod", "#COBALT -O /scratch/u/EXP/ray-cluster"):
        assert line + "\n" in text
    assert "#COBALT -A" not in text  # no project: no directive
    assert 'mapfile -t NODES < <(sort -u "$COBALT_NODEFILE")' in text
    assert 'mpirun -n 1 -npernode 1 -host "$node"' in text


def test_options_left_out_are_left_to_ray_and_activation_is_sourced(tmp_path):
    text = render_script(spec("slurm", cpus_per_node=None, gpus_per_node=None, activate_script="/opt/my env/act.sh"))
    assert "RAY_OPTIONS=(--block)" in text
    assert "source '/opt/my env/act.sh'\n" in text
    assert text.index("source '/opt/my env/act.sh'") < text.index("PYTHON=")
    bash_n(text, tmp_path)


def test_search_arguments_are_shell_quoted(tmp_path):
    text = render_script(spec("slurm", search_args=["hps", "random", "--problem", "a.b; rm -rf /", "--run", "x.y"]))
    assert "--problem 'a.b; rm -rf /' --run x.y" in text
    bash_n(text, tmp_path)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(scheduler="lsf"), "choose one of slurm, pbs, cobalt"),
        (dict(nodes=0), "-n/--nodes must be a positive integer"),
        (dict(time_minutes=-5), "-t/--time-minutes must be a positive integer"),
        (dict(name="my exp"), "-w/--workflow 'my exp'"),
        (dict(exp_dir="relative/dir"), "absolute path without spaces"),
        (dict(exp_dir="/with space/dir"), "absolute path without spaces"),
        (dict(ray_port=70000), "--ray-port must be a TCP port"),
        (dict(gpus_per_node=-1), "--gpus-per-node must be >= 0"),
    ],
)
def test_bad_specs_are_one_line_usage_errors(changes, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        render_script(spec(**{"scheduler": "slurm", **changes}))


def test_submit_commands_and_job_ids():
    assert submit_command("slurm", "/x/job.sh") == ["sbatch", "--parsable", "/x/job.sh"]
    assert submit_command("pbs", "/x/job.sh") == ["qsub", "/x/job.sh"]
    assert parse_job_id("slurm", "1234\n") == "1234"
    assert parse_job_id("slurm", "1234;cluster\n") == "1234"
    assert parse_job_id("pbs", "5678.polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov\n") == (
        "5678.polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov")
    assert parse_job_id("cobalt", "Job routed to queue \"full-node\".\n91011\n") == "91011"
    with pytest.raises(HpcnasError, match="cannot read a job id from the qsub output"):
        parse_job_id("pbs", "qsub: Unknown queue")


def test_cli_dry_run_prints_the_script_and_creates_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["ray-submit", "hps", "ambs", "-w", "E1", "-n", "2", "-t", "10", "-q", "debug", "-A", "P",
                 "--scheduler", "pbs", "--dry-run", "--problem", "tests.support.toy.Problem",
                 "--run", "tests.support.toy.run", "--max-evals", "20", "--num-cpus-per-task", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("#!/bin/bash\n#PBS -N E1\n")
    # the search stops 3 minutes before the wall time; evaluator options pass through
    assert f"--num-cpus-per-task 2 --timeout 420 --output-dir {tmp_path}/E1 --evaluator ray" in out
    assert not (tmp_path / "E1").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--bogus", "1"], "unrecognized arguments: --bogus 1"),
        (["--evaluator", "local"], "--evaluator is set by ray-submit"),
        (["--output-dir=/x"], "--output-dir is set by ray-submit"),
        (["--surrogate-model", "XX"], "invalid choice: 'XX'"),
    ],
)
def test_cli_rejects_bad_search_options_before_submitting(extra, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["ray-submit", "hps", "ambs", "-w", "E2", "-n", "1", "-t", "10", "-q", "debug", "--scheduler",
                 "slurm", "--problem", "tests.support.toy.Problem", "--run", "tests.support.toy.run", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "E2").exists()


def test_cli_unimportable_problem_and_missing_scheduler(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["ray-submit", "hps", "random", "-w", "E3", "-n", "1", "-t", "10", "-q", "debug", "--scheduler", "cobalt",
            "--run", "tests.support.toy.run"]
    assert main(base + ["--problem", "nosuch.module.Problem"]) == 2
    assert "cannot import problem 'nosuch.module.Problem'" in capsys.readouterr().err
    if shutil.which("qsub") is None:
        assert main(base + ["--problem", "tests.support.toy.Problem"]) == 2
        assert "'qsub' is not on PATH" in capsys.readouterr().err
