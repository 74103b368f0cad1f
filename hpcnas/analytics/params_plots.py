"""Figures of :mod:`hpcnas.analytics.params`: importance bars, parallel coordinates, objective vs parameter.

Parameters come best first (by importance when there is one). Failed evaluations are drawn,
in red, below the objectives (``failed``); an inactive conditional parameter sits below its
axis (``n/a``). Colours follow the objective (viridis; brighter is better, also with
``--minimize``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hpcnas.analytics import output

#: at most this many parameters get a panel of their own in params.png
MAX_PANELS = 12
#: parallel coordinates draw at most this many lines (a random subset, plus the best ones)
MAX_LINES = 2000
_BELOW = -0.12  # where failed / inactive values sit on a [0, 1] axis
_FAILED = "tab:red"


def _short(text: str, width: int = 14) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _goodness(objective: np.ndarray, maximize: bool) -> np.ndarray:
    """[0, 1], 1 = best; NaN for failed evaluations."""
    y = objective if maximize else -objective
    lo, hi = np.nanmin(y), np.nanmax(y)
    return (y - lo) / (hi - lo) if hi > lo else np.where(np.isnan(y), y, 1.0)


def plot_importance(imp: Any, path: str, title: str) -> str:
    """Horizontal bars of an :class:`~.params.Importance`, most important at the top, with the
    spread over folds and shuffles as error bars."""
    table = imp.table.iloc[::-1]  # matplotlib draws the first bar at the bottom
    fig, axes = output.figure(1, 1, width=7.5, height=0.9 + 0.35 * len(table))
    ax = axes[0][0]
    ax.barh(table["parameter"], table["importance"], xerr=table["std"], color="tab:blue", alpha=0.8,
            error_kw={"elinewidth": 1, "capsize": 2})
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("held-out squared error added by shuffling the parameter (1 = objective variance)",
                  fontsize="small")
    ax.set_title(f"{title}: parameter importance (random forest, cross-validated R² {imp.r2:.2f}, "
                 f"{imp.rows} evaluations)", fontsize="medium")
    return output.save_figure(fig, path)


def _axis_labels(ax: Any, x: float, p: Any, inactive: bool) -> None:
    if p.kind == "categorical":
        n = max(len(p.levels) - 1, 1)
        step = max(1, len(p.levels) // 12)  # at most ~12 labels on an axis
        for i, level in enumerate(p.levels[::step]):
            ax.text(x + 0.03, (i * step) / n if len(p.levels) > 1 else 0.5, _short(level), fontsize=7,
                    va="center")
    else:
        v = p.values[np.isfinite(p.values)]
        for y, value in ((0.0, v.min()), (1.0, v.max())):
            ax.text(x + 0.03, y, f"{value:.3g}", fontsize=7, va="center")
        if p.log:
            ax.text(x + 0.03, 0.5, "log", fontsize=6, va="center", color="#777")
    if inactive:
        ax.text(x + 0.03, _BELOW, "n/a", fontsize=7, va="center", color="#777")


def plot_parallel(params: list[Any], objective: np.ndarray, path: str, title: str,
                  maximize: bool = True, seed: int = 0) -> str:
    """One line per evaluation across the parameter axes and, last, the objective axis."""
    from matplotlib.collections import LineCollection

    objective = np.asarray(objective, dtype=float)
    cols = [np.where(np.isnan(s), _BELOW, s) for s in (p.scaled() for p in params)]
    ok = np.isfinite(objective)
    good = _goodness(objective, maximize) if ok.any() else np.full(objective.shape, np.nan)
    cols.append(np.where(ok, good, _BELOW))
    ys = np.column_stack(cols)
    idx = np.arange(len(objective))
    if len(idx) > MAX_LINES:  # the best tenth always, a random subset of the rest
        best = idx[np.argsort(np.where(ok, -good, np.inf), kind="stable")[: MAX_LINES // 10]]
        rest = np.setdiff1d(idx, best)
        idx = np.union1d(best, np.random.default_rng(seed).choice(rest, MAX_LINES - len(best), replace=False))
    # failed first, then by objective: the best lines are drawn last, on top
    idx = idx[np.argsort(np.where(ok[idx], good[idx], -1.0), kind="stable")]
    x = np.arange(ys.shape[1], dtype=float)
    fig, axes = output.figure(1, 1, width=max(6.0, 1.3 * len(x) + 1.5), height=4.2)
    ax = axes[0][0]
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    colors = [cmap(good[i]) if ok[i] else _FAILED for i in idx]
    widths = [1.0 if ok[i] else 0.6 for i in idx]
    ax.add_collection(LineCollection([np.column_stack([x, ys[i]]) for i in idx], colors=colors,
                                     linewidths=widths, alpha=0.6))
    for j, p in enumerate(params):
        ax.axvline(j, color="black", linewidth=0.8)
        _axis_labels(ax, j, p, bool(np.isnan(p.values).any()))
    j = len(params)
    ax.axvline(j, color="black", linewidth=1.2)
    if ok.any():
        lo, hi = np.nanmin(objective), np.nanmax(objective)
        for y, value in ((0.0, lo if maximize else hi), (1.0, hi if maximize else lo)):
            ax.text(j + 0.03, y, f"{value:.4g}", fontsize=7, va="center")
    if not ok.all():
        ax.text(j + 0.03, _BELOW, f"failed ({int((~ok).sum())})", fontsize=7, va="center", color=_FAILED)
    ax.set_xticks(x, [_short(p.name) for p in params] + ["objective"], fontsize=8, rotation=20)
    ax.set_yticks([])
    ax.set_xlim(-0.2, x[-1] + 0.6)
    below = (~ok).any() or any(np.isnan(p.values).any() for p in params)
    ax.set_ylim(_BELOW - 0.08 if below else -0.05, 1.05)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    shown = f", {len(idx)} of {len(objective)} drawn" if len(idx) < len(objective) else ""
    ax.set_title(f"{title}: parallel coordinates (colour: objective, brighter is better{shown})",
                 fontsize="medium")
    return output.save_figure(fig, path)


def plot_objective_vs_params(params: list[Any], objective: np.ndarray, path: str, title: str,
                             maximize: bool = True, seed: int = 0) -> str:
    """One panel per parameter (the first :data:`MAX_PANELS`): objective against its values."""
    objective = np.asarray(objective, dtype=float)
    shown = params[:MAX_PANELS]
    ncols = min(3, len(shown))
    nrows = -(-len(shown) // ncols)
    fig, axes = output.figure(nrows, ncols, width=3.6, height=2.8)
    ok = np.isfinite(objective)
    lo, hi = (np.nanmin(objective), np.nanmax(objective)) if ok.any() else (0.0, 1.0)
    floor = lo - 0.08 * ((hi - lo) or 1.0)
    best = (int(np.nanargmax(objective)) if maximize else int(np.nanargmin(objective))) if ok.any() else None
    rng = np.random.default_rng(seed)
    for k, p in enumerate(shown):
        ax = axes[k // ncols][k % ncols]
        x = p.values.astype(float)
        if p.kind == "categorical":
            x = x + rng.uniform(-0.15, 0.15, x.size)
            ax.set_xticks(range(len(p.levels)), [_short(v, 10) for v in p.levels], fontsize=7,
                          rotation=30 if len(p.levels) > 4 else 0)
        elif p.log:
            ax.set_xscale("log")
        active = np.isfinite(x)
        ax.plot(x[ok & active], objective[ok & active], linestyle="none", marker="o", markersize=3,
                alpha=0.5, markeredgewidth=0, color="tab:blue")
        if (~ok & active).any():
            ax.plot(x[~ok & active], np.full(int((~ok & active).sum()), floor), linestyle="none",
                    marker="x", markersize=4, color=_FAILED, label="failed")
            ax.legend(fontsize=6, loc="best")
        if best is not None and active[best]:
            ax.plot([x[best]], [objective[best]], marker="*", markersize=11, color="tab:orange",
                    markeredgecolor="black", markeredgewidth=0.5, linestyle="none")
        inactive = int((~active).sum())
        ax.set_title(p.name + (f" ({inactive} inactive)" if inactive else ""), fontsize="small")
        ax.tick_params(labelsize=7)
        if k % ncols == 0:
            ax.set_ylabel("objective")
    for k in range(len(shown), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    more = f" (first {MAX_PANELS} of {len(params)} by importance)" if len(params) > MAX_PANELS else ""
    fig.suptitle(f"{title}: objective vs each parameter{more}; star: best", fontsize="medium")
    return output.save_figure(fig, path)
