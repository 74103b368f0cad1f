"""Replay the reliability catalogue of issue 7 and print its figures.

Two parts:

1. **Bad inputs**: every case of ``tests/unit/test_bad_inputs.py`` (:data:`CASES`) runs as a
   real subprocess (``python -m hpcnas.cli.main ...``, ``hpcnas-analytics``, the Balsam job
   runner); printed: exit code, whether stderr is exactly one line matching the expected message,
   and the message. Then the Hypothesis fuzz test of the CLI (``tests/unit/test_cli_fuzz.py``:
   random argument lists, exit code 0 or 2 and one line with 2) runs under pytest; its examples
   are counted in the totals.
2. **Faults**: the fault-injection tests run under pytest with ``HPCNAS_FAULT_REPORT`` set; each
   test appends what it measured (faults injected, evaluations expected, distinct, lost,
   duplicated) and the table is printed with the totals. Fault tests of other suites that assert
   the same properties (SIGKILL of the local master, SIGKILL of the Balsam launcher) are run and
   reported by outcome.

Usage::

    python benchmarks/fault_catalogue.py                 # everything (about 10 minutes here)
    python benchmarks/fault_catalogue.py --no-balsam     # without the Balsam/Postgres tests
    python benchmarks/fault_catalogue.py --bad-inputs-only

Exit code 0 when every bad input met its message with exit code 2 and no fault test lost or
duplicated an evaluation.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.support.unprivileged import as_ordinary_user  # noqa: E402
from tests.unit.test_bad_inputs import CASES, prepare, write_modules  # noqa: E402

MY_FAULT_TESTS = ["tests/e2e/test_faults_local.py"]
BALSAM_FAULT_TESTS = ["tests/e2e/test_faults_balsam.py"]
OTHER_FAULT_TESTS = {
    "kill -9 master (local) + resume": "tests/e2e/test_local_search.py::test_killed_master_resumes_without_rerunning",
    "kill -9 launcher + search job (balsam) + restart": "tests/e2e/test_balsam_resume.py",
    "SIGINT (6 moments) / SIGTERM (4) from the first imports to mid-run + resume; a leftover thread":
        "tests/e2e/test_interrupts.py",
    "pending Balsam job rows deleted (once: created again; twice: a failed row)":
        "tests/e2e/test_balsam_vanished_jobs.py",
    "two masters on one --output-dir: the second refused (search.lock)":
        "tests/unit/test_output_lock.py::test_two_masters_on_one_output_dir_the_second_is_refused",
    "kill -9 master: its search.lock is taken over by the next master":
        "tests/unit/test_output_lock.py::test_a_master_killed_with_sigkill_leaves_a_lock_the_next_one_takes_over",
    "results.csv line with an open quote + resume (moved to results.csv.damaged)":
        "tests/unit/test_results_damage.py::test_a_line_with_an_open_quote_is_moved_aside_and_later_rows_are_not_swallowed",
    "results.csv cuts, byte edits, inserted lines (Hypothesis) + resume": "tests/unit/test_results_fuzz.py",
}


def _argv(kind: str, argv: list[str]) -> list[str]:
    if kind == "hpcnas":
        return [sys.executable, "-m", "hpcnas.cli.main", *argv]
    if kind == "analytics":
        return [sys.executable, "-m", "hpcnas.analytics.cli", *argv]
    return argv


FUZZ_TEST = "tests/unit/test_cli_fuzz.py"


def fuzz() -> tuple[int, int]:
    """Run the CLI fuzz test; return (examples run, examples that failed the property)."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--hypothesis-show-statistics", FUZZ_TEST], capture_output=True, text=True, cwd=ROOT)
    passing = sum(int(n) for n in re.findall(r"- (\d+) passing, \d+ failing", proc.stdout))
    failing = sum(int(n) for n in re.findall(r"- \d+ passing, (\d+) failing", proc.stdout))
    failing = max(failing, int(proc.returncode != 0))
    summary = (proc.stdout.strip().splitlines() or ["<no output>"])[-1]
    print(f"fuzz ({FUZZ_TEST}): {passing + failing} random command lines, exit 0 or one line + exit 2: {passing}, "
          f"failures: {failing} ({summary}, {time.monotonic() - start:.0f} s)")
    if proc.returncode != 0:
        print(proc.stdout[-4000:])
    return passing + failing, failing


