"""Read job timelines of one workflow from a Balsam 0.x database (Postgres).

The reader talks SQL to the ``core_balsamjob`` table through psycopg2 with the address and
credentials that the DB directory's ``server-info`` holds (Balsam's own connection data),
so it needs neither Django nor an activated DB, and never runs Balsam's reports. All jobs
of a workflow come in one ``COPY ... TO STDOUT`` (CSV) read by pandas; ``state_history``
is parsed with vectorised pandas string operations (:func:`parse_state_history`).

Balsam writes ``state_history`` lines ``[MM-DD-YYYY HH:MM:SS.ffffff STATE] message`` in UTC
(``USE_TZ=True``). From the transitions of each job:

* a *run* is ``RUNNING`` until the next transition (``RUN_DONE``, ``RUN_ERROR``,
  ``RUN_TIMEOUT``; a job still running ends at the last transition seen in the workflow);
* a *wait* is time spent in ``CREATED``, ``READY``, ``STAGED_IN``, ``PREPROCESSED`` or
  ``RESTART_READY`` (a job that could be launched but is not running);
* a *finished run* is ``RUN_DONE`` (done), ``RUN_ERROR`` (error) or ``RUN_TIMEOUT`` (timeout).

Node weight of a run: jobs that Balsam's serial mode packs (``num_nodes == 1`` and
``ranks_per_node == 1``) occupy ``1 / node_packing_count`` of a node; other jobs, and every job
in ``--job-mode mpi``, occupy ``num_nodes`` whole nodes.

Objectives: when a search master ran as a job of the workflow, its ``results.csv`` is in
its Balsam working directory (``<db>/data/<workflow>/<job>/``); when there is exactly one,
the experiment includes it (``search``, ``topk``, ``report`` then work from the DB alone).

Nodes available: Balsam 0.5 does not store the launcher allocation's node count with the
jobs. It is taken from ``--nodes``, else from the launcher logs in ``<db>/log/`` (the
launcher logs ``Built N <type> workers``, one worker per node; the largest N of the logs
that name the workflow, if any does), else
from ``core_queuedlaunch.nodes`` (filled by ``balsam submit-launch``), else inferred as the
peak of busy nodes rounded up. The experiment records which.
"""
from __future__ import annotations

import difflib
import gc
import glob
import io
import os
import re
from typing import Any

import numpy as np
import pandas as pd

from hpcnas.analytics.experiment import Experiment
from hpcnas.analytics.launcher_logs import read_launcher_logs
from hpcnas.core.errors import HpcnasError, UsageError
from hpcnas.balsam.server_info import connection_params

RUN_STATE = "RUNNING"
WAIT_STATES = ("CREATED", "READY", "STAGED_IN", "PREPROCESSED", "RESTART_READY")
END_STATES = {"RUN_DONE": "done", "RUN_ERROR": "error", "RUN_TIMEOUT": "timeout"}
JOB_COLUMNS = ("job_id", "num_nodes", "ranks_per_node", "node_packing_count", "state_history")


# ---------------------------------------------------------------------- parsing (pure)
#: one token per job start (a NUL line, which Postgres text cannot hold) or history line;
#: Balsam's history_line() puts each ``[time STATE]`` at the start of a line, 6-digit micros
_TOKEN = re.compile(
    r"^(?:(\x00)|\[(\d\d-\d\d-\d{4} \d\d:\d\d:\d\d\.\d{6})\s+(\w+)\s*\])", re.M)
_STAMP_WIDTH = 26  # MM-DD-YYYY HH:MM:SS.ffffff


