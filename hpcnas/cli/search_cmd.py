"""``hpcnas hps SEARCH ...`` and ``hpcnas nas SEARCH ...``: run a search with the master loop.

The same options are taken by ``python -m hpcnas.search.hps.ambs ...`` (search modules call
:func:`module_main`), which is how Balsam apps start a search.

Options come from three places, so no list here needs editing when a backend is added:
the common options below, ``SearchClass.add_arguments(parser)`` and
``EvaluatorClass.add_arguments(parser)`` of the evaluator chosen with ``--evaluator`` (each
option's ``dest`` is a constructor keyword; options left unset are not passed, so the
constructor's default applies).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Sequence

from hpcnas.cli.main import OneLineParser, run_cli
from hpcnas.core import interrupts
from hpcnas.core.errors import SearchFailed, UsageError
from hpcnas.search.progress import DEFAULT_INTERVAL

FAMILIES = {
    "hps": "hyper-parameter search",
    "nas": "neural architecture search",
}


def add_parser(subparsers: Any) -> None:
    """Register ``hps`` and ``nas``; the search name and its options are parsed by :func:`main`."""
    for family, title in FAMILIES.items():
        parser = subparsers.add_parser(
            family,
            help=f"run a {title} (hpcnas {family} SEARCH --help lists its options)",
            description=f"Run a {title}. Use 'hpcnas {family} SEARCH --help' for the options of SEARCH.",
        )
        parser.add_argument("search", nargs="?", metavar="SEARCH", help="search algorithm")
        parser.add_argument("options", nargs=argparse.REMAINDER, help="options of the search")
        # a search handles SIGINT/SIGTERM itself, in phases (hpcnas.core.interrupts)
        parser.set_defaults(func=lambda args, family=family: _dispatch(family, args), manages_signals=True)


def _dispatch(family: str, args: argparse.Namespace) -> int:
    from hpcnas.search.base import search_names

    if not args.search:
        raise UsageError(f"name a search: hpcnas {family} {{{','.join(search_names(family))}}} --help")
    options = list(args.options)
    if args.debug and "--debug" not in options:
        options.append("--debug")
    return main(family, args.search, options)


def module_main(family: str, name: str, argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m hpcnas.search.<family>.<name>``: parse ``argv`` and run."""
    if argv is None:  # this process is the command
        interrupts.cli_process()
        argv = list(sys.argv[1:])
        return interrupts.finish(run_cli(lambda: main(family, name, argv), debug="--debug" in argv))
    argv = list(argv)
    return run_cli(lambda: main(family, name, argv), debug="--debug" in argv)


def main(family: str, name: str, argv: Sequence[str]) -> int:
    """Parse the options of ``hpcnas <family> <name>`` and run the search; returns the exit code.

    Until the master starts, SIGINT/SIGTERM end a command-line process at once (nothing is
    recorded yet); during the search they stop it cleanly (:mod:`hpcnas.core.interrupts`)."""
    from hpcnas.cli.deephyper_compat import translate

    with interrupts.setup_phase():
        argv = translate(argv)  # once here (its notes once); parse's second pass changes nothing
        served = serve_evaluations(argv)
        if served is not None:  # a worker process of the evaluator (mpi: ranks 1..N-1)
            return served
        args, search_dests, evaluator_dests = parse(family, name, argv)
        return run_search(family, name, args, search_dests, evaluator_dests)


def serve_evaluations(argv: Sequence[str]) -> int | None:
    """Before anything is parsed or loaded: where the chosen evaluator's workers are processes of
    this same command (``mpirun -n N hpcnas hps ambs --evaluator mpi``: ranks 1..N-1), serve
    evaluations here and return the exit code (:meth:`~hpcnas.evaluator.base.Evaluator.serve`);
    ``None`` in the process that runs the search, and for ``--help``."""
    from hpcnas.evaluator.base import get_evaluator_class

    if "-h" in argv or "--help" in argv:
        return None
    pre = OneLineParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--evaluator", default="local")
    return get_evaluator_class(pre.parse_known_args(list(argv))[0].evaluator).serve()


def parse(family: str, name: str, argv: Sequence[str]) -> tuple[argparse.Namespace, list[str], list[str]]:
    """Build the parser for this search and the chosen evaluator, then parse ``argv`` strictly
    (DeepHyper's spellings first become hpcnas's: :mod:`hpcnas.cli.deephyper_compat`)."""
    from hpcnas.cli.deephyper_compat import translate

    argv = translate(argv)
    parser, search_dests, evaluator_dests = build_parser(family, name, argv)
    args = parser.parse_args(list(argv))
    _validate(args)
    return args, search_dests, evaluator_dests


