"""results.csv damage (issue 12): nothing recorded is lost, an edit is one line and nothing runs.

* a line that is not a row (open quote, cut short) is moved to results.csv.damaged and the file
  rewritten, so rows written later are not swallowed by it;
* a complete last row without its line break is kept;
* the empty string as a categorical value survives a resume (files of older versions too);
* an edited value, a repeated header, an extra column, a deleted header: one line, exit 2, the
  file untouched, no evaluation; a UTF-8 byte-order mark is accepted.
"""
from __future__ import annotations

import csv
import logging
import os

import ConfigSpace as CS
import pandas as pd
import pytest

from hpcnas.cli.main import main as cli
from hpcnas.core.errors import HpcnasError
from hpcnas.evaluator.base import DONE, EvalResult
from hpcnas.problem import HpProblem
from hpcnas.search.results_store import ResultsStore, recorded_count
from tests.support.toy import Problem

TOY = ["--problem", "tests.support.toy.Problem", "--run", "tests.support.toy.run"]
SIM = ["--evaluator", "simulated", "--default-duration", "1", "--no-progress"]
HERE = "tests.unit.test_results_damage"

#: a categorical with the empty string among its choices, one conditional hyper-parameter
EmptyChoiceProblem = HpProblem()
_mode = EmptyChoiceProblem.add_hyperparameter(["a", "", '"quoted"', "two\nlines"], "mode")
_lr = EmptyChoiceProblem.add_hyperparameter((0.0, 1.0), "lr")
EmptyChoiceProblem.add_condition(CS.EqualsCondition(_lr, _mode, "a"))
for _m in ["a", "", '"quoted"', "two\nlines"]:
    EmptyChoiceProblem.add_starting_point(mode=_m, **({"lr": 0.5} if _m == "a" else {}))


def empty_choice_run(config: dict) -> float:
    return float(len(config["mode"])) + float(config.get("lr", 0.0))


def search(out, max_evals: int, *extra: str) -> int:
    return cli(["hps", "random", *TOY, *SIM, "--max-evals", str(max_evals), "--seed", "1",
                "--output-dir", str(out), *extra])


def rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------- lines that are not rows
def test_a_line_with_an_open_quote_is_moved_aside_and_later_rows_are_not_swallowed(tmp_path, caplog) -> None:
    out = tmp_path / "out"
    assert search(out, 30) == 0
    path = out / "results.csv"
    first = rows(path)
    with open(path, "ab") as fh:
        fh.write(b'rms,3,"1.0,abc\r\n')
    with caplog.at_level(logging.WARNING, logger="hpcnas"):
        assert search(out, 40) == 0
    warned = [m for m in caplog.messages if "results.csv.damaged" in m]
    assert len(warned) == 1 and "moved 1 line(s)" in warned[0] and "line 32: unbalanced quotes" in warned[0]
    assert (out / "results.csv.damaged").read_bytes() == b'rms,3,"1.0,abc\r\n'
    after = rows(path)
    assert len(after) == 40 and after[:30] == first and len({r["job_id"] for r in after}) == 40
    assert len(pd.read_csv(path)) == 40
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hpcnas"):
        assert search(out, 45) == 0  # the next resume runs exactly the 5 missing evaluations
    assert not [m for m in caplog.messages if "damaged" in m]
    assert len(rows(path)) == 45 and rows(path)[:40] == after
    assert (out / "results.csv.damaged").read_bytes() == b'rms,3,"1.0,abc\r\n'


