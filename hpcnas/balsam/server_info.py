"""Where a Balsam DB listens: psycopg2's connection arguments from its ``server-info`` file.

The one reader of ``server-info`` for direct connections (the job runner's report, the
launcher lock, ``hpcnas-analytics``); it imports neither Django nor Balsam, so a job can call
it right after its run function returns.
"""
from __future__ import annotations

import json
import os
from getpass import getuser
from typing import Any

from hpcnas.core.errors import HpcnasError


def connection_params(db_path: str, connect_timeout: int = 10) -> dict[str, Any]:
    """psycopg2 keyword arguments from the DB's ``server-info`` (as Balsam connects).

    The role is ``$BALSAM_USER`` if set, else the current user (``hpcnas-analytics`` also tries
    the DB's owner). One-line :class:`HpcnasError` when the file cannot be read or the DB is
    not running.
    """
    db_path = os.path.expanduser(db_path)
    try:
        with open(os.path.join(db_path, "server-info"), encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError) as err:
        raise HpcnasError(f"cannot read {db_path}/server-info ({err}): is '{db_path}' a "
                          "Balsam DB directory?") from None
    if not info.get("port"):
        raise HpcnasError(f"the Balsam DB at '{db_path}' is not running (server-info has no "
                          f"port): start it with 'balsam server --start' (BALSAM_DB_PATH={db_path})")
    params: dict[str, Any] = {
        "dbname": "balsam",
        "host": info.get("host") or "localhost",
        "port": int(info["port"]),
        "user": os.environ.get("BALSAM_USER") or getuser(),
        "connect_timeout": connect_timeout,
    }
    if info.get("password"):
        params["password"] = info["password"]
    return params


__all__ = ["connection_params"]
