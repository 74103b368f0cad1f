"""The catalogue of bad inputs (issue 7): each input meets one exact line on stderr and exit code 2.

Table-driven: :data:`CASES` lists every bad input with the regular expression its message must
match *in full* (``re.fullmatch`` on the text after ``hpcnas: error: ``). A case runs either in
this process (``hpcnas`` / ``analytics`` commands through their ``main``, fast) or in a real
subprocess (``proc``: commands that import Balsam/Django or Ray, the Balsam job runner, module
entry points), and in every case stderr must be exactly that one line: no traceback, no
warnings, no second line.

``benchmarks/fault_catalogue.py`` imports :data:`CASES` and :func:`prepare` to run the same
table in subprocesses and print each message.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable
TOY = ["--problem", "tests.support.toy.Problem", "--run", "tests.support.toy.run"]
SIM = ["--evaluator", "simulated", "--default-duration", "1"]

#: user modules the cases import (written to a folder put on sys.path / PYTHONPATH)
MODULES = {
    "bi_mods": '''
from hpcnas.problem import HpProblem
NotAProblem = {"x": (0.0, 1.0)}
Problem = HpProblem()
Problem.add_hyperparameter((0.0, 1.0), "x")
run_value = 42
def run(config): return float(config["x"])
def run_two(config, extra): return 1.0
def run_none(): return 1.0
def run_kwonly(*, config): return 1.0
''',
    "bi_raising": 'raise RuntimeError("broken at import")\n',
    "bi_needs_dep": "import zz_hpcnas_missing_dep  # noqa: F401\nProblem = None\n",
    "bi_lohi": 'from hpcnas.problem import HpProblem\nProblem = HpProblem()\nProblem.add_hyperparameter((5.0, 1.0), "x")\n',
    "bi_equal": 'from hpcnas.problem import HpProblem\nProblem = HpProblem()\nProblem.add_hyperparameter((3, 3), "n")\n',
    "bi_logneg": 'from hpcnas.problem import HpProblem\nProblem = HpProblem()\n'
                 'Problem.add_hyperparameter((-1.0, 1.0, "log-uniform"), "lr")\n',
    "bi_logzero": 'from hpcnas.problem import HpProblem\nProblem = HpProblem()\n'
                  'Problem.add_hyperparameter((0.0, 1.0, "log-uniform"), "lr")\n',
    "bi_dup": 'from hpcnas.problem import HpProblem\nProblem = HpProblem()\n'
              'Problem.add_hyperparameter((0.0, 1.0), "x")\nProblem.add_hyperparameter([1, 2], "x")\n',
    "bi_nochoice": 'from hpcnas.problem import HpProblem\nProblem = HpProblem()\nProblem.add_hyperparameter([], "opt")\n',
    "bi_badstart": 'from hpcnas.problem import HpProblem\nProblem = HpProblem()\n'
                   'Problem.add_hyperparameter((0.0, 1.0), "x")\nProblem.add_starting_point(x=5.0)\n',
    "bi_class": "from hpcnas.problem import HpProblem, NaProblem\nProblem = HpProblem\nNas = NaProblem\n",
    "bi_spacey": "class Spacey:\n    space = {'x': (0.0, 1.0)}\n    def check(self): pass\nProblem = Spacey()\n",
    "bi_exit0": "import sys\nsys.exit(0)\n",
    "bi_exit3": "raise SystemExit(3)\n",
    "bi_baseexc": 'class Boom(BaseException):\n    pass\nraise Boom("not an Exception")\n',
}


@dataclass
class Case:
    """One bad input: how to run it and the message (full-match regex) it must produce."""

    kind: str  # "hpcnas" | "analytics" (in-process main) | "proc" (subprocess argv)
    argv: list[str]
    message: str
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[str], None] | None = None
    #: run as an ordinary user (``nobody`` under root, where chmod denies nothing) in a directory
    #: every user can enter (tests/support/unprivileged.py); ``proc`` cases only
    unprivileged: bool = False


def _other_problem_dir(tmp: str) -> None:
    out = os.path.join(tmp, "out")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "search.json"), "w") as fh:
        json.dump({"problem_fingerprint": "0123456789ab", "search": "random"}, fh)


def _foreign_results(tmp: str) -> None:
    out = os.path.join(tmp, "out")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.csv"), "w") as fh:
        fh.write("p:z,job_id,objective,status,error,submit_time,start_time,end_time,duration,worker\n")


def _corrupt_search_json(tmp: str) -> None:
    out = os.path.join(tmp, "out")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "search.json"), "w") as fh:
        fh.write('{"problem_fingerprint": ')


def _output_is_file(tmp: str) -> None:
    with open(os.path.join(tmp, "out"), "w") as fh:
        fh.write("not a directory\n")


def _dead_balsam_db(tmp: str) -> None:
    """A folder that looks like a Balsam DB whose server is not running (port 9 refuses)."""
    os.makedirs(os.path.join(tmp, "db"), exist_ok=True)
    with open(os.path.join(tmp, "db", "server-info"), "w") as fh:
        json.dump({"host": "127.0.0.1", "port": 9, "password": "x"}, fh)


def _foreign_csv(tmp: str) -> None:
    with open(os.path.join(tmp, "other.csv"), "w") as fh:
        fh.write("epoch,loss,accuracy\n1,0.5,0.8\n")


def _exit_file(tmp: str) -> None:
    with open(os.path.join(tmp, "exit0.py"), "w") as fh:
        fh.write("import sys\nsys.exit(0)\n")


def hps(search: str, *argv: str) -> list[str]:
    return ["hps", search, *argv, "--output-dir", "{tmp}/out"]


# ---------------------------------------------------------------- output directory and results.csv (issue 12)
def _toy_results(tmp: str, edit: Callable[[list[bytes]], list[bytes]] | None = None, mode: int | None = None) -> str:
    """``{tmp}/out/results.csv`` with three rows of the toy problem, its lines passed through ``edit``."""
    from hpcnas.evaluator.base import EvalResult
    from hpcnas.search.results_store import ResultsStore
    from tests.support.toy import Problem

    out = os.path.join(tmp, "out")
    store = ResultsStore(out, Problem)
    store.append([EvalResult(f"j{i}", c, float(i), submit_time=1.0, start_time=1.0, end_time=2.0, worker="w")
                  for i, c in enumerate(Problem.sample(3, 1))])
    store.close()
    path = os.path.join(out, "results.csv")
    if edit is not None:
        with open(path, "rb") as fh:
            lines = fh.read().splitlines(keepends=True)
        with open(path, "wb") as fh:
            fh.write(b"".join(edit(lines)))
    os.chmod(out, 0o777)  # the unprivileged cases write the lock file there
    if mode is not None:
        os.chmod(path, mode)
    return path


def _cell_to_text(lines: list[bytes]) -> list[bytes]:
    cells = lines[2].split(b",")
    cells[3] = b"abc"  # p:x, a float
    return lines[:2] + [b",".join(cells)] + lines[3:]


def _parent_read_only(tmp: str) -> None:
    os.makedirs(os.path.join(tmp, "ro"), mode=0o555)
    os.chmod(os.path.join(tmp, "ro"), 0o555)


def _busy(tmp: str) -> None:
    """A lock file naming a live search on this host (this process)."""
    from hpcnas.search.output_lock import LOCK_FILE, this_owner

    os.makedirs(os.path.join(tmp, "out"))
    with open(os.path.join(tmp, "out", LOCK_FILE), "w") as fh:
        json.dump(this_owner(), fh)


def _short_row(tmp: str) -> None:
    path = _toy_results(tmp)
    with open(path, "ab") as fh:
        fh.write(b"rms,0.1,3,1.5,abc\r\n")


def _file_in_the_way(tmp: str) -> None:
    with open(os.path.join(tmp, "file"), "w") as fh:
        fh.write("a regular file\n")


NOBODY_ENV = {"HOME": "{tmp}", "MPLCONFIGDIR": "{tmp}"}
SEARCH = [PY, "-m", "hpcnas.cli.main", *hps("random", *TOY, *SIM)]
EDITED = r"\(edited by hand\?\): correct or delete that line \(keep a copy\), or use another --output-dir"

OUTPUT_DIR_CASES: dict[str, Case] = {
    "output dir under a regular file": Case("hpcnas", ["hps", "random", *TOY, *SIM, "--output-dir", "{tmp}/file/out"],
        r"--output-dir .*/file/out: .*/file is a file, not a directory: give a directory path", setup=_file_in_the_way),
    "output dir name too long": Case("hpcnas", ["hps", "random", *TOY, *SIM, "--output-dir", "{tmp}/" + "x" * 300],
        r"--output-dir .*\.\.\.x+ \(\d+ characters\): the path is too long for the file system \(File name too "
        r"long\): give a shorter path"),
    "results.csv is a directory": Case("hpcnas", hps("random", *TOY, *SIM),
        r".*/out/results\.csv is a directory, not a file: move it away or use another --output-dir",
        setup=lambda tmp: os.makedirs(os.path.join(tmp, "out", "results.csv"))),
    "results.csv read-only": Case("proc", SEARCH,
        r".*/out/results\.csv is read-only \(permission denied\): make it writable \(chmod u\+w\) so the search can "
        r"record results, or use another --output-dir",
        env=NOBODY_ENV, setup=lambda tmp: _toy_results(tmp, mode=0o444), unprivileged=True),
    "results.csv unreadable": Case("proc", SEARCH,
        r"cannot read .*/out/results\.csv \(permission denied\): make it readable \(chmod u\+r\) or use another "
        r"--output-dir", env=NOBODY_ENV, setup=lambda tmp: _toy_results(tmp, mode=0o200), unprivileged=True),
    "output dir in a read-only directory": Case("proc",
        [PY, "-m", "hpcnas.cli.main", "hps", "random", *TOY, *SIM, "--output-dir", "{tmp}/ro/out"],
        r"cannot create --output-dir .*/ro/out: no permission to write in .*/ro: use another --output-dir",
        env=NOBODY_ENV, setup=_parent_read_only, unprivileged=True),
    "output dir in use by another search": Case("hpcnas", hps("random", *TOY, *SIM),
        r"output dir .*/out is in use by another search \(pid \d+ on host \S+ since [-\d]+ [:\d]+\): wait for it to "
        r"end or use another --output-dir", setup=_busy),
    "results.csv float cell edited to text": Case("hpcnas", hps("random", *TOY, *SIM),
        r"line 3 of .*/out/results\.csv: column 'p:x' holds 'abc', not a number " + EDITED,
        setup=lambda tmp: _toy_results(tmp, _cell_to_text)),
    "results.csv with a repeated header line": Case("hpcnas", hps("random", *TOY, *SIM),
        r"line 3 of .*/out/results\.csv repeats the header \(two files joined, or two searches wrote to it\?\): "
        r"delete that line \(keep a copy\), or use another --output-dir",
        setup=lambda tmp: _toy_results(tmp, lambda lines: lines[:2] + lines[:1] + lines[2:])),
    "results.csv with an extra column": Case("hpcnas", hps("random", *TOY, *SIM),
        r"the header of .*/out/results\.csv has the column\(s\) note that hpcnas does not write \(added by hand\?\): "
        r"remove them \(keep a copy\), or use another --output-dir",
        setup=lambda tmp: _toy_results(tmp, lambda lines: [line.rstrip(b"\r\n") + b",x\r\n" if i else
                                                           line.rstrip(b"\r\n") + b",note\r\n"
                                                           for i, line in enumerate(lines)])),
    "results.csv with its header deleted": Case("hpcnas", hps("random", *TOY, *SIM),
        r".*/out/results\.csv has no header line: its first line is a row of results \(was the header deleted\?\): "
        r"put the header line back \(p:optimizer,p:scale,p:units,p:x,job_id,objective,.*\.\.\.\), or use another "
        r"--output-dir", setup=lambda tmp: _toy_results(tmp, lambda lines: lines[1:])),
    "results.csv header names a column twice": Case("hpcnas", hps("random", *TOY, *SIM),
        r"the header of .*/out/results\.csv names the column\(s\) p:x more than once \(edited, or two headers "
        r"joined\?\): remove the repeated column\(s\), or use another --output-dir",
        setup=lambda tmp: _toy_results(tmp, lambda lines: [lines[0].replace(b"p:units", b"p:x")] + lines[1:])),
    "analytics on a results.csv with a short row": Case("analytics", ["topk", "{tmp}/out/results.csv"],
        r"'.*/out/results\.csv' has 1 line\(s\) that are not rows \(line 5: 5 cells, the header has 15\): resuming "
        r"the search once moves them to results\.csv\.damaged; or correct them", setup=_short_row),
    "analytics on an unreadable results.csv": Case("proc", [PY, "-m", "hpcnas.analytics.cli", "topk",
                                                            "{tmp}/out/results.csv"],
        r"cannot read results file '.*/out/results\.csv': Permission denied: make it readable or give another "
        r"results\.csv", env=NOBODY_ENV, setup=lambda tmp: _toy_results(tmp, mode=0o000), unprivileged=True),
}


CASES: dict[str, Case] = {
    # ---------------------------------------------------------------- problem
    "problem module missing": Case("hpcnas", hps("random", "--problem", "no_such_pkg.mod.Problem", "--run", "bi_mods.run"),
        r"cannot import problem 'no_such_pkg\.mod\.Problem': no module named 'no_such_pkg' \(check the spelling, "
        r"install the package or add it to PYTHONPATH\)"),
    "problem module raises on import": Case("hpcnas", hps("random", "--problem", "bi_raising.Problem", "--run", "bi_mods.run"),
        r"cannot import problem 'bi_raising\.Problem': importing 'bi_raising' raised RuntimeError: broken at import"),
    "problem module needs a missing package": Case("hpcnas", hps("random", "--problem", "bi_needs_dep.Problem", "--run", "bi_mods.run"),
        r"cannot import problem 'bi_needs_dep\.Problem': its module needs 'zz_hpcnas_missing_dep', which is not installed"),
    "problem attribute missing": Case("hpcnas", hps("random", "--problem", "bi_mods.Nope", "--run", "bi_mods.run"),
        r"cannot import problem 'bi_mods\.Nope': module 'bi_mods' has no attribute 'Nope'"),
    "problem of the wrong type": Case("hpcnas", hps("random", "--problem", "bi_mods.NotAProblem", "--run", "bi_mods.run"),
        r"problem 'bi_mods\.NotAProblem' is a dict, not an HpProblem: define Problem = HpProblem\(\) in that module"),
    "problem not a dotted path": Case("hpcnas", hps("random", "--problem", "Problem", "--run", "bi_mods.run"),
        r"problem 'Problem' is not a dotted path: give it as package\.module\.name"),
    "problem file does not exist": Case("hpcnas", hps("random", "--problem", "/nonexistent/p.py:Problem", "--run", "bi_mods.run"),
        r"cannot load problem: file '/nonexistent/p\.py' does not exist"),
    "empty space": Case("hpcnas", hps("random", "--problem", "tests.support.toy.EmptyProblem", "--run", "bi_mods.run"),
        r".*has no hyper-parameters.*"),
    "lower bound above upper bound": Case("hpcnas", hps("random", "--problem", "bi_lohi.Problem", "--run", "bi_mods.run"),
        r"cannot import problem 'bi_lohi\.Problem': importing 'bi_lohi' raised HpcnasError: hyper-parameter 'x': "
        r"lower bound 5\.0 must be below upper bound 1\.0|hyper-parameter 'x': lower bound 5\.0 must be below upper bound 1\.0"),
    "lower bound equal to upper bound": Case("hpcnas", hps("random", "--problem", "bi_equal.Problem", "--run", "bi_mods.run"),
        r"hyper-parameter 'n': lower bound 3 must be below upper bound 3"),
    "log range with negative lower bound": Case("hpcnas", hps("random", "--problem", "bi_logneg.Problem", "--run", "bi_mods.run"),
        r"hyper-parameter 'lr': a log-uniform range needs lower bound > 0, got -1\.0"),
    "log range with zero lower bound": Case("hpcnas", hps("random", "--problem", "bi_logzero.Problem", "--run", "bi_mods.run"),
        r"hyper-parameter 'lr': a log-uniform range needs lower bound > 0, got 0\.0"),
    "duplicate hyper-parameter name": Case("hpcnas", hps("random", "--problem", "bi_dup.Problem", "--run", "bi_mods.run"),
        r"hyper-parameter 'x' is defined twice: give each a unique name"),
    "categorical without choices": Case("hpcnas", hps("random", "--problem", "bi_nochoice.Problem", "--run", "bi_mods.run"),
        r"hyper-parameter 'opt': the list of choices is empty"),
    "starting point outside the space": Case("hpcnas", hps("random", "--problem", "bi_badstart.Problem", "--run", "bi_mods.run"),
        r"starting point \{'x': 5\.0\} is not valid in the space: .*"),
    "problem is the HpProblem class": Case("hpcnas", hps("random", "--problem", "bi_class.Problem", "--run", "bi_mods.run"),
        r"problem 'bi_class\.Problem' is the class HpProblem, not an instance of it: "
        r"define Problem = HpProblem\(\) in that module"),
    "nas problem is the NaProblem class": Case("hpcnas",
        ["nas", "random", "--problem", "bi_class.Nas", "--run", "bi_mods.run", "--output-dir", "{tmp}/out"],
        r"problem 'bi_class\.Nas' is the class NaProblem, not an instance of it: "
        r"define Problem = NaProblem\(\) in that module"),
    "problem with a space that is not an HpProblem": Case("hpcnas", hps("random", "--problem", "bi_spacey.Problem", "--run", "bi_mods.run"),
        r"problem 'bi_spacey\.Problem' is a Spacey, not an HpProblem: define Problem = HpProblem\(\) in that module"),
    "problem module calls sys.exit(0)": Case("hpcnas", hps("random", "--problem", "bi_exit0.Problem", "--run", "bi_mods.run"),
        r"cannot import problem 'bi_exit0\.Problem': importing 'bi_exit0' called sys\.exit\(0\), so no search ran: "
        r"remove that call or put it under if __name__ == '__main__':"),
    "problem module raises SystemExit(3)": Case("hpcnas", hps("random", "--problem", "bi_exit3.Problem", "--run", "bi_mods.run"),
        r"cannot import problem 'bi_exit3\.Problem': importing 'bi_exit3' called sys\.exit\(3\), so no search ran: "
        r"remove that call or put it under if __name__ == '__main__':"),
    "problem module raises a BaseException": Case("hpcnas", hps("random", "--problem", "bi_baseexc.Problem", "--run", "bi_mods.run"),
        r"cannot import problem 'bi_baseexc\.Problem': importing 'bi_baseexc' raised Boom: not an Exception"),
    "problem file calls sys.exit(0)": Case("hpcnas", hps("random", "--problem", "{tmp}/exit0.py:Problem", "--run", "bi_mods.run"),
        r"cannot load problem from '.*/exit0\.py': it called sys\.exit\(0\), so no search ran: "
        r"remove that call or put it under if __name__ == '__main__':", setup=_exit_file),
    # ---------------------------------------------------------------- run function
    "run module calls sys.exit(0)": Case("hpcnas", hps("random", "--problem", "bi_mods.Problem", "--run", "bi_exit0.run"),
        r"cannot import run function 'bi_exit0\.run': importing 'bi_exit0' called sys\.exit\(0\), so no search ran: "
        r"remove that call or put it under if __name__ == '__main__':"),
    "run module raises a BaseException": Case("hpcnas", hps("random", "--problem", "bi_mods.Problem", "--run", "bi_baseexc.run"),
        r"cannot import run function 'bi_baseexc\.run': importing 'bi_baseexc' raised Boom: not an Exception"),
    "run function module missing": Case("hpcnas", hps("random", "--problem", "bi_mods.Problem", "--run", "no_such_pkg.run"),
        r"cannot import run function 'no_such_pkg\.run': no module named 'no_such_pkg' .*"),
    "run function missing": Case("hpcnas", hps("random", "--problem", "bi_mods.Problem", "--run", "bi_mods.nope"),
        r"cannot import run function 'bi_mods\.nope': module 'bi_mods' has no attribute 'nope'"),
    "run function not callable": Case("hpcnas", hps("random", "--problem", "bi_mods.Problem", "--run", "bi_mods.run_value"),
        r"run function 'bi_mods\.run_value' is not callable: define def run\(config\): \.\.\."),
    "run function with two parameters": Case("hpcnas", hps("random", "--problem", "bi_mods.Problem", "--run", "bi_mods.run_two"),
        r"run function 'bi_mods\.run_two' has the signature \(config, extra\): it must accept one positional "
        r"argument, the configuration: define def run\(config\): \.\.\."),
    "run function with no parameter": Case("hpcnas", hps("random", "--problem", "bi_mods.Problem", "--run", "bi_mods.run_none"),
        r"run function 'bi_mods\.run_none' has the signature \(\): it must accept one positional argument.*"),
    "run function keyword-only": Case("hpcnas", hps("random", "--problem", "bi_mods.Problem", "--run", "bi_mods.run_kwonly"),
        r"run function 'bi_mods\.run_kwonly' has the signature \(\*, config\): it must accept one positional argument.*"),
    # ---------------------------------------------------------------- search / options
    "unknown search name": Case("hpcnas", ["hps", "nosuch", *TOY],
        r"unknown hps search 'nosuch': choose one of .*ambs.*random.*"),
    "unknown nas search name": Case("hpcnas", ["nas", "nosuch"], r"unknown nas search 'nosuch': choose one of .*"),
    "no search name": Case("hpcnas", ["hps"], r"name a search: hpcnas hps \{.*\} --help"),
    "unknown option": Case("hpcnas", hps("random", *TOY, "--frobnicate", "3"),
        r"hpcnas hps random: unrecognized arguments: --frobnicate 3 \(see hpcnas hps random --help\)"),
    "option of another search": Case("hpcnas", hps("random", *TOY, "--kappa", "2"),
        r"hpcnas hps random: unrecognized arguments: --kappa 2 \(see hpcnas hps random --help\)"),
    "missing --problem": Case("hpcnas", hps("random", "--run", "bi_mods.run"),
        r"hpcnas hps random: the following arguments are required: --problem \(see hpcnas hps random --help\)"),
    "missing --run": Case("hpcnas", hps("random", "--problem", "bi_mods.Problem"),
        r"hpcnas hps random: the following arguments are required: --run \(see hpcnas hps random --help\)"),
    "--max-evals 0": Case("hpcnas", hps("random", *TOY, "--max-evals", "0"), r"--max-evals must be at least 1, got 0"),
    "--max-evals -1": Case("hpcnas", hps("random", *TOY, "--max-evals", "-1"), r"--max-evals must be at least 1, got -1"),
    "--max-evals not a number": Case("hpcnas", hps("random", *TOY, "--max-evals", "ten"),
        r"hpcnas hps random: argument --max-evals: invalid int value: 'ten' \(see hpcnas hps random --help\)"),
    "--num-workers 0": Case("hpcnas", hps("random", *TOY, "--num-workers", "0"), r"--num-workers must be at least 1, got 0"),
    "--num-workers -2": Case("hpcnas", hps("random", *TOY, "--num-workers", "-2"), r"--num-workers must be at least 1, got -2"),
    "--timeout 0": Case("hpcnas", hps("random", *TOY, "--timeout", "0"), r"--timeout must be positive seconds, got 0\.0"),
    "--timeout nan": Case("hpcnas", hps("random", *TOY, "--timeout", "nan"), r"--timeout must be positive seconds, got nan"),
    "--timeout 1e300": Case("hpcnas", hps("random", *TOY, "--timeout", "1e300"),
        r"--timeout 1e\+300 s is more than a year: give at most 31536000 seconds, or inf \(or leave it out\) for no limit"),
    "--eval-timeout 1e300": Case("hpcnas", hps("random", *TOY, "--eval-timeout", "1e300"),
        r"--eval-timeout 1e\+300 s is more than a year: give at most 31536000 seconds, or inf \(or leave it out\) "
        r"for no limit"),
    "--eval-timeout -inf": Case("hpcnas", hps("random", *TOY, "--eval-timeout=-inf"),
        r"--eval-timeout must be positive seconds, got -inf"),
    "--sync-interval nan": Case("hpcnas", hps("random", *TOY, "--sync-interval", "nan"),
        r"--sync-interval must be >= 0 seconds, got nan"),
    "--seed -1": Case("hpcnas", hps("random", *TOY, "--seed", "-1"), r"--seed must be an integer >= 0, got -1"),
    "--num-workers 100000000000": Case("hpcnas", hps("random", *TOY, "--num-workers", "100000000000"),
        r"--num-workers 100000000000 is more than 1000000: give the number of evaluations to run at once"),
    "--num-workers beyond the open-file limit": Case("proc",
        ["sh", "-c", f"ulimit -n 64 && exec {PY} -m hpcnas.cli.main hps random {' '.join(TOY)} --num-workers 40 "
         "--output-dir {tmp}/out"],
        r"--num-workers 40 needs about \d+ open files but this process may open 64 \(ulimit -n\): "
        r"lower --num-workers or raise ulimit -n"),
    "--eval-timeout -5": Case("hpcnas", hps("random", *TOY, "--eval-timeout", "-5"),
        r"--eval-timeout must be positive seconds, got -5\.0"),
    "--sync-interval -1": Case("hpcnas", hps("random", *TOY, "--sync-interval", "-1"),
        r"--sync-interval must be >= 0 seconds, got -1\.0"),
    "unknown evaluator": Case("hpcnas", hps("random", *TOY, "--evaluator", "cloud"),
        r"unknown evaluator 'cloud': choose one of .*local.*"),
    "negative --output-tail": Case("hpcnas", hps("random", *TOY, "--output-tail", "-3"),
        r"--output-tail must be >= 0 bytes, got -3"),
    "non-numeric kappa": Case("hpcnas", hps("ambs", *TOY, "--kappa", "abc"),
        r"hpcnas hps ambs: argument --kappa: invalid float value: 'abc' \(see hpcnas hps ambs --help\)"),
    "negative kappa": Case("hpcnas", hps("ambs", *TOY, "--kappa", "-1"), r"--kappa must be a finite number >= 0, got -1\.0"),
    "bad --surrogate-model": Case("hpcnas", hps("ambs", *TOY, "--surrogate-model", "XYZ"),
        r"hpcnas hps ambs: argument --surrogate-model: invalid choice: 'XYZ' \(choose from .*\) \(see hpcnas hps ambs --help\)"),
    "bad --acq-func": Case("hpcnas", hps("ambs", *TOY, "--acq-func", "LCB2"),
        r"hpcnas hps ambs: argument --acq-func: invalid choice: 'LCB2' .*"),
    "negative --n-initial-points": Case("hpcnas", hps("ambs", *TOY, "--n-initial-points", "-3"),
        r"--n-initial-points must be an integer >= 0, got -3"),
    "--n-jobs 0": Case("hpcnas", hps("ambs", *TOY, "--n-jobs", "0"),
        r"--n-jobs must be a number of processes from 1 to 4096 or -1 \(all cores\), got 0"),
    "--n-jobs 2000000": Case("hpcnas", hps("ambs", *TOY, "--n-jobs", "2000000"),
        r"--n-jobs must be a number of processes from 1 to 4096 or -1 \(all cores\), got 2000000"),
    "population smaller than sample": Case("hpcnas", hps("age", *TOY, "--population-size", "5", "--sample-size", "10"),
        r"--sample-size \(10\) cannot exceed --population-size \(5\): lower the sample size or raise the population size"),
    "population size 1e20": Case("hpcnas", hps("age", *TOY, "--population-size", "100000000000000000000"),
        r"hpcnas hps age: argument --population-size: 100000000000000000000 is too large: give at most 2147483647 "
        r"\(see hpcnas hps age --help\)"),
    "population size 0": Case("hpcnas", hps("age", *TOY, "--population-size", "0"),
        r"--population-size must be an integer from 1 to 2147483647, got 0"),
    "negative simulated duration": Case("hpcnas", hps("random", *TOY, "--evaluator", "simulated", "--default-duration", "-1"),
        r"--default-duration must be >= 0 seconds, got -1\.0"),
    "asha --max-resource inf": Case("hpcnas", hps("asha", *TOY, "--max-resource", "inf"),
        r"--max-resource must be a finite number, got inf: give the resource a run function trains up to, "
        r"e\.g\. --max-resource 27 \(epochs\)"),
    "asha reduction factor near 1": Case("hpcnas", hps("asha", *TOY, "--reduction-factor", "1.0000001"),
        r"--min-resource 1, --max-resource 27 and --reduction-factor 1\.0000001 make 32958372 rungs "
        r"\(at most 1000\): use a factor like 3"),
    # ---------------------------------------------------------------- output directory
    "output dir of another problem": Case("hpcnas", hps("random", *TOY, *SIM),
        r"output dir .*/out holds results of a different problem \(fingerprint 0123456789ab != \w+\): "
        r"use another --output-dir or remove that one", setup=_other_problem_dir),
    "output dir with a foreign results.csv": Case("hpcnas", hps("random", *TOY, *SIM),
        r"output dir .*/out holds a results\.csv with other columns \(p:z, job_id, .*\.\.\.\): "
        r"use another --output-dir or remove that one", setup=_foreign_results),
    "output dir with a corrupt search.json": Case("hpcnas", hps("random", *TOY, *SIM),
        r"cannot read .*/out/search\.json \(.*\): remove it or use another --output-dir", setup=_corrupt_search_json),
    "output dir is a file": Case("hpcnas", hps("random", *TOY, *SIM),
        r"--output-dir .*/out exists and is not a directory: give a directory", setup=_output_is_file),
    **OUTPUT_DIR_CASES,
    # ---------------------------------------------------------------- backends (real subprocesses)
    "--evaluator balsam without an active DB": Case("proc",
        [PY, "-m", "hpcnas.cli.main", *hps("random", *TOY, "--evaluator", "balsam")],
        r"no active Balsam DB: run `source balsamactivate DB` \(or hpcnas balsam-init DB first\) "
        r"\(BALSAM_DB_PATH is not set\)", env={"BALSAM_DB_PATH": ""}),
    "BALSAM_DB_PATH not a Balsam DB": Case("proc",
        [PY, "-m", "hpcnas.cli.main", *hps("random", *TOY, "--evaluator", "balsam")],
        r"no active Balsam DB: .* \(BALSAM_DB_PATH=.* is not a Balsam DB\)", env={"BALSAM_DB_PATH": "{tmp}"}),
    "Balsam DB server not running": Case("proc",
        [PY, "-m", "hpcnas.cli.main", *hps("random", *TOY, "--evaluator", "balsam")],
        r"no active Balsam DB: .* \(the DB at .*/db does not answer: .*Connection refused\)",
        env={"BALSAM_DB_PATH": "{tmp}/db"}, setup=_dead_balsam_db),
    "balsam --num-nodes-per-eval 0": Case("proc",
        [PY, "-m", "hpcnas.cli.main", *hps("random", *TOY, "--evaluator", "balsam", "--num-nodes-per-eval", "0")],
        r"num nodes must be at least 1, got 0", env={"BALSAM_DB_PATH": ""}),
    "--ray-address unreachable": Case("proc",
        [PY, "-m", "hpcnas.cli.main", *hps("random", *TOY, "--evaluator", "ray", "--ray-address", "127.0.0.1:9")],
        r"no Ray cluster answers at --ray-address 127\.0\.0\.1:9 \(.*\): start it with 'ray start --head --port 9' "
        r"on 127\.0\.0\.1, or fix the address"),
    "job config JSON malformed": Case("proc",
        [PY, "-m", "hpcnas.balsam.job_runner", "tests.support.toy.run", '{"x": 1.0,'],
        r"the configuration argument is neither b64:<base64url JSON> nor JSON: .*", env={"BALSAM_JOB_ID": ""}),
    "job config not an object": Case("proc",
        [PY, "-m", "hpcnas.balsam.job_runner", "tests.support.toy.run", "[1, 2]"],
        r"the configuration argument must encode a JSON object", env={"BALSAM_JOB_ID": ""}),
    "job config base64 garbage": Case("proc",
        [PY, "-m", "hpcnas.balsam.job_runner", "tests.support.toy.run", "b64:%%%%"],
        r"the configuration argument is neither b64:<base64url JSON> nor JSON: .*", env={"BALSAM_JOB_ID": ""}),
    "module entry point --max-evals 0": Case("proc",
        [PY, "-m", "hpcnas.search.hps.ambs", *TOY, "--max-evals", "0"], r"--max-evals must be at least 1, got 0"),
    "balsam-setup unknown machine": Case("hpcnas", ["balsam-setup", "--machine", "nosuch", "--balsam-home", "{tmp}/bh"],
        r"unknown machine 'nosuch': choose one of .*local.*"),
    "balsam-recover negative --stale-after": Case("hpcnas", ["balsam-recover", "--stale-after", "-1"],
        r"--stale-after must be positive seconds, got -1\.0"),
    "ray-submit zero nodes": Case("hpcnas",
        ["ray-submit", "hps", "ambs", "-w", "x", "-n", "0", "-t", "10", "-A", "p", "-q", "q", "--scheduler", "slurm",
         *TOY, "--dry-run"], r"-n/--nodes must be a positive integer, got 0"),
    # ---------------------------------------------------------------- analytics
    "analytics unknown command": Case("analytics", ["frobnicate"],
        r"hpcnas-analytics: argument COMMAND: invalid choice: 'frobnicate' .*"),
    "analytics results.csv of another format": Case("analytics", ["search", "{tmp}/other.csv", "-o", "{tmp}/an"],
        r"'.*/other\.csv' is not an hpcnas results\.csv: it lacks the column\(s\) job_id, objective, status, .*",
        setup=_foreign_csv),
    "analytics experiment missing": Case("analytics", ["search", "{tmp}/nowhere", "-o", "{tmp}/an"],
        r"experiment '.*/nowhere' does not exist: .*"),
    "analytics no experiment": Case("analytics", ["search", "-o", "{tmp}/an"],
        r"no experiment given: .*", env={"BALSAM_DB_PATH": ""}),
}


def write_modules(folder: str) -> str:
    os.makedirs(folder, exist_ok=True)
    for name, text in MODULES.items():
        with open(os.path.join(folder, f"{name}.py"), "w") as fh:
            fh.write(text.lstrip())
    return folder


def prepare(case: Case, tmp: str) -> tuple[list[str], dict[str, str]]:
    """Run the case's setup in ``tmp``; return its argv and env with ``{tmp}`` filled in."""
    if case.setup:
        case.setup(tmp)
    argv = [a.replace("{tmp}", tmp) for a in case.argv]
    env = {k: v.replace("{tmp}", tmp) for k, v in case.env.items()}
    return argv, env


