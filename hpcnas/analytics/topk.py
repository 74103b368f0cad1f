"""``hpcnas-analytics topk -k K``: the K best configurations as a table.

Successful evaluations only, best first (highest objective unless ``--minimize``; ties keep
completion order). Columns: rank, objective, the hyper-parameters (without the ``p:``
prefix), job_id, duration. Printed to the terminal and written to ``topk.csv`` and
``topk.json``.
"""
from __future__ import annotations

import argparse
import os

import pandas as pd

from hpcnas.analytics import output
from hpcnas.analytics.experiment import Experiment, param_columns
from hpcnas.core.errors import HpcnasError, UsageError
from hpcnas.evaluator.base import PARAM_PREFIX


def top_k(results: pd.DataFrame, k: int, maximize: bool = True) -> pd.DataFrame:
    if k < 1:
        raise UsageError(f"-k must be at least 1, got {k}")
    ok = results[results["objective"].notna()]
    if ok.empty:
        raise HpcnasError("no successful evaluation in the results: nothing to rank")
    ok = ok.sort_values("end_time", kind="stable")
    best = ok.sort_values("objective", ascending=not maximize, kind="stable").head(k)
    params = param_columns(results)
    table = best[["objective", *params, "job_id"]].copy()
    if "duration" in best.columns:
        table["duration"] = pd.to_numeric(best["duration"], errors="coerce")
    else:
        table["duration"] = best["end_time"] - best["start_time"]
    table = table.rename(columns={c: c[len(PARAM_PREFIX):] for c in params})
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.reset_index(drop=True)


def write_topk(exp: Experiment, out: str, k: int, maximize: bool = True) -> pd.DataFrame:
    table = top_k(exp.require_results("topk"), k, maximize=maximize)
    output.output_dir(out)
    output.write_csv(os.path.join(out, "topk.csv"), table)
    records = table.astype(object).where(table.notna(), None).to_dict(orient="records")
    output.write_json(os.path.join(out, "topk.json"),
                      {"label": exp.label, "k": k, "maximize": maximize, "rows": records})
    return table


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hpcnas.analytics.cli import source_parser

    p = sub.add_parser("topk", parents=[source_parser()], help="the K best configurations as a table")
    p.add_argument("-k", type=int, default=10, help="how many (default 10)")
    p.add_argument("--minimize", action="store_true", help="lower objective is better")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hpcnas.analytics.cli import experiment_from_args

    exp = experiment_from_args(args)
    table = write_topk(exp, args.output_dir, args.k, maximize=not args.minimize)
    with pd.option_context("display.max_columns", None, "display.width", 200):
        print(table.to_string(index=False))
    print(f"wrote {os.path.join(args.output_dir, 'topk.csv')} (+ topk.json)")
    return 0