def bad_inputs() -> int:
    print(f"== bad inputs: {len(CASES)} cases (each in a real subprocess)")
    failures = 0
    with tempfile.TemporaryDirectory(prefix="hpcnas-bad-") as base:
        os.chmod(base, 0o755)  # cases run as an ordinary user (under root: nobody) enter it
        modules = write_modules(os.path.join(base, "modules"))
        for i, (name, case) in enumerate(CASES.items()):
            tmp = os.path.join(base, f"case{i}")
            os.makedirs(tmp)
            user = as_ordinary_user() if case.unprivileged else []
            if user is None:
                print(f"skip exit - | {name:42s} | root without setpriv/runuser: cannot run as an ordinary user")
                continue
            if case.unprivileged:
                os.chmod(tmp, 0o777)
            argv, env = prepare(case, tmp)
            full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, modules]), HPCNAS_DEBUG="", **env)
            proc = subprocess.run(user + _argv(case.kind, argv), capture_output=True, text=True, env=full_env,
                                  cwd=tmp, timeout=300)
            lines = proc.stderr.splitlines()
            message = lines[-1][len("hpcnas: error: "):] if lines and lines[-1].startswith("hpcnas: error: ") else ""
            ok = proc.returncode == 2 and len(lines) == 1 and bool(re.fullmatch(case.message, message))
            failures += not ok
            shown = message or (proc.stderr.strip().splitlines() or ["<no stderr>"])[-1]
            print(f"{'ok  ' if ok else 'FAIL'} exit {proc.returncode} | {name:42s} | {shown[:150]}")
    print(f"catalogue: {len(CASES)} cases, one exact line + exit 2: {len(CASES) - failures}, failures: {failures}")
    fuzzed, fuzz_failures = fuzz()
    print(f"bad inputs tried: {len(CASES) + fuzzed} ({len(CASES)} catalogued + {fuzzed} fuzzed), "
          f"handled (one line + exit 2, or a search that ran): {len(CASES) + fuzzed - failures - fuzz_failures}, "
          f"failures: {failures + fuzz_failures}")
    return failures + fuzz_failures


def faults(with_balsam: bool) -> int:
    tests = MY_FAULT_TESTS + (BALSAM_FAULT_TESTS if with_balsam else [])
    others = {k: v for k, v in OTHER_FAULT_TESTS.items() if with_balsam or "balsam" not in v}
    with tempfile.TemporaryDirectory(prefix="hpcnas-faults-") as base:
        report = os.path.join(base, "faults.jsonl")
        env = dict(os.environ, HPCNAS_FAULT_REPORT=report)
        print(f"\n== faults: pytest {' '.join(tests)}")
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                              capture_output=True, text=True, env=env, cwd=ROOT)
        summary = (proc.stdout.strip().splitlines() or ["<no output>"])[-1]
        print(f"pytest: {summary} ({time.monotonic() - start:.0f} s)")
        if proc.returncode != 0:
            print(proc.stdout[-4000:])
        records = []
        if os.path.exists(report):
            with open(report) as fh:
                records = [json.loads(line) for line in fh if line.strip()]
    print(f"{'fault':120s} {'inj':>4s} {'exp':>4s} {'dist':>4s} {'lost':>4s} {'dup':>4s}")
    for r in records:
        print(f"{r['fault'][:120]:120s} {r['injected']:4d} {r['expected']:4d} {r['distinct']:4d} {r['lost']:4d} "
              f"{r['duplicated']:4d}")
    injected = sum(r["injected"] for r in records)
    lost = sum(r["lost"] for r in records)
    duplicated = sum(r["duplicated"] for r in records)

    other_ok = 0
    for label, test in others.items():
        start = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
                             capture_output=True, text=True, cwd=ROOT)
        passed = out.returncode == 0
        other_ok += passed
        line = (out.stdout.strip().splitlines() or ["<no output>"])[-1]
        print(f"{label:120s} {'passed' if passed else 'FAILED'}: asserts exactly max-evals, none duplicated "
              f"({line}, {time.monotonic() - start:.0f} s)")
    print(
        f"faults injected: {injected + len(others)}, searches completed: {len(records) + other_ok} of "
        f"{len(records) + len(others)} ({'some fault tests FAILED, see above' if proc.returncode else 'every fault test passed'}), "
        f"evaluations lost: {lost}, duplicated: {duplicated}"
    )
    return int(proc.returncode != 0) + (len(others) - other_ok) + lost + duplicated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-balsam", action="store_true", help="skip the Balsam/Postgres fault tests")
    parser.add_argument("--bad-inputs-only", action="store_true", help="only replay the bad-input catalogue")
    args = parser.parse_args()
    bad = bad_inputs()
    if args.bad_inputs_only:
        return int(bad > 0)
    broken = faults(with_balsam=not args.no_balsam)
    return int(bad > 0 or broken > 0)


if __name__ == "__main__":
    sys.exit(main())
