"""The ray evaluator on a real (local, 2-CPU) Ray: the shared evaluator contract and more."""
from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import time

import pytest

from hpcnas.core.errors import HpcnasError, UsageError
from hpcnas.evaluator.base import DONE, STOPPED, create_evaluator
from tests.support.components import require
from tests.support.evaluator_suite import (
    RF,
    EvaluatorSuite,
    ProcessIsolationSuite,
    RecoverSuite,
    TimeoutSuite,
    gather_n,
)

pytestmark = [pytest.mark.e2e, pytest.mark.ray]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = "tests.e2e.test_ray_evaluator"


def curve(config):
    """Reports ``x * (1 - exp(-epoch / 3))`` for 9 epochs (imported by Ray tasks)."""
    from hpcnas import report

    value = 0.0
    for epoch in range(1, 10):
        value = config["x"] * (1 - math.exp(-epoch / 3))
        report(epoch, value)
        time.sleep(0.02)
    return value


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray (2 CPUs) for the whole module; evaluators reuse it and leave it running."""
    require("ray", importlib.util.find_spec("ray") is not None, "pip install 'hpcnas[ray]'")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def ray_factory(ray_session):
    built = []

    def make(run_function, num_workers=2, eval_timeout=None, **options):
        evaluator = create_evaluator("ray", run_function, num_workers=num_workers, eval_timeout=eval_timeout, **options)
        built.append(evaluator)
        return evaluator

    yield make
    for evaluator in built:
        evaluator.close()


@pytest.fixture
def make_evaluator(ray_factory):
    return ray_factory


class TestRayContract(EvaluatorSuite, ProcessIsolationSuite, TimeoutSuite, RecoverSuite):
    wait = 90.0

    @pytest.fixture
    def make_evaluator(self, ray_factory):
        return ray_factory


def test_workers_are_inferred_from_cluster_resources(make_evaluator, ray_session):
    assert make_evaluator(RF + "echo", num_workers=None).num_workers == 2
    evaluator = make_evaluator(RF + "echo", num_workers=None, num_cpus_per_task=2)
    assert evaluator.num_workers == 1
    assert "2 CPU / 2 per task = 1" in evaluator.worker_arithmetic
    with pytest.raises(UsageError, match=r"cannot run one evaluation: .*0 GPU / 1 per task = 0"):
        make_evaluator(RF + "echo", num_workers=None, num_gpus_per_task=1)
    assert ray_session.is_initialized()  # a failed evaluator leaves a Ray it did not start alone


def test_tasks_reserve_their_cpus(make_evaluator):
    # 2 CPUs per task on a 2-CPU Ray: even with 2 workers asked, tasks run one at a time
    evaluator = make_evaluator(RF + "sleep_then_echo", num_workers=2, num_cpus_per_task=2)
    evaluator.submit([{"sleep": 0.8, "value": 1.0}, {"sleep": 0.8, "value": 2.0}])
    results = gather_n(evaluator, 2, 60)
    first, second = sorted(results, key=lambda r: r.end_time)
    assert second.start_time >= first.end_time - 0.05


def test_each_task_keeps_its_output_in_its_own_log_file(make_evaluator, tmp_path):
    evaluator = make_evaluator(RF + "chatty", num_workers=2)
    evaluator.log_dir = str(tmp_path)
    evaluator.submit([{"tag": "one"}, {"tag": "two", "fail": True}])
    results = {r.config["tag"]: r for r in gather_n(evaluator, 2, 90)}
    assert open(results["one"].log).read().splitlines() == ["stdout of one", "stderr of one", "child of one"]
    two = open(results["two"].log).read()
    assert results["two"].status == "FAILED" and "ValueError: failing two" in two and "of one" not in two


def test_reports_and_scheduler_stops_reach_ray_tasks(make_evaluator, ray_session):
    from hpcnas.multifidelity import ASHA
    from hpcnas.multifidelity.server import PolicyServer

    server = PolicyServer(ASHA(1, 9, 3), host="127.0.0.1")
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    try:
        evaluator = make_evaluator(f"{HERE}.curve", num_workers=1)
        evaluator.submit([{"x": 1.0}])
        (good,) = gather_n(evaluator, 1, 60)
        evaluator.submit([{"x": 0.2}])
        (weak,) = gather_n(evaluator, 1, 60)
    finally:
        server.close()
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    assert good.status == DONE and len(good.reports) == 9
    assert weak.status == STOPPED and len(weak.reports) == 1
    assert weak.objective == pytest.approx(0.2 * (1 - math.exp(-1 / 3)))


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run(
        [sys.executable, "-m", "hpcnas.cli.main", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )


def test_unreachable_ray_address_is_one_line_error_quickly():
    require("ray", importlib.util.find_spec("ray") is not None, "pip install 'hpcnas[ray]'")
    start = time.monotonic()
    proc = _cli("hps", "random", "--problem", "tests.support.toy.Problem", "--run", "tests.support.toy.run",
                "--evaluator", "ray", "--ray-address", "127.0.0.1:1", "--max-evals", "2", "--no-progress")
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("hpcnas: error:")]
    assert len(lines) == 1 and "no Ray cluster answers at --ray-address 127.0.0.1:1" in lines[0]
    assert elapsed < 15


def test_bad_ray_address_form_is_usage_error():
    with pytest.raises(UsageError, match="not auto or HOST:PORT"):
        from hpcnas.evaluator.ray import _check_reachable

        _check_reachable("nohost", 1.0)
    with pytest.raises(HpcnasError):
        from hpcnas.evaluator.ray import _check_reachable

        _check_reachable("127.0.0.1:1", 1.0)


def test_asha_search_on_ray_through_the_cli(tmp_path):
    """``hpcnas hps asha --evaluator ray``: the scheduler's decisions reach Ray tasks in a fresh Ray."""
    require("ray", importlib.util.find_spec("ray") is not None, "pip install 'hpcnas[ray]'")
    import pandas as pd

    proc = _cli("hps", "asha", "--searcher", "random", "--problem", "tests.unit.test_multifidelity_search.Problem",
                "--run", "tests.unit.test_multifidelity_search.run", "--max-resource", "9", "--max-evals", "10",
                "--seed", "2", "--evaluator", "ray", "--ray-num-cpus", "2", "--output-dir", str(tmp_path),
                "--no-progress", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ray evaluator: cluster 2 CPU / 1 per task = 2; using 2 workers" in proc.stderr
    df = pd.read_csv(tmp_path / "results.csv")
    assert len(df) == 10 and set(df.status) <= {"DONE", "STOPPED"}
    assert (df.status == "STOPPED").sum() >= 3
    assert df.worker.str.startswith("ray-").all()
