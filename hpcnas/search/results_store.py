"""``results.csv`` and ``search.json`` of a search output directory: append, fsync, read back.

``results.csv`` holds one row per finished evaluation: a ``p:<name>`` column per
hyper-parameter (problem order), then :data:`~hpcnas.evaluator.base.RESULT_COLUMNS`. Rows
are appended as results arrive and each batch is flushed and ``fsync``-ed, so a crash or an
allocation's end loses at most the batch being written. (``sync_interval`` > 0 spaces the
``fsync`` calls, which cost ~10 ms each on some disks, at least that many seconds apart: a
killed master still loses nothing, since every batch is flushed to the OS, and a power loss
loses at most the last ``sync_interval`` seconds.) Lists and dicts in a configuration
(architecture sequences) are stored as JSON text; an inactive conditional hyper-parameter is
an empty cell.

On reopening, a last line cut short (power loss mid-write) is dropped with a warning and cut
from the file, and cells are turned back into the problem's types, so the configurations told
to the search on resume equal the ones first evaluated.

``search.json`` records the problem's fingerprint and JSON, the search and its options: an
output directory that holds the results of a *different* problem is refused.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from typing import Any, Iterable

import numpy as np

from hpcnas.core.errors import HpcnasError
from hpcnas.evaluator.base import PARAM_PREFIX, RESULT_COLUMNS, EvalResult

log = logging.getLogger(__name__)

RESULTS_FILE = "results.csv"
SEARCH_FILE = "search.json"


def recorded_count(output_dir: str) -> int:
    """Number of complete rows in ``output_dir``'s ``results.csv`` (0 when there is none)."""
    path = os.path.join(output_dir, RESULTS_FILE)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return 0
    with io.StringIO(data[: data.rfind(b"\n") + 1].decode("utf-8", "replace"), newline="") as text:
        return max(0, sum(1 for _ in csv.reader(text)) - 1)


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
    """Reads and appends ``results.csv`` in ``output_dir`` for ``problem``."""

    def __init__(self, output_dir: str, problem: Any, sync_interval: float = 0.0) -> None:
        self.sync_interval = sync_interval
        self._last_sync = float("-inf")
        self.output_dir = os.path.abspath(output_dir)
        self.path = os.path.join(self.output_dir, RESULTS_FILE)
        self.problem = problem
        self._columns: list[str] | None = None
        names = parameter_names(problem)
        if names is not None:
            self._columns = [PARAM_PREFIX + n for n in names] + list(RESULT_COLUMNS)
        self._file: io.TextIOWrapper | None = None
        self._writer: csv.DictWriter | None = None

    # ----------------------------------------------------------------- search.json
    def check_compatible(self) -> None:
        """Refuse an output directory that holds the results of another problem (reads only)."""
        meta_path = os.path.join(self.output_dir, SEARCH_FILE)
        fingerprint = problem_fingerprint(self.problem)
        if os.path.exists(meta_path):
            try:
                with open(meta_path, encoding="utf-8") as fh:
                    old = json.load(fh)
            except (OSError, json.JSONDecodeError) as err:
                raise HpcnasError(f"cannot read {meta_path} ({err}): remove it or use another --output-dir") from err
            if old.get("problem_fingerprint") != fingerprint:
                raise HpcnasError(
                    f"output dir {self.output_dir} holds results of a different problem "
                    f"(fingerprint {old.get('problem_fingerprint')} != {fingerprint}): "
                    "use another --output-dir or remove that one"
                )
        elif os.path.exists(self.path) and self._columns is not None:
            with open(self.path, encoding="utf-8", newline="") as fh:
                header = next(csv.reader(fh), [])
            if header and header != self._columns:
                raise HpcnasError(
                    f"output dir {self.output_dir} holds a results.csv with other columns ({', '.join(header[:6])}...): "
                    "use another --output-dir or remove that one"
                )

    def check_and_write_metadata(self, metadata: dict[str, Any]) -> None:
        """:meth:`check_compatible`, then (re)write ``search.json`` atomically."""
        self.check_compatible()
        os.makedirs(self.output_dir, exist_ok=True)
        meta_path = os.path.join(self.output_dir, SEARCH_FILE)
        data = dict(metadata, problem_fingerprint=problem_fingerprint(self.problem))
        if hasattr(self.problem, "to_dict"):
            data["problem"] = self.problem.to_dict()
        tmp = meta_path + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, meta_path)
        except OSError as err:  # disk full, quota, read-only: one line, the old search.json stays
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise HpcnasError(
                f"cannot write {meta_path}: {err.strerror or err}: free space in {self.output_dir} "
                "or use another --output-dir"
            ) from err

    # ----------------------------------------------------------------- reading
    def load(self) -> list[EvalResult]:
        """Results recorded earlier (empty when there is no ``results.csv``)."""
        if not os.path.exists(self.path):
            return []
        with open(self.path, "rb") as fh:
            raw = fh.read()
        complete = raw.rsplit(b"\n", 1)[0] + b"\n" if b"\n" in raw else b""
        if len(complete) != len(raw):
            log.warning("dropping a truncated last line of %s (%d bytes)", self.path, len(raw) - len(complete))
            with open(self.path, "r+b") as fh:
                fh.truncate(len(complete))
                fh.flush()
                os.fsync(fh.fileno())
        reader = csv.reader(io.StringIO(complete.decode("utf-8", "replace"), newline=""))
        header = next(reader, None)
        if not header:
            return []
        self._columns = header  # appends must follow the file's own header
        results = []
        for lineno, cells in enumerate(reader, start=2):
            if len(cells) != len(header):
                log.warning("skipping malformed line %d of %s", lineno, self.path)
                continue
            results.append(self._parse_row(dict(zip(header, cells))))
        return results

    def _parse_row(self, row: dict[str, str]) -> EvalResult:
        config = {}
        for key, text in row.items():
            if key.startswith(PARAM_PREFIX) and text != "":
                name = key[len(PARAM_PREFIX) :]
                config[name] = self._parse_value(name, text)
        validate = getattr(self.problem, "validate_config", None)
        if validate is not None:  # canonical form (NAS: adds the problem reference back)
            try:
                config = validate(config, what="recorded configuration")
            except HpcnasError:
                pass
        return EvalResult(
            job_id=row.get("job_id", ""),
            config=config,
            objective=_float(row.get("objective")),
            status=row.get("status") or "DONE",
            error=row.get("error") or None,
            submit_time=_float(row.get("submit_time")),
            start_time=_float(row.get("start_time")),
            end_time=_float(row.get("end_time")),
            worker=row.get("worker") or None,
            reports=_reports(row.get("reports")),
        )

    def _parse_value(self, name: str, text: str) -> Any:
        space = getattr(self.problem, "space", None)
        hp = None
        if space is not None:
            try:
                hp = space[name]
            except (KeyError, TypeError):
                hp = None
        choices = getattr(hp, "choices", None) or getattr(hp, "sequence", None)
        if choices is not None:
            for choice in choices:
                if _cell(choice) == text:
                    return choice.item() if hasattr(choice, "item") else choice
        kind = type(hp).__name__ if hp is not None else ""
        if "Integer" in kind:
            return int(float(text))
        if "Float" in kind:
            return float(text)
        return _guess(text)

    # ----------------------------------------------------------------- writing
    def append(self, results: Iterable[EvalResult]) -> None:
        """Append rows, flush them to the OS and ``fsync`` (see ``sync_interval``) before returning."""
        rows = [r.to_row() for r in results]
        if not rows:
            return
        if self._writer is None:
            self._open(rows[0])
        assert self._writer is not None and self._file is not None
        size = os.fstat(self._file.fileno()).st_size  # every earlier batch is flushed
        try:
            for row in rows:
                self._writer.writerow({k: _cell(v) for k, v in row.items()})
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

    def _open(self, first_row: dict[str, Any]) -> None:
        os.makedirs(self.output_dir, exist_ok=True)
        if self._columns is None:
            self._columns = [k for k in first_row if k.startswith(PARAM_PREFIX)] + list(RESULT_COLUMNS)
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        self._file = open(self.path, "a", encoding="utf-8", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=self._columns, extrasaction="ignore")
        if new:
            self._writer.writeheader()

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            self._writer = None


def _reports(text: str | None) -> list[tuple[float, float]]:
    """The ``reports`` cell back as ``[(step, objective), ...]`` (empty when blank or unreadable)."""
    if not text:
        return []
    try:
        return [(float(step), float(y)) for step, y in json.loads(text)]
    except (ValueError, TypeError):
        return []


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, np.generic):  # np.float64 is a float whose repr is 'np.float64(...)'
        value = value.item()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=_json_default)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return str(value)


def _float(text: str | None) -> float | None:
    if text in (None, ""):
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _guess(text: str) -> Any:
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text in ("True", "False"):
        return text == "True"
    return text
