"""A pending Balsam job that vanishes from the DB (a Postgres crash, ``balsam rm``) is created
again once, then becomes a failed result: the master never polls a missing job forever.

The evaluator runs in the test process against the session DB, with no launcher for its
workflow, so its jobs stay pending until the test deletes their rows.
"""
from __future__ import annotations

import logging
import os
import pwd
import uuid
from typing import Iterator

import pytest

from hpcnas.evaluator.base import create_evaluator

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]


@pytest.fixture
def balsam_evaluator(balsam_env) -> Iterator[object]:
    saved = {k: os.environ.get(k) for k in ("BALSAM_DB_PATH", "BALSAM_USER", "HOME")}
    os.environ["BALSAM_DB_PATH"] = balsam_env.db_path
    os.environ["HOME"] = balsam_env.home  # Balsam reads ~/.balsam at import: the owner's settings
    os.environ["BALSAM_USER"] = balsam_env.user or pwd.getpwuid(os.getuid()).pw_name
    ev = create_evaluator("balsam", "tests.support.run_functions.echo", num_workers=2,
                          workflow=f"vanish{uuid.uuid4().hex[:8]}", poll_interval=0.1, verbose=False)
    try:
        yield ev
    finally:
        ev.cancel_pending()
        ev.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _jobs(ev, job_id: str) -> list[dict]:
    return [r for r in ev.db.BalsamJob.objects.filter(workflow=ev.workflow).values("pk", "data")
            if r["data"]["hpcnas_eval"]["job_id"] == job_id]


def test_a_vanished_job_is_created_again_once_then_fails(balsam_evaluator, caplog) -> None:
    ev = balsam_evaluator
    lost, kept = ev.submit([{"x": 1.0}, {"x": 2.0}])
    first = _jobs(ev, lost)
    assert len(first) == 1
    ev.db.BalsamJob.objects.filter(pk=first[0]["pk"]).delete()  # the row is gone, as after a crash

    with caplog.at_level(logging.WARNING, logger="hpcnas"):
        assert ev.gather(timeout=2) == []  # nothing finished: the job was created again instead
    again = _jobs(ev, lost)
    assert len(again) == 1 and again[0]["pk"] != first[0]["pk"]
    assert again[0]["data"]["hpcnas_eval"]["config"] == {"x": 1.0}
    warnings = [r.getMessage() for r in caplog.records if "vanished" in r.getMessage()]
    assert len(warnings) == 1 and f"eval-{lost}" in warnings[0] and "created again" in warnings[0], warnings
    assert "\n" not in warnings[0]
    assert ev.num_pending == 2 and len(_jobs(ev, kept)) == 1

    ev.db.BalsamJob.objects.filter(pk=again[0]["pk"]).delete()  # vanishes a second time
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hpcnas"):
        results = ev.gather(timeout=30)
    assert [r.job_id for r in results] == [lost]
    assert results[0].status == "FAILED" and results[0].config == {"x": 1.0}
    assert "vanished from the Balsam DB twice" in results[0].error
    assert _jobs(ev, lost) == []  # not created a third time
    assert ev.num_pending == 1 and len(_jobs(ev, kept)) == 1
    assert len([r for r in caplog.records if "vanished" in r.getMessage()]) == 1
