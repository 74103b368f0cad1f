"""Small shared pieces: user-facing errors, dotted-path loading, optional imports, signals.

The names are loaded on first use, so importing a submodule (``hpcnas.core.interrupts``, which
the command line installs before anything else) costs no other import.
"""
from __future__ import annotations

_EXPORTS = {
    "HpcnasError": "hpcnas.core.errors",
    "UsageError": "hpcnas.core.errors",
    "load_attribute": "hpcnas.core.loading",
    "optional_import": "hpcnas.core.loading",
}

def __getattr__(name: str) -> object:  # no typing import: it alone takes ~30 ms
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hpcnas.core' has no attribute {name!r}")


__all__ = ["HpcnasError", "UsageError", "load_attribute", "optional_import"]
