"""Evaluate one configuration inside a Balsam job and report the result.

Usage (this is the command line of the evaluation app; the evaluator builds it)::

    python -m hpcnas.balsam.job_runner RUN_FUNCTION CONFIG [--timeout SECONDS] [--trial-id JOB_ID]

``RUN_FUNCTION`` is a dotted path, ``CONFIG`` is ``b64:<base64url JSON>`` (see
:func:`hpcnas.balsam.jobs.encode_config`) or a plain JSON object. The runner

1. evaluates with :func:`hpcnas.evaluator.runner.run_config` (``--timeout``: a ``SIGALRM``
   stops the run function, status ``TIMEOUT``);
2. on MPI rank 0 only, prints ``HPCNAS_RESULT <json>`` (fallback) and then stores the same
   report in the job's ``data`` with one short ``UPDATE`` through psycopg2 (the address in the
   DB's ``server-info``, as Balsam's settings read it; about 0.05 s), or, when that fails, through
   ``balsam.launcher.dag.current_job`` (Django: about 1 s) -- no DB connection is open while the
   run function runs, and neither Django nor Balsam is imported before it;
3. exits 0 when the evaluation succeeded or was stopped early by a multi-fidelity scheduler
   (``STOPPED``: a decision, not an error), :data:`~hpcnas.balsam.jobs.EXIT_FAILED` (3) when it
   failed, so Balsam records ``RUN_ERROR`` with the output tail (and does not retry: Balsam
   retries exit codes 1, 255, -11).

A multi-fidelity search's scheduler address reaches the job through its ``environ_vars``
(``HPCNAS_MF_ADDRESS`` as ``host/port``: Balsam 0.x cannot carry ``:`` in a value), so
``hpcnas.report`` inside the run function can stop the evaluation early.

A run function with the attribute ``fast_exit = True`` (:mod:`hpcnas.nas.run.horovod`) lets
the process leave without the interpreter's teardown once its report is stored: the exit
handlers (``atexit``: Horovod's shutdown, logging) still run and stdio is flushed, but module
and object destructors do not -- with TensorFlow loaded they take 1-1.5 s per process, paid by
every evaluation. Only for run functions that leave no unflushed files behind.

``HPCNAS_TIMINGS <json>`` (the last line, after the report is stored) gives this process's own
times: ``process_start`` (from ``/proc``), ``run_start``/``run_end`` (the run function) and
``reported``; ``benchmarks/balsam_throughput.py`` prints their medians.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time
from typing import Any, Sequence

from hpcnas.balsam.jobs import EXIT_FAILED, MARKER, RESULT_KEY, decode_config
from hpcnas.core.errors import HpcnasError
from hpcnas.core.mpi_env import launcher_rank
from hpcnas.core.trial import TOLD, EvaluationTimeout, Outcome



#: stdout line prefix of the runner's own timings (after the report)
TIMINGS_MARKER = "HPCNAS_TIMINGS "
#: Balsam 0.x's job table and its columns (Django app ``balsam.core``, model ``BalsamJob``)
JOB_TABLE, PK_COLUMN, DATA_COLUMN = "core_balsamjob", "job_id", "data"


def process_start_time() -> float | None:
    """When this process started (epoch seconds, from ``/proc``, to the clock tick; None elsewhere).

    The start is counted in ticks since boot; the boot's epoch time comes from the boot-time
    clock (``/proc/stat``'s ``btime`` is whole seconds, up to 1 s early)."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            ticks = int(fh.read().rsplit(b")", 1)[1].split()[19])
        boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def mpi_rank() -> int:
    """This process's MPI rank from the launcher's environment (0 outside MPI)."""
    return launcher_rank() or 0


def report_to_balsam(report: dict[str, Any]) -> bool:
    """Merge ``{RESULT_KEY: report}`` into the current job's ``data``; False if impossible."""
    job_id, db_path = os.environ.get("BALSAM_JOB_ID"), os.environ.get("BALSAM_DB_PATH")
    if not job_id or not db_path:
        return False
    payload = json.dumps({RESULT_KEY: report})
    try:
        if store_with_psycopg2(db_path, job_id, payload):
            return True
    except Exception:  # noqa: BLE001 - Balsam's own path below decides, and says why it cannot
        pass
    return store_with_django(payload)


def store_with_psycopg2(db_path: str, job_id: str, payload: str) -> bool:
    """One ``UPDATE`` of the job's ``data`` with psycopg2 at the address Balsam's settings use."""
    import psycopg2  # noqa: PLC0415 - 0.05 s, only after the run function

    from hpcnas.balsam.server_info import connection_params

    conn = psycopg2.connect(**connection_params(db_path, connect_timeout=30))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f"UPDATE {JOB_TABLE} SET {DATA_COLUMN} = {DATA_COLUMN} || %s::jsonb WHERE {PK_COLUMN} = %s",
                        (payload, job_id))
            return cur.rowcount == 1
    finally:
        conn.close()


