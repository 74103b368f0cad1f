"""What ``balsam-submit`` and ``ray-submit`` share: the ``FAMILY SEARCH [options]`` sub-command,
the allocation options (``-w -n -t -q -A``) and the usage check before parsing."""
from __future__ import annotations

import argparse
from typing import Any, Callable, Sequence

from hpcnas.core.errors import UsageError


def add_submit_command(
    subparsers: Any, command: str, help: str, description: str, search_help: str, func: Callable[..., int]
) -> None:
    """Register ``hpcnas COMMAND FAMILY SEARCH [options]``; the options are parsed later by ``func``."""
    p = subparsers.add_parser(
        command, help=help,
        description=f"{description} Use 'hpcnas {command} FAMILY SEARCH --help' for the options.",
    )
    p.add_argument("family", nargs="?", metavar="FAMILY", help="hps or nas")
    p.add_argument("search", nargs="?", metavar="SEARCH", help=search_help)
    p.add_argument("options", nargs=argparse.REMAINDER, help="options (see --help)")
    p.set_defaults(func=func)


def add_allocation_options(group: Any, workflow_help: str, queue_help: str, project_help: str) -> None:
    """``-w/--workflow -n/--nodes -t/--time-minutes -q/--queue -A/--project`` of a batch job."""
    group.add_argument("-w", "--workflow", required=True, metavar="NAME", help=workflow_help)
    group.add_argument("-n", "--nodes", required=True, type=int, metavar="N", help="nodes of the allocation")
    group.add_argument("-t", "--time-minutes", required=True, type=int, metavar="MIN", help="wall time in minutes")
    group.add_argument("-q", "--queue", required=True, metavar="QUEUE", help=queue_help)
    group.add_argument("-A", "--project", default="", metavar="PROJECT", help=project_help)


def check_family_search(
    family: str | None, search: str | None, argv: Sequence[str],
    build_parser: Callable[[], argparse.ArgumentParser], usage: str,
) -> None:
    """``--help`` without FAMILY SEARCH prints the generic help (exit 0); a missing one is ``usage``."""
    if not family or not search or family.startswith("-") or search.startswith("-"):
        if {"-h", "--help"} & {*argv, family or "", search or ""}:
            build_parser().print_help()
            raise SystemExit(0)
        raise UsageError(usage)
