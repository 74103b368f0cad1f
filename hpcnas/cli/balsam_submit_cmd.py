"""``hpcnas balsam-submit FAMILY SEARCH ...``: a search as one batch job, in one step.

Like ``deephyper balsam-submit``::

    hpcnas balsam-submit hps ambs -w TEST -n 4 -t 60 -q QUEUE -A PROJECT --job-mode serial \\
        --problem P --run R [--num-nodes-per-eval N --num-ranks-per-node R \\
        --num-threads-per-rank T --num-evals-per-node K] [search options]

1. validates everything first (one-line errors): counts > 0, job mode, the worker arithmetic
   of the allocation (:func:`hpcnas.balsam.workers.plan_workers`), every search option (parsed
   by the search's own parser), problem and run function importable, the scheduler's submit
   command present, an active Balsam DB, a workflow name not used yet;
2. registers the hpcnas Balsam apps;
3. creates the search job (the master: application ``AMBS``/``RANDOM``/``AGE``/``AGEBO``, which
   runs ``hpcnas hps ambs --evaluator balsam ...`` as a 1-node serial job in workflow ``-w``);
4. runs ``balsam submit-launch`` which renders the site's job script (``~/.balsam/job-templates``,
   written by ``hpcnas balsam-setup --machine NAME``) and submits it with ``qsub``/``sbatch``;
   sites with ``HPCNAS_SUBMIT`` (Polaris, Aurora, Perlmutter, Frontier) get the script rendered
   here, with the submitting environment forwarded (:mod:`hpcnas.balsam.submit_script`).

``--dry-run`` stops after step 1 and prints the search job and the job script that would be
submitted, without touching the DB. Unknown options are passed to the search.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

from hpcnas.cli.submit_common import add_allocation_options, add_submit_command, check_family_search
from hpcnas.core.errors import HpcnasError, UsageError

COMMAND = "balsam-submit"


def add_parser(subparsers: Any) -> None:
    """Register ``balsam-submit``; its options are parsed by :func:`parse_submit`."""
    add_submit_command(
        subparsers, COMMAND,
        help="create a search job in the Balsam DB and submit a launcher for it (qsub/sbatch)",
        description="Register the apps, create the search job and call `balsam submit-launch`.",
        search_help="search algorithm (ambs, random, age, agebo)", func=_run,
    )


def build_parser(family: str = "FAMILY", search: str = "SEARCH") -> argparse.ArgumentParser:
    from hpcnas.cli.main import OneLineParser

    parser = OneLineParser(
        prog=f"hpcnas {COMMAND} {family} {search}",
        description="Submit a search as one batch job through Balsam; unknown options go to the search.",
    )
    req = parser.add_argument_group("batch job")
    add_allocation_options(req, workflow_help="Balsam workflow of the search",
                           queue_help="queue (Cobalt) or partition (Slurm)",
                           project_help="project / account (default: the site's)")
    req.add_argument("-j", "--job-mode", required=True, choices=("serial", "mpi"), help="Balsam launcher job mode")
    req.add_argument("--sched-flags", default="", metavar="FLAGS", help="extra scheduler directives")
    req.add_argument("--job-name", default="search", metavar="NAME", help="name of the search job (default search)")
    req.add_argument("--dry-run", action="store_true", help="validate and print; create and submit nothing")
    ev = parser.add_argument_group("search and evaluations")
    ev.add_argument("-p", "--problem", required=True, metavar="PATH", help="dotted path of the problem")
    ev.add_argument("-r", "--run", required=True, metavar="PATH", help="dotted path of the run function")
    ev.add_argument("--num-nodes-per-eval", type=int, default=1, metavar="N", help="nodes per evaluation")
    ev.add_argument("--num-ranks-per-node", type=int, default=1, metavar="R", help="MPI ranks per node")
    ev.add_argument("--num-threads-per-rank", type=int, default=1, metavar="T", help="threads per rank")
    ev.add_argument("--num-evals-per-node", type=int, default=1, metavar="K",
                    help="evaluations packed on a node in serial mode")
    return parser


@dataclass
class SubmitPlan:
    """Everything ``balsam-submit`` will do, computed and validated without side effects."""

    family: str
    search: str
    application: str
    workflow: str
    job_name: str
    search_args: list[str]
    node_packing_count: int
    wall_minutes: int
    submit_launch: list[str]
    worker_text: str
    notes: list[str] = field(default_factory=list)

    @property
    def search_args_text(self) -> str:
        return " ".join(shlex.quote(a) for a in self.search_args)


def parse_submit(family: str | None, search: str | None, argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Parse the options; returns ``(args, options left for the search)``."""
    check_family_search(family, search, argv, build_parser,
                        f"usage: hpcnas {COMMAND} FAMILY SEARCH -w WF -n N -t MIN -q QUEUE --job-mode "
                        "serial|mpi --problem P --run R [search options] (FAMILY is hps or nas)")
    parser = build_parser(family, search)
    args, rest = parser.parse_known_args(list(argv))
    return args, rest


