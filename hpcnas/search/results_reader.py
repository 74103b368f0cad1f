"""Reading a ``results.csv`` back: which lines are rows of this problem, which are damage, which are edits.

:class:`RowReader` turns a :class:`~hpcnas.search.results_csv.Scan` of the file into a
:class:`Reading`: the rows (as :class:`~hpcnas.core.trial.EvalResult`, configurations in
the problem's types and validated against its space), the lines to move aside (lines that are
not rows; a last row cut short inside its last cell), and, for what only an edit can cause, a
one-line :class:`~hpcnas.core.errors.HpcnasError` naming the line and the column:

* a number column holding text, an unknown status, a choice the problem does not have, a
  configuration outside the space;
* a header line repeated among the rows, a header naming a column twice, a column hpcnas does
  not write, a header that was deleted or damaged while the rows fit the problem, a header of
  other hyper-parameters (another problem), rows that all have the same wrong width.

Several objectives: the columns ``objective_0`` ... (:mod:`hpcnas.search.objectives`) are read
into each result's ``metadata["objectives"]``; a header with them is refused for a search of one
objective (and one without them for a search of several), naming ``--objectives``.

It only reads; :class:`~hpcnas.search.results_store.ResultsStore` moves lines and rewrites.
"""
from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

from hpcnas.core.errors import HpcnasError
from hpcnas.core.trial import (
    METADATA_PREFIX, PARAM_PREFIX, REQUIRED_COLUMNS, RESULT_COLUMNS, EvalResult, RowError, result_columns,
    result_from_row,
)
from hpcnas.search.objectives import COLUMN_RE, RESULT_KEY
from hpcnas.search.output_dir import FIX
from hpcnas.search.results_csv import CellError, Damaged, Scan, choice_cells, decode, number_cell, scan

__all__ = ["EDITED", "Reading", "RowError", "RowReader", "result_columns"]

EDITED = "correct or delete that line (keep a copy), or " + FIX


@dataclass
class Reading:
    """A results.csv read and checked: what :meth:`ResultsStore.load` keeps and moves aside."""

    scan: Scan
    results: list[EvalResult] = field(default_factory=list)
    kept: list[bytes] = field(default_factory=list)  # the header and the rows' lines, as they were
    damaged: list[Damaged] = field(default_factory=list)
    rewrite: bool = False


