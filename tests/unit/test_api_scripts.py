"""Run functions defined in a script (no main guard), a notebook or a lambda, with the local evaluator."""
from __future__ import annotations

import csv
import glob
import os
import subprocess
import sys
import textwrap

import pytest

from hpcnas.evaluator import create_evaluator
from hpcnas.evaluator.base import DONE
from tests.support.evaluator_suite import gather_n

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_script(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "api_script.py"
    script.write_text(f"import sys\nsys.path.insert(0, {REPO!r})\n" + textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180,
                          cwd=tmp_path, env=env)


def _rows(tmp_path) -> list[dict[str, str]]:
    rows = []
    for path in glob.glob(str(tmp_path / "**" / "results.csv"), recursive=True):
        with open(path, newline="") as fh:
            rows += list(csv.DictReader(fh))
    return rows


def test_script_without_main_guard_writes_exactly_max_evals_rows(tmp_path) -> None:
    """The search at the script's top level must not run again in the workers (issue 15)."""
    proc = _run_script(tmp_path, """
        from hpcnas.evaluator import create_evaluator
        from hpcnas.problem import HpProblem
        from hpcnas.search.base import get_search_class
        from hpcnas.search.master import SearchMaster

        Problem = HpProblem()
        Problem.add_hyperparameter((0.0, 1.0), "x")

        def run(config):
            print("evaluating", config["x"])
            return -config["x"] ** 2

        with create_evaluator("local", run, num_workers=2) as ev:
            df = SearchMaster(Problem, get_search_class("hps", "random")(Problem, random_state=1), ev, "out",
                              max_evals=4, progress=False).run()
        print("ROWS", len(df))
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = _rows(tmp_path)
    assert len(rows) == 4, [r["error"][:200] for r in rows]
    assert {r["status"] for r in rows} == {DONE}, [r["error"][:200] for r in rows]
    assert proc.stdout.count("ROWS") == 1


def test_one_call_api_in_a_script_without_main_guard(tmp_path) -> None:
    """The issue's case with hpcnas.search: exactly max_evals rows, the run function's prints in the logs."""
    proc = _run_script(tmp_path, """
        import hpcnas
        from hpcnas.problem import HpProblem

        Problem = HpProblem()
        Problem.add_hyperparameter((0.0, 1.0), "x")

        def run(config):
            print("evaluating", config["x"])
            return -config["x"] ** 2

        df = hpcnas.search(Problem, run, search="random", max_evals=6, num_workers=2, output_dir="out",
                           log_interval=0)
        print("ROWS", len(df), sorted(set(df.status)))
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("ROWS") == 1 and "ROWS 6 ['DONE']" in proc.stdout
    assert len(_rows(tmp_path)) == 6
    assert sum(" DONE objective " in line for line in proc.stdout.splitlines()) == 6  # no terminal: a line each
    assert all(open(r["log"]).read().startswith("evaluating ") for r in _rows(tmp_path))


def test_a_search_started_while_a_run_function_is_imported_is_one_line(tmp_path) -> None:
    """A dotted-path run function whose module starts a search at import: every evaluation fails
    with one line naming the fix, and no nested search writes a row."""
    nested = str(tmp_path / "nested")
    (tmp_path / "searching_module.py").write_text(textwrap.dedent(f"""
        from hpcnas.problem import HpProblem
        from hpcnas.search.master import SearchMaster
        from hpcnas.search.base import get_search_class
        from hpcnas.evaluator import create_evaluator

        Problem = HpProblem()
        Problem.add_hyperparameter((0.0, 1.0), "x")

        def run(config):
            return config["x"]

        with create_evaluator("local", "searching_module.run", num_workers=1) as ev:
            SearchMaster(Problem, get_search_class("hps", "random")(Problem), ev, {nested!r}, max_evals=2,
                         progress=False).run()
    """))
    from hpcnas.core.errors import HpcnasError
    from hpcnas.evaluator.runner import resolve_run_function

    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(HpcnasError, match="__name__ == '__main__'"):
            resolve_run_function("searching_module.run")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("searching_module", None)
    assert not (tmp_path / "nested").exists()


@pytest.fixture
def make_evaluator():
    built = []

    def make(run_function, **options):
        evaluator = create_evaluator("local", run_function, **options)
        built.append(evaluator)
        return evaluator

    yield make
    for evaluator in built:
        evaluator.close()


def test_lambda_and_closure_run_functions_work_with_the_local_evaluator(make_evaluator) -> None:
    offset = 3.0

    def closure(config):
        return config["x"] + offset

    for run_function, expected in ((lambda config: config["x"] * 2.0, 5.0), (closure, 5.5)):
        evaluator = make_evaluator(run_function, num_workers=1)
        evaluator.submit([{"x": 2.5}])
        (result,) = gather_n(evaluator, 1, 60)
        assert (result.status, result.objective) == (DONE, expected), result.error


def test_function_defined_interactively_works_with_the_local_evaluator(tmp_path) -> None:
    """A notebook's functions live in __main__ without a file: sent by value."""
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        from hpcnas.evaluator import create_evaluator
        scale = 4.0
        def run(config):
            return config["x"] * scale
        with create_evaluator("local", run, num_workers=1) as ev:
            ev.submit([{{"x": 2.0}}])
            results = []
            while ev.num_pending:
                results += ev.gather()
        print("RESULT", results[0].status, results[0].objective)
    """)
    proc = subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "RESULT DONE 8.0" in proc.stdout


def test_a_run_function_that_cannot_be_sent_is_one_line() -> None:
    import threading

    from hpcnas.core.errors import HpcnasError

    lock = threading.Lock()
    with pytest.raises(HpcnasError, match="cannot send run function") as info:
        create_evaluator("local", lambda config: lock.locked())
    assert "\n" not in str(info.value)


def test_a_function_hpcnas_loaded_from_a_file_is_sent_by_value(make_evaluator, tmp_path) -> None:
    from hpcnas.core.loading import load_attribute

    (tmp_path / "fileloaded.py").write_text("def run(config):\n    return config['x'] + 1.0\n")
    run = load_attribute(f"{tmp_path / 'fileloaded.py'}:run", "run function")
    assert run.__module__ == "_hpcnas_user_fileloaded"  # not importable by that name in a worker
    evaluator = make_evaluator(run, num_workers=1)
    evaluator.submit([{"x": 1.0}])
    (result,) = gather_n(evaluator, 1, 60)
    assert (result.status, result.objective) == (DONE, 2.0), result.error
