"""DeepHyper's ``results.csv`` files, read as hpcnas results (analytics, ``--warm-start``).

Two layouts are recognised (:func:`layout`):

* **0.2**: one bare column per hyper-parameter, then ``objective`` and ``elapsed_sec`` (seconds
  since the search started, when the result was gathered); NAS searches add ``arch_seq``;
* **0.13**: ``p:<name>`` columns, ``objective``, ``job_id`` and ``m:timestamp_submit`` /
  ``m:timestamp_gather`` (``m:timestamp_start`` / ``m:timestamp_end`` when recorded) in seconds
  since the search started; a failed evaluation's objective is a string starting with ``"F"``
  (``F_reason``).

:func:`to_hpcnas` turns either into the columns of an hpcnas results.csv (``p:<name>``,
``job_id``, ``objective``, ``status``, ``error``, ``submit_time``, ``start_time``,
``end_time``), times kept relative to the search's start. :func:`warm_start` reads any
results.csv (hpcnas's or DeepHyper's) as ``(config, objective)`` pairs to tell a new search.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from hpcnas.core.errors import HpcnasError
from hpcnas.core.trial import DONE, METADATA_PREFIX, PARAM_PREFIX, decide

#: columns of DeepHyper files that are not hyper-parameters
NOT_PARAMS = {"objective", "elapsed_sec", "job_id", "id", "timestamp_submit", "timestamp_gather",
              "timestamp_start", "timestamp_end", "status", "error"}


def layout(columns: list[str]) -> str | None:
    """``"0.2"``, ``"0.13"`` or None (not a DeepHyper results.csv, e.g. an hpcnas one)."""
    names = set(columns)
    if "objective" not in names or "status" in names:
        return None
    if "elapsed_sec" in names:
        return "0.2"
    if "job_id" in names or any(c.startswith(METADATA_PREFIX + "timestamp") for c in names):
        return "0.13"
    return None


def _times(df: pd.DataFrame, *names: str) -> pd.Series:
    for name in names:
        if name in df.columns:
            return pd.to_numeric(df[name], errors="coerce").astype(float)
    return pd.Series(np.nan, index=df.index, dtype=float)


def to_hpcnas(df: pd.DataFrame, which: str) -> pd.DataFrame:
    """The hpcnas columns of a DeepHyper results table of layout ``which`` (:func:`layout`)."""
    if which == "0.13" and any(c.startswith(PARAM_PREFIX) for c in df.columns):
        params = {c: df[c] for c in df.columns if c.startswith(PARAM_PREFIX)}
    else:
        params = {PARAM_PREFIX + c: df[c] for c in df.columns
                  if c not in NOT_PARAMS and not c.startswith(METADATA_PREFIX) and not c.startswith("Unnamed")}
    raw = df["objective"]
    text = raw.astype(str)
    failed = text.str.startswith("F") | raw.isna()
    objective = pd.to_numeric(raw.where(~failed), errors="coerce").astype(float)
    failed |= objective.isna()
    out = pd.DataFrame(params, index=df.index)
    out["job_id"] = df["job_id"].astype(str) if "job_id" in df.columns else [str(i) for i in range(len(df))]
    out["objective"] = objective.where(~failed)
    out["status"] = np.where(failed, decide("a DeepHyper failure").value, decide().value)
    out["error"] = np.where(failed, "DeepHyper: " + text, "")
    if which == "0.2":
        end = _times(df, "elapsed_sec")
        out["submit_time"], out["start_time"], out["end_time"] = end, end, end
    else:
        out["submit_time"] = _times(df, "m:timestamp_submit", "timestamp_submit")
        out["start_time"] = _times(df, "m:timestamp_start", "timestamp_start", "m:timestamp_submit",
                                   "timestamp_submit")
        out["end_time"] = _times(df, "m:timestamp_end", "timestamp_end", "m:timestamp_gather", "timestamp_gather")
    for column in df.columns:
        if column.startswith(METADATA_PREFIX) and column not in out.columns:
            out[column] = df[column]
    return out


def warm_start(path: str, problem: Any) -> tuple[list[tuple[dict[str, Any], float | None]], int]:
    """``(pairs, skipped)``: the rows of the results.csv at ``path`` (hpcnas's or DeepHyper's) as
    ``(config, objective or None)`` pairs valid in ``problem``; ``skipped`` rows were not."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)  # cells as written: decoded per parameter
    except FileNotFoundError:
        raise HpcnasError(f"--warm-start '{path}' does not exist: give the results.csv of an earlier search") from None
    except (OSError, ValueError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise HpcnasError(f"--warm-start '{path}' is not a readable results.csv ({first})") from None
    which = layout(list(df.columns))
    if which is not None:
        df = to_hpcnas(df, which)
    elif "objective" not in df.columns or not any(c.startswith(PARAM_PREFIX) for c in df.columns):
        raise HpcnasError(f"--warm-start '{path}' is neither an hpcnas nor a DeepHyper results.csv "
                          "(no objective and hyper-parameter columns)")
    from hpcnas.search.results_csv import CellError, decode

    params = [c for c in df.columns if c.startswith(PARAM_PREFIX)]
    space = getattr(problem, "space", None)
    pairs: list[tuple[dict[str, Any], float | None]] = []
    skipped = 0
    for _, row in df.iterrows():
        try:
            config = {c[len(PARAM_PREFIX):]: decode(str(row[c]), _hp(space, c[len(PARAM_PREFIX):]))
                      for c in params if not _missing(row[c])}
            config = problem.validate_config(config)
        except (HpcnasError, CellError):
            skipped += 1
            continue
        status = row.get("status", DONE)
        objective = pd.to_numeric(pd.Series([row["objective"]]), errors="coerce").iloc[0]
        ok = status == DONE and objective is not None and math.isfinite(float(objective))
        pairs.append((dict(config), float(objective) if ok else None))
    if not pairs:
        raise HpcnasError(f"--warm-start '{path}': none of its {len(df)} row(s) is a configuration of this problem "
                          "(other hyper-parameter names or ranges?)")
    return pairs, skipped


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value) in ("", "nan", "NaN")


def _hp(space: Any, name: str) -> Any:
    try:
        return space[name] if space is not None else None
    except (KeyError, TypeError, IndexError):
        return None
