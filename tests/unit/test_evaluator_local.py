"""The local evaluator: shared contract suite plus what is specific to worker processes."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from hpcnas.core.errors import HpcnasError
from hpcnas.evaluator import create_evaluator
from hpcnas.evaluator.base import DONE, FAILED, TIMEOUT, Evaluator
from tests.support import run_functions
from tests.support.evaluator_suite import (RF, EvaluatorSuite, ProcessIsolationSuite, RecoverSuite, TimeoutSuite,
                                           gather_n)


@pytest.fixture
def make_evaluator():
    built: list[Evaluator] = []

    def make(run_function: Any, num_workers: int = 2, eval_timeout: float | None = None, **options: Any) -> Evaluator:
        evaluator = create_evaluator("local", run_function, num_workers=num_workers, eval_timeout=eval_timeout, **options)
        built.append(evaluator)
        return evaluator

    yield make
    for evaluator in built:
        evaluator.close()


class TestLocalContract(EvaluatorSuite, ProcessIsolationSuite, TimeoutSuite, RecoverSuite):
    wait = 60.0

    @pytest.fixture
    def make_evaluator(self, make_evaluator):  # noqa: F811 - the module fixture
        return make_evaluator


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_worker_process_is_reused_between_evaluations(make_evaluator) -> None:
    evaluator = make_evaluator(RF + "pid", num_workers=1)
    evaluator.submit([{}, {}, {}])
    pids = {r.objective for r in gather_n(evaluator, 3, 60)}
    assert len(pids) == 1 and pids != {float(os.getpid())}


def test_evals_per_worker_recycles_the_process(make_evaluator) -> None:
    evaluator = make_evaluator(RF + "pid", num_workers=1, evals_per_worker=2)
    evaluator.submit([{}] * 5)
    pids = [int(r.objective) for r in gather_n(evaluator, 5, 60)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
    assert not _alive(pids[0]) and not _alive(pids[2])
    with pytest.raises(HpcnasError, match="evals-per-worker"):
        create_evaluator("local", RF + "pid", evals_per_worker=0)


def test_crash_reports_exit_code_and_output_tail_and_replaces_worker(make_evaluator) -> None:
    evaluator = make_evaluator(RF + "call_os_exit", num_workers=1)
    evaluator.submit([{}])
    (result,) = gather_n(evaluator, 1, 60)
    assert result.status == FAILED
    assert "exited with code 7" in result.error
    assert "about to leave with os._exit(7)" in result.error
    dead_pid = result.metadata["pid"]
    assert not _alive(dead_pid)


def test_segfault_names_the_signal(make_evaluator) -> None:
    evaluator = make_evaluator(RF + "segfault", num_workers=1)
    evaluator.submit([{}])
    (result,) = gather_n(evaluator, 1, 60)
    assert result.status == FAILED and "SIGSEGV" in result.error


def test_timeout_kills_the_worker_process(make_evaluator) -> None:
    evaluator = make_evaluator(RF + "hang", num_workers=2, eval_timeout=0.5)
    evaluator.submit([{}, {}])
    results = gather_n(evaluator, 2, 60)
    assert [r.status for r in results] == [TIMEOUT, TIMEOUT]
    assert "--eval-timeout 0.5" in results[0].error
    for r in results:
        assert not _alive(r.metadata["pid"])


def test_workers_run_in_parallel(make_evaluator) -> None:
    evaluator = make_evaluator(RF + "sleep_then_echo", num_workers=2)
    evaluator.submit([{"sleep": 0.0}, {"sleep": 0.0}])  # start both workers first
    gather_n(evaluator, 2, 60)
    start = time.monotonic()
    evaluator.submit([{"sleep": 0.6}] * 4)
    results = gather_n(evaluator, 4, 60)
    elapsed = time.monotonic() - start
    assert {r.worker for r in results} == {"local-0", "local-1"}
    assert elapsed < 2.2, f"4 x 0.6 s on 2 workers took {elapsed:.2f} s (serial would be 2.4 s)"


def test_printing_a_gigabyte_keeps_master_memory_bounded(make_evaluator) -> None:
    evaluator = make_evaluator(RF + "print_a_lot", num_workers=1, output_tail=1000)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    rss_before = _rss_kib()
    evaluator.submit([{"megabytes": 1024}])
    (result,) = gather_n(evaluator, 1, 300)
    assert result.status == DONE and result.objective == 1.0
    growth = max(_rss_kib() - rss_before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before)
    assert growth < 64 * 1024, f"master memory grew by {growth} KiB"


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_output_tail_bounds_the_error_text(make_evaluator) -> None:
    evaluator = make_evaluator(RF + "maybe_crash", num_workers=1, output_tail=50)
    evaluator.submit([{"crash": True}])
    (result,) = gather_n(evaluator, 1, 60)
    assert result.status == FAILED and len(result.error) < 200


def test_callable_run_function_is_sent_by_reference(make_evaluator) -> None:
    evaluator = make_evaluator(run_functions.quadratic, num_workers=1)
    evaluator.submit([{"x": 2.0}])
    assert gather_n(evaluator, 1, 60)[0].objective == -4.0


def test_bad_options_are_usage_errors() -> None:
    with pytest.raises(HpcnasError, match="num-workers"):
        create_evaluator("local", RF + "echo", num_workers=0)
    with pytest.raises(HpcnasError, match="eval-timeout"):
        create_evaluator("local", RF + "echo", eval_timeout=-1)
    with pytest.raises(HpcnasError, match="output-tail"):
        create_evaluator("local", RF + "echo", output_tail=-5)
    with pytest.raises(TypeError):
        create_evaluator("local", RF + "echo", no_such_option=1)


def test_module_on_master_sys_path_is_importable_in_workers(make_evaluator, tmp_path, monkeypatch) -> None:
    (tmp_path / "mymod_local_eval.py").write_text("def run(config):\n    return 42.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir("/")
    evaluator = make_evaluator("mymod_local_eval.run", num_workers=1)
    evaluator.submit([{}])
    assert gather_n(evaluator, 1, 60)[0].objective == 42.0


def test_close_kills_running_evaluations(make_evaluator) -> None:
    evaluator = make_evaluator(RF + "sleep_then_echo", num_workers=1)
    evaluator.submit([{"sleep": 60}])
    assert evaluator.gather(timeout=0.5) == []
    pid = evaluator._workers[0].proc.pid
    assert _alive(pid)
    evaluator.close()
    assert not _alive(pid)


def test_killed_master_leaves_no_worker_behind() -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from hpcnas.evaluator import create_evaluator
        ev = create_evaluator("local", "tests.support.run_functions.sleep_then_echo", num_workers=1)
        ev.submit([{{"sleep": 600}}])
        ev.gather(timeout=0.5)
        print(ev._workers[0].proc.pid, flush=True)
        time.sleep(600)
        """
    )
    master = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        worker_pid = int(master.stdout.readline())
        assert _alive(worker_pid)
    finally:
        master.kill()
        master.wait()
    deadline = time.monotonic() + 10
    while _alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker_pid)