def parse_state_history(job_ids: Any, histories: Any) -> pd.DataFrame:
    """Transitions ``job_id, time (epoch s, UTC), state``, ordered per job as written.

    ``job_ids`` and ``histories`` are aligned sequences. Lines that do not start with a
    Balsam history stamp (multi-line error messages) are ignored. One regular-expression
    pass over all histories; timestamps are decoded with numpy arithmetic on their digits.
    """
    ids = np.asarray(job_ids, dtype=object)
    if len(ids) == 0:
        return pd.DataFrame({"job_id": [], "time": [], "state": []})
    text = "\n\x00" + "\n\x00".join("" if h is None else str(h) for h in histories)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # ~1e6 small tuples: generational GC passes would dominate
    try:
        found = _TOKEN.findall(text)
        marks, stamps, states = zip(*found)
        del found
    finally:
        if gc_was_enabled:
            gc.enable()
    is_mark = np.array(marks, dtype=object) != ""
    job_index = np.cumsum(is_mark)[~is_mark] - 1
    times = _decode_stamps("".join(stamps))  # markers contribute empty strings
    state = np.array(states, dtype=object)[~is_mark]
    return pd.DataFrame({"job_id": ids[job_index], "time": times, "state": state})


def _decode_stamps(joined: str) -> np.ndarray:
    """Epoch seconds (UTC) of concatenated ``MM-DD-YYYY HH:MM:SS.ffffff`` stamps."""
    raw = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    chars = raw.reshape(-1, _STAMP_WIDTH)

    def field(lo: int, hi: int) -> np.ndarray:
        out = np.zeros(chars.shape[0], dtype=np.int64)
        for i in range(lo, hi):
            out *= 10
            out += chars[:, i]
            out -= ord("0")
        return out

    month, day, year = field(0, 2), field(3, 5), field(6, 10)
    # days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil)
    year = year - (month <= 2)
    era = year // 400
    yoe = year - era * 400
    doy = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    seconds = days * 86400 + field(11, 13) * 3600 + field(14, 16) * 60 + field(17, 19)
    return seconds + field(20, 26) / 1e6


