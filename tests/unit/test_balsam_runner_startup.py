"""The Balsam job runner reaches ``run(config)`` fast: no heavy module on its way there."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from hpcnas.balsam.job_runner import TIMINGS_MARKER
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


def test_process_start_time_is_when_the_process_started_to_the_clock_tick():
    """Between the parent's clock before the spawn and the child's own first reading (a start
    from ``btime``, whole seconds, read up to 1 s early)."""
    import time

    code = ("import time; now = time.time(); from hpcnas.balsam.job_runner import process_start_time as p; "
            "print(p(), now)")
    before = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    start, child_now = map(float, out.split())
    tick = 1.0 / os.sysconf("SC_CLK_TCK")
    assert before - tick - 0.005 <= start <= child_now


_FAKE_PSYCOPG2 = '''
import json, os
class _Cursor:
    rowcount = 1
    def __enter__(self): return self
    def __exit__(self, *a): return False
    def execute(self, sql, params):
        with open(os.environ["FAKE_PG_LOG"], "w") as fh:
            json.dump({"sql": sql, "params": list(params), "connect": _Conn.params}, fh)
class _Conn:
    params = None
    def __enter__(self): return self
    def __exit__(self, *a): return False
    def cursor(self): return _Cursor()
    def close(self): pass
def connect(**params):
    _Conn.params = params
    return _Conn()
'''


def test_the_report_is_one_update_without_django(tmp_path):
    """After the run: one UPDATE of Balsam's job table at server-info's address, Django never imported."""
    (tmp_path / "stub").mkdir()
    (tmp_path / "stub" / "psycopg2.py").write_text(_FAKE_PSYCOPG2)
    db = tmp_path / "db"
    db.mkdir()
    (db / "server-info").write_text(json.dumps({"host": "node1", "port": 5433, "password": "pw"}))
    job = "11111111-2222-3333-4444-555555555555"
    env = {**os.environ, "BALSAM_JOB_ID": job, "BALSAM_DB_PATH": str(db), "BALSAM_USER": "alice",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "stub"), ROOT]), "FAKE_PG_LOG": str(tmp_path / "pg.json")}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "hpcnas.balsam.job_runner",
                           "tests.support.run_functions.quadratic", encode_config({"x": 2.0})],
                          capture_output=True, text=True, timeout=120, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "psycopg2" in imported and not imported & {"django", "balsam", "numpy", "pandas", "sklearn"}
    call = json.loads((tmp_path / "pg.json").read_text())
    assert call["sql"] == "UPDATE core_balsamjob SET data = data || %s::jsonb WHERE job_id = %s"
    assert call["params"][1] == job and json.loads(call["params"][0])["hpcnas_result"]["objective"] == -4.0
    assert call["connect"] == {"dbname": "balsam", "user": "alice", "connect_timeout": 30, "host": "node1",
                               "port": 5433, "password": "pw"}


def test_balsam_job_table_is_the_one_the_runner_updates():
    """Balsam's model: app ``balsam.core`` (label core), BalsamJob with pk ``job_id`` and JSON ``data``."""
    import ast
    import importlib.util

    from hpcnas.balsam.job_runner import DATA_COLUMN, JOB_TABLE, PK_COLUMN

    def tree(module):
        with open(importlib.util.find_spec(module).origin, encoding="utf-8") as fh:
            return ast.parse(fh.read())

    app = next(n for n in ast.walk(tree("balsam.core.apps")) if isinstance(n, ast.ClassDef))
    assert "name = 'balsam.core'" in ast.unparse(app) or 'name = "balsam.core"' in ast.unparse(app)
    model = next(n for n in ast.walk(tree("balsam.core.models")) if isinstance(n, ast.ClassDef) and n.name == "BalsamJob")
    text = ast.unparse(model)
    assert "db_table" not in text and "app_label" not in text  # Django's default name: <label>_<model>
    fields = {t.id: ast.unparse(n.value) for n in model.body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name)}
    assert "primary_key=True" in fields[PK_COLUMN] and "JSONField" in fields[DATA_COLUMN]
    assert JOB_TABLE == "core_" + model.name.lower()
