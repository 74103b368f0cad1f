"""``hpcnas ray-submit FAMILY SEARCH ...``: a search on a Ray cluster inside one batch job.

::

    hpcnas ray-submit hps ambs -w EXP -n NODES -t MINUTES -A PROJECT -q QUEUE \\
        --scheduler cobalt|pbs|slurm [-as ACTIVATE_SCRIPT] [--cpus-per-node C] [--gpus-per-node G] \\
        [--dry-run] --problem P --run R [search and ray evaluator options]

1. validates everything first (one-line errors): the batch options, every search option (parsed
   by the search's own parser together with the ray evaluator's options), the problem and run
   function importable (skipped with an activation script, which may provide them), the
   submit program on PATH;
2. creates the experiment directory (``--exp-dir``, default ``./EXP``) and writes
   ``ray-submit.sh`` there, rendered from ``jobscripts/ray/<scheduler>.sh.j2``
   (:mod:`hpcnas.ray_cluster.render`): Ray head on the first node, one worker per other node,
   wait for all nodes, ``hpcnas FAMILY SEARCH ... --evaluator ray --ray-address HEAD:PORT
   --output-dir EXP_DIR``, stop the cluster;
3. submits it with ``sbatch`` (Slurm) or ``qsub`` (PBS, Cobalt) and prints the job id.

Without ``--timeout`` among the search options the search stops 3 minutes before the wall time.
``--dry-run`` prints the script and creates or submits nothing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from typing import Any, Sequence

from hpcnas.core import environment
from hpcnas.cli.submit_common import add_allocation_options, add_submit_command, check_family_search
from hpcnas.core.errors import HpcnasError, UsageError

COMMAND = "ray-submit"
#: options the job script sets itself
RESERVED = ("--evaluator", "--ray-address", "--output-dir")


def add_parser(subparsers: Any) -> None:
    add_submit_command(
        subparsers, COMMAND,
        help="submit a search that runs on a Ray cluster inside one batch job (qsub/sbatch)",
        description="Render and submit a job script that starts Ray on the allocation and runs the "
        "search with the ray evaluator.",
        search_help="search algorithm (ambs, random, asha, ...)", func=_run,
    )


def build_parser(family: str = "FAMILY", search: str = "SEARCH") -> argparse.ArgumentParser:
    from hpcnas.cli.main import OneLineParser
    from hpcnas.ray_cluster.render import SCHEDULERS

    parser = OneLineParser(
        prog=f"hpcnas {COMMAND} {family} {search}",
        description="Submit a search on a Ray cluster in one batch job; unknown options go to the search.",
        allow_abbrev=False,
    )
    job = parser.add_argument_group("batch job")
    add_allocation_options(job, workflow_help="experiment name (job name, directory)",
                           queue_help="queue (Cobalt, PBS) or partition (Slurm)",
                           project_help="project / account to charge")
    job.add_argument("--scheduler", choices=sorted(SCHEDULERS),
                     help="batch scheduler of the machine (default: the site of hpcnas balsam-setup)")
    job.add_argument("-as", "--activate-script", metavar="PATH",
                     help="script sourced first on the nodes (module loads, conda activate)")
    job.add_argument("--exp-dir", metavar="DIR", help="experiment directory (default ./NAME)")
    job.add_argument("--cpus-per-node", type=int, metavar="C", help="CPUs Ray offers per node (default: all)")
    job.add_argument("--gpus-per-node", type=int, metavar="G", help="GPUs Ray offers per node (default: detected)")
    job.add_argument("--ray-port", type=int, default=6379, metavar="PORT", help="port of the Ray head (default 6379)")
    job.add_argument("--scheduler-flags", action="append", default=[], metavar="DIRECTIVE",
                     help="extra scheduler directive line, e.g. '-l filesystems=home:eagle' (repeatable)")
    job.add_argument("--dry-run", action="store_true", help="print the job script; create and submit nothing")
    return parser


def parse_submit(family: str | None, search: str | None, argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    check_family_search(family, search, argv, build_parser,
                        f"usage: hpcnas {COMMAND} FAMILY SEARCH -w NAME -n NODES -t MINUTES -q QUEUE "
                        "--scheduler cobalt|pbs|slurm --problem P --run R [search options]")
    if family not in ("hps", "nas"):
        raise UsageError(f"unknown family '{family}': choose hps or nas")
    args, rest = build_parser(family, search).parse_known_args(list(argv))
    if args.scheduler is None:
        from hpcnas.cli.deephyper_compat import site_scheduler

        args.scheduler = site_scheduler()
    return args, rest


def make_spec(family: str, search: str, args: argparse.Namespace, rest: Sequence[str]) -> Any:
    """Validate the search options and build the :class:`RayJobSpec` (no side effects)."""
    from hpcnas.cli import search_cmd
    from hpcnas.ray_cluster.render import RayJobSpec

    for option in rest:
        name = option.split("=", 1)[0]
        if name in RESERVED:
            raise UsageError(f"{name} is set by {COMMAND} (the Ray head's address, the experiment directory); leave it out")
    search_args = [family, search, *rest]
    parsed, _, _ = search_cmd.parse(family, search, [*rest, "--evaluator", "ray"])
    if not args.activate_script:
        search_cmd._load_problem(family, parsed.problem)
        from hpcnas.evaluator.runner import resolve_run_function

        resolve_run_function(parsed.run)
    elif not os.path.isfile(args.activate_script):
        raise UsageError(f"-as/--activate-script '{args.activate_script}' does not exist")
    if parsed.timeout is None:
        search_args += ["--timeout", str(max(60, (args.time_minutes - 3) * 60))]
    exp_dir = os.path.abspath(args.exp_dir or args.workflow)
    search_args += ["--output-dir", exp_dir]
    spec = RayJobSpec(
        name=args.workflow,
        nodes=args.nodes,
        time_minutes=args.time_minutes,
        queue=args.queue,
        scheduler=args.scheduler,
        exp_dir=exp_dir,
        search_args=search_args,
        project=args.project,
        activate_script=os.path.abspath(args.activate_script) if args.activate_script else None,
        cpus_per_node=args.cpus_per_node,
        gpus_per_node=args.gpus_per_node,
        ray_port=args.ray_port,
        python=environment.text("HPCNAS_PYTHON") or ("python" if args.activate_script else sys.executable),
        scheduler_flags=args.scheduler_flags,
    )
    spec.check()
    return spec


def submit(spec: Any, script: str) -> str:
    """Write the script into the experiment directory and submit it; returns the job id."""
    from hpcnas.ray_cluster.render import SCHEDULERS, parse_job_id, submit_command

    program = SCHEDULERS[spec.scheduler][1]
    if shutil.which(program) is None:
        raise HpcnasError(f"'{program}' is not on PATH: run {COMMAND} on a login node of a {spec.scheduler} machine")
    os.makedirs(spec.exp_dir, exist_ok=True)
    path = os.path.join(spec.exp_dir, "ray-submit.sh")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(script)
    os.chmod(path, 0o755)
    proc = subprocess.run(submit_command(spec.scheduler, path), capture_output=True, text=True, cwd=spec.exp_dir)
    if proc.returncode != 0:
        detail = " ".join((proc.stderr or proc.stdout).split())[:300]
        raise HpcnasError(f"{program} refused the job script {path} (exit {proc.returncode}): {detail}")
    return parse_job_id(spec.scheduler, proc.stdout)


def _run(args: argparse.Namespace) -> int:
    from hpcnas.ray_cluster.render import render_script

    options = list(args.options)
    sub_args, rest = parse_submit(args.family, args.search, options)
    spec = make_spec(args.family, args.search, sub_args, rest)
    script = render_script(spec)
    if sub_args.dry_run:
        sys.stdout.write(script)
        return 0
    job_id = submit(spec, script)
    print(f"hpcnas: submitted {spec.scheduler} job {job_id}: {spec.nodes} node(s), {spec.time_minutes} min; "
          f"script and results in {spec.exp_dir}", flush=True)
    return 0
