"""Run a command as an ordinary user, also when the tests run as root (where chmod denies nothing).

``as_ordinary_user()`` is the prefix of such a command line: nothing for an ordinary user,
``setpriv`` (or ``runuser``) to user ``nobody`` for root, ``None`` when root has neither.
That user cannot reach pytest's ``tmp_path`` (``/tmp/pytest-of-root`` is private), so the
files of such a test live in :func:`shared_dir`, a directory every user can enter.
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from typing import Iterator

NOBODY = 65534


def as_ordinary_user() -> list[str] | None:
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"]
    return None


def _unlock_and_retry(func, path, _exc) -> None:
    os.chmod(os.path.dirname(path), stat.S_IRWXU)
    if os.path.isdir(path):
        os.chmod(path, stat.S_IRWXU)
    func(path)


@contextmanager
def shared_dir(prefix: str = "hpcnas-") -> Iterator[str]:
    """A fresh directory that any user can enter and write (removed afterwards)."""
    base = "/tmp" if os.path.isdir("/tmp") else None
    path = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(path, 0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, onerror=_unlock_and_retry)
