"""A search's output directory on disk: can it be used, and durable writes into it.

:func:`check_usable` is called before a search evaluates anything: an output directory that
cannot hold results (a path under a regular file, a name too long, no permission, a
``results.csv`` that is a directory or read-only, ...) is one line naming the problem and the
fix, never a traceback after the first batch of evaluations. It only reads; the real writes
(the lock file, ``search.json``, ``results.csv`` opened for appending) come next and give the
same kind of line if the file system still refuses them (root-squashed NFS, quota).

:func:`write_atomically` and :func:`append_durably` are the two ways files of a search are
written: a new version replaces the old one in one step (temporary file, ``fsync``,
``os.replace``, ``fsync`` of the directory), or bytes are appended and ``fsync``-ed.
"""
from __future__ import annotations

import errno
import os

from hpcnas.core.errors import HpcnasError

FIX = "use another --output-dir"


def os_error(err: OSError) -> str:
    """``err``'s text without the path (messages name the path themselves)."""
    return err.strerror or type(err).__name__


def _short(path: str, width: int = 80) -> str:
    return path if len(path) <= width else f"{path[:40]}...{path[-30:]} ({len(path)} characters)"


def check_usable(output_dir: str, files: tuple[str, ...] = ()) -> None:
    """Raise :class:`HpcnasError` (one line) when ``output_dir`` cannot hold a search's files.

    ``files`` are the names inside it that are read and rewritten (results.csv, search.json):
    each that exists must be a regular file this process can read and write.
    """
    path = os.path.abspath(output_dir)
    try:
        os.stat(path)
    except FileNotFoundError:
        _check_creatable(path)
        return
    except OSError as err:
        raise HpcnasError(_stat_message(path, err)) from None
    if not os.path.isdir(path):
        raise HpcnasError(f"--output-dir {path} exists and is not a directory: give a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise HpcnasError(f"--output-dir {path} is not writable (permission denied): make it writable "
                          f"(chmod u+wx) or {FIX}")
    for name in files:
        check_file(os.path.join(path, name))


def check_file(path: str) -> None:
    """An existing ``path`` must be a regular file that can be read and written."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path):
        raise HpcnasError(f"{path} is a directory, not a file: move it away or {FIX}")
    if not os.path.isfile(path):
        raise HpcnasError(f"{path} is not a regular file (a broken link, a pipe?): move it away or {FIX}")
    if not os.access(path, os.R_OK):
        raise HpcnasError(f"cannot read {path} (permission denied): make it readable (chmod u+r) or {FIX}")
    if not os.access(path, os.W_OK):
        raise HpcnasError(f"{path} is read-only (permission denied): make it writable (chmod u+w) so the "
                          f"search can record results, or {FIX}")


def _stat_message(path: str, err: OSError) -> str:
    if err.errno == errno.ENAMETOOLONG:
        return (f"--output-dir {_short(path)}: the path is too long for the file system ({os_error(err)}): "
                "give a shorter path")
    if err.errno == errno.ENOTDIR:
        blocker = _first_file(path)
        return f"--output-dir {path}: {blocker} is a file, not a directory: give a directory path"
    if err.errno in (errno.EACCES, errno.EPERM):
        return (f"cannot reach --output-dir {path}: permission denied (a directory above it cannot be "
                f"searched): {FIX}")
    return f"cannot use --output-dir {_short(path)}: {os_error(err)}: {FIX}"


def _first_file(path: str) -> str:
    """The first component of ``path`` that exists and is not a directory."""
    parts = path.split(os.sep)
    for i in range(2, len(parts) + 1):
        head = os.sep.join(parts[:i]) or os.sep
        if os.path.lexists(head) and not os.path.isdir(head):
            return head
    return path


def _check_creatable(path: str) -> None:
    parent = os.path.dirname(path)
    while parent and not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    parent = parent or os.sep
    if not os.path.isdir(parent):
        raise HpcnasError(f"--output-dir {path}: {parent} is a file, not a directory: give a directory path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise HpcnasError(f"cannot create --output-dir {path}: no permission to write in {parent}: {FIX}")


def make(output_dir: str) -> None:
    """Create ``output_dir`` (and its parents); one line when the file system refuses."""
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as err:
        if err.errno in (errno.ENAMETOOLONG, errno.ENOTDIR):
            raise HpcnasError(_stat_message(os.path.abspath(output_dir), err)) from None
        raise HpcnasError(f"cannot create --output-dir {output_dir}: {os_error(err)}: {FIX}") from None


def fsync_dir(directory: str) -> None:
    """``fsync`` a directory so that a rename or a new file in it survives a power loss."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems do not sync directories
    finally:
        os.close(fd)


def write_atomically(path: str, data: bytes, like: str | None = None) -> None:
    """Replace ``path`` by ``data`` in one step (``like``: a file whose permissions to copy).

    Raises :class:`OSError`; the old ``path`` is then untouched and no temporary file is left.
    """
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if like is not None and os.path.exists(like):
                os.fchmod(fd, os.stat(like).st_mode & 0o7777)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    fsync_dir(os.path.dirname(path) or ".")


def append_durably(path: str, data: bytes) -> None:
    """Append ``data`` to ``path`` (created if needed) and ``fsync`` it; raises :class:`OSError`."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
