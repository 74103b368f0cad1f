"""The Balsam job runner reaches ``run(config)`` fast: no heavy module on its way there."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from hpcnas.balsam.job_runner import TIMINGS_MARKER, process_start_time
from hpcnas.balsam.jobs import MARKER, encode_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_no_heavy_module_is_imported_before_the_run_function(tmp_path):
    # a job environment as Balsam gives it (the DB is unreachable: the report falls back to the marker)
    env = {**os.environ, "BALSAM_JOB_ID": "00000000-0000-0000-0000-000000000000",
           "BALSAM_DB_PATH": str(tmp_path), "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-m", "hpcnas.balsam.job_runner",
                           "tests.support.run_functions.loaded_heavy_modules", encode_config({"x": 1.0})],
                          capture_output=True, text=True, timeout=120, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    (report,) = [json.loads(l[len(MARKER):]) for l in lines if l.startswith(MARKER)]
    assert report["metadata"]["loaded"] == "none"
    (timings,) = [json.loads(l[len(TIMINGS_MARKER):]) for l in lines if l.startswith(TIMINGS_MARKER)]
    assert timings["process_start"] <= timings["run_start"] <= timings["run_end"] <= timings["reported"]
    assert lines[-1].startswith(TIMINGS_MARKER) and lines.index(next(l for l in lines if l.startswith(MARKER))) < len(lines) - 1


def test_process_start_time_is_this_process_start():
    import time

    import psutil

    start = process_start_time()
    assert start is not None and abs(start - psutil.Process().create_time()) < 0.05 and start <= time.time()