@pytest.mark.parametrize("cut", [1, 2])
def test_a_complete_last_row_without_its_line_break_is_kept(tmp_path, cut) -> None:
    store = ResultsStore(str(tmp_path), Problem)
    store.append([EvalResult(f"j{i}", c, float(i)) for i, c in enumerate(Problem.sample(3, 1))])
    store.close()
    path = tmp_path / "results.csv"
    path.write_bytes(path.read_bytes()[:-cut])  # "\n" or "\r\n" lost
    store = ResultsStore(str(tmp_path), Problem)
    assert [r.job_id for r in store.load()] == ["j0", "j1", "j2"]
    assert not (tmp_path / "results.csv.damaged").exists()
    store.append([EvalResult("j9", Problem.sample(1, 2)[0], 2.0)])
    store.close()
    assert [r.job_id for r in ResultsStore(str(tmp_path), Problem).load()] == ["j0", "j1", "j2", "j9"]
    assert b"\r\r" not in path.read_bytes() and recorded_count(str(tmp_path)) == 4


def test_a_row_cut_short_goes_to_results_csv_damaged_as_it_was(tmp_path) -> None:
    store = ResultsStore(str(tmp_path), Problem)
    store.append([EvalResult(f"j{i}", c, float(i)) for i, c in enumerate(Problem.sample(3, 1))])
    store.close()
    path = tmp_path / "results.csv"
    data = path.read_bytes()
    last = data.rstrip(b"\r\n").rfind(b"\n") + 1
    path.write_bytes(data[: last + 12])
    assert [r.job_id for r in ResultsStore(str(tmp_path), Problem).load()] == ["j0", "j1"]
    assert (tmp_path / "results.csv.damaged").read_bytes() == data[last: last + 12] + b"\r\n"
    assert path.read_bytes() == data[:last]


# --------------------------------------------------------------------- the empty string
def test_the_empty_string_as_a_choice_survives_a_resume(tmp_path) -> None:
    out = tmp_path / "out"
    argv = ["hps", "random", "--problem", f"{HERE}.EmptyChoiceProblem", "--run", f"{HERE}.empty_choice_run",
            *SIM, "--seed", "3", "--output-dir", str(out)]
    assert cli([*argv, "--max-evals", "6"]) == 0
    assert cli([*argv, "--max-evals", "10"]) == 0
    loaded = ResultsStore(str(out), EmptyChoiceProblem).load()
    assert len(loaded) == 10
    modes = [r.config["mode"] for r in loaded]
    assert set(modes[:4]) == {"a", "", '"quoted"', "two\nlines"}  # the starting points
    assert all(("lr" in r.config) == (r.config["mode"] == "a") for r in loaded)
    assert all(r.objective == empty_choice_run(r.config) for r in loaded)


def test_files_written_before_empty_strings_were_quoted_stay_readable(tmp_path) -> None:
    header = "p:lr,p:mode,job_id,objective,status,error,submit_time,start_time,end_time,duration,worker"
    (tmp_path / "results.csv").write_text(f"{header}\r\n0.5,a,j1,1.5,DONE,,,,,,\r\n,,j2,0.0,DONE,,,,,,\r\n")
    loaded = ResultsStore(str(tmp_path), EmptyChoiceProblem).load()
    assert [r.config for r in loaded] == [{"mode": "a", "lr": 0.5}, {"mode": ""}]


# --------------------------------------------------------------------- edits: one line, nothing runs
def _edit_cell(column: str, value: str, line: int = 3):
    def edit(path) -> None:
        table = list(csv.reader(open(path, newline="")))
        table[line - 1][table[0].index(column)] = value
        with open(path, "w", newline="") as fh:
            csv.writer(fh).writerows(table)
    return edit


def _repeat_header(path) -> None:
    lines = open(path, "rb").read().splitlines(keepends=True)
    open(path, "wb").write(b"".join(lines[:4] + lines[:1] + lines[4:]))


def _header_names_a_column_twice(path) -> None:
    data = open(path, "rb").read()
    open(path, "wb").write(data.replace(b"p:units", b"p:x", 1))


def _extra_column(path) -> None:
    lines = open(path, "rb").read().splitlines()
    open(path, "wb").write(b"".join(line + (b",note\r\n" if i == 0 else b",hand-made\r\n") for i, line in enumerate(lines)))


