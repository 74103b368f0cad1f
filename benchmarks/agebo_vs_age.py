"""AgEBO vs AgE on the combo-like problem at a fixed number of evaluations.

For each seed, runs ``hpcnas nas agebo`` and ``hpcnas nas age`` (same population settings) with
the local evaluator and the alpha run function, then prints per run the best ``val_r2``, the
best after 25/50/75/100 % of the evaluations and the wall time, and the medians over seeds.
The paper's claim to check: AgEBO reaches a better model than AgE at equal cost.

    python benchmarks/agebo_vs_age.py --max-evals 100 --num-workers 4 --seeds 0 1 2
    python benchmarks/agebo_vs_age.py --max-evals 60 --num-workers 2   # what fits on 2 cores

Writes ``summary.json`` and one output directory (results.csv) per run under ``--output-dir``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def run_one(search_name: str, seed: int, args: argparse.Namespace) -> dict:
    from hpcnas.core.loading import load_attribute
    from hpcnas.evaluator.base import create_evaluator
    from hpcnas.search.base import get_search_class
    from hpcnas.search.master import SearchMaster

    problem = load_attribute(args.problem, "problem")
    options = {"population_size": args.population_size, "sample_size": args.sample_size}
    if search_name == "agebo":
        options.update(kappa=args.kappa, n_jobs=1)
    search = get_search_class("nas", search_name)(problem, random_state=seed, **options)
    out = os.path.join(args.output_dir, f"{search_name}-seed{seed}")
    start = time.time()
    with create_evaluator("local", "hpcnas.nas.run.alpha.run", num_workers=args.num_workers) as evaluator:
        df = SearchMaster(problem, search, evaluator, out, args.max_evals, progress=False).run()
    wall = time.time() - start
    ok = df[df["status"] == "DONE"].sort_values("end_time")
    best_so_far = ok["objective"].cummax().tolist()
    marks = {}
    for frac in (0.25, 0.5, 0.75, 1.0):
        k = max(1, int(round(frac * len(best_so_far))))
        marks[f"{int(frac * 100)}%"] = best_so_far[k - 1] if best_so_far else None
    return {"search": search_name, "seed": seed, "evaluations": len(df), "failed": int((df["status"] != "DONE").sum()),
            "best": float(ok["objective"].max()) if len(ok) else None, "best_at": marks, "wall_s": wall, "output": out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="hpcnas.nas.problems.combo.problem.BenchProblem")
    parser.add_argument("--max-evals", type=int, default=100)
    parser.add_argument("--num-workers", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--population-size", type=int, default=20)
    parser.add_argument("--sample-size", type=int, default=5)
    parser.add_argument("--kappa", type=float, default=0.001)
    parser.add_argument("--output-dir", default="agebo_vs_age")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.makedirs(args.output_dir, exist_ok=True)
    runs = []
    for seed in args.seeds:
        for name in ("agebo", "age"):
            row = run_one(name, seed, args)
            runs.append(row)
            print(f"{name:6s} seed {seed}: best val_r2 {row['best']:.4f}  at 25/50/75/100%: "
                  + " ".join(f"{v:.4f}" for v in row["best_at"].values())
                  + f"  wall {row['wall_s']:.0f} s  failed {row['failed']}", flush=True)
    summary = {"settings": vars(args), "runs": runs, "median": {}}
    for name in ("agebo", "age"):
        mine = [r for r in runs if r["search"] == name]
        summary["median"][name] = {"best_val_r2": statistics.median(r["best"] for r in mine),
                                   "wall_s": statistics.median(r["wall_s"] for r in mine)}
        print(f"median over {len(mine)} seeds: {name:6s} best val_r2 {summary['median'][name]['best_val_r2']:.4f}"
              f"  wall {summary['median'][name]['wall_s']:.0f} s", flush=True)
    with open(os.path.join(args.output_dir, "summary.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
