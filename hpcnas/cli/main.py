"""``hpcnas`` entry point: dispatches to one module per command.

Each command module exposes ``add_parser(subparsers)`` (which registers its sub-parser and
sets ``func`` to a callable taking the parsed ``argparse.Namespace`` and returning an exit
code). User errors (:class:`~hpcnas.core.errors.HpcnasError`) print one line and exit 2; a
search that ran but failed (:class:`~hpcnas.core.errors.SearchFailed`: no evaluation succeeded,
or ``--max-failure-ratio`` stopped it) prints one line and exits 3;
``--debug`` or ``HPCNAS_DEBUG=1`` shows the traceback. SIGINT and SIGTERM at any moment end
the process with one line and exit code 130 or 143 (:mod:`hpcnas.core.interrupts`).
"""
from __future__ import annotations

import sys

# the process is the command (python -m hpcnas.cli.main, or the hpcnas script importing this
# module): handle Ctrl-C and SIGTERM from here on, before any other import (hpcnas.core.interrupts)
if __name__ == "__main__" or (sys.argv or [""])[0].rsplit("/", 1)[-1] == "hpcnas":
    from hpcnas.core import interrupts as _interrupts

    _interrupts.cli_process()

import argparse
import importlib
from typing import Callable, NoReturn, Sequence

from hpcnas.core import interrupts
from hpcnas.core.errors import HpcnasError, UsageError
from hpcnas.core.interrupts import Terminated

#: command modules, in help order; a module that fails to import only hides its command
COMMAND_MODULES = (
    "hpcnas.cli.search_cmd",  # hps, nas
    "hpcnas.cli.balsam_cmd",  # balsam-apps, balsam-setup, balsam-submit
    "hpcnas.cli.ray_cmd",  # ray-submit
)


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are a :class:`UsageError` (one line, exit code 2).

    Sub-parsers made with ``subparsers.add_parser`` inherit this class.
    """

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="hpcnas",
        description="Scalable hyper-parameter and neural architecture search on Balsam.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:
                continue
            raise
        module.add_parser(sub)
    return parser


def run_cli(func: Callable[[], int], debug: bool = False) -> int:
    """Run ``func`` turning user errors into one line on stderr and exit code 2."""
    from hpcnas.core import environment

    debug = debug or environment.flag("HPCNAS_DEBUG")
    try:
        return int(func() or 0)
    except HpcnasError as err:
        if debug:
            raise
        print(f"hpcnas: error: {err}", file=sys.stderr)
        return err.exit_code
    except Terminated:
        print("hpcnas: terminated", file=sys.stderr)
        interrupts.report(143)
        return 143
    except KeyboardInterrupt:
        print("hpcnas: interrupted", file=sys.stderr)
        interrupts.report(130)
        return 130


def dispatch(parser: argparse.ArgumentParser, argv: Sequence[str]) -> int:
    """Parse ``argv`` and call the chosen sub-command's ``func``, both under :func:`run_cli`."""
    argv = list(argv)
    debug = "--debug" in argv
    parsed: list[argparse.Namespace] = []
    code = run_cli(lambda: parsed.append(parser.parse_args(argv)), debug=debug)
    if not parsed:
        return code
    args = parsed[0]
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if not getattr(args, "manages_signals", False):
        interrupts.release()  # the command's own code gets Python's usual KeyboardInterrupt
    return run_cli(lambda: args.func(args), debug=debug or getattr(args, "debug", False))


def main(argv: Sequence[str] | None = None) -> int:
    """``hpcnas ...``; ``argv`` None: this process is the command (signals, leftover threads)."""
    if argv is None:
        interrupts.cli_process()
        return interrupts.finish(dispatch(build_parser(), sys.argv[1:]))
    return dispatch(build_parser(), argv)

if __name__ == "__main__":
    # run the imported module, not this __main__ copy, so its classes (Terminated) are the ones
    # the command modules raise
    from hpcnas.cli.main import main as _main

    sys.exit(_main())