def _delete_header(path) -> None:
    lines = open(path, "rb").read().splitlines(keepends=True)
    open(path, "wb").write(b"".join(lines[1:]))


EDITS = {
    "a float cell edited to text": (_edit_cell("p:x", "abc"),
                                    r"line 3 of .*/results\.csv: column 'p:x' holds 'abc', not a number \(edited by "
                                    r"hand\?\): correct or delete that line \(keep a copy\), or use another --output-dir"),
    "the objective edited to text": (_edit_cell("objective", "n/a", 5),
                                     r"line 5 of .*: column 'objective' holds 'n/a', not a number .*"),
    "a choice the problem does not have": (_edit_cell("p:optimizer", "adamx"),
                                           r"line 3 of .*: column 'p:optimizer' holds 'adamx', which is not one of "
                                           r"its choices \(adam, sgd, rms\) .*"),
    "a value outside the space": (_edit_cell("p:x", "99.0", 4),
                                  r"line 4 of .*: the recorded configuration .* is not valid in the space: .*"),
    "an unknown status": (_edit_cell("status", "OK", 2),
                          r"line 2 of .*: column 'status' holds 'OK', not one of DONE, FAILED, TIMEOUT, STOPPED .*"),
    "a repeated header line": (_repeat_header,
                               r"line 5 of .*/results\.csv repeats the header \(two files joined, or two searches "
                               r"wrote to it\?\): delete that line \(keep a copy\), or use another --output-dir"),
    "a column named twice in the header": (_header_names_a_column_twice,
                                           r"the header of .*/results\.csv names the column\(s\) p:x more than once .*"),
    "an extra column": (_extra_column,
                        r"the header of .*/results\.csv has the column\(s\) note that hpcnas does not write \(added by "
                        r"hand\?\): remove them \(keep a copy\), or use another --output-dir"),
    "a deleted header": (_delete_header,
                         r".*/results\.csv has no header line: its first line is a row of results \(was the header "
                         r"deleted\?\): put the header line back \(p:optimizer,p:scale,p:units,p:x,job_id,.*\), or use "
                         r"another --output-dir"),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_an_edited_results_csv_is_one_line_and_nothing_is_evaluated(name, tmp_path, capsys) -> None:
    import re

    edit, message = EDITS[name]
    out = tmp_path / "out"
    assert search(out, 8) == 0
    path = out / "results.csv"
    edit(path)
    before = path.read_bytes()
    capsys.readouterr()
    assert search(out, 12) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hpcnas: error: "), err
    assert re.fullmatch(message, err[len("hpcnas: error: "):].strip()), err
    assert "another problem" not in err and "Traceback" not in err
    assert path.read_bytes() == before  # untouched, nothing evaluated
    assert not (out / "results.csv.damaged").exists() and not (out / "search.lock").exists()


def test_a_utf8_byte_order_mark_is_accepted(tmp_path) -> None:
    out = tmp_path / "out"
    assert search(out, 6) == 0
    path = out / "results.csv"
    first = rows(path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert search(out, 9) == 0
    after = rows(path)
    assert len(after) == 9
    assert [r["job_id"] for r in after[:6]] == [r["job_id"] for r in first]


def test_every_row_one_cell_short_is_an_edit_not_crash_damage(tmp_path) -> None:
    store = ResultsStore(str(tmp_path), Problem)
    store.append([EvalResult(f"j{i}", c, float(i), DONE) for i, c in enumerate(Problem.sample(4, 1))])
    store.close()
    path = tmp_path / "results.csv"
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"".join((line if i == 0 else line.rsplit(b",", 1)[0]) + b"\r\n" for i, line in enumerate(lines)))
    before = path.read_bytes()
    with pytest.raises(HpcnasError, match=r"every row of .* has 14 cells, the header has 15 \(columns added or "
                                          r"removed by hand\?\)"):
        ResultsStore(str(tmp_path), Problem).load()
    assert path.read_bytes() == before and not os.path.exists(tmp_path / "results.csv.damaged")
