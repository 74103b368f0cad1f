"""The one-call Python API: :func:`search` runs a search, :func:`load_results` reads one back.

For scripts and notebooks; the same search as ``hpcnas hps|nas SEARCH ...`` (the same options,
``results.csv``, resume, progress lines, exit rules), built on
:class:`~hpcnas.search.master.SearchMaster`, :func:`~hpcnas.search.base.get_search_class` and
:func:`~hpcnas.evaluator.base.create_evaluator`::

    import hpcnas
    df = hpcnas.search(Problem, run, search="ambs", max_evals=50, num_workers=4)
    df.sort_values("objective").tail()

``hpcnas.search`` is also the package of the search algorithms; calling it calls
:func:`search`.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable

import pandas as pd

from hpcnas.core.errors import SearchFailed, UsageError
from hpcnas.search.master import DEFAULT_MAX_FAILURE_RATIO
from hpcnas.search.progress import DEFAULT_INTERVAL

__all__ = ["search", "load_results", "SearchFailed"]


def search(
    problem: Any,
    run: str | Callable[[dict[str, Any]], Any],
    search: Any = "ambs",
    evaluator: Any = "local",
    max_evals: int = 100,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    num_workers: int | None = None,
    seed: int | None = None,
    timeout: float | None = None,
    eval_timeout: float | None = None,
    progress: bool | str = True,
    log_format: str = "text",
    log_interval: float = DEFAULT_INTERVAL,
    max_failure_ratio: float | None = DEFAULT_MAX_FAILURE_RATIO,
    sync_interval: float = 0.0,
    objectives: int | str | list[str] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Run a search and return its results (one row per finished evaluation, as in ``results.csv``).

    :param problem: an :class:`~hpcnas.problem.HpProblem` (hyper-parameter search) or
        :class:`~hpcnas.problem.NaProblem` (architecture search), or its dotted path.
    :param run: the run function ``run(config) -> float`` (maximised), or its dotted path. With
        the ``local`` evaluator it may be defined in the script itself (no
        ``if __name__ == "__main__":`` guard needed), in a notebook, or be a lambda or closure:
        it is sent to the worker processes by value (``cloudpickle``). ``balsam`` needs a dotted path.
    :param search: a search name (``ambs``, ``age``, ``random``, ...; NAS: ``regevo``, ``agebo``, ...)
        or a :class:`~hpcnas.search.base.Search` object.
    :param evaluator: ``local`` (worker processes), ``simulated``, ``ray``, ``balsam`` or ``mpi`` (in a
        script started with ``mpirun``, on the rank where :func:`hpcnas.evaluator.mpi.serve` returned ``None``), or an
        :class:`~hpcnas.evaluator.base.Evaluator` object (then the caller closes it).
    :param max_evals: evaluations to finish, counting those recorded in ``output_dir`` before.
    :param output_dir: where ``results.csv``, ``search.json`` and ``logs/`` go; an existing one of
        the same problem is resumed. Default: a new ``hpcnas-<search>-<date>-<time>`` directory
        in the working directory.
    :param progress: ``True`` (a bar on a terminal, else one line per evaluation), ``False``,
        or one of ``"bar"``, ``"lines"``, ``"off"``.
    :param max_failure_ratio: stop once more than this share of the evaluations finished failed
        (counted from 10 finished evaluations on); ``1``: never.
    :param objectives: several objectives (``--objectives``): their count or names (a list, or a
        string of names separated by commas). ``run`` then returns that many numbers, all
        maximised (a tuple, or a dict whose ``"objective"`` is one); the rows get
        ``objective_0``, ``objective_1``, ... columns and ``objective`` holds the first
        (:doc:`multiobjective`). ``None``: one objective.
    :param options: options of the search or the evaluator, named as their command-line options
        without ``--`` and with ``_`` for ``-`` (``kappa=1.96``, ``output_tail=4000``,
        ``ray_address="auto"``); ``hpcnas hps SEARCH --evaluator NAME --help`` lists them.
    :returns: the rows of ``results.csv`` (``p:<name>`` columns, ``objective``, ``status``,
        ``error``, ..., ``log``: the file holding the evaluation's output); ``df.attrs["output_dir"]``
        is the output directory.
    :raises SearchFailed: no evaluation succeeded, or failures stopped the search; its
        ``results`` holds the rows (nothing finished is lost: ``results.csv`` has them too).
    :raises HpcnasError: bad input (one line naming the problem and the fix).
    """
    from contextlib import ExitStack, closing

    from hpcnas.cli.search_cmd import _setup_logging, resume_seed
    from hpcnas.core import interrupts
    from hpcnas.evaluator.base import Evaluator, create_evaluator
    from hpcnas.search.base import Search, get_search_class
    from hpcnas.search.master import SearchMaster
    from hpcnas.search.objectives import declare

    declared = declare(objectives)
    problem = _problem(problem)
    family = _family(problem)
    name = search if isinstance(search, str) else getattr(search, "name", type(search).__name__)
    if output_dir is None:
        output_dir = _new_output_dir(str(name))
    output_dir = os.fspath(output_dir)
    _setup_logging()
    search_options, evaluator_options = _route(family, search, evaluator, options)
    seed_used = resume_seed(seed, output_dir)
    with ExitStack() as stack:
        if isinstance(search, Search):
            search_obj = search
        else:
            search_obj = get_search_class(family, str(search))(problem, random_state=seed_used, **search_options)
            stack.enter_context(closing(search_obj))
        if declared is not None:
            search_obj.use_objectives(declared.count)
        if isinstance(evaluator, Evaluator):
            evaluator_obj = evaluator
        else:
            evaluator_obj = create_evaluator(str(evaluator), declared.wrap(run) if declared is not None else run,
                                             num_workers=num_workers, eval_timeout=eval_timeout, **evaluator_options)
            stack.enter_context(evaluator_obj)
        master = SearchMaster(
            problem, search_obj, evaluator_obj, output_dir, max_evals, timeout=timeout, progress=progress,
            sync_interval=sync_interval, log_format=log_format, log_interval=log_interval,
            max_failure_ratio=max_failure_ratio, objectives=declared,
            metadata={"family": family, "run": run if isinstance(run, str) else getattr(run, "__qualname__", repr(run)),
                      "seed": seed, "search_random_state": seed_used, "search_options": search_options,
                      "evaluator_options": evaluator_options, "api": "hpcnas.search"},
        )
        show = master.progress != "off"
        if show:
            print(f"hpcnas: {family} {name} | evaluator {getattr(evaluator_obj, 'name', evaluator)}, "
                  f"{evaluator_obj.num_workers} workers | max evals {max_evals} | output {master.output_dir}",
                  flush=True)
        with interrupts.raising():
            df = master.run()
    if show:
        print(f"hpcnas: {master.summary()}", flush=True)
    df.attrs["output_dir"] = master.output_dir
    failure = master.failure()
    if failure:
        raise SearchFailed(failure, results=df)
    return df


