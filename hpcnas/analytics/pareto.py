"""``hpcnas-analytics pareto``: the Pareto front of a search with several objectives, and its hypervolume over time.

Reads the ``objective_0``, ``objective_1``, ... columns of results.csv (a search run with
``--objectives``; names from search.json), all maximised. Evaluations are ordered by completion
as in ``hpcnas-analytics search``; failed ones count as evaluations, never as points.

The hypervolume is dominated over a reference point: ``--reference`` (one value per objective),
else the worst value of each objective among the successes minus 10 % of its range (written to
``pareto_summary.json``, so that two runs can be compared at the same point).

Writes ``pareto.png`` (the front of the two objectives ``--pair`` names, default the first two,
over every success; the hypervolume vs wall time and vs evaluations), ``pareto_front.csv`` (the
non-dominated evaluations), ``hypervolume.csv`` and ``pareto_summary.json``.
"""
from __future__ import annotations

import argparse
import os
import re
from typing import Any, Sequence

import numpy as np
import pandas as pd

from hpcnas.analytics import output
from hpcnas.analytics.experiment import Experiment, param_columns
from hpcnas.analytics.search import search_curve
from hpcnas.core.errors import HpcnasError, UsageError
from hpcnas.search import multiobjective as mo
from hpcnas.search.objectives import COLUMN_RE


def objective_columns(results: pd.DataFrame) -> list[str]:
    """``objective_0``, ``objective_1``, ... of ``results``, in order; one line when there are fewer than two."""
    found = sorted((c for c in results.columns if COLUMN_RE.match(str(c))),
                   key=lambda c: int(COLUMN_RE.match(c).group(1)))  # type: ignore[union-attr]
    if len(found) < 2:
        raise HpcnasError("the results hold one objective (no objective_0, objective_1 columns): 'pareto' needs a "
                          "search run with --objectives 2 or more; use 'hpcnas-analytics search' for one objective")
    return found


