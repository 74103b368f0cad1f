"""Small shared pieces: user-facing errors, dotted-path loading, optional imports."""
from __future__ import annotations

from hpcnas.core.errors import HpcnasError, UsageError
from hpcnas.core.loading import load_attribute, optional_import

__all__ = ["HpcnasError", "UsageError", "load_attribute", "optional_import"]
