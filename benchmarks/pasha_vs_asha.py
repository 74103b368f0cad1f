"""PASHA vs ASHA: total resource used and quality of the returned configuration.

The PASHA paper's claim: PASHA returns a configuration of about the same quality as ASHA while
using much less resource, because it stops raising the maximum resource once the ranking of
the top configurations is stable.

Problem (default ``digits``): an MLP (scikit-learn ``MLPClassifier``) on scikit-learn's digits,
one epoch (one ``partial_fit`` pass over the training set) per unit of resource, validation accuracy as the objective, 4
hyper-parameters (hidden units, initial learning rate, L2 alpha, batch size). ``synthetic``: noisy
saturating learning curves, much faster. Each seed draws ``--configs`` configurations (the same
for both schedulers) and both schedulers see them in the same order, on ``--workers`` simulated
workers (:func:`hpcnas.multifidelity.simulate.simulate`; one time unit per epoch). Learning
curves are computed lazily and cached, so both schedulers see identical curves.

Reported per seed and scheduler: total resource (epochs), the maximum resource reached, the
returned configuration's true rank among the seed's configurations (by accuracy after
``--max-resource`` epochs; 1 = best) and that accuracy, and the simulated makespan.

Run::

    python benchmarks/pasha_vs_asha.py                 # digits, 5 seeds, 64 configs
    python benchmarks/pasha_vs_asha.py --problem synthetic --configs 256
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from typing import Any, Callable

import numpy as np

from hpcnas.multifidelity import ASHA, PASHA
from hpcnas.multifidelity.simulate import simulate
from hpcnas.problem import HpProblem


def make_problem() -> HpProblem:
    problem = HpProblem()
    problem.add_hyperparameter((8, 128), "units")
    problem.add_hyperparameter((1e-4, 0.3, "log-uniform"), "lr")
    problem.add_hyperparameter((1e-6, 1e-1, "log-uniform"), "alpha")
    problem.add_hyperparameter([32, 64, 128, 256], "batch_size", ordinal=True)
    return problem


class DigitsCurves:
    """Lazily trained MLP learning curves on digits: ``curve(config)(epoch) -> val accuracy``."""

    def __init__(self, seed: int) -> None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler

        x, y = load_digits(return_X_y=True)
        x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
        scaler = StandardScaler().fit(x_train)
        self.data = (scaler.transform(x_train), y_train, scaler.transform(x_val), y_val)
        self.classes = np.unique(y)
        self.seed = seed
        self.cache: dict[int, list[float]] = {}
        self.models: dict[int, Any] = {}
        self.epochs_trained = 0

    def __call__(self, index_and_config: tuple[int, dict[str, Any]]) -> Callable[[int], float]:
        index, config = index_and_config
        return lambda epoch: self.value(index, config, epoch)

    def value(self, index: int, config: dict[str, Any], epoch: int) -> float:
        from sklearn.neural_network import MLPClassifier

        values = self.cache.setdefault(index, [])
        if index not in self.models:
            self.models[index] = MLPClassifier(
                hidden_layer_sizes=(int(config["units"]),), learning_rate_init=float(config["lr"]),
                alpha=float(config["alpha"]), batch_size=int(config["batch_size"]), random_state=self.seed + index,
            )
        model = self.models[index]
        x_train, y_train, x_val, y_val = self.data
        while len(values) < epoch:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # one epoch: partial_fit shuffles and walks the mini-batches of batch_size itself
                model.partial_fit(x_train, y_train, classes=self.classes)
            values.append(float(model.score(x_val, y_val)))
            self.epochs_trained += 1
        return values[epoch - 1]


class SyntheticCurves:
    """``a - (a - a0) * exp(-epoch / tau)`` plus Gaussian noise (sd 0.01), fixed per seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.epochs_trained = 0

    def __call__(self, index_and_config: tuple[int, dict[str, Any]]) -> Callable[[int], float]:
        index, config = index_and_config
        rng = np.random.default_rng(self.seed * 100003 + index)
        final = 0.6 + 0.35 * rng.beta(2, 2)
        start = 0.1 + 0.3 * rng.random()
        tau = rng.uniform(1.0, 12.0)
        noise = rng.normal(0, 0.01, 1000)

        def curve(epoch: int) -> float:
            self.epochs_trained += 1
            return float(final - (final - start) * math.exp(-epoch / tau) + noise[epoch])

        return curve


