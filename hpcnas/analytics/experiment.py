"""What every analytics command reads: an :class:`Experiment`, built from a source.

Sources:

* an hpcnas output directory (``results.csv`` and, when the master wrote it, ``search.json``)
  or a ``results.csv`` file of any evaluator (local, balsam, ray);
* a Balsam 0.x database, one workflow (``balsam:WORKFLOW``), see :mod:`.balsam_db`.

An experiment holds uniform tables so that commands never care where data came from:

``runs``    one row per run of a job: ``job_id, start, end, weight`` (nodes occupied)
``waits``   intervals during which a job waited to run: ``job_id, start, end``
``ends``    one row per finished run: ``time, kind`` with kind ``done`` / ``error`` / ``timeout``
``results`` the results.csv rows (``p:<name>`` columns, objective, ...), or ``None``
"""
from __future__ import annotations

import io
import json
import os
import stat
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hpcnas.core.errors import HpcnasError, UsageError
from hpcnas.core import trial
from hpcnas.core.trial import DONE, FAILED, PARAM_PREFIX, STOPPED, TIMEOUT

#: columns a results.csv must have (the rest of RESULT_COLUMNS is optional)
REQUIRED_COLUMNS = trial.REQUIRED_COLUMNS + trial.TIME_COLUMNS
END_KINDS = ("done", "error", "timeout")
_STATUS_KIND = {DONE: "done", FAILED: "error", TIMEOUT: "timeout", STOPPED: "error"}


@dataclass
class Experiment:
    """Uniform view of one experiment (see the module docstring for the tables)."""

    label: str
    source: str
    runs: pd.DataFrame
    waits: pd.DataFrame
    ends: pd.DataFrame
    results: pd.DataFrame | None = None
    nodes: float | None = None
    nodes_source: str = "inferred from the peak of busy nodes"
    info: dict[str, Any] = field(default_factory=dict)

    def require_results(self, command: str) -> pd.DataFrame:
        if self.results is None:
            found = self.info.get("results_found") or []
            hint = (f" (the workflow's jobs wrote {len(found)}: {', '.join(found[:3])})"
                    if len(found) > 1 else "")
            raise HpcnasError(
                f"'{command}' needs objectives, which {self.source} does not hold{hint}: "
                "give the search's output directory or its results.csv"
            )
        return self.results


def empty_runs() -> pd.DataFrame:
    return pd.DataFrame({"job_id": [], "start": [], "end": [], "weight": []})


