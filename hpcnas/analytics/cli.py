"""``hpcnas-analytics``: one module per command under :mod:`hpcnas.analytics`.

Each command module exposes ``add_parser(subparsers)`` that registers its sub-parser with
``func(args) -> int``. User errors print one line and exit 2 (through
:func:`hpcnas.cli.main.run_cli`); ``--debug`` or ``HPCNAS_DEBUG=1`` shows the traceback.

Where an experiment comes from (:func:`experiment_from_args`):

* ``EXPERIMENT`` = an output directory or a results.csv (``[LABEL=]PATH``);
* ``--workflow WF`` (and ``--db PATH``, default ``$BALSAM_DB_PATH``): that workflow of the
  Balsam DB; with an output directory too, the DB gives the timelines (utilization,
  throughput) and the directory's results.csv the objectives;
* ``balsam:WF`` as EXPERIMENT is the same as ``--workflow WF``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from hpcnas.analytics.experiment import Experiment, load_experiment, parse_spec
from hpcnas.core.errors import UsageError

COMMAND_MODULES = (
    "hpcnas.analytics.utilization",
    "hpcnas.analytics.throughput",
    "hpcnas.analytics.search",
    "hpcnas.analytics.topk",
    "hpcnas.analytics.pareto",
    "hpcnas.analytics.params",
    "hpcnas.analytics.compare",
    "hpcnas.analytics.report",
    "hpcnas.analytics.serve",
)


def options_parser() -> argparse.ArgumentParser:
    """Options shared by every command (a parent parser)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-o", "--output-dir", default="analytics",
                   help="where PNG, JSON and CSV files go (default ./analytics)")
    p.add_argument("--db", default=None,
                   help="Balsam DB directory (default: the active one, $BALSAM_DB_PATH)")
    p.add_argument("--workflow", default=None, help="Balsam workflow to analyse")
    p.add_argument("--nodes", type=float, default=None,
                   help="nodes (or workers) available; default: the launcher's node count "
                        "from the DB logs, num_workers in search.json, or the peak busy")
    p.add_argument("--job-mode", choices=("auto", "serial", "mpi"), default="auto",
                   help="Balsam launcher job mode: serial packs 1-node jobs by "
                        "node_packing_count; mpi gives whole nodes (default auto: pack "
                        "jobs that serial mode would pack)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return p


def source_parser() -> argparse.ArgumentParser:
    """Shared options plus one optional EXPERIMENT positional."""
    p = argparse.ArgumentParser(add_help=False, parents=[options_parser()])
    p.add_argument("experiment", nargs="?", default=None,
                   help="output directory or results.csv of a search ([LABEL=]PATH), or "
                        "balsam:WORKFLOW")
    return p


def experiment_from_args(args: argparse.Namespace, spec: str | None = None) -> Experiment:
    spec = spec if spec is not None else getattr(args, "experiment", None)
    workflow = args.workflow
    if workflow is not None and not workflow.strip():
        raise UsageError("--workflow is empty: give the name of a workflow of the Balsam DB "
                         "(balsam ls --wf lists them)")
    db_known = bool(args.db or os.environ.get("BALSAM_DB_PATH"))
    if spec is None:
        if workflow is None and not db_known:
            raise UsageError("no experiment given: pass a search's output directory or "
                             "results.csv, or --workflow WF (with --db PATH or an active "
                             "Balsam DB)")
        return load_experiment(f"balsam:{workflow or ''}", db=args.db, nodes=args.nodes,
                               job_mode=args.job_mode)
    label, source = parse_spec(spec)
    if workflow is not None and not source.startswith("balsam:"):
        exp = load_experiment(f"balsam:{workflow}", db=args.db, nodes=args.nodes,
                              job_mode=args.job_mode, results=source)
        exp.label = label or exp.label
        return exp
    return load_experiment(spec, db=args.db, nodes=args.nodes, job_mode=args.job_mode)


def build_parser() -> argparse.ArgumentParser:
    from hpcnas.cli.main import OneLineParser  # argparse errors: one line, exit 2

    parser = OneLineParser(
        prog="hpcnas-analytics",
        description="Plots and tables from a search's results.csv or a Balsam DB: node "
                    "utilization, throughput, search curves, top-k, comparisons, HTML report.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


#: exit code of a command whose reader went away (``... | head -1``), as a shell reports SIGPIPE
BROKEN_PIPE_EXIT = 141


def main(argv: Sequence[str] | None = None) -> int:
    from hpcnas.cli.main import dispatch

    if argv is not None:
        return dispatch(build_parser(), argv)
    try:
        code = dispatch(build_parser(), sys.argv[1:])
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader closed the pipe: stop quietly, and keep Python's exit-time flush of the
        # same stdout from printing another error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return BROKEN_PIPE_EXIT
    return code

if __name__ == "__main__":
    sys.exit(main())