def pareto_tables(results: pd.DataFrame, reference: Sequence[float] | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """``(curve, front, reference)``: hypervolume after each evaluation (completion order) and the
    non-dominated rows of ``results``."""
    columns = objective_columns(results)
    curve = search_curve(results)
    rows = results.set_index(results["job_id"].astype(str)).loc[curve["job_id"].astype(str), columns]
    y = rows.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    ok = mo.finite_rows(y)
    if not ok.any():
        raise HpcnasError("no successful evaluation in the results: no Pareto front yet")
    if reference is None:
        ref = mo.default_reference(y)
    else:
        ref = np.asarray(reference, dtype=float)
        if ref.shape != (len(columns),):
            raise UsageError(f"--reference needs {len(columns)} values (one per objective), got {len(ref)}")
    table = pd.DataFrame({"evaluation": curve["evaluation"], "elapsed_s": curve["elapsed_s"],
                          "job_id": curve["job_id"], "hypervolume": mo.hypervolume_curve(y, ref)})
    front_mask = mo.pareto_front(y)
    ordered = results.set_index(results["job_id"].astype(str)).loc[curve["job_id"].astype(str)].reset_index(drop=True)
    front = ordered.loc[front_mask, [*columns, *param_columns(results), "job_id"]]
    front = front.sort_values(columns[0], ascending=False, kind="stable").reset_index(drop=True)
    return table, front, ref


def plot_pareto(results: pd.DataFrame, curve: pd.DataFrame, pair: tuple[str, str], names: dict[str, str],
                path: str, title: str) -> str:
    fig, axes = output.figure(1, 3, width=4.4, height=3.6)
    ax_f, ax_t, ax_n = axes[0]
    xy = results[list(pair)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    xy = xy[mo.finite_rows(xy)]
    ax_f.plot(xy[:, 0], xy[:, 1], linestyle="none", marker="o", markersize=3, alpha=0.35, color="C7",
              label="evaluations")
    front = xy[mo.pareto_front(xy)]
    front = front[np.argsort(-front[:, 0], kind="stable")]
    ax_f.step(front[:, 0], front[:, 1], where="post", color="C3", marker="o", markersize=4,
              label=f"Pareto front ({len(front)})")
    ax_f.set_xlabel(names[pair[0]])
    ax_f.set_ylabel(names[pair[1]])
    ax_f.legend(fontsize="small")
    span = float(np.nanmax(curve["elapsed_s"])) if len(curve) else 0.0
    div, unit = output.time_unit(span if np.isfinite(span) else 0.0)
    ax_t.step(curve["elapsed_s"] / div, curve["hypervolume"], where="post", color="C0")
    ax_t.set_xlabel(f"wall time ({unit})")
    ax_t.set_ylabel("hypervolume")
    ax_n.step(curve["evaluation"], curve["hypervolume"], where="post", color="C0")
    ax_n.set_xlabel("evaluations")
    fig.suptitle(title)
    return output.save_figure(fig, path)


def write_pareto(exp: Experiment, out: str, pair: Sequence[str] | None = None,
                 reference: Sequence[float] | None = None) -> dict[str, Any]:
    results = exp.require_results("pareto")
    columns = objective_columns(results)
    names = dict(zip(columns, _names(exp, columns)))
    chosen = _pair(pair, columns, names)
    curve, front, ref = pareto_tables(results, reference)
    output.output_dir(out)
    output.write_csv(os.path.join(out, "hypervolume.csv"), curve)
    output.write_csv(os.path.join(out, "pareto_front.csv"), front.rename(columns=names))
    summary = {
        "label": exp.label, "source": exp.source, "objectives": [names[c] for c in columns],
        "num_evaluations": int(len(curve)), "num_failed": int(len(curve) - mo.finite_rows(
            results[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)).sum()),
        "front_size": int(len(front)), "reference": ref.tolist(),
        "hypervolume": float(curve["hypervolume"].iloc[-1]) if len(curve) else 0.0,
    }
    output.write_json(os.path.join(out, "pareto_summary.json"), summary)
    plot_pareto(results, curve, chosen, names, os.path.join(out, "pareto.png"),
                f"{exp.label}: Pareto front and hypervolume")
    return summary


def _names(exp: Experiment, columns: list[str]) -> list[str]:
    declared = exp.info.get("objectives") if isinstance(exp.info, dict) else None
    if isinstance(declared, list) and len(declared) == len(columns) and all(isinstance(n, str) for n in declared):
        return declared
    return list(columns)


def _pair(pair: Sequence[str] | None, columns: list[str], names: dict[str, str]) -> tuple[str, str]:
    if not pair:
        return columns[0], columns[1]
    by_name = {**{c: c for c in columns}, **{n: c for c, n in names.items()}}
    unknown = [p for p in pair if p not in by_name]
    if len(pair) != 2 or unknown or pair[0] == pair[1]:
        raise UsageError(f"--pair needs two different objectives of {', '.join(names.values())} "
                         f"(or {', '.join(columns)}), got {','.join(pair)}")
    return by_name[pair[0]], by_name[pair[1]]


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in re.split(r"[,\s]+", text.strip()) if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--reference needs numbers separated by commas, got {text!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hpcnas.analytics.cli import source_parser

    p = sub.add_parser("pareto", parents=[source_parser()],
                       help="Pareto front and hypervolume over time of a search with several objectives")
    p.add_argument("--pair", type=lambda s: [v.strip() for v in s.split(",")], default=None, metavar="A,B",
                   help="the two objectives the front plot shows (names or objective_<i>; default the first two)")
    p.add_argument("--reference", type=_floats, default=None, metavar="V,V,...",
                   help="hypervolume reference point, one value per objective (default: the worst of each "
                        "minus 10%% of its range)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hpcnas.analytics.cli import experiment_from_args

    exp = experiment_from_args(args)
    s = write_pareto(exp, args.output_dir, pair=args.pair, reference=args.reference)
    ref = ", ".join(f"{v:.6g}" for v in s["reference"])
    print(f"{s['label']}: {s['front_size']} evaluation(s) on the Pareto front of {', '.join(s['objectives'])} "
          f"({s['num_evaluations']} evaluations, {s['num_failed']} failed); hypervolume {s['hypervolume']:.6g} "
          f"over the reference point ({ref})")
    print(f"wrote {os.path.join(args.output_dir, 'pareto.png')} (+ pareto_front.csv, hypervolume.csv, "
          "pareto_summary.json)")
    return 0
