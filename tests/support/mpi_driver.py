"""``mpirun -n N python tests/support/mpi_driver.py REPORT.json``: the mpi evaluator's contract run.

Ranks 1..N-1 serve evaluations (:func:`hpcnas.evaluator.mpi.serve`); rank 0 runs
:mod:`tests.support.mpi_contract` with pytest and writes, per test, its outcome and duration
(and the error text of a failure) to ``REPORT.json``, which the e2e test asserts on.
"""
from __future__ import annotations

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


class _Report:
    def __init__(self) -> None:
        self.tests: dict[str, dict[str, object]] = {}

    def pytest_runtest_logreport(self, report) -> None:  # noqa: ANN001 - pytest's TestReport
        entry = self.tests.setdefault(report.nodeid.split("::", 1)[-1], {"outcome": "passed", "duration": 0.0})
        entry["duration"] = round(float(entry["duration"]) + report.duration, 3)
        if report.outcome != "passed":
            entry["outcome"] = report.outcome
            entry["error"] = str(report.longrepr)[-2000:]


def main() -> int:
    from hpcnas.evaluator.mpi import serve

    code = serve()
    if code is not None:
        return code
    import pytest
    from mpi4py import MPI

    from hpcnas.evaluator.mpi import MPIEvaluator

    did: dict[str, dict[str, int]] = {}  # what each worker rank (or group of ranks) evaluated
    gather = MPIEvaluator.gather

    def counted(self, timeout=None):  # noqa: ANN001, ANN202
        results = gather(self, timeout)
        for r in results:
            counts = did.setdefault(r.worker or "?", {})
            counts[r.status] = counts.get(r.status, 0) + 1
        return results

    MPIEvaluator.gather = counted
    report = _Report()
    start = time.monotonic()
    rc = pytest.main(["-q", "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir", ROOT,
                      os.path.join(HERE, "mpi_contract.py")], plugins=[report])
    with open(sys.argv[1], "w") as fh:
        json.dump({"ranks": MPI.COMM_WORLD.Get_size(), "exit_code": int(rc), "tests": report.tests, "by_worker": did,
                   "seconds": round(time.monotonic() - start, 1)}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
