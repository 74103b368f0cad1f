"""The shared evaluator contract suite on the ``balsam`` backend, through a real launcher.

The evaluator runs in the test process (a Django client of the session DB, as its owner's
Postgres role); one serial ``balsam launcher`` per class runs the evaluation jobs of every
test (each test gets its own workflow under the launcher's workflow filter).
"""
from __future__ import annotations

import itertools
import os
import pwd
import uuid
from typing import Iterator

import pytest

from hpcnas.evaluator.base import create_evaluator
from tests.support.evaluator_suite import EvaluatorSuite, ProcessIsolationSuite, RecoverSuite, TimeoutSuite

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]


@pytest.fixture(scope="module")
def balsam_client(balsam_env) -> Iterator[str]:
    """Point this process at the session DB (as its owner) and run one serial launcher."""
    saved = {k: os.environ.get(k) for k in ("BALSAM_DB_PATH", "BALSAM_USER", "HOME")}
    os.environ["BALSAM_DB_PATH"] = balsam_env.db_path
    os.environ["HOME"] = balsam_env.home  # Balsam reads ~/.balsam at import: the owner's settings
    os.environ["BALSAM_USER"] = balsam_env.user or pwd.getpwuid(os.getuid()).pw_name
    prefix = f"suite{uuid.uuid4().hex[:8]}"
    launcher = balsam_env.start_launcher(prefix, "serial", log_name=f"launcher-{prefix}.log")
    try:
        yield prefix
    finally:
        balsam_env.stop(launcher)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class TestBalsamEvaluator(EvaluatorSuite, ProcessIsolationSuite, TimeoutSuite, RecoverSuite):
    wait = 180.0
    keeps_across_lives = True

    @pytest.fixture
    def make_evaluator(self, balsam_client):
        built = []
        counter = itertools.count()

        def make(run_function, num_workers=2, eval_timeout=None, **options):
            options.setdefault("num_evals_per_node", 4)
            options.setdefault("workflow", f"{balsam_client}-{uuid.uuid4().hex[:6]}{next(counter)}")
            ev = create_evaluator(
                "balsam", run_function, num_workers=num_workers, eval_timeout=eval_timeout, verbose=False, **options,
            )
            built.append(ev)
            return ev

        yield make
        for ev in built:
            ev.cancel_pending()
            ev.close()

    @pytest.fixture
    def reopen(self, make_evaluator):
        """The new life of a search: an evaluator of the same workflow (the same search id)."""
        return lambda first, run_function: make_evaluator(run_function, num_workers=1, workflow=first.workflow)


def test_bulk_create_batched_poll_and_per_config_resources(balsam_client):
    """3 submissions = 1 INSERT; a poll = 1 SELECT for all pending jobs; resources(config) applied."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ev = create_evaluator(
        "balsam", "tests.support.run_functions.echo", num_workers=3, workflow=f"{balsam_client}-res",
        resources="tests.support.balsam_problems.resources", num_threads_per_rank=2, verbose=False,
    )
    try:
        with CaptureQueriesContext(connection) as inserts:
            ids = ev.submit([{"x": 9.0}, {"x": 1.0}, {"x": 6.5}])
        assert [q["sql"].split()[0] for q in inserts.captured_queries] == ["INSERT"]
        with CaptureQueriesContext(connection) as polls:
            ev.gather(timeout=0)
        assert len(polls.captured_queries) == 1 and polls.captured_queries[0]["sql"].startswith("SELECT")
        rows = {r["data"]["hpcnas_eval"]["job_id"]: r for r in ev.db.BalsamJob.objects.filter(
            workflow=f"{balsam_client}-res").values("num_nodes", "ranks_per_node", "threads_per_rank", "cpu_affinity", "data", "state_history")}
        assert [(rows[i]["num_nodes"], rows[i]["ranks_per_node"]) for i in ids] == [(2, 4), (1, 1), (2, 4)]
        assert all(rows[i]["threads_per_rank"] == 2 for i in ids)
        # aprun reserves the threads only with -cc depth (Theta), so a 2-thread job asks for it
        assert all(rows[i]["cpu_affinity"] == "depth" for i in ids)
        # created runnable (no transition process in between): CREATED, then PREPROCESSED at once
        from hpcnas.analytics.balsam_db import parse_state_history
        from hpcnas.balsam.fastforward import MESSAGE

        for i in ids:
            steps = parse_state_history([i], [rows[i]["state_history"]])["state"].tolist()
            assert steps[:2] == ["CREATED", "PREPROCESSED"] and MESSAGE in rows[i]["state_history"]
    finally:
        ev.cancel_pending()
        ev.close()
