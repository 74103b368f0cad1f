"""Job scripts that hpcnas renders and submits itself (Polaris, Aurora, Perlmutter, Frontier).

Balsam 0.5's ``balsam submit-launch`` knows only Cobalt and Slurm, and hands a template a fixed
context. A site whose settings carry ``HPCNAS_SUBMIT`` (the submit command: ``qsub`` for PBS
Pro, ``sbatch``) is submitted here instead: the installed template
(``~/.balsam/<JOB_TEMPLATE>``) is rendered with Balsam's context plus what the batch job needs
from the submitting shell, and the script is passed to ``qsub``/``sbatch``.

Forwarded environment (:func:`submit_environment`):

* ``activate``: ``source $VIRTUAL_ENV/bin/activate`` for a virtualenv, or ``conda activate
  $CONDA_PREFIX`` for a conda env (``HPCNAS_ACTIVATE`` overrides with any shell line);
* ``pythonpath``: ``$PYTHONPATH`` (so problems and run functions import on the compute nodes;
  PBS does not pass the submitting environment to the job).
"""
from __future__ import annotations

import os
import shlex
import subprocess
from typing import Any, Mapping

from hpcnas.core.errors import HpcnasError

SUBMIT_KEY = "HPCNAS_SUBMIT"
ACTIVATE_ENV = "HPCNAS_ACTIVATE"


def submit_command(settings: Mapping[str, Any]) -> str | None:
    """``qsub``/``sbatch`` when hpcnas submits this site's scripts itself, else None (Balsam does)."""
    value = str(settings.get(SUBMIT_KEY, "") or "").strip()
    return value or None


def submit_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Template variables that carry the submitting shell's Python environment into the job."""
    env = os.environ if environ is None else environ
    activate = env.get(ACTIVATE_ENV, "").strip()
    if not activate and env.get("VIRTUAL_ENV"):
        activate = "source " + shlex.quote(os.path.join(env["VIRTUAL_ENV"], "bin", "activate"))
    elif not activate and env.get("CONDA_PREFIX"):
        activate = "conda activate " + shlex.quote(env["CONDA_PREFIX"])
    pythonpath = env.get("PYTHONPATH", "")
    return {"activate": activate, "pythonpath": shlex.quote(pythonpath) if pythonpath else ""}


def script_path(db_path: str, workflow: str) -> str:
    """Where the rendered script goes: ``$BALSAM_DB_PATH/qsubmit/hpcnas-WORKFLOW.sh`` (like Balsam's)."""
    folder = os.path.join(os.path.abspath(os.path.expanduser(db_path)), "qsubmit")
    return os.path.join(folder, f"hpcnas-{workflow}.sh")


def submit_script(command: str, text: str, path: str) -> str:
    """Write ``text`` to ``path`` and submit it with ``command``; returns the scheduler's output."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o750)
    try:
        proc = subprocess.run([command, path], capture_output=True, text=True, cwd=os.path.dirname(path))
    except OSError as err:
        raise HpcnasError(f"cannot run {command}: {err}; run hpcnas balsam-setup --machine NAME for this machine") from err
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        last = output.splitlines()[-1] if output else f"exit code {proc.returncode}"
        raise HpcnasError(f"{command} {path} failed: {last}")
    return output or f"submitted {path}"
