"""``python -m hpcnas.balsam.launch``: Balsam's launcher with hpcnas's MPI plug-ins available.

Takes exactly the arguments of ``balsam launcher`` (``--consume-all | --wf-filter WF``,
``--job-mode serial|mpi``, ``--time-limit-minutes``, ``--gpus-per-node`` ...). It registers
:mod:`hpcnas.balsam.mpi_commands` with Balsam (so ``MPI_RUN_TEMPLATE`` may name
``HpcnasSrunCommand`` or ``HpcnasOpenMPIHostfileCommand``) and then runs Balsam's own launcher
``main`` in this process, as ``balsam launcher`` would after its ``exec``. The shipped job
scripts (``jobscripts/templates``) start the launcher this way; nothing in Balsam is patched.
"""
from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from balsam import config_logging, setup

    setup()
    from hpcnas.balsam.mpi_commands import register_with_balsam

    register_with_balsam()
    from balsam.launcher import launcher

    args = launcher.get_args(list(sys.argv[1:] if argv is None else argv))
    config_logging("launcher")
    launcher.logger.info("Loading Balsam Launcher (hpcnas plug-ins registered)")
    launcher.main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
