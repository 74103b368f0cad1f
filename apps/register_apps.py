"""Register the hpcnas Balsam apps in the active Balsam DB.

Usage (after ``source balsamactivate DB``)::

    python apps/register_apps.py            # same as: hpcnas balsam-apps

Registers AMBS, RANDOM, AGE, AGEBO (search masters: ``python -m hpcnas.cli.main hps ambs ...``)
and HPCNAS_RUN (one evaluation: ``python -m hpcnas.balsam.job_runner``) for this Python.
"""
from __future__ import annotations

import sys

from hpcnas.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["balsam-apps", *sys.argv[1:]]))