def timelines(transitions: pd.DataFrame, jobs: pd.DataFrame, job_mode: str = "auto"
              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(runs, waits, ends)`` tables of :class:`~.experiment.Experiment` from transitions.

    ``jobs`` holds ``job_id, num_nodes, ranks_per_node, node_packing_count``.
    """
    tr = transitions.reset_index(drop=True)
    same_next = tr["job_id"].shift(-1).to_numpy() == tr["job_id"].to_numpy()
    next_time = np.where(same_next, tr["time"].shift(-1).to_numpy(), np.nan)
    snapshot = float(tr["time"].max()) if len(tr) else np.nan
    open_end = np.where(np.isnan(next_time), snapshot, next_time)

    is_run = (tr["state"] == RUN_STATE).to_numpy()
    runs = pd.DataFrame({"job_id": tr["job_id"].to_numpy()[is_run],
                         "start": tr["time"].to_numpy()[is_run], "end": open_end[is_run]})
    weights = node_weights(jobs, job_mode)
    runs["weight"] = runs["job_id"].map(weights).fillna(1.0).to_numpy(dtype=float)

    # consecutive waiting states of a job (CREATED -> READY -> ... -> PREPROCESSED) are one wait
    is_wait = tr["state"].isin(WAIT_STATES).to_numpy()
    cont_next = np.zeros_like(is_wait)
    cont_next[:-1] = is_wait[:-1] & is_wait[1:] & same_next[:-1]
    cont_prev = np.zeros_like(is_wait)
    cont_prev[1:] = cont_next[:-1]
    first = np.flatnonzero(is_wait & ~cont_prev)
    last = np.flatnonzero(is_wait & ~cont_next)
    waits = pd.DataFrame({"job_id": tr["job_id"].to_numpy()[first],
                          "start": tr["time"].to_numpy()[first], "end": open_end[last]})
    is_end = tr["state"].isin(list(END_STATES)).to_numpy()
    ends = pd.DataFrame({"time": tr["time"].to_numpy()[is_end],
                         "kind": tr["state"].to_numpy()[is_end]})
    ends["kind"] = ends["kind"].map(END_STATES)
    return runs, waits, ends


def node_weights(jobs: pd.DataFrame, job_mode: str = "auto") -> pd.Series:
    """Nodes each job occupies, indexed by job_id (see the module docstring)."""
    if job_mode not in ("auto", "serial", "mpi"):
        raise UsageError(f"unknown --job-mode '{job_mode}': choose auto, serial or mpi")
    num_nodes = jobs["num_nodes"].to_numpy(dtype=float)
    ranks = jobs["ranks_per_node"].to_numpy(dtype=float)
    packing = np.maximum(jobs["node_packing_count"].to_numpy(dtype=float), 1.0)
    packed = (num_nodes == 1) & (ranks == 1) & (job_mode != "mpi")
    weight = np.where(packed, 1.0 / packing, np.maximum(num_nodes, 1.0))
    return pd.Series(weight, index=jobs["job_id"].to_numpy())


# ---------------------------------------------------------------------- DB access
def resolve_db_path(db: str | None) -> str:
    path = db or os.environ.get("BALSAM_DB_PATH", "")
    if not path:
        raise UsageError("no Balsam DB given: pass --db PATH or activate one "
                         "(source balsamactivate PATH)")
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(os.path.join(path, "server-info")):
        raise HpcnasError(f"'{path}' is not a Balsam DB directory (no server-info file): give "
                          "the directory 'balsam init' created with --db or BALSAM_DB_PATH")
    return path


def db_owner(db_path: str) -> str | None:
    """Name of the user owning the DB directory's server-info (the Postgres superuser)."""
    try:
        import pwd

        return pwd.getpwuid(os.stat(os.path.join(db_path, "server-info")).st_uid).pw_name
    except (KeyError, OSError, ImportError):
        return None


def connect(db_path: str) -> Any:
    """A psycopg2 connection to the DB, or a one-line :class:`HpcnasError`."""
    from hpcnas.core.loading import optional_import

    psycopg2 = optional_import("psycopg2", "balsam")
    params = connection_params(db_path)
    users = [params["user"]]
    owner = db_owner(db_path)
    if not os.environ.get("BALSAM_USER") and owner and owner not in users:
        # server-info's password belongs to the owner's role (hpcnas balsam-init hardening)
        users.insert(0 if "password" in params else 1, owner)
    first = "connection failed"
    for user in users:
        try:
            return psycopg2.connect(**dict(params, user=user))
        except psycopg2.OperationalError as err:
            first = (str(err).strip().splitlines() or [first])[0]
            if "does not exist" not in first and "authentication failed" not in first:
                break
    where = f"{params['host']}:{params['port']}"
    if "refused" in first or "could not connect" in first or "timeout" in first:
        raise HpcnasError(
            f"the Balsam DB at '{db_path}' is not running ({where}: {first}): start it with "
            f"'balsam server --start' with BALSAM_DB_PATH={db_path}, as the user who owns it"
        )
    raise HpcnasError(
        f"cannot connect to the Balsam DB at '{db_path}' ({where}: {first}): run as the DB's "
        f"owner ({owner or 'unknown'}) or set BALSAM_USER to a role of that DB"
    )


def _copy_frame(conn: Any, sql: str, args: tuple) -> pd.DataFrame:
    buf = io.StringIO()
    with conn.cursor() as cur:
        query = cur.mogrify(sql, args).decode()
        cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)", buf)
    buf.seek(0)
    return pd.read_csv(buf, dtype={"job_id": str, "state_history": str}, keep_default_na=False)


def read_jobs(conn: Any, workflow: str | None) -> pd.DataFrame:
    """``JOB_COLUMNS`` of every job of ``workflow`` (all jobs when None), one query."""
    cols = ", ".join(f"{c}::text" if c == "job_id" else c for c in JOB_COLUMNS)
    if workflow:
        return _copy_frame(conn, f"SELECT {cols} FROM core_balsamjob WHERE workflow = %s",
                           (workflow,))
    return _copy_frame(conn, f"SELECT {cols} FROM core_balsamjob", ())


