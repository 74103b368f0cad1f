"""Fingerprints of seeded AMBS ask/tell runs with evaluations in flight: a refactor of AMBS that
must not change its behaviour prints the same lines before and after.

Each run keeps about four points pending (tells in a seeded random order, about 5 % failures,
batch asks of 1 or 3), so the lies, their removal and the refits are all exercised. ::

    python benchmarks/ambs_trace.py > before.txt   # on the old code
    python benchmarks/ambs_trace.py > after.txt    # on the new code
    diff before.txt after.txt                      # nothing: the same asks for every seed

About a minute on one core. (Fingerprints depend on the NumPy / scikit-learn versions: compare
runs made in one environment.)
"""
from __future__ import annotations

import argparse
import hashlib
import json

import numpy as np

from hpcnas.benchmark import polynome2
from hpcnas.search.hps.ambs import AMBS
from hpcnas.search.hps.liars import LIAR_STRATEGIES


def fingerprint(surrogate: str, liar: str, seed: int, n: int) -> str:
    search = AMBS(polynome2.Problem, random_state=seed, surrogate_model=surrogate, liar_strategy=liar)
    rng = np.random.default_rng(seed)
    pending = search.ask(4)
    told: list[tuple[dict, float | None]] = []
    while len(told) < n:
        config = pending.pop(int(rng.integers(len(pending))))
        objective = polynome2.run(config) if rng.random() > 0.05 else None
        search.tell([(config, objective)])
        told.append((config, objective))
        pending.extend(search.ask(1 if rng.random() > 0.2 else 3))
    return hashlib.sha256(json.dumps(told, sort_keys=True, default=str).encode()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--evals", type=int, default=70, help="told points per run (GP: 40)")
    args = parser.parse_args(argv)
    for surrogate in ("RF", "ET", "GP"):
        for liar in LIAR_STRATEGIES:
            if surrogate == "GP" and liar in ("cl_min", "cl_mean"):
                continue
            n = min(args.evals, 40) if surrogate == "GP" else args.evals
            print(surrogate, liar, [fingerprint(surrogate, liar, seed, n) for seed in args.seeds], flush=True)


if __name__ == "__main__":
    main()