def build_parser(family: str, name: str, argv: Sequence[str]) -> tuple[argparse.ArgumentParser, list[str], list[str]]:
    """The parser of ``hpcnas <family> <name>`` with the evaluator ``argv`` chooses (default local),
    and the ``dest`` s of the search's and of the evaluator's options."""
    from hpcnas.evaluator.base import get_evaluator_class
    from hpcnas.search.base import get_search_class

    search_cls = get_search_class(family, name)
    pre = OneLineParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--evaluator", default="local")
    evaluator_name = pre.parse_known_args(list(argv))[0].evaluator
    evaluator_cls = get_evaluator_class(evaluator_name)

    parser = OneLineParser(  # no abbreviations: options come from plug-ins and may be added later
        allow_abbrev=False,
        prog=f"hpcnas {family} {name}",
        description=(search_cls.__doc__ or "").strip().splitlines()[0] if search_cls.__doc__ else None,
    )
    _add_common(parser)
    search_dests = _added_dests(
        parser, lambda group: search_cls.add_arguments_for(group, list(argv)), f"{name} search options"
    )
    evaluator_dests = _added_dests(parser, evaluator_cls.add_arguments, f"{evaluator_name} evaluator options")
    return parser, search_dests, evaluator_dests


def _add_common(parser: argparse.ArgumentParser) -> None:
    from hpcnas.evaluator.base import evaluator_names
    from hpcnas.search.master import DEFAULT_MAX_FAILURE_RATIO, MIN_EVALS_FOR_RATIO

    req = parser.add_argument_group("required")
    req.add_argument("--problem", required=True, metavar="PATH", help="dotted path of the problem (pkg.module.Problem), or FILE.py[:NAME]; -p too")
    req.add_argument("--run", required=True, metavar="PATH", help="dotted path of the run function (pkg.module.run), or FILE.py[:NAME]; -r too")
    opt = parser.add_argument_group("search master")
    opt.add_argument("--max-evals", type=int, default=100, metavar="N", help="evaluations to finish (default 100)")
    opt.add_argument(
        "--objectives", metavar="N|NAMES",
        help="the run function returns this many objectives, all maximised (a count, or names separated "
        "by commas); results.csv gets objective_0, objective_1, ... (default: one objective)",
    )
    opt.add_argument(
        "--evaluator", default="local", metavar="NAME",
        help=f"evaluator backend: {', '.join(evaluator_names())} (default local)",
    )
    opt.add_argument("--num-workers", type=int, metavar="K", help="parallel evaluations (default: the backend's)")
    opt.add_argument("--seed", type=int, metavar="S", help="random seed of the search")
    opt.add_argument("--output-dir", default=".", metavar="DIR", help="where results.csv goes; resumes from it (default .)")
    opt.add_argument("--agents", type=int, metavar="K",
                     help="decentralized: K agents, each this command with its own workers and share of "
                     "--max-evals, sharing every result through OUTPUT/agent-I (default: one master)")
    opt.add_argument("--agent-id", type=int, metavar="I",
                     help="this process's agent, 0 to K-1 (default: its mpirun/srun rank)")
    opt.add_argument("--timeout", type=float, metavar="SECONDS", help="stop the search after this many seconds")
    opt.add_argument("--eval-timeout", type=float, metavar="SECONDS", help="kill an evaluation after this many seconds")
    opt.add_argument("--warm-start", metavar="CSV",
                     help="results.csv of an earlier search (hpcnas or DeepHyper 0.2/0.13): told first, not re-run")
    opt.add_argument(
        "--sync-interval", type=float, default=0.0, metavar="SECONDS",
        help="fsync results.csv at most this often (default 0: after every batch of results)",
    )
    opt.add_argument("--no-progress", action="store_true", help="no progress bar and no progress lines")
    opt.add_argument(
        "--quiet", action="store_true",
        help="only the summary line, warnings and errors (no start line, progress bar or progress lines)",
    )
    opt.add_argument(
        "--log-format", choices=("text", "json"), default="text",
        help="progress without a terminal: one text line per evaluation (default) or one JSON object "
        "per line (also the start and summary lines); json never shows a bar",
    )
    opt.add_argument(
        "--log-interval", type=float, default=DEFAULT_INTERVAL, metavar="SECONDS",
        help="ration progress lines: 10 at once, then one per SECONDS, counting the evaluations finished "
        f"meanwhile (default {DEFAULT_INTERVAL:g}; 0: a line for every evaluation)",
    )
    opt.add_argument(
        "--max-failure-ratio", type=float, default=DEFAULT_MAX_FAILURE_RATIO, metavar="R",
        help=f"stop (exit code 3) once more than R of the evaluations finished in this run failed, "
        f"counted from {MIN_EVALS_FOR_RATIO} finished evaluations (and at least --num-workers) on "
        f"(default {DEFAULT_MAX_FAILURE_RATIO:g}; 1: never stop)",
    )
    opt.add_argument("--debug", action="store_true", help="show tracebacks of errors")


