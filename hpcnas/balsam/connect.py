"""Connect this process to the active Balsam DB (Django ORM), with one-line errors.

Balsam's Django settings read ``BALSAM_DB_PATH`` at import and ``sys.exit(1)`` when it is
wrong, so :func:`connect` checks it first. Django and Balsam are imported here only.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

from hpcnas.core.errors import HpcnasError
from hpcnas.core.loading import optional_import

NO_DB = "no active Balsam DB: run `source balsamactivate DB` (or hpcnas balsam-init DB first)"


def connect() -> SimpleNamespace:
    """Set up Django for Balsam and check the DB answers; returns ``models`` handles.

    The namespace has ``BalsamJob``, ``ApplicationDefinition``, ``transaction``,
    ``connection``, ``models`` (``balsam.core.models``) and ``settings``.
    """
    path = os.environ.get("BALSAM_DB_PATH", "")
    if not path:
        raise HpcnasError(NO_DB + " (BALSAM_DB_PATH is not set)")
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(os.path.join(path, "server-info")):
        raise HpcnasError(f"{NO_DB} (BALSAM_DB_PATH={path} is not a Balsam DB)")
    optional_import("django", "balsam")
    balsam = optional_import("balsam", "balsam")
    balsam.setup()
    from django import db
    from django.conf import settings

    from balsam.core import models

    try:
        models.BalsamJob.objects.exists()
    except db.OperationalError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise HpcnasError(f"{NO_DB} (the DB at {path} does not answer: {first})") from err
    except db.DatabaseError as err:  # answers, but without Balsam 0.x's tables / columns
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise HpcnasError(
            f"the DB at {path} answers but is not a Balsam 0.x job database ({first}): "
            "point BALSAM_DB_PATH at a DB made by balsam init / hpcnas balsam-init"
        ) from err
    return SimpleNamespace(
        BalsamJob=models.BalsamJob,
        ApplicationDefinition=models.ApplicationDefinition,
        transaction=db.transaction,
        connection=db.connection,
        models=models,
        settings=settings,
    )
