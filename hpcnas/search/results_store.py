"""``results.csv`` and ``search.json`` of a search output directory: check, repair, append, read back.

``results.csv`` holds one row per finished evaluation: a ``p:<name>`` column per
hyper-parameter (problem order), then :data:`~hpcnas.core.trial.RESULT_COLUMNS` (cells:
:mod:`hpcnas.search.results_csv`). Rows are appended as results arrive and each batch is
flushed and ``fsync``-ed, so a crash or an allocation's end loses at most the batch being
written. (``sync_interval`` > 0 spaces the ``fsync`` calls, which cost ~10 ms each on some
disks, at least that many seconds apart: a killed master still loses nothing, since every
batch is flushed to the OS, and a power loss loses at most the last ``sync_interval`` seconds.)

Nothing recorded is ever dropped. On reopening (:meth:`ResultsStore.load`):

* a line that is not a row -- cut short by a power loss, unbalanced quotes, bytes that are not
  text, the wrong number of cells -- is **moved** to ``results.csv.damaged`` (appended, as it
  was) with a one-line warning naming the lines, and ``results.csv`` is rewritten without it
  atomically (temporary file, ``fsync``, ``os.replace``), so later rows start on a clean line;
* a complete last row without its line break is kept (the line break is added);
* a row whose values do not fit -- a number column holding text, a choice the problem does not
  have, a repeated header line, a configuration outside the space -- is left where it is and the
  search is refused with one line naming the line and the column: that is an edit, not a crash,
  and only its author knows the right value. So is a header that does not match the problem.

``search.json`` records the problem's fingerprint and JSON, the search and its options: an
output directory that holds the results of a *different* problem is refused.

Several objectives (``objectives``: their columns, :mod:`hpcnas.search.objectives`): the columns
``objective_0`` ... follow ``objective`` (which holds ``objective_0``); each result carries its
objectives in ``metadata["objectives"]``, written there and read back from there. A file
without them is refused for a search with several objectives, and the other way round.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from typing import Any, Iterable, Sequence

from hpcnas.core.errors import HpcnasError
from hpcnas.core.trial import METADATA_PREFIX, PARAM_PREFIX, EvalResult
from hpcnas.search import output_dir
from hpcnas.search.output_dir import FIX
from hpcnas.search.results_csv import LINE_END, encode, encode_text, scan
from hpcnas.search.objectives import RESULT_KEY
from hpcnas.search.results_reader import Reading, RowReader, result_columns

log = logging.getLogger(__name__)

RESULTS_FILE = "results.csv"
SEARCH_FILE = "search.json"
DAMAGED_FILE = RESULTS_FILE + ".damaged"


def read_bytes(path: str) -> bytes | None:
    """The content of ``path`` (``None`` when it does not exist); one line when it cannot be read."""
    try:
        if not os.path.isfile(path) and os.path.lexists(path):
            output_dir.check_file(path)
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise HpcnasError(f"cannot read {path}: {output_dir.os_error(err)}: make it readable or {FIX}") from None


def recorded_count(output_dir_: str) -> int:
    """Number of rows in ``output_dir_``'s ``results.csv`` (0 when there is none); one line when
    the output directory cannot be used (:func:`~hpcnas.search.output_dir.check_usable`)."""
    output_dir.check_usable(output_dir_, (RESULTS_FILE, SEARCH_FILE))
    raw = read_bytes(os.path.join(output_dir_, RESULTS_FILE))
    return len(scan(raw).records) if raw else 0


def problem_fingerprint(problem: Any) -> str:
    """The problem's own fingerprint, or a hash of its JSON for problems without one."""
    if hasattr(problem, "fingerprint"):
        return str(problem.fingerprint())
    import hashlib

    return hashlib.sha1(problem.to_json().encode()).hexdigest()[:12]


def parameter_names(problem: Any) -> list[str] | None:
    names = getattr(problem, "hyperparameter_names", None)
    return list(names) if names is not None else None