def make_plan(family: str, search: str, args: argparse.Namespace, rest: Sequence[str]) -> SubmitPlan:
    """Validate ``args`` (no DB access) and compute the search job and submit command."""
    from hpcnas.balsam.apps import SEARCH_APPS
    from hpcnas.balsam.workers import plan_workers

    for flag, value in (("-n/--nodes", args.nodes), ("-t/--time-minutes", args.time_minutes),
                        ("--num-nodes-per-eval", args.num_nodes_per_eval),
                        ("--num-ranks-per-node", args.num_ranks_per_node),
                        ("--num-threads-per-rank", args.num_threads_per_rank),
                        ("--num-evals-per-node", args.num_evals_per_node)):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    if not args.workflow.strip() or any(c.isspace() for c in args.workflow):
        raise UsageError(f"-w/--workflow must be one word, got {args.workflow!r}")
    if not args.queue.strip():
        raise UsageError("-q/--queue must not be empty")
    by_cli = {cli: name for name, (cli, _) in SEARCH_APPS.items()}
    application = by_cli.get(f"{family} {search}")
    if application is None:
        known = ", ".join(sorted(by_cli))
        raise UsageError(f"no Balsam app runs '{family} {search}': choose one of {known}")
    if any(a == "--evaluator" or a.startswith("--evaluator=") for a in rest):
        raise UsageError("balsam-submit always uses --evaluator balsam; remove --evaluator")
    if args.num_threads_per_rank > 1 and args.job_mode == "serial":
        raise UsageError("--num-threads-per-rank > 1 needs --job-mode mpi (serial jobs are single-threaded "
                         "slots; use --num-evals-per-node to give each evaluation more of a node)")

    evals_per_node = args.num_evals_per_node
    packing = evals_per_node if args.job_mode == "serial" else 1
    plan = plan_workers(
        args.nodes, args.job_mode, nodes_per_eval=args.num_nodes_per_eval,
        ranks_per_node=args.num_ranks_per_node, evals_per_node=evals_per_node,
        master_in_launcher=True, master_packing=packing,
    )
    search_args = ["--evaluator", "balsam", "--problem", args.problem, "--run", args.run]
    for flag, value in (("--num-nodes-per-eval", args.num_nodes_per_eval),
                        ("--num-ranks-per-node", args.num_ranks_per_node),
                        ("--num-threads-per-rank", args.num_threads_per_rank),
                        ("--num-evals-per-node", args.num_evals_per_node)):
        if value != 1:
            search_args += [flag, str(value)]
    search_args += list(rest)
    # the search's own parser checks every option now, not hours later on the compute node
    from hpcnas.cli.search_cmd import parse as parse_search

    parse_search(family, search, search_args)
    from hpcnas.core.loading import load_attribute

    load_attribute(args.problem, "problem")
    load_attribute(args.run, "run function")

    submit = [
        _balsam_exe(), "submit-launch", "-n", str(args.nodes), "-t", str(args.time_minutes),
        "-q", args.queue, "-A", args.project, "--job-mode", args.job_mode, "--wf-filter", args.workflow,
    ]
    if args.sched_flags:
        submit.append(f"--sched-flags={args.sched_flags}")  # one word: a value like --no-kill is not an option
    return SubmitPlan(
        family=family, search=search, application=application, workflow=args.workflow,
        job_name=args.job_name, search_args=search_args, node_packing_count=packing,
        wall_minutes=args.time_minutes, submit_launch=submit, worker_text=plan.explanation,
    )


def _db_env() -> dict[str, str]:
    """This environment with the Postgres binaries that serve the active DB first on ``PATH``
    (its ``PG_VERSION``), so the job script starts the DB with them on the compute node."""
    from hpcnas.balsam.db import postgres_env

    db = os.environ.get("BALSAM_DB_PATH", "")
    if not db or not os.path.isfile(os.path.join(db, "server-info")):
        return dict(os.environ)
    return postgres_env(db_path=db)


def _balsam_exe() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "balsam")
    return here if os.access(here, os.X_OK) else (shutil.which("balsam") or "balsam")


def check_scheduler(balsam_home: str | None = None, strict: bool = True) -> dict[str, Any]:
    """The installed Balsam settings, after checking the scheduler's submit command exists.

    With ``strict=False`` (dry runs) a missing submit command is only a warning on stderr.
    """
    from hpcnas.balsam.settings import balsam_home_dir

    path = os.path.join(balsam_home_dir(balsam_home), "settings.json")
    try:
        with open(path, encoding="utf-8") as fh:
            values = json.load(fh)
    except (OSError, ValueError):
        raise HpcnasError(f"no Balsam settings at {path}: run hpcnas balsam-setup --machine NAME first") from None
    scheduler = values.get("SCHEDULER_CLASS", "")
    exe = "sbatch" if scheduler == "SlurmScheduler" else values.get("SCHEDULER_SUBMIT_EXE", "qsub")
    if shutil.which(exe) is None:
        site = values.get("HPCNAS_SITE", "Balsam's default (theta)")
        message = (
            f"the submit command '{exe}' of {scheduler} (site {site}) is not on this machine: run "
            "hpcnas balsam-setup --machine NAME for this machine (hpcnas balsam-setup --list)"
        )
        if strict:
            raise HpcnasError(message)
        print(f"hpcnas: warning: {message}", file=sys.stderr)
    template = os.path.join(balsam_home_dir(balsam_home), values.get("JOB_TEMPLATE", ""))
    if not os.path.isfile(template):
        raise HpcnasError(f"job template {template} is missing: run hpcnas balsam-setup --machine NAME")
    return values


