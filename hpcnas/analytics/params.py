"""``hpcnas-analytics params``: which hyper-parameters matter, and how the objective follows them.

The ``p:<name>`` columns of results.csv become :class:`Param` columns (:func:`parameter_table`):

* **numeric** (float or int ranges): values as numbers, on a **log scale** when the problem
  declares it (``search.json`` holds the problem's space) or, without a space, when all values
  are positive, span at least two decades and a quarter of them lie below the geometric middle
  (what log-uniform sampling gives, and uniform sampling does not);
* **categorical** (choices, ordinal sequences, text columns): integer codes in the order of the
  space's choices (ordinal: the sequence order), values not in the space after them;
* an empty cell (a conditional hyper-parameter that is inactive) is ``NaN``; constant columns
  and text columns with more than :data:`MAX_LEVELS` values (architecture sequences) are left
  out, with a note.

Importance (:func:`parameter_importance`) is the permutation importance of a random forest
(scikit-learn) fitted to the successful evaluations, measured on held-out folds: how much the
held-out squared error grows when one parameter's column is shuffled, as a share of the
objective's variance. Failed evaluations (empty objective, DeepHyper's ``F`` marks) are left out
of the fit and shown in the plots. Fewer than :data:`MIN_ROWS` successful evaluations give a
one-line note, not an importance.

Writes ``importance.png``, ``importance.csv``, ``importance.json``, ``parallel.png`` (parallel
coordinates) and ``params.png`` (objective against each parameter); see
:mod:`hpcnas.analytics.params_plots`.
"""
from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hpcnas.analytics import output
from hpcnas.analytics.experiment import Experiment, param_columns
from hpcnas.evaluator.base import PARAM_PREFIX

#: successful evaluations needed for an importance
MIN_ROWS = 10
#: text columns with more distinct values are not parameters one can plot (e.g. architectures)
MAX_LEVELS = 30
#: the forest is fitted on at most this many evaluations (a random subset beyond)
MAX_FIT_ROWS = 5000
N_TREES = 60
N_REPEATS = 3
#: below this cross-validated R^2 the forest explains little: importances are flagged unreliable
LOW_R2 = 0.1

_CATEGORICAL_TYPES = ("categorical", "ordinal")


@dataclass
class Param:
    """One hyper-parameter's values: numbers (``numeric``) or codes of ``levels`` (``categorical``)."""

    name: str
    kind: str  # "numeric" or "categorical"
    values: np.ndarray  # float; NaN where the parameter was inactive
    log: bool = False
    levels: list[str] = field(default_factory=list)

    def scaled(self) -> np.ndarray:
        """Values mapped to [0, 1] (log10 first on a log scale); NaN stays NaN."""
        v = np.log10(self.values) if self.log else self.values.astype(float)
        if self.kind == "categorical":
            return v / max(len(self.levels) - 1, 1) if len(self.levels) > 1 else np.where(np.isnan(v), v, 0.5)
        lo, hi = np.nanmin(v), np.nanmax(v)
        return (v - lo) / (hi - lo) if hi > lo else np.where(np.isnan(v), v, 0.5)


@dataclass
class Importance:
    """Permutation importance per parameter (share of objective variance), best first."""

    table: pd.DataFrame  # parameter, importance, std, kind, log
    r2: float  # cross-validated R^2 of the forest
    rows: int  # evaluations fitted
    notes: list[str] = field(default_factory=list)


