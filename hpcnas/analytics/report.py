"""``hpcnas-analytics report``: one self-contained HTML page summarising an experiment.

Runs every command the experiment has data for, in this order: search curve and top-k, then
parameter importance and plots (these need objectives), the Pareto front (a search with
several objectives), then utilization and throughput (these
need start/end times); writes their files into the output directory,
and writes ``report.html`` with the figures embedded as base64 ``data:`` URIs and no
external resource, so it opens offline. A small inline script writes the number of
images that loaded (``naturalWidth > 0``) into ``#images-loaded`` once the page loaded.
"""
from __future__ import annotations

import argparse
import base64
import html
import os
import time
from typing import Any

import pandas as pd

from hpcnas.analytics import output
from hpcnas.analytics.experiment import Experiment
from hpcnas.analytics.params import write_params
from hpcnas.analytics.search import write_search
from hpcnas.analytics.throughput import write_throughput
from hpcnas.analytics.topk import write_topk
from hpcnas.analytics.utilization import write_utilization

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #eee; } img { max-width: 100%; display: block; margin: 0.5em 0; }
.figures td { text-align: left; } .muted { color: #777; font-size: 0.85em; }
.note { background: #fff6d5; border-left: 3px solid #e0b000; padding: 2px 8px; }
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img');
  var ok = 0;
  imgs.forEach(function (im) { if (im.complete && im.naturalWidth > 0) { ok += 1; } });
  var el = document.getElementById('images-loaded');
  el.textContent = ok + '/' + imgs.length;
  el.setAttribute('data-loaded', String(ok));
  el.setAttribute('data-total', String(imgs.length));
});
"""


#: search.json / Balsam facts shown at the top of the report, when present
_SETTINGS = ("search", "evaluator", "num_workers", "max_evals", "timeout", "problem_fingerprint",
             "num_jobs", "job_mode", "db")


def _img(path: str, alt: str) -> str:
    with open(path, "rb") as fh:
        data = base64.b64encode(fh.read()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _kv_table(items: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in items.items())
    return f'<table class="figures">{rows}</table>'


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return "" if v is None else str(v)


def _params_section(exp: Experiment, out: str, maximize: bool) -> str:
    s = write_params(exp, out, maximize=maximize)
    parts = ["<h2>Parameters</h2>"]
    if s["importance"] is None:
        parts.append(f'<p class="note">{html.escape(s["importance_note"])}.</p>')
    else:
        table = pd.DataFrame(s["importance"])[["parameter", "importance", "std", "kind", "log"]]
        parts.append(f'<p class="muted">Permutation importance of a random forest fitted to the '
                     f'{s["rows_fitted"]} successful evaluations, on held-out folds (cross-validated '
                     f'R² {s["r2"]:.2f}): the squared error the forest adds when the parameter is '
                     "shuffled, 1 = the objective's variance.</p>")
        parts.append(table.to_html(index=False, float_format=lambda x: f"{x:.3g}"))
    parts += [f'<p class="note">{html.escape(n)}.</p>' for n in s["notes"]]
    alts = {"importance.png": "parameter importance", "parallel.png": "parallel coordinates",
            "params.png": "objective vs each parameter"}
    parts += [_img(os.path.join(out, f), alts[f]) for f in s["figures"]]
    return "\n".join(parts)


def _pareto_section(exp: Experiment, out: str) -> str:
    """The Pareto front and hypervolume of a search with several objectives ('' otherwise)."""
    from hpcnas.analytics.pareto import write_pareto
    from hpcnas.search.objectives import COLUMN_RE

    assert exp.results is not None
    columns = [c for c in exp.results.columns if COLUMN_RE.match(str(c))]
    if len(columns) < 2 or not exp.results[columns].notna().all(axis=1).any():
        return ""
    s = write_pareto(exp, out)
    return "<h2>Pareto front</h2>" + _kv_table({
        "objectives": ", ".join(s["objectives"]), "on the front": s["front_size"],
        "hypervolume": s["hypervolume"], "reference point": ", ".join(f"{v:.6g}" for v in s["reference"]),
    }) + _img(os.path.join(out, "pareto.png"), "Pareto front and hypervolume")


def build_report(exp: Experiment, out: str, k: int = 10, maximize: bool = True) -> str:
    """Write all figures and ``report.html`` into ``out``; return the HTML path."""
    output.output_dir(out)
    sections: list[str] = []
    settings = {k: exp.info[k] for k in _SETTINGS if isinstance(exp.info.get(k), (str, int, float))}
    if settings:
        sections.append("<h2>Experiment</h2>" + _kv_table(settings))
    if exp.results is not None and len(exp.results):
        s = write_search(exp, out, maximize=maximize)
        sections.append("<h2>Search</h2>" + _kv_table({
            "evaluations": s["num_evaluations"], "failed": s["num_failed"],
            "best objective": s["best_objective"],
            "best at evaluation": s.get("best_at_evaluation"),
            "best after (s)": s.get("best_at_elapsed_s"),
        }) + _img(os.path.join(out, "search.png"), "search curve"))
        if s["best_objective"] is not None:
            table = write_topk(exp, out, k, maximize=maximize)
            sections.append(f"<h2>Top {len(table)} configurations</h2>"
                            + table.to_html(index=False, na_rep="", float_format=lambda x: f"{x:.6g}"))
        sections.append(_params_section(exp, out, maximize))
        pareto = _pareto_section(exp, out)
        if pareto:
            sections.append(pareto)
    if not exp.runs.empty:
        u = write_utilization(exp, out)
        sections.append("<h2>Node utilization</h2>" + _kv_table({
            "utilization (%)": u["utilization_percent"], "nodes available": u["nodes"],
            "nodes from": u["nodes_source"], "wall time (s)": u["wall_seconds"],
            "runs": u["num_runs"], "peak busy nodes": u["peak_busy_nodes"],
            "idle node-seconds": u["idle_node_seconds"], "idle gaps": u["num_idle_gaps"],
            **({"warning": u["warning"]} if "warning" in u else {}),
        }) + _img(os.path.join(out, "utilization.png"), "node utilization"))
        if u["gaps"]:
            gaps = pd.DataFrame(u["gaps"][:10])
            gaps["start"] = gaps["start"] - u["t0"]
            gaps["end"] = gaps["end"] - u["t0"]
            sections.append('<p class="muted">Largest idle gaps (seconds from start)</p>'
                            + gaps.to_html(index=False, float_format=lambda x: f"{x:.1f}"))
    if not exp.ends.empty:
        t = write_throughput(exp, out)
        sections.append("<h2>Throughput</h2>" + _kv_table({
            "finished": t["totals"], "done per minute": t["done_per_minute"],
        }) + _img(os.path.join(out, "throughput.png"), "throughput"))
    if not sections:
        sections.append("<p>This experiment holds no finished evaluation yet.</p>")
    title = f"hpcnas report: {exp.label}"
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="muted">Source: {html.escape(exp.source)}. Written '
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}. Images loaded: "
        '<span id="images-loaded" data-loaded="-1">not yet</span></p>'
        + "\n".join(sections)
        + f"<script>{_SCRIPT}</script></body></html>\n"
    )
    path = os.path.join(out, "report.html")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(page)
    return path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hpcnas.analytics.cli import source_parser

    p = sub.add_parser("report", parents=[source_parser()],
                       help="one self-contained HTML page summarising an experiment")
    p.add_argument("-k", type=int, default=10, help="rows of the top-k table (default 10)")
    p.add_argument("--minimize", action="store_true", help="lower objective is better")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hpcnas.analytics.cli import experiment_from_args

    exp = experiment_from_args(args)
    path = build_report(exp, args.output_dir, k=args.k, maximize=not args.minimize)
    print(f"wrote {path}")
    return 0