def store_with_django(payload: str) -> bool:
    """The same ``UPDATE`` through ``balsam.launcher.dag.current_job`` (Django set-up: ~1 s)."""
    try:
        from balsam.launcher import dag  # noqa: PLC0415 - connects to the DB: import late
        from django.db import connection
        from django.db.models.expressions import RawSQL

        job = dag.current_job
        if job is None:
            return False
        type(job).objects.filter(pk=job.pk).update(data=RawSQL("data || %s::jsonb", [payload]))
        connection.close()
        return True
    except (Exception, SystemExit) as err:  # noqa: BLE001 - the marker line is the fallback
        # (Balsam's settings call sys.exit(1) on a bad BALSAM_DB_PATH: exit 1 would be retried)
        print(f"hpcnas: could not store the result in the Balsam DB: {err!r}", file=sys.stderr)
        return False


def evaluate(run_function: str, config: dict[str, Any], timeout: float | None,
             trial_id: str | None = None) -> dict[str, Any]:
    from hpcnas.evaluator.runner import run_config

    def alarm(signum: int, frame: Any) -> None:
        raise EvaluationTimeout(f"evaluation exceeded --timeout {timeout:g} s")

    if timeout:
        signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        outcome = run_config(run_function, config, trial_id=trial_id)
    except EvaluationTimeout as err:  # raised outside the run function (import time)
        outcome = Outcome.failure(str(err), None, None, timed_out=True)
    finally:
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
    report = outcome.to_wire()
    report["metadata"] = _json_safe(report["metadata"])
    return report


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return {k: repr(v) for k, v in value.items()} if isinstance(value, dict) else repr(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hpcnas.balsam.job_runner", description=__doc__.split("\n")[0])
    parser.add_argument("run_function", help="dotted path of run(config) -> float")
    parser.add_argument("config", help="b64:<base64url JSON> or a JSON object")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before the evaluation is stopped")
    parser.add_argument("--trial-id", default=None, help="the evaluation's job id in the search (names its reports)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = decode_config(args.config)
    except HpcnasError as err:  # a malformed job: one line, a FAILED report, exit 2 (not retried)
        print(f"hpcnas: error: {err}", file=sys.stderr, flush=True)
        if mpi_rank() == 0:
            report_to_balsam(Outcome.failure(str(err), None, None).to_wire())
        return HpcnasError.exit_code
    # rank 0 reports as the job (the only rank whose result is stored); other ranks' reports stay
    # trials of their own, as one trial fed by several ranks would see their steps interleave
    report = evaluate(args.run_function, config, args.timeout, args.trial_id if mpi_rank() == 0 else None)
    report["rank"] = mpi_rank()
    report["host"] = socket.gethostname()
    if report["rank"] == 0:
        print(MARKER + json.dumps(report, allow_nan=False), flush=True)
        report_to_balsam(report)
        timings = {"process_start": process_start_time(), "run_start": report.get("start_time"),
                   "run_end": report.get("end_time"), "reported": time.time()}
        print(TIMINGS_MARKER + json.dumps(timings), flush=True)
    if report["status"] not in TOLD:
        print(f"hpcnas: evaluation {report['status']}: {report['error']}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    return 0


def wants_fast_exit(argv: Sequence[str]) -> bool:
    """Whether the run function named in ``argv`` (imported by now) sets ``fast_exit = True``."""
    for arg in argv:
        module_name, _, name = arg.rpartition(".")
        func = getattr(sys.modules.get(module_name), name, None) if module_name else None
        if func is not None:
            return getattr(func, "fast_exit", False) is True
    return False


def exit_now(code: int) -> None:
    """Run the exit handlers, flush stdio and leave with ``code``, skipping the interpreter's teardown."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    exit_code = main()
    if wants_fast_exit(sys.argv[1:]):
        exit_now(exit_code)
    sys.exit(exit_code)