def run_seed(problem_name: str, seed: int, n_configs: int, workers: int, max_resource: int, eta: int) -> list[dict]:
    problem = make_problem()
    configs = list(enumerate(problem.sample(n_configs, seed)))
    curves = DigitsCurves(seed) if problem_name == "digits" else SyntheticCurves(seed)
    cached: dict[int, Callable[[int], float]] = {}

    def curve_of(item: tuple[int, dict[str, Any]]) -> Callable[[int], float]:
        if item[0] not in cached:
            cached[item[0]] = curves(item)
        return cached[item[0]]

    rows = []
    for name, policy in (("ASHA", ASHA(1, max_resource, eta)), ("PASHA", PASHA(1, max_resource, eta))):
        started = time.perf_counter()
        result = simulate(policy, configs, curve_of, num_workers=workers)
        rows.append({"seed": seed, "scheduler": name, "result": result, "seconds": time.perf_counter() - started})
    # true quality of every configuration after max_resource epochs
    final = np.array([curve_of(item)(max_resource) for item in configs])
    for row in rows:
        result = row.pop("result")
        index = result.best_config[0]
        row.update(
            resource=result.total_resource,
            max_rung=result.best[2],
            rank=int(1 + np.sum(final > final[index])),
            final_objective=float(final[index]),
            best_possible=float(final.max()),
            makespan=result.makespan,
            epsilon=result.policy.epsilon() if isinstance(result.policy, PASHA) else None,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=("digits", "synthetic"), default="digits")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--configs", type=int, default=64, help="configurations per seed (default 64)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--max-resource", type=int, default=27)
    parser.add_argument("--reduction-factor", type=int, default=3)
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args(argv)

    print(f"# PASHA vs ASHA on {args.problem}: {args.configs} configurations/seed, {args.workers} workers, "
          f"resource 1..{args.max_resource} epochs, eta {args.reduction_factor}, {args.seeds} seeds")
    print(f"{'seed':>4} {'scheduler':>9} {'resource':>9} {'max rung':>8} {'rank':>5} {'acc@max':>8} "
          f"{'best':>7} {'makespan':>8} {'epsilon':>8}")
    rows: list[dict] = []
    for seed in range(args.seeds):
        for row in run_seed(args.problem, seed, args.configs, args.workers, args.max_resource, args.reduction_factor):
            rows.append(row)
            eps = "" if row["epsilon"] is None else f"{row['epsilon']:.4f}"
            print(f"{row['seed']:>4} {row['scheduler']:>9} {row['resource']:>9.0f} {row['max_rung']:>8.0f} "
                  f"{row['rank']:>5} {row['final_objective']:>8.4f} {row['best_possible']:>7.4f} "
                  f"{row['makespan']:>8.0f} {eps:>8}", flush=True)
    print("# mean over seeds")
    summary = {}
    for name in ("ASHA", "PASHA"):
        mine = [r for r in rows if r["scheduler"] == name]
        summary[name] = {
            "resource": float(np.mean([r["resource"] for r in mine])),
            "rank": float(np.mean([r["rank"] for r in mine])),
            "final_objective": float(np.mean([r["final_objective"] for r in mine])),
            "makespan": float(np.mean([r["makespan"] for r in mine])),
        }
        s = summary[name]
        print(f"{name:>9}: resource {s['resource']:.1f} epochs, rank {s['rank']:.1f}, "
              f"accuracy@max {s['final_objective']:.4f}, makespan {s['makespan']:.1f}")
    ratio = summary["ASHA"]["resource"] / summary["PASHA"]["resource"]
    print(f"# PASHA used {ratio:.2f}x less resource than ASHA; accuracy difference "
          f"{summary['PASHA']['final_objective'] - summary['ASHA']['final_objective']:+.4f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), "rows": rows, "summary": summary}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
