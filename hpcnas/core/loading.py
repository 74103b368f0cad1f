"""Load objects from dotted paths (``package.module.attr``) and optional dependencies."""
from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

from hpcnas.core.errors import HpcnasError, MissingExtraError


def load_attribute(path: str, what: str = "object") -> Any:
    """Import ``package.module.attr`` and return ``attr``.

    ``what`` names the thing in error messages (``"problem"``, ``"run function"``).
    A path of the form ``/some/file.py:attr`` is also accepted. Raises
    :class:`HpcnasError` with a one-line message on any failure.
    """
    if not isinstance(path, str) or not path.strip():
        raise HpcnasError(f"empty {what} path: give it as package.module.name")
    path = path.strip()
    if ":" in path and path.split(":", 1)[0].endswith(".py"):
        file_path, attr = path.rsplit(":", 1)
        module = _load_file(file_path, what)
        return _get(module, attr, path, what)
    if "." not in path:
        raise HpcnasError(f"{what} '{path}' is not a dotted path: give it as package.module.name")
    module_name, attr = path.rsplit(".", 1)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            raise HpcnasError(
                f"cannot import {what} '{path}': no module named '{err.name}' "
                "(check the spelling, install the package or add it to PYTHONPATH)"
            ) from err
        raise HpcnasError(
            f"cannot import {what} '{path}': its module needs '{err.name}', which is not installed"
        ) from err
    except (HpcnasError, KeyboardInterrupt):
        raise
    except BaseException as err:  # noqa: BLE001 - user code raised (or exited) while importing
        raise HpcnasError(
            f"cannot import {what} '{path}': importing '{module_name}' {_raised(err)}"
        ) from err
    return _get(module, attr, path, what)


def _raised(err: BaseException) -> str:
    """What a module did instead of importing: ``called sys.exit(N), ...`` or ``raised Type: text``."""
    if isinstance(err, SystemExit):
        return (
            f"called sys.exit({err.code!r}), so no search ran: "
            "remove that call or put it under if __name__ == '__main__':"
        )
    return f"raised {type(err).__name__}: {err}"


def _load_file(file_path: str, what: str) -> ModuleType:
    import importlib.util

    if not os.path.isfile(file_path):
        raise HpcnasError(f"cannot load {what}: file '{file_path}' does not exist")
    name = "_hpcnas_user_" + os.path.splitext(os.path.basename(file_path))[0]
    spec = importlib.util.spec_from_file_location(name, file_path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        sys.modules.pop(name, None)
        raise
    except BaseException as err:  # noqa: BLE001 - user code raised (or exited) while loading
        sys.modules.pop(name, None)
        raise HpcnasError(f"cannot load {what} from '{file_path}': it {_raised(err)}") from err
    return module


def _get(module: ModuleType, attr: str, path: str, what: str) -> Any:
    try:
        return getattr(module, attr)
    except AttributeError:
        raise HpcnasError(
            f"cannot import {what} '{path}': module '{module.__name__}' has no attribute '{attr}'"
        ) from None


def optional_import(module: str, extra: str) -> ModuleType:
    """Import an optional heavy dependency or fail with ``pip install hpcnas[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"'{module}' is needed for this feature but cannot be imported ({err}); "
            f"install it with: pip install 'hpcnas[{extra}]'"
        ) from err