def _space(info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The problem's hyper-parameters from search.json, by name ({} when absent)."""
    problem = info.get("problem")
    space = problem.get("space") if isinstance(problem, dict) else None
    hps = space.get("hyperparameters") if isinstance(space, dict) else None
    if not isinstance(hps, list):
        return {}
    return {h["name"]: h for h in hps if isinstance(h, dict) and isinstance(h.get("name"), str)}


def _text(value: Any) -> str:
    """A cell or a choice as one comparable text: 4, 4.0 and '4' are all '4'."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        f = float(value)
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
    return str(value)


def _looks_log(v: np.ndarray) -> bool:
    v = v[np.isfinite(v)]
    if v.size < 3 or np.any(v <= 0) or v.max() / v.min() < 100:
        return False
    return float(np.mean(v < math.sqrt(v.min() * v.max()))) >= 0.25


def _categorical(name: str, cells: pd.Series, spec: dict[str, Any]) -> Param:
    choices = spec.get("sequence") if spec.get("type") == "ordinal" else spec.get("choices")
    levels = [_text(c) for c in choices] if isinstance(choices, list) else []
    present = cells.dropna().map(_text)
    levels += sorted(set(present) - set(levels), key=str)
    if not isinstance(choices, list):  # no space: order numbers as numbers
        try:
            levels.sort(key=float)
        except ValueError:
            pass
    code = {lv: i for i, lv in enumerate(levels)}
    values = np.array([np.nan if pd.isna(c) else code[_text(c)] for c in cells], dtype=float)
    return Param(name, "categorical", values, levels=levels)


def parameter_table(results: pd.DataFrame, info: dict[str, Any] | None = None
                    ) -> tuple[list[Param], list[str]]:
    """The plottable parameters of ``results`` and notes on the columns left out."""
    space = _space(info or {})
    params: list[Param] = []
    constant: list[str] = []
    many: list[str] = []
    for col in param_columns(results):
        name = col[len(PARAM_PREFIX):]
        spec = space.get(name, {})
        cells = results[col].where(results[col].astype(str).str.strip() != "")
        numbers = pd.to_numeric(cells, errors="coerce")
        text = cells.notna() & numbers.isna()
        if spec.get("type") in _CATEGORICAL_TYPES or text.any():
            p = _categorical(name, cells, spec)
            if cells.dropna().map(_text).nunique() > MAX_LEVELS:
                many.append(name)
                continue
        else:
            v = numbers.to_numpy(dtype=float)
            log = bool(spec["log"]) if "log" in spec else _looks_log(v)
            p = Param(name, "numeric", v, log=log and bool(np.all(v[np.isfinite(v)] > 0)))
        if np.unique(p.values[np.isfinite(p.values)]).size < 2:
            constant.append(name)
            continue
        params.append(p)
    notes = [] if param_columns(results) else ["the results have no hyper-parameter column (p:<name>)"]
    if constant:
        notes.append(f"left out, one value only: {', '.join(constant)}")
    if many:
        notes.append(f"left out, more than {MAX_LEVELS} distinct values (architecture sequences?): "
                     f"{', '.join(many)}")
    return params, notes


def feature_matrix(params: list[Param]) -> np.ndarray:
    """One column per parameter for a forest: log10 on log scales; inactive below every value."""
    cols = []
    for p in params:
        v = np.log10(p.values) if p.log else p.values.astype(float)
        finite = v[np.isfinite(v)]
        low = finite.min() - (finite.max() - finite.min()) - 1.0 if finite.size else -1.0
        cols.append(np.where(np.isfinite(v), v, low))
    return np.column_stack(cols) if cols else np.empty((0, 0))


def not_enough(n_ok: int) -> str:
    return (f"parameter importance needs at least {MIN_ROWS} successful evaluations; this "
            f"experiment has {n_ok}")


def parameter_importance(params: list[Param], objective: np.ndarray, seed: int = 0
                         ) -> Importance | str:
    """Held-out permutation importance of a random forest, or a one-line note why there is none."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import KFold

    y_all = np.asarray(objective, dtype=float)
    ok = np.isfinite(y_all)
    n_ok = int(ok.sum())
    if not params:
        return "parameter importance needs hyper-parameters that vary; none does"
    if n_ok < MIN_ROWS:
        return not_enough(n_ok)
    X, y = feature_matrix(params)[ok], y_all[ok]
    notes: list[str] = []
    rng = np.random.default_rng(seed)
    if n_ok > MAX_FIT_ROWS:
        keep = np.sort(rng.choice(n_ok, MAX_FIT_ROWS, replace=False))
        X, y = X[keep], y[keep]
        notes.append(f"forest fitted on {MAX_FIT_ROWS} of {n_ok} successful evaluations (random subset)")
    var = float(np.var(y))
    if var == 0.0:
        return f"parameter importance needs objectives that differ; all {n_ok} are {y[0]:.6g}"
    n = len(y)
    folds = KFold(n_splits=min(5, n // 2), shuffle=True, random_state=seed)
    drops = np.zeros((len(params), 0))
    predicted = np.empty(n)
    for train, test in folds.split(X):
        forest = RandomForestRegressor(n_estimators=N_TREES, min_samples_leaf=2, random_state=seed, n_jobs=1)
        forest.fit(X[train], y[train])
        predicted[test] = forest.predict(X[test])
        perm = permutation_importance(forest, X[test], y[test], scoring="neg_mean_squared_error",
                                      n_repeats=N_REPEATS, random_state=seed)
        # each repeat's MSE increase, weighted by the fold's share of the rows
        drops = np.hstack([drops, perm.importances * (len(test) / n) * folds.get_n_splits()])
    r2 = 1.0 - float(np.mean((predicted - y) ** 2)) / var
    if r2 < LOW_R2:
        notes.append(f"the forest explains little of the objective (cross-validated R² {r2:.2f}): "
                     "treat the importances as unreliable")
    table = pd.DataFrame({
        "parameter": [p.name for p in params],
        "importance": drops.mean(axis=1) / var,
        "std": drops.std(axis=1) / var,
        "kind": [p.kind for p in params],
        "log": [p.log for p in params],
    }).sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    return Importance(table=table, r2=r2, rows=n, notes=notes)


def write_params(exp: Experiment, out: str, maximize: bool = True) -> dict[str, Any]:
    """Write the importance files and the parameter plots; return the summary (JSON)."""
    from hpcnas.analytics import params_plots

    results = exp.require_results("params")
    params, notes = parameter_table(results, exp.info)
    objective = results["objective"].to_numpy(dtype=float)
    imp = parameter_importance(params, objective)
    output.output_dir(out)
    summary: dict[str, Any] = {"label": exp.label, "parameters": [p.name for p in params],
                               "num_successful": int(np.isfinite(objective).sum()),
                               "num_failed": int((~np.isfinite(objective)).sum()),
                               "notes": list(notes), "figures": []}
    order = [p.name for p in params]
    if isinstance(imp, str):
        summary["importance"] = None
        summary["importance_note"] = imp
    else:
        summary.update(importance=imp.table.to_dict(orient="records"), r2=imp.r2, rows_fitted=imp.rows)
        summary["notes"] += imp.notes
        output.write_csv(os.path.join(out, "importance.csv"), imp.table)
        params_plots.plot_importance(imp, os.path.join(out, "importance.png"), exp.label)
        summary["figures"].append("importance.png")
        order = list(imp.table["parameter"])
    ranked = sorted(params, key=lambda p: order.index(p.name))
    if ranked:
        params_plots.plot_parallel(ranked, objective, os.path.join(out, "parallel.png"), exp.label,
                                   maximize=maximize)
        params_plots.plot_objective_vs_params(ranked, objective, os.path.join(out, "params.png"),
                                              exp.label, maximize=maximize)
        summary["figures"] += ["parallel.png", "params.png"]
    output.write_json(os.path.join(out, "importance.json"), summary)
    return summary


def describe(summary: dict[str, Any]) -> str:
    if summary["importance"] is None:
        head = summary.get("importance_note") or "no importance"
    else:
        head = f"parameter importance (cross-validated R² of the forest {summary['r2']:.2f}): " + ", ".join(
            f"{r['parameter']} {r['importance']:.3f}" for r in summary["importance"])
    return "\n".join([f"{summary['label']}: {head}", *summary["notes"]])


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hpcnas.analytics.cli import source_parser

    p = sub.add_parser("params", parents=[source_parser()],
                       help="parameter importance, parallel coordinates, objective vs each parameter")
    p.add_argument("--minimize", action="store_true", help="lower objective is better")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hpcnas.analytics.cli import experiment_from_args

    exp = experiment_from_args(args)
    summary = write_params(exp, args.output_dir, maximize=not args.minimize)
    print(describe(summary))
    files = summary["figures"] + ["importance.json"]
    print(f"wrote {', '.join(os.path.join(args.output_dir, f) for f in files)}")
    return 0