def _added_dests(parser: argparse.ArgumentParser, add_arguments: Any, title: str) -> list[str]:
    """Add a plug-in's options in a group of their own; return their ``dest`` s.

    Integer options get :func:`~hpcnas.core.limits.bounded_int`: a plug-in's counts never meet
    numbers too large for C integers.
    """
    from hpcnas.core.limits import bounded_int

    group = parser.add_argument_group(title)
    before = {id(a) for a in parser._actions}
    add_arguments(group)
    added = [a for a in parser._actions if id(a) not in before]
    for action in added:
        if action.type is int:
            action.type = bounded_int
    return [a.dest for a in added]


def _validate(args: argparse.Namespace) -> None:
    """Refuse bad numbers before anything is loaded; ``inf`` time limits become ``None`` (no limit)."""
    from hpcnas.core.limits import check_num_workers, check_seed, time_limit

    if args.max_evals < 1:
        raise UsageError(f"--max-evals must be at least 1, got {args.max_evals}")
    check_num_workers(args.num_workers)
    check_seed(args.seed)
    for option in ("timeout", "eval_timeout"):
        setattr(args, option, time_limit(getattr(args, option), f"--{option.replace('_', '-')}"))
    if not args.sync_interval >= 0:
        raise UsageError(f"--sync-interval must be >= 0 seconds, got {args.sync_interval}")
    if not args.log_interval >= 0:
        raise UsageError(f"--log-interval must be >= 0 seconds, got {args.log_interval}")
    if not 0 <= args.max_failure_ratio <= 1:
        raise UsageError(f"--max-failure-ratio must be between 0 and 1, got {args.max_failure_ratio}")
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise UsageError(f"--output-dir {args.output_dir} exists and is not a directory: give a directory")


def _load_problem(family: str, path: str) -> Any:
    from hpcnas.core.loading import load_attribute
    from hpcnas.problem import load_problem
    from hpcnas.problem.hp_problem import refuse_class

    if family == "hps":
        return load_problem(path)
    problem = load_attribute(path, "problem")
    refuse_class(problem, path)
    if hasattr(problem, "check"):
        problem.check()
    return problem


def _picked(args: argparse.Namespace, dests: list[str]) -> dict[str, Any]:
    return {d: getattr(args, d) for d in dests if getattr(args, d, None) is not None}


def run_search(
    family: str, name: str, args: argparse.Namespace, search_dests: list[str], evaluator_dests: list[str]
) -> int:
    from hpcnas.evaluator.base import create_evaluator
    from hpcnas.evaluator.runner import resolve_run_function
    from hpcnas.search.base import get_search_class
    from hpcnas.search.objectives import declare

    command = getattr(get_search_class(family, name), "run_command", None)
    if command is not None:  # a search that runs its own processes (PPO agents)
        return command(family, name, args, search_dests, evaluator_dests)
    _setup_logging()
    agent = _agent_plan(args)
    problem = _load_problem(family, args.problem)
    resolve_run_function(args.run)  # fail here, not in every worker
    search_options = _picked(args, search_dests)
    evaluator_options = _picked(args, evaluator_dests)
    seed = resume_seed(args.seed, args.output_dir)
    search = get_search_class(family, name)(problem, random_state=seed, **search_options)
    objectives = declare(args.objectives)
    if objectives is not None:
        search.use_objectives(objectives.count)  # one line for a search of one objective, before any worker starts
        if getattr(args, "warm_start", None):
            raise UsageError("--warm-start tells one objective per evaluation: it cannot start a search "
                             "with --objectives; leave one of them out")
    _warm_start(args, problem)
    evaluator = create_evaluator(
        args.evaluator, objectives.wrap(args.run) if objectives is not None else args.run,
        num_workers=args.num_workers, eval_timeout=args.eval_timeout, **evaluator_options
    )
    if agent is not None:
        from hpcnas.search.agents import PeerResults

        args.peers = PeerResults(agent.root, agent.index, problem,
                                 objectives.columns if objectives is not None else ())
        if hasattr(evaluator, "search_id"):  # agents in one Balsam job: each recovers its own jobs only
            evaluator.search_id = f"{evaluator.search_id}/agent-{agent.index}"
    # SIGINT, and SIGTERM (a batch scheduler ending the allocation), stop the search cleanly
    try:
        with interrupts.raising():
            _run_master(family, name, args, problem, search, evaluator, seed, search_options, evaluator_options)
    finally:
        if agent is not None:
            from hpcnas.search.agents import write_merged

            write_merged(agent.root)
    return 0