def load_results(source: str | os.PathLike[str], db: str | None = None) -> pd.DataFrame:
    """The results of a search: an output directory, a ``results.csv``, or ``balsam:WORKFLOW``
    (the results.csv its search job wrote in the Balsam DB ``db``, default ``$BALSAM_DB_PATH``).

    Columns as in ``results.csv``; the objective of an evaluation that did not succeed is NaN.
    Raises :class:`~hpcnas.core.errors.HpcnasError` (one line) for a source that holds no results.
    """
    from hpcnas.analytics.experiment import load_experiment

    return load_experiment(os.fspath(source), db=db).require_results("hpcnas.load_results")


# ----------------------------------------------------------------- helpers
def _problem(problem: Any) -> Any:
    if not isinstance(problem, str):
        return problem
    from hpcnas.core.loading import load_attribute
    from hpcnas.problem import NaProblem, load_problem

    found = load_attribute(problem, "problem")
    return found if isinstance(found, NaProblem) else load_problem(problem)


def _family(problem: Any) -> str:
    from hpcnas.problem import HpProblem, NaProblem

    if isinstance(problem, NaProblem):
        return "nas"
    if isinstance(problem, HpProblem):
        return "hps"
    raise UsageError(f"problem must be an HpProblem or a NaProblem (or its dotted path), got {type(problem).__name__}")


def _new_output_dir(name: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = os.path.abspath(f"hpcnas-{name}-{stamp}")
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    return path


def _route(family: str, search: Any, evaluator: Any, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``options`` into the search's and the evaluator's, by the ``dest`` of their
    command-line options (each one a constructor keyword)."""
    if not options:
        return {}, {}
    from hpcnas.evaluator.base import get_evaluator_class
    from hpcnas.search.base import get_search_class

    argv = [f"--{k.replace('_', '-')}={v}" for k, v in options.items() if isinstance(v, str)]
    search_dests = _dests(lambda p: get_search_class(family, search).add_arguments_for(p, argv)) \
        if isinstance(search, str) else []
    evaluator_dests = _dests(get_evaluator_class(evaluator).add_arguments) if isinstance(evaluator, str) else []
    picked_search = {k: v for k, v in options.items() if k in search_dests}
    picked_evaluator = {k: v for k, v in options.items() if k in evaluator_dests and k not in picked_search}
    unknown = sorted(set(options) - set(picked_search) - set(picked_evaluator))
    if unknown:
        known = sorted(set(search_dests) | set(evaluator_dests))
        raise UsageError(
            f"unknown option(s) {', '.join(unknown)} for search {search!r} with evaluator {evaluator!r}: "
            f"choose from {', '.join(known) or 'none'} (hpcnas {family} SEARCH --evaluator NAME --help lists them)"
        )
    return picked_search, picked_evaluator


def _dests(add_arguments: Callable[[argparse.ArgumentParser], None]) -> list[str]:
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    return [action.dest for action in parser._actions]