def dry_run_script(plan: SubmitPlan, args: argparse.Namespace, settings: dict[str, Any]) -> str:
    """The job script ``balsam submit-launch`` will render, from the installed template."""
    from hpcnas.balsam.render import LaunchRequest, render_template_text, template_context
    from hpcnas.balsam.settings import balsam_home_dir
    from hpcnas.balsam.submit_script import submit_environment

    with open(os.path.join(balsam_home_dir(), settings["JOB_TEMPLATE"]), encoding="utf-8") as fh:
        text = fh.read()
    pg_ctl = shutil.which("pg_ctl", path=_db_env().get("PATH"))
    ctx = template_context(
        LaunchRequest(nodes=args.nodes, time_minutes=args.time_minutes, queue=args.queue,
                      job_mode=args.job_mode, project=args.project, wf_filter=args.workflow,
                      sched_flags=args.sched_flags),
        balsam_bin=os.path.dirname(_balsam_exe()),
        balsam_db_path=os.environ.get("BALSAM_DB_PATH", "$BALSAM_DB_PATH"),
        pg_bin=os.path.dirname(pg_ctl) if pg_ctl else "",
        default_project=settings.get("DEFAULT_PROJECT", ""),
    )
    return render_template_text(text, {**ctx, **submit_environment()})


def submit(plan: SubmitPlan, db: Any, direct: tuple[str, str, str] | None = None) -> str:
    """Register apps, create the search job, run ``balsam submit-launch``; returns its output.

    ``direct=(command, script, path)`` submits the rendered ``script`` with ``command`` instead.
    """
    from hpcnas.balsam.apps import create_search_job, register_apps

    existing = db.BalsamJob.objects.filter(workflow=plan.workflow).count()
    if existing:
        raise HpcnasError(
            f"workflow '{plan.workflow}' already has {existing} job(s): choose another -w, or resume it "
            f"with: balsam submit-launch ... --wf-filter {plan.workflow}"
        )
    register_apps(db=db)
    job = create_search_job(
        db, plan.application, plan.search_args_text, plan.workflow, name=plan.job_name,
        node_packing_count=plan.node_packing_count, num_nodes=1, wall_time_minutes=plan.wall_minutes,
    )
    if direct is not None:
        from hpcnas.balsam.submit_script import submit_script

        try:
            return submit_script(*direct)
        except HpcnasError:
            job.delete()
            raise
    # Balsam's job template puts the first pg_ctl on PATH into the job script: the DB's own version
    proc = subprocess.run(plan.submit_launch, capture_output=True, text=True, env=_db_env())
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        job.delete()
        last = output.splitlines()[-1] if output else f"exit code {proc.returncode}"
        raise HpcnasError(f"balsam submit-launch failed: {last}")
    return output


def _run(args: argparse.Namespace) -> int:
    from hpcnas.cli.deephyper_compat import submit_layout

    args.search, args.options = submit_layout(args.family, args.search, args.options)
    sub_args, rest = parse_submit(args.family, args.search, args.options)
    plan = make_plan(args.family, args.search, sub_args, rest)
    settings = check_scheduler(strict=not sub_args.dry_run)
    print(f"hpcnas: {plan.worker_text}")
    print(f"hpcnas: search job '{plan.job_name}' in workflow {plan.workflow}: {plan.application} {plan.search_args_text}")
    from hpcnas.balsam.submit_script import script_path, submit_command

    command = submit_command(settings)
    if sub_args.dry_run:
        would = f"{command} SCRIPT" if command else " ".join(shlex.quote(a) for a in plan.submit_launch)
        print("hpcnas: dry run; would run: " + would)
        print(dry_run_script(plan, sub_args, settings))
        return 0
    if settings.get("SCHEDULER_CLASS") == "SlurmScheduler" and os.environ.get("BALSAM_DB_PATH"):
        from hpcnas.balsam.reach import check_slurm_partition

        check_slurm_partition(os.environ["BALSAM_DB_PATH"], sub_args.queue)  # before anything is created
    elif os.environ.get("BALSAM_DB_PATH"):  # Cobalt, PBS: the nodes are known only once the job runs
        from hpcnas.balsam.reach import loopback_only_warning

        warning = loopback_only_warning(os.environ["BALSAM_DB_PATH"])
        if warning:
            print(warning, file=sys.stderr)
    from hpcnas.balsam.connect import connect

    db = connect()
    direct = None
    if command:
        path = script_path(os.environ.get("BALSAM_DB_PATH", "."), plan.workflow)
        direct = (command, dry_run_script(plan, sub_args, settings), path)
    output = submit(plan, db, direct)
    for line in output.splitlines():
        print(f"hpcnas: {line}")
    return 0