class ResultsStore:
    """Reads, repairs and appends ``results.csv`` in ``output_dir`` for ``problem``."""

    def __init__(self, output_dir: str, problem: Any, sync_interval: float = 0.0,
                 objectives: Sequence[str] = ()) -> None:
        self.sync_interval = sync_interval
        self._last_sync = float("-inf")
        self.output_dir = os.path.abspath(output_dir)
        self.path = os.path.join(self.output_dir, RESULTS_FILE)
        self.damaged_path = os.path.join(self.output_dir, DAMAGED_FILE)
        self.problem = problem
        names = parameter_names(problem)
        self._objectives = list(objectives)
        self._results = result_columns(self._objectives)
        self._params = [PARAM_PREFIX + n for n in names] if names is not None else None
        self._columns: list[str] | None = self._params + self._results if self._params is not None else None
        self._reader = RowReader(self.path, problem, self._params, self._objectives)
        self._cache: tuple[tuple[int, int, int], Reading] | None = None
        self._file: io.TextIOWrapper | None = None
        self._writer: csv.DictWriter | None = None

    # ----------------------------------------------------------------- search.json
    def check_compatible(self) -> None:
        """Refuse an output directory this search cannot use: not writable, the results of another
        problem, a results.csv whose header or values were edited (reads only)."""
        output_dir.check_usable(self.output_dir, (RESULTS_FILE, SEARCH_FILE))
        meta_path = os.path.join(self.output_dir, SEARCH_FILE)
        fingerprint = problem_fingerprint(self.problem)
        if os.path.exists(meta_path):
            try:
                with open(meta_path, encoding="utf-8") as fh:
                    old = json.load(fh)
            except (OSError, ValueError) as err:
                raise HpcnasError(f"cannot read {meta_path} ({err}): remove it or use another --output-dir") from err
            found = old.get("problem_fingerprint") if isinstance(old, dict) else None
            if found != fingerprint:
                raise HpcnasError(
                    f"output dir {self.output_dir} holds results of a different problem "
                    f"(fingerprint {found} != {fingerprint}): use another --output-dir or remove that one"
                )
            self._reader.same_problem = True
        self._read()

    def check_and_write_metadata(self, metadata: dict[str, Any]) -> None:
        """:meth:`check_compatible`, then (re)write ``search.json`` atomically."""
        self.check_compatible()
        output_dir.make(self.output_dir)
        meta_path = os.path.join(self.output_dir, SEARCH_FILE)
        data = dict(metadata, problem_fingerprint=problem_fingerprint(self.problem))
        if hasattr(self.problem, "to_dict"):
            data["problem"] = self.problem.to_dict()
        text = json.dumps(data, indent=1, sort_keys=True, default=str)
        try:
            output_dir.write_atomically(meta_path, text.encode("utf-8"))
        except OSError as err:  # disk full, quota, read-only: one line, the old search.json stays
            raise HpcnasError(
                f"cannot write {meta_path}: {err.strerror or err}: free space in {self.output_dir} "
                "or use another --output-dir"
            ) from err

    # ----------------------------------------------------------------- reading
    def load(self) -> list[EvalResult]:
        """Results recorded earlier (empty when there is no ``results.csv``); damaged lines are
        moved to ``results.csv.damaged`` and the file rewritten without them (module docstring)."""
        reading = self._read()
        if reading is None:
            return []
        if reading.rewrite:
            self._repair(reading)
        if reading.kept:
            self._columns = reading.scan.header  # appends must follow the file's own header
        return reading.results

    def _read(self) -> Reading | None:
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        key = (st.st_ino, st.st_size, st.st_mtime_ns) if st is not None else None
        if key is not None and self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        raw = read_bytes(self.path)
        if not raw:
            self._cache = None
            return None
        reading = self._reader.read(raw)
        if key is not None:
            self._cache = (key, reading)
        return reading

    def _repair(self, reading: Reading) -> None:
        """Move the damaged lines to results.csv.damaged, then rewrite results.csv without them."""
        damaged = b"".join(_terminated(d.raw) for d in reading.damaged)
        kept = [_terminated(line) for line in reading.kept]
        try:
            if damaged:
                output_dir.append_durably(self.damaged_path, damaged)
            output_dir.write_atomically(self.path, b"".join(kept), like=self.path)
        except OSError as err:
            raise HpcnasError(f"cannot repair {self.path}: {output_dir.os_error(err)}: free space in "
                              f"{self.output_dir} or {FIX}") from None
        self._cache = None
        if reading.damaged:
            shown = "; ".join(f"line {d.number}: {d.reason}" for d in reading.damaged[:3])
            more = f"; and {len(reading.damaged) - 3} more" if len(reading.damaged) > 3 else ""
            log.warning("%s: moved %d line(s) that are not rows (%s%s) to %s; %d row(s) kept",
                        self.path, len(reading.damaged), shown, more, self.damaged_path, len(reading.results))
        else:
            log.info("%s: added the line break missing after its last row", self.path)

    # ----------------------------------------------------------------- writing
    def check_writable(self) -> None:
        """Open an existing results.csv for appending (and close it): one line if that fails."""
        if not os.path.exists(self.path):
            return
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND))
        except OSError as err:
            raise HpcnasError(f"cannot write {self.path}: {output_dir.os_error(err)}: make it writable "
                              f"(chmod u+w) or {FIX}") from None

    def append(self, results: Iterable[EvalResult]) -> None:
        """Append rows, flush them to the OS and ``fsync`` (see ``sync_interval``) before returning."""
        rows = [self._row(r) for r in results]
        if not rows:
            return
        if self._writer is None:
            self._open(rows)
        assert self._columns is not None
        new = sorted({k for row in rows for k in row if k.startswith(METADATA_PREFIX)} - set(self._columns))
        if new:
            self._widen(new)
            self._open(rows)
        assert self._writer is not None and self._file is not None
        size = os.fstat(self._file.fileno()).st_size  # every earlier batch is flushed
        try:
            for row in rows:
                self._writer.writerow({k: encode(v) if k.startswith(PARAM_PREFIX) else encode_text(v)
                                       for k, v in row.items()})
            self._file.flush()
            now = time.monotonic()
            if now - self._last_sync >= self.sync_interval:
                os.fsync(self._file.fileno())
                self._last_sync = now
        except OSError as err:  # disk full, quota: cut the partial batch, keep the file readable
            self._abandon(size)
            raise HpcnasError(
                f"cannot write {self.path}: {err.strerror or err}; the {len(rows)} newest result(s) are not "
                "recorded, the rows before them are intact: free space and run the same command again to resume"
            ) from err

    def _row(self, result: EvalResult) -> dict[str, Any]:
        row = result.to_row()
        if self._objectives:
            values = result.metadata.get(RESULT_KEY) or [None] * len(self._objectives)
            row.update(zip(self._objectives, values))
        return row

    def _abandon(self, size: int) -> None:
        """Truncate ``results.csv`` back to ``size`` bytes and drop the file without flushing."""
        assert self._file is not None
        fd = self._file.fileno()
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        except OSError:
            pass
        os.close(fd)
        try:
            self._file.close()  # its buffer cannot be flushed any more: EBADF, ignored
        except OSError:
            pass
        self._file = None
        self._writer = None

    def _open(self, rows: list[dict[str, Any]]) -> None:
        output_dir.make(self.output_dir)
        if self._columns is None:
            self._columns = [k for k in rows[0] if k.startswith(PARAM_PREFIX)] + self._results
        try:
            size = os.path.getsize(self.path)
        except OSError:
            size = 0
        if size == 0:  # a new file: the run function's metadata keys of this first batch are m: columns
            names = {k for row in rows for k in row if k.startswith(METADATA_PREFIX)} - set(self._columns)
            self._columns = list(self._columns) + sorted(names)
        self._file = open(self.path, "a", encoding="utf-8", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=self._columns, extrasaction="ignore")
        if size == 0:
            self._writer.writeheader()
        else:  # never glue a row to a line left open
            last = _last_byte(self.path)
            if last != b"\n":
                self._file.write("\n" if last == b"\r" else LINE_END)

    def _widen(self, names: list[str]) -> None:
        """Add the ``m:`` columns ``names`` (metadata keys first seen now): the file is rewritten
        with them (empty in earlier rows) into a temporary file that then replaces it."""
        assert self._columns is not None
        self.close()
        columns = list(self._columns) + names
        tmp = self.path + ".hpcnas-widen"
        try:
            with open(self.path, encoding="utf-8", newline="") as src, \
                    open(tmp, "w", encoding="utf-8", newline="") as dst:
                reader = csv.reader(src)
                writer = csv.writer(dst)
                next(reader, None)
                writer.writerow(columns)
                for cells in reader:
                    writer.writerow(cells + [""] * (len(columns) - len(cells)) if len(cells) == len(self._columns)
                                    else cells)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, self.path)
        except OSError as err:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise HpcnasError(f"cannot add the metadata column(s) {', '.join(names)} to {self.path}: "
                              f"{err.strerror or err}; the rows recorded so far are intact: {FIX}") from err
        self._columns = columns
        self._cache = None

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            self._writer = None


def _terminated(line: bytes) -> bytes:
    """``line`` ending with a line break (a bare ``\\r`` left by a cut completed to ``\\r\\n``)."""
    return line if line.endswith(b"\n") else line.rstrip(b"\r") + LINE_END.encode()


def _last_byte(path: str) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)
