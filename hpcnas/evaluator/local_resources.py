"""What the local evaluator takes from this machine: GPU slices per worker slot and open files.

* :func:`gpu_slices` gives each worker slot its own ``CUDA_VISIBLE_DEVICES`` (a packed
  evaluation on a GPU node must not share the first GPU with all the others);
* :func:`check_open_files` refuses a worker count whose pipes would exceed the open-file
  limit (two per worker), after raising the soft limit towards the hard one.
"""
from __future__ import annotations

import os
import subprocess

from hpcnas.core.errors import UsageError

#: file descriptors the master holds per worker (message pipe, output pipe) and spares for starts
FDS_PER_WORKER, FDS_SPARE = 2, 16


def visible_gpus() -> list[str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else those ``nvidia-smi -L`` lists."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(l for l in out.splitlines() if l.startswith("GPU "))]


def gpu_slices(gpus: list[str], num_workers: int, per_worker: int) -> list[list[str]]:
    """Disjoint ``per_worker`` GPUs for each worker slot, or a one-line error with the numbers."""
    if per_worker < 0:
        raise UsageError(f"--gpus-per-worker must be >= 0, got {per_worker}")
    needed = num_workers * per_worker
    if needed > len(gpus):
        raise UsageError(
            f"--num-workers {num_workers} x --gpus-per-worker {per_worker} needs {needed} GPUs but "
            f"{len(gpus)} are visible ({','.join(gpus) or 'none'}): lower one of them"
        )
    return [gpus[i * per_worker : (i + 1) * per_worker] for i in range(num_workers)]


def open_file_limit(needed: int) -> int:
    """The soft open-file limit (``ulimit -n``), first raised towards the hard one when below ``needed``."""
    try:
        import resource
    except ImportError:  # not POSIX
        return needed
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return needed if soft == resource.RLIM_INFINITY else soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    except (ValueError, OSError):
        return soft


def _open_fds() -> int:
    """File descriptors this process has open now (a guess of 32 where /proc is missing)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 32


def check_open_files(num_workers: int) -> None:
    """Refuse a worker count whose pipes would exceed the open-file limit (EMFILE mid-search)."""
    needed = _open_fds() + FDS_SPARE + FDS_PER_WORKER * num_workers
    limit = open_file_limit(needed)
    if needed > limit:
        raise UsageError(
            f"--num-workers {num_workers} needs about {needed} open files but this process may open "
            f"{limit} (ulimit -n): lower --num-workers or raise ulimit -n"
        )
