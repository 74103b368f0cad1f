"""The scale benchmark runs every search it names, the Optuna peer included, through the master."""
from __future__ import annotations

import pytest

from benchmarks import master_scale


@pytest.mark.parametrize("method", ["random", "ambs-rf", "optuna-tpe"])
def test_the_simulation_runs_each_search_and_reports_figures(method: str) -> None:
    if method == "optuna-tpe":
        pytest.importorskip("optuna")
    r = master_scale.simulate(method, workers=4, evals=24, duration=60.0, scale=1.0)
    assert 0.5 < r["utilization"] <= 1.0 + 1e-9
    assert r["master_ms_per_eval"] > 0 and r["best"] <= 0.0
    assert set(r["best_at"]) == set(master_scale.CHECKPOINTS)