def test_run_function_defined_in_the_main_script(tmp_path) -> None:
    """A script that defines run() and searches in its __main__ block works (and does not recurse)."""
    script = tmp_path / "my_search.py"
    script.write_text(textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        from hpcnas.evaluator import create_evaluator

        def run(config):
            return config["x"] * 2.0

        if __name__ == "__main__":
            with create_evaluator("local", run, num_workers=2) as ev:
                ev.submit([{{"x": 1.0}}, {{"x": 2.5}}])
                results = []
                while ev.num_pending:
                    results += ev.gather()
            print(sorted((r.status, r.objective) for r in results))
        """
    ))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[('DONE', 2.0), ('DONE', 5.0)]"


def test_close_is_quick_with_many_idle_and_busy_workers(make_evaluator) -> None:
    evaluator = make_evaluator(RF + "sleep_then_echo", num_workers=6)
    evaluator.submit([{"sleep": 0.0}] * 3 + [{"sleep": 60}] * 3)
    gather_n(evaluator, 3, 60)
    pids = [w.proc.pid for w in evaluator._workers if w is not None]
    assert len(pids) == 6
    start = time.monotonic()
    evaluator.close()
    assert time.monotonic() - start < 3.0
    assert not any(_alive(p) for p in pids)


def test_gpus_per_worker_gives_each_slot_its_own_devices(make_evaluator, monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,7,9,11")
    evaluator = make_evaluator(RF + "visible_devices", num_workers=2, gpus_per_worker=2)
    evaluator.submit([{}] * 6)
    results = gather_n(evaluator, 6, 60)
    seen = {(r.worker, r.metadata["cuda"], r.metadata["worker"]) for r in results}
    assert seen <= {("local-0", "3,5", "local-0"), ("local-1", "7,9", "local-1")}
    assert len({s[1] for s in seen}) == len({s[0] for s in seen})


def test_gpus_per_worker_beyond_the_visible_gpus_is_one_line(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(HpcnasError, match=r"--num-workers 3 x --gpus-per-worker 1 needs 3 GPUs but 2 are visible"):
        create_evaluator("local", RF + "echo", num_workers=3, gpus_per_worker=1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(HpcnasError, match="0 are visible"):
        create_evaluator("local", RF + "echo", num_workers=1, gpus_per_worker=1)


def test_without_gpus_per_worker_the_environment_is_untouched(make_evaluator, monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4")
    evaluator = make_evaluator(RF + "visible_devices", num_workers=1)
    evaluator.submit([{}])
    assert gather_n(evaluator, 1, 60)[0].metadata["cuda"] == "4"


def test_each_evaluation_keeps_its_output_in_its_own_log_file(make_evaluator, tmp_path) -> None:
    evaluator = make_evaluator(RF + "chatty", num_workers=1)
    evaluator.log_dir = str(tmp_path)
    evaluator.submit([{"tag": "one"}, {"tag": "two", "fail": True}, {}])
    results = {r.config.get("tag"): r for r in gather_n(evaluator, 3, 60)}
    one, two = (open(results[t].log).read() for t in ("one", "two"))
    assert one.splitlines() == ["stdout of one", "stderr of one", "child of one"]
    assert "stdout of two" in two and "child of two" in two and "of one" not in two
    assert "Traceback (most recent call last)" in two and "ValueError: failing two" in two  # the whole traceback
    assert results["two"].status == FAILED and results["one"].log == str(tmp_path / f"{results['one'].job_id}.log")
    assert "KeyError: 'tag'" in open(results[None].log).read()


def test_a_crashed_evaluation_keeps_its_output_and_error_tail(make_evaluator, tmp_path) -> None:
    evaluator = make_evaluator(RF + "call_os_exit", num_workers=1)
    evaluator.log_dir = str(tmp_path)
    evaluator.submit([{}])
    (result,) = gather_n(evaluator, 1, 60)
    assert result.status == FAILED and "about to leave with os._exit(7)" in result.error
    assert "about to leave" in open(result.log).read()


def test_without_log_dir_no_log_is_kept(make_evaluator) -> None:
    evaluator = make_evaluator(RF + "chatty", num_workers=1)
    evaluator.submit([{"tag": "x"}])
    assert gather_n(evaluator, 1, 60)[0].log is None


def test_a_log_larger_than_the_limit_keeps_its_first_and_last_halves(make_evaluator, tmp_path) -> None:
    evaluator = make_evaluator(RF + "print_a_lot", num_workers=1, log_limit=2**20)
    evaluator.log_dir = str(tmp_path)
    evaluator.submit([{"megabytes": 3}])
    (result,) = gather_n(evaluator, 1, 60)
    text = open(result.log).read()
    assert result.status == DONE and 2**20 <= len(text) < 2**20 + 100
    assert f"[hpcnas: {3 * 2**20 - 2**20} bytes of output left out here]" in text
    assert text.startswith("x" * 1023 + "\n") and text.endswith("x" * 1023 + "\n")