def _workflows(conn: Any) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT workflow, count(*) FROM core_balsamjob GROUP BY workflow "
                    "ORDER BY count(*) DESC")
        return {w: n for w, n in cur.fetchall()}


def _queued_launch_nodes(conn: Any) -> int | None:
    with conn.cursor() as cur:
        cur.execute("SELECT max(nodes) FROM core_queuedlaunch")
        row = cur.fetchone()
    return int(row[0]) if row and row[0] else None


def experiment_from_balsam(workflow: str, db: str | None = None, nodes: float | None = None,
                           job_mode: str = "auto", label: str | None = None) -> Experiment:
    """An :class:`Experiment` of ``workflow`` ('' = every job) in the Balsam DB ``db``."""
    db_path = resolve_db_path(db)
    conn = connect(db_path)
    try:
        try:
            jobs = read_jobs(conn, workflow or None)
        except conn.ProgrammingError as err:  # answers, but without Balsam 0.x's tables
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise HpcnasError(f"the DB at '{db_path}' answers but is not a Balsam 0.x job database "
                              f"({first}): give --db a DB made by balsam init / hpcnas balsam-init") from None
        if jobs.empty:
            known = _workflows(conn)
            close = difflib.get_close_matches(workflow, list(known), n=10, cutoff=0.6) if workflow else []
            names = (close + [w for w in known if w not in close])[:10]
            listing = ", ".join(f"{w} ({known[w]} jobs)" for w in names)
            if len(known) > len(names):
                listing += f" and {len(known) - len(names)} more"
            if workflow:
                raise HpcnasError(f"unknown workflow '{workflow}' in the Balsam DB at '{db_path}': "
                                  + (f"choose one of {listing}" if known else
                                     "the DB holds no job yet; check --db"))
            raise HpcnasError(f"the Balsam DB at '{db_path}' holds no job: check --db or run a "
                              "search first")
        ql_nodes = _queued_launch_nodes(conn)
    finally:
        conn.close()
    transitions = parse_state_history(jobs["job_id"].to_numpy(), jobs["state_history"].to_numpy())
    runs, waits, ends = timelines(transitions, jobs, job_mode)
    what = f"workflow '{workflow}'" if workflow else "all workflows"
    if runs.empty:
        raise HpcnasError(f"{what} of the Balsam DB at '{db_path}' has {len(jobs)} job(s) but none "
                          "has run yet: start a launcher (balsam launcher --consume-all) and "
                          "retry when jobs have run")
    nodes_source = "--nodes"
    logs = read_launcher_logs(db_path, workflow or None)
    if nodes is None:
        nodes, nodes_source = logs.nodes, "launcher logs (Built N workers)"
    if nodes is None and ql_nodes:
        nodes, nodes_source = ql_nodes, "core_queuedlaunch.nodes"
    if nodes is None:
        nodes_source = "inferred from the peak of busy nodes"
    exp = Experiment(
        label=label or workflow or os.path.basename(db_path), source=f"{what} of the Balsam DB "
        f"at '{db_path}'", runs=runs, waits=waits, ends=ends, results=None,
        nodes=float(nodes) if nodes is not None else None, nodes_source=nodes_source,
        info={"num_jobs": int(len(jobs)), "job_mode": job_mode, "db": db_path,
              "launcher_lifetimes": logs.lifetimes},
    )
    found = search_results_in_db(db_path, workflow) if workflow else []
    exp.info["results_found"] = found
    if len(found) == 1:  # the search master ran as a job of this workflow
        from hpcnas.analytics.experiment import read_results_csv

        exp.results = read_results_csv(found[0])
        exp.source += f" and '{found[0]}'"
    return exp


def search_results_in_db(db_path: str, workflow: str) -> list[str]:
    """results.csv files that search jobs of ``workflow`` wrote in their Balsam working
    directories (``<db>/data/<workflow>/<job>/results.csv``)."""
    return sorted(glob.glob(os.path.join(db_path, "data", glob.escape(workflow), "*",
                                         "results.csv")))