def _agent_plan(args: argparse.Namespace) -> Any:
    """Decentralized search: point this process at its agent's directory, share and seed."""
    from hpcnas.search.agents import plan

    agent = plan(getattr(args, "agents", None), getattr(args, "agent_id", None), args.output_dir)
    if agent is not None:
        args.max_evals = agent.share(args.max_evals)
        args.output_dir, args.seed = agent.output_dir, agent.seed(args.seed)
    return agent


def _run_master(
    family: str, name: str, args: argparse.Namespace, problem: Any, search: Any, evaluator: Any, seed: int | None,
    search_options: dict[str, Any], evaluator_options: dict[str, Any],
) -> None:
    from contextlib import closing

    from hpcnas.search.master import SearchMaster
    from hpcnas.search.objectives import declare

    with evaluator, closing(search):
        master = SearchMaster(
            problem,
            search,
            evaluator,
            args.output_dir,
            args.max_evals,
            timeout=args.timeout,
            progress=not (args.no_progress or args.quiet),
            sync_interval=args.sync_interval,
            log_format=args.log_format,
            log_interval=args.log_interval,
            max_failure_ratio=args.max_failure_ratio,
            warm_start=getattr(args, "warm_pairs", ()),
            objectives=declare(args.objectives),
            peers=getattr(args, "peers", None),
            metadata={
                "family": family,
                "problem_path": args.problem,
                "run": args.run,
                "seed": args.seed,
                "search_random_state": seed,
                "search_options": search_options,
                "evaluator_options": evaluator_options,
            },
        )
        start = {"event": "start", "family": family, "search": name, "evaluator": args.evaluator,
                 "num_workers": evaluator.num_workers, "max_evals": args.max_evals, "output_dir": master.output_dir}
        if not args.quiet:
            _say(args.log_format, start, f"hpcnas: {family} {name} | evaluator {args.evaluator}, "
                 f"{evaluator.num_workers} workers | max evals {args.max_evals} | output {master.output_dir}")
        master.run()
    _say(args.log_format, master.summary_event(), f"hpcnas: {master.summary()}")
    failure = master.failure()
    if failure:
        raise SearchFailed(failure)


def _say(log_format: str, event: dict[str, Any], text: str) -> None:
    import json

    print(json.dumps(event, default=str) if log_format == "json" else text, flush=True)


def _warm_start(args: argparse.Namespace, problem: Any) -> int:
    """Read ``--warm-start CSV`` into ``args.warm_pairs``; returns the number of pairs."""
    args.warm_pairs = []
    if not getattr(args, "warm_start", None):
        return 0
    from hpcnas.search.results_deephyper import warm_start

    args.warm_pairs, skipped = warm_start(args.warm_start, problem)
    extra = f" ({skipped} row(s) outside this problem's space left out)" if skipped else ""
    print(f"hpcnas: warm start from {args.warm_start}: {len(args.warm_pairs)} evaluation(s) told first, "
          f"not re-run{extra}", flush=True)
    return len(args.warm_pairs)


def resume_seed(seed: int | None, output_dir: str) -> int | None:
    """The search's seed: ``seed`` for a new output dir, one derived from ``(seed, N)`` on resume.

    A search seeded as in the first run would propose the same configurations again; a seed
    derived from the number ``N`` of recorded results keeps a resumed run reproducible
    without repeating them.
    """
    from hpcnas.search.results_store import recorded_count

    recorded = recorded_count(output_dir)
    if seed is None or recorded == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, recorded]).generate_state(1)[0] >> 1)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is *now*: a command run in-process (a notebook, a test
    capturing output) after another must not write to the first one's closed stream."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _setup_logging() -> None:
    logger = logging.getLogger("hpcnas")
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("hpcnas: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