def run_subprocess(argv: list[str], env: dict[str, str], modules: str, cwd: str) -> tuple[int, str]:
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, modules]), HPCNAS_DEBUG="", **env)
    full_env.pop("CI_DEBUG", None)
    proc = subprocess.run(argv, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=180)
    return proc.returncode, proc.stderr


def check(stderr: str, pattern: str) -> str:
    """The message of a one-line ``hpcnas: error: ...`` stderr; fails on anything else."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and stderr.endswith("\n"), f"stderr is not one line: {stderr!r}"
    assert lines[0].startswith("hpcnas: error: "), lines[0]
    message = lines[0][len("hpcnas: error: "):]
    assert re.fullmatch(pattern, message), f"message {message!r} does not match {pattern!r}"
    return message


@pytest.fixture(scope="module")
def modules(tmp_path_factory) -> str:
    folder = write_modules(str(tmp_path_factory.mktemp("bad_input_modules")))
    sys.path.insert(0, folder)
    yield folder
    sys.path.remove(folder)
    for name in MODULES:
        sys.modules.pop(name, None)


def test_the_catalogue_has_at_least_30_cases() -> None:
    assert len(CASES) >= 30
    assert {c.kind for c in CASES.values()} == {"hpcnas", "analytics", "proc"}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_exact_line_and_exit_2(name, modules, tmp_path, capsys, monkeypatch) -> None:
    case = CASES[name]
    if case.unprivileged:
        from tests.support.unprivileged import as_ordinary_user, shared_dir

        prefix = as_ordinary_user()
        if prefix is None:
            pytest.skip("running as root without setpriv or runuser: cannot test as an ordinary user")
        with shared_dir("hpcnas-bad-") as tmp:
            argv, env = prepare(case, tmp)
            code, stderr = run_subprocess(prefix + argv, env, modules, tmp)
    elif case.kind == "proc":
        argv, env = prepare(case, str(tmp_path))
        code, stderr = run_subprocess(argv, env, modules, str(tmp_path))
    else:
        argv, env = prepare(case, str(tmp_path))
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("HPCNAS_DEBUG", raising=False)
        monkeypatch.chdir(tmp_path)
        capsys.readouterr()
        if case.kind == "hpcnas":
            from hpcnas.cli.main import main
        else:
            from hpcnas.analytics.cli import main
        code = main(argv)
        stderr = capsys.readouterr().err
    assert code == 2, f"exit code {code}; stderr: {stderr[-2000:]}"
    check(stderr, case.message)


def test_nothing_is_written_for_a_refused_search(modules, tmp_path, capsys) -> None:
    """A refused search leaves an empty output dir (no half-made results.csv / search.json)."""
    from hpcnas.cli.main import main

    out = tmp_path / "out"
    assert main(["hps", "random", "--problem", "bi_mods.Problem", "--run", "bi_mods.run_two",
                 "--output-dir", str(out)]) == 2
    assert not out.exists() or not any(out.iterdir())
    capsys.readouterr()
