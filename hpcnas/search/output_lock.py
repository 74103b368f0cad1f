"""One search per output directory: the lock file ``search.lock``.

Two masters appending to one ``results.csv`` evaluate configurations twice and interleave
rows, so a master holds the output directory for as long as it runs, by two means:

1. **An OS lock**: ``fcntl.flock`` on ``search.lock``, held until the master ends (the kernel
   drops it when the process dies, even on ``kill -9``).
2. **An owner record**: ``search.lock`` holds ``{host, pid, since, process_start}``. It is
   written to a temporary file first and put in place with ``os.link``, which fails if the
   lock exists -- atomic on local file systems, NFS, Lustre and GPFS -- so the record is
   complete whenever it is visible.

A second master finds the record and is refused (one line naming the owner) unless the
owner is *provably* dead: it ran on this host and no process with its pid and start time
exists, or that process is a zombie (it ended; nothing has reaped it yet). Such a stale record (``kill -9``, a node that rebooted) is taken over with a warning.
The record is what keeps searches apart where ``flock`` is not reliable (NFS mounted with
``nolock`` or ``local_lock``, Lustre without ``-o flock``, some GPFS setups): there, a
master on another host holding the directory is still refused. A record left by a master on
another host that went down cannot be proven stale: the message says to delete the file once
that search is known to be over. The lock file's modification time is refreshed while the
master records results (``touch``), which the message shows as "last active".
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time
import uuid
from typing import Any

from hpcnas.core.errors import HpcnasError
from hpcnas.search.output_dir import FIX, fsync_dir, os_error

log = logging.getLogger(__name__)

LOCK_FILE = "search.lock"
#: two process start times closer than this are the same process (clock adjustments)
SAME_START_S = 2.0


def _process_start(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


def this_owner() -> dict[str, Any]:
    now = time.time()
    return {"host": socket.gethostname(), "pid": os.getpid(), "since": now, "since_text": _when(now),
            "process_start": _process_start(os.getpid()), "command": " ".join(sys.argv)[:300]}


def owner_is_dead(owner: dict[str, Any]) -> bool:
    """Whether ``owner`` provably ended: it ran on this host and its process is gone."""
    if owner.get("host") != socket.gethostname():
        return False
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's: its start time still tells a reused pid
    except OSError:
        return False
    import psutil

    try:
        process = psutil.Process(pid)
        started = float(process.create_time())
        if process.status() == psutil.STATUS_ZOMBIE:
            return True  # killed, not yet reaped (an orphan under an init that does not reap)
    except psutil.NoSuchProcess:
        return True
    except (psutil.Error, OSError):
        return False
    recorded = owner.get("process_start")
    return isinstance(recorded, (int, float)) and abs(started - recorded) > SAME_START_S


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


class OutputLock:
    """``with OutputLock(dir): ...``: hold ``dir/search.lock`` (see the module docstring)."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = os.path.abspath(output_dir)
        self.path = os.path.join(self.output_dir, LOCK_FILE)
        self._fd: int | None = None
        self._touched = 0.0

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    # ----------------------------------------------------------------- acquire
    def acquire(self, attempts: int = 5) -> None:
        """Hold the lock, or raise :class:`HpcnasError` naming the search that holds it."""
        if self._fd is not None:
            return
        for attempt in range(attempts):
            if self._create():
                return
            verdict = self._inspect()
            if verdict is None:  # stale record removed, or the file changed under us: again
                continue
            if verdict == "busy" and attempt + 1 < attempts:
                time.sleep(0.05 * (attempt + 1))  # a stale record being taken over right now
                continue
            raise HpcnasError(verdict if verdict != "busy" else self._message(self._read_owner()))
        raise HpcnasError(f"could not take the lock {self.path} after {attempts} attempts (other searches "
                          f"starting in {self.output_dir} at the same time?): wait for them or {FIX}")

    def _create(self) -> bool:
        """Put a new lock file in place; ``False`` when one exists."""
        record = (json.dumps(this_owner(), sort_keys=True) + "\n").encode()
        tmp = f"{self.path}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as err:
            raise HpcnasError(f"cannot create {self.path}: {os_error(err)}: make {self.output_dir} writable "
                              f"or {FIX}") from None
        try:
            try:
                _write_all(fd, record)
                os.fsync(fd)
            except OSError as err:
                os.close(fd)
                raise self._write_error(err) from None
            _flock(fd)  # before the record is visible: whoever sees it finds it locked
            self._fd = fd  # before the link: a signal right after it still releases (by inode)
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                self._fd = None
                os.close(fd)
                return False
            except OSError:  # no hard links on this file system: exclusive create instead
                self._fd = None
                os.close(fd)
                return self._create_exclusive(record)
            fsync_dir(self.output_dir)
            return True
        finally:
            try:
                os.remove(tmp)
            except OSError:
                pass

    def _create_exclusive(self, record: bytes) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as err:
            raise self._write_error(err) from None
        self._fd = fd
        _flock(fd)  # the record is empty for an instant, but locked: others see "busy"
        try:
            _write_all(fd, record)
            os.fsync(fd)
        except OSError as err:
            self.release()
            raise self._write_error(err) from None
        return True

    def _write_error(self, err: OSError) -> HpcnasError:
        return HpcnasError(f"cannot write {self.path}: {os_error(err)}: free space in {self.output_dir} or {FIX}")

    def _inspect(self) -> str | None:
        """Look at an existing lock: an error message, ``"busy"``, or ``None`` to try again."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as err:
            return f"cannot read {self.path}: {os_error(err)}: {FIX}"
        try:
            locked = _flock(fd)
            if locked is False:
                return "busy"
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                return None
            owner = _parse_owner(_read_all(fd))
            if owner is None:
                return (f"output dir {self.output_dir} has a lock file {self.path} that does not name its "
                        f"search: if no search runs in {self.output_dir}, delete it; else wait or {FIX}")
            if not owner_is_dead(owner):
                return self._message(owner)
            log.warning("taking over %s: the search that held it (pid %s on host %s since %s) has ended",
                        self.path, owner.get("pid"), owner.get("host"), owner.get("since_text"))
            os.remove(self.path)  # still holding its flock: nobody else removes it at the same time
            return None
        finally:
            os.close(fd)

    def _read_owner(self) -> dict[str, Any] | None:
        try:
            with open(self.path, "rb") as fh:
                return _parse_owner(fh.read())
        except OSError:
            return None

    def _message(self, owner: dict[str, Any] | None) -> str:
        owner = owner or {}
        who = (f"pid {owner.get('pid', '?')} on host {owner.get('host', '?')} "
               f"since {owner.get('since_text', '?')}")
        message = (f"output dir {self.output_dir} is in use by another search ({who}): "
                   f"wait for it to end or {FIX}")
        if owner.get("host") not in (None, socket.gethostname()):
            try:
                active = f", last active {_when(os.stat(self.path).st_mtime)}"
            except OSError:
                active = ""
            message += (f"; if it is not running any more (its node went down{active}), "
                        f"delete {self.path}")
        return message

    # ----------------------------------------------------------------- while held
    def touch(self, min_interval: float = 60.0) -> None:
        """Refresh the lock file's modification time (at most every ``min_interval`` seconds)."""
        now = time.monotonic()
        if self._fd is None or now - self._touched < min_interval:
            return
        self._touched = now
        try:
            os.utime(self._fd)
        except OSError:
            pass

    def release(self) -> None:
        """Remove the lock file (if it is still ours) and drop the OS lock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                os.remove(self.path)
        except OSError:
            pass
        _close(fd)


def _flock(fd: int) -> bool | None:
    """``flock`` without waiting: ``True`` taken, ``False`` held by another, ``None`` unsupported here."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK, EOPNOTSUPP: NFS without a lock manager and the like
        return None
    return True


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _parse_owner(data: bytes) -> dict[str, Any] | None:
    try:
        owner = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return owner if isinstance(owner, dict) and "pid" in owner and "host" in owner else None