class RowReader:
    """Checks and decodes the rows of the results.csv at ``path`` for ``problem``.

    ``params``: the problem's ``p:<name>`` columns (``None`` for a problem without names);
    ``same_problem``: whether search.json names this problem (a header that does not match is
    then an edit, not another problem's file).
    """

    def __init__(self, path: str, problem: Any, params: list[str] | None, objectives: Sequence[str] = ()) -> None:
        self.path = path
        self.output_dir = os.path.dirname(path)
        self.problem = problem
        self._params = params
        self._objectives = list(objectives)
        self._columns = params + result_columns(self._objectives) if params is not None else None
        self.same_problem = False
        self._hps: dict[str, tuple[Any, dict[str, Any] | None]] = {}

    def read(self, raw: bytes) -> Reading:
        """The :class:`Reading` of the whole file ``raw``; raises :class:`HpcnasError` on an edit."""
        return self._check(scan(raw, check=self._row_problem))

    def _check(self, s: Scan) -> Reading:
        reading = Reading(s, damaged=list(s.damaged))
        if not s.terminated and not s.body and self._cut_header(s.header_raw):  # the header is the last line
            reading.damaged.append(Damaged(1, s.header_raw, "cut short (the header)"))
            reading.rewrite = True  # the file becomes empty: the next row writes a new header
            return reading
        if s.header is None:
            if self._rows_fit(s):
                raise HpcnasError(f"the header line of {self.path} is damaged ({s.header_error}) but its rows are "
                                  f"rows of this problem: put the header line back{self._expected()}, or {FIX}")
            raise HpcnasError(f"the first line of {self.path} is not a results.csv header ({s.header_error}): "
                              f"{FIX}, or move that file away")
        self._check_header(s)
        header = s.header
        reading.kept.append(s.header_raw)
        for record in s.records:
            if record.cells == header:
                raise HpcnasError(f"line {record.number} of {self.path} repeats the header (two files joined, "
                                  f"or two searches wrote to it?): delete that line (keep a copy), or {FIX}")
            try:
                result = self._decode(header, record.cells)
            except RowError as err:
                if not record.raw.endswith(b"\n"):  # the last line, cut short inside its last cell
                    reading.damaged.append(Damaged(record.number, record.raw, f"cut short ({err})"))
                    continue
                where = f"column '{err.column}' " if err.column else ""
                raise HpcnasError(f"line {record.number} of {self.path}: {where}{err} (edited by hand?): "
                                  f"{EDITED}") from None
            reading.results.append(result)
            reading.kept.append(record.raw)
        self._check_damage(reading)
        reading.rewrite = bool(reading.damaged) or not s.terminated
        return reading

    def _cut_header(self, raw: bytes) -> bool:
        if self._columns is None:
            return False
        expected = _line(self._columns).encode("utf-8")
        return expected.startswith(raw.rstrip(b"\r\n")) and raw.rstrip(b"\r\n") != expected.rstrip(b"\r\n")

    def _check_header(self, s: Scan) -> None:
        header = s.header or []
        params = [c for c in header if c.startswith(PARAM_PREFIX)]
        others = [c for c in header if not c.startswith(PARAM_PREFIX)]
        if not params and not set(others) & set(RESULT_COLUMNS):
            what = "a row of results (was the header deleted?)" if self._is_row(header) else repr(",".join(header)[:60])
            raise HpcnasError(f"{self.path} has no header line: its first line is {what}: put the header line "
                              f"back{self._expected()}, or {FIX}")
        twice = sorted({c for c in header if header.count(c) > 1})
        if twice:
            raise HpcnasError(f"the header of {self.path} names the column(s) {', '.join(twice)} more than once "
                              f"(edited, or two headers joined?): remove the repeated column(s), or {FIX}")
        if self._params is not None and set(params) != set(self._params):
            if self.same_problem:
                missing = [c for c in self._params if c not in params]
                unknown = [c for c in params if c not in self._params]
                raise HpcnasError(
                    f"the header of {self.path} does not match the problem its search.json records "
                    f"(missing: {', '.join(missing) or '-'}; unknown: {', '.join(unknown) or '-'}): the header was "
                    f"edited; put the names back, or {FIX}")
            if self._rows_fit(s):
                raise HpcnasError(f"the header of {self.path} is damaged ({','.join(header)[:60]}...) but its rows are "
                                  f"rows of this problem: put the header line back{self._expected()}, or {FIX}")
            raise HpcnasError(
                f"output dir {self.output_dir} holds a results.csv with other columns ({', '.join(header[:6])}...): "
                "use another --output-dir or remove that one")
        self._check_objectives(header)
        extra = [c for c in others if c not in RESULT_COLUMNS and not c.startswith(METADATA_PREFIX)
                 and not COLUMN_RE.match(c)]
        if extra:
            raise HpcnasError(f"the header of {self.path} has the column(s) {', '.join(extra)} that hpcnas does not "
                              f"write (added by hand?): remove them (keep a copy), or {FIX}")
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise HpcnasError(f"the header of {self.path} lacks the column(s) {', '.join(missing)}: put them back, "
                              f"or {FIX}")

    def _check_objectives(self, header: list[str]) -> None:
        found = sorted((c for c in header if COLUMN_RE.match(c)), key=lambda c: int(COLUMN_RE.match(c).group(1)))  # type: ignore[union-attr]
        if found == self._objectives:
            return
        if not self._objectives:
            raise HpcnasError(f"{self.path} holds the results of a search with {len(found)} objectives "
                              f"({', '.join(found)}): pass --objectives {len(found)} (or their names) to resume it, "
                              "or use another --output-dir")
        if not found:
            raise HpcnasError(f"{self.path} holds the results of a search with one objective, this search has "
                              f"{len(self._objectives)} (--objectives): use another --output-dir")
        raise HpcnasError(f"{self.path} has the objective columns {', '.join(found)}, this search declares "
                          f"{len(self._objectives)} objectives (--objectives): declare as many, or use another "
                          "--output-dir")

    def _expected(self) -> str:
        return f" ({_line(self._columns).strip()[:120]}...)" if self._columns else ""

    def _rows_fit(self, s: Scan) -> bool:
        """Whether the first rows after a damaged header are rows of this problem's columns."""
        if self._columns is None:
            return False
        if not s.body:
            return False
        again = scan(_line(self._columns).encode("utf-8") + s.body, check=self._row_problem)
        head = again.records[:3]
        return bool(head) and not [d for d in again.damaged if d.number <= head[-1].number] and \
            all(self._row_problem(self._columns, r.cells) is None for r in head)

    def _is_row(self, cells: list[str]) -> bool:
        return self._columns is not None and len(cells) == len(self._columns) and \
            self._row_problem(self._columns, cells) is None

    def _check_damage(self, reading: Reading) -> None:
        """Rows that all have the same wrong width are not crash damage: their header was edited."""
        widths = {d.reason for d in reading.damaged}
        if not reading.results and len(reading.damaged) >= 2 and len(widths) == 1 and "cells" in next(iter(widths)):
            raise HpcnasError(f"every row of {self.path} has {next(iter(widths))} (columns added or removed "
                              f"by hand?): make the header and the rows agree, or {FIX}")

    def _row_problem(self, header: list[str], cells: list[str]) -> str | None:
        try:
            self._decode(header, cells)
        except RowError as err:
            return str(err)
        return None

    def _decode(self, header: list[str], cells: list[str]) -> EvalResult:
        row = dict(zip(header, cells))
        config: dict[str, Any] = {}
        empty = []
        for key, text in row.items():
            if not key.startswith(PARAM_PREFIX):
                continue
            name = key[len(PARAM_PREFIX):]
            if text == "":
                empty.append(name)
                continue
            try:
                config[name] = decode(text, *self._hp(name))
            except CellError as err:
                raise RowError(key, str(err)) from None
        result = result_from_row(row, self._validated(config, empty))
        if self._objectives and result.objective is not None:
            values = []
            for col in self._objectives:
                try:
                    value = number_cell(row.get(col, ""))
                except CellError as err:
                    raise RowError(col, str(err)) from None
                if value is None or not math.isfinite(value):
                    raise RowError(col, f"is empty or not finite while 'objective' holds {result.objective!r}")
                values.append(value)
            result.metadata[RESULT_KEY] = tuple(values)
        return result

    def _validated(self, config: dict[str, Any], empty: list[str]) -> dict[str, Any]:
        validate = getattr(self.problem, "validate_config", None)
        if validate is None:  # canonical form (NAS: adds the problem reference back)
            return config
        try:
            return validate(config, what="the recorded configuration")
        except HpcnasError as err:
            # files written before empty strings were quoted: an empty cell may be the choice ""
            blanks = {n: "" for n in empty if "" in (self._hp(n)[1] or {}).values()}
            if blanks:
                try:
                    return validate({**config, **blanks}, what="the recorded configuration")
                except HpcnasError:
                    pass
            raise RowError(None, str(err)) from None

    def _hp(self, name: str) -> tuple[Any, dict[str, Any] | None]:
        """The hyper-parameter ``name`` of the problem's space (or ``None``) and its choice cells."""
        if name not in self._hps:
            hp = None
            space = getattr(self.problem, "space", None)
            if space is not None:
                try:
                    hp = space[name]
                except (KeyError, TypeError, IndexError):
                    hp = None
            self._hps[name] = (hp, choice_cells(hp))
        return self._hps[name]


def _line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(cells)
    return out.getvalue()