def _kind(path: str) -> str:
    """``"file"``, ``"dir"``, ``"missing"`` or ``"other"``; one line when ``path`` cannot be looked at."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "missing"
    except OSError as err:
        raise HpcnasError(f"cannot read '{path}': {err.strerror or type(err).__name__} (a directory above it "
                          "cannot be searched?): make it readable or give another path") from None
    return "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"


def _damage(path: str, data: bytes | None = None) -> str | None:
    """The lines of a results.csv that are not rows (see hpcnas.search.results_csv), in words."""
    from hpcnas.search.results_csv import scan

    if data is None:
        with open(path, "rb") as fh:
            data = fh.read()
    found = scan(data)
    if not found.damaged:
        return None
    shown = "; ".join(f"line {d.number}: {d.reason}" for d in found.damaged[:3])
    more = f"; and {len(found.damaged) - 3} more" if len(found.damaged) > 3 else ""
    return (f"'{path}' has {len(found.damaged)} line(s) that are not rows ({shown}{more}): resuming the search "
            "once moves them to results.csv.damaged; or correct them")


def complete_lines(path: str) -> bytes:
    """What ``path`` holds up to its last line end: a row being appended is not read half-written."""
    try:
        with open(path, "rb") as fh:  # a plain read: no lock, the search appending goes on
            data = fh.read()
    except OSError as err:
        raise HpcnasError(f"cannot read results file '{path}': {err.strerror or type(err).__name__}: make it "
                          "readable or give another results.csv") from None
    return data[: data.rfind(b"\n") + 1]


def read_results_csv(path: str, data: bytes | None = None) -> pd.DataFrame:
    """Read and validate a results.csv (or ``data``, its bytes); objectives of failed evaluations become NaN."""
    if data is None and _kind(path) != "file":
        raise HpcnasError(f"results file '{path}' does not exist: give a results.csv or the "
                          "search's output directory")
    try:
        df = pd.read_csv(path if data is None else io.BytesIO(data), low_memory=False)
    except OSError as err:
        raise HpcnasError(f"cannot read results file '{path}': {err.strerror or type(err).__name__}: make it "
                          "readable or give another results.csv") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        damage = None if isinstance(err, pd.errors.EmptyDataError) else _damage(path, data)
        raise HpcnasError(damage or f"'{path}' is not a readable CSV ({first}): give the results.csv an "
                          "hpcnas search wrote") from None
    from hpcnas.search.results_deephyper import layout, to_hpcnas

    which = layout(list(df.columns)) if "status" not in df.columns else None
    if which is not None:  # DeepHyper 0.2 / 0.13 results.csv: times relative to the search's start
        df = to_hpcnas(df, which)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        hint = ""
        raise HpcnasError(
            f"'{path}' is not an hpcnas results.csv{hint}: it lacks the column(s) "
            f"{', '.join(missing)}; give the results.csv an hpcnas search wrote (columns "
            f"p:<hyper-parameter>, {', '.join(REQUIRED_COLUMNS)}, ...)"
        )
    try:
        _check_values(path, df)
    except HpcnasError as err:  # a row cut short shifts or empties cells: say so rather than what it shows
        raise HpcnasError(_damage(path, data) or str(err)) from None
    df.loc[df["status"] != DONE, "objective"] = np.nan
    return df


def _check_values(path: str, df: pd.DataFrame) -> None:
    """Number columns as floats and known statuses, or one line naming the first bad cell."""
    # DeepHyper marks the objective of a failed evaluation "F" or "F_<reason>": a failure here too
    marked = df["objective"].notna() & df["objective"].astype(str).str.fullmatch(r"F(_.*)?")
    if marked.any():
        df.loc[marked, "objective"] = np.nan
        df.loc[marked & (df["status"] == DONE), "status"] = trial.decide("a DeepHyper failure mark").value
    for col in ("objective", *trial.TIME_COLUMNS):
        values = pd.to_numeric(df[col], errors="coerce")
        suspect = np.flatnonzero((values.isna() & df[col].notna()).to_numpy())
        bad = [i for i in suspect if str(df[col].iloc[i]).strip() != ""]
        if bad:
            row = int(bad[0]) + 2
            raise HpcnasError(f"'{path}' line {row}: column '{col}' holds "
                              f"{df[col].iloc[row - 2]!r}, not a number; "
                              "give the results.csv an hpcnas search wrote")
        df[col] = values.astype(float)
    df["status"] = df["status"].fillna("").astype(str)
    unknown = sorted(set(df["status"]) - set(_STATUS_KIND))
    if unknown:
        raise HpcnasError(f"'{path}': unknown status value(s) {', '.join(repr(u) for u in unknown[:5])}; "
                          f"an hpcnas results.csv uses {', '.join(_STATUS_KIND)}")


def param_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith(PARAM_PREFIX)]


def _read_search_json(directory: str) -> dict[str, Any]:
    path = os.path.join(directory, "search.json")
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _find_num_workers(info: dict[str, Any]) -> float | None:
    """``num_workers`` at the top of search.json or one level down (e.g. under evaluator)."""
    candidates = [info] + [v for v in info.values() if isinstance(v, dict)]
    for d in candidates:
        value = d.get("num_workers")
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    return None


def experiment_from_results(path: str, label: str | None = None,
                            nodes: float | None = None, snapshot: bool = False) -> Experiment:
    """Build an experiment from an output directory or a results.csv file.

    Each evaluation occupies one worker; ``nodes`` (workers available) comes from the
    argument, else ``num_workers`` in search.json, else the peak of concurrent evaluations.
    ``snapshot``: read the complete lines only (a search is appending to the file).
    """
    if _kind(path) == "dir":
        directory, csv_path = path, os.path.join(path, "results.csv")
        if _kind(csv_path) != "file":
            raise HpcnasError(f"directory '{path}' has no results.csv: give the search's output "
                              "directory (where results.csv is) or the file itself")
    else:
        directory, csv_path = os.path.dirname(os.path.abspath(path)), path
    df = read_results_csv(csv_path, complete_lines(csv_path) if snapshot else None)
    info = _read_search_json(directory)
    nodes_source = "--nodes"
    if nodes is None:
        nodes = _find_num_workers(info)
        nodes_source = "num_workers in search.json"
    if nodes is None:
        nodes_source = "inferred from the peak of concurrent evaluations"
    start, end = df["start_time"].to_numpy(), df["end_time"].to_numpy()
    started = np.isfinite(start) & np.isfinite(end)
    runs = pd.DataFrame({"job_id": df["job_id"].to_numpy()[started], "start": start[started],
                         "end": end[started], "weight": 1.0})
    submit = df["submit_time"].to_numpy()
    wait_end = np.where(np.isfinite(start), start, end)
    wmask = np.isfinite(submit) & np.isfinite(wait_end)
    waits = pd.DataFrame({"job_id": df["job_id"].to_numpy()[wmask], "start": submit[wmask],
                          "end": wait_end[wmask]})
    emask = np.isfinite(end)
    ends = pd.DataFrame({"time": end[emask],
                         "kind": df["status"].map(_STATUS_KIND).to_numpy()[emask]})
    if label is None:
        named = directory if os.path.isdir(path) or os.path.basename(path) == "results.csv" \
            else path
        label = os.path.basename(os.path.normpath(os.path.abspath(named)))
    return Experiment(label=label, source=f"results file '{csv_path}'", runs=runs, waits=waits,
                      ends=ends, results=df, nodes=nodes, nodes_source=nodes_source, info=info)


def parse_spec(spec: str) -> tuple[str | None, str]:
    """``[LABEL=]SOURCE`` -> (label or None, source)."""
    if "=" in spec and not os.path.exists(spec):
        label, source = spec.split("=", 1)
        if label and source:
            return label, source
    return None, spec


def load_experiment(spec: str, db: str | None = None, nodes: float | None = None,
                    job_mode: str = "auto", results: str | None = None) -> Experiment:
    """Build an experiment from ``[LABEL=]SOURCE``.

    SOURCE is an output directory, a results.csv, or ``balsam:WORKFLOW`` (the Balsam DB
    ``db``, else ``$BALSAM_DB_PATH``). ``results`` adds a results.csv to a Balsam experiment.
    """
    if nodes is not None and not nodes > 0:
        raise UsageError(f"--nodes must be a positive number of nodes, got {nodes:g}")
    label, source = parse_spec(spec)
    if source.startswith("balsam:"):
        from hpcnas.analytics.balsam_db import experiment_from_balsam

        exp = experiment_from_balsam(source[len("balsam:"):], db=db, nodes=nodes,
                                     job_mode=job_mode, label=label)
        if results:
            exp.results = experiment_from_results(results).results
            exp.source = exp.source.split(" and '")[0] + f" and '{results}'"
        return exp
    if _kind(source) == "missing":
        raise HpcnasError(f"experiment '{source}' does not exist: give an output directory, a "
                          "results.csv, or balsam:WORKFLOW for a workflow of the Balsam DB")
    return experiment_from_results(source, label=label, nodes=nodes)
