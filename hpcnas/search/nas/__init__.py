"""NAS searches, registered for ``hpcnas nas SEARCH``: age, agebo, random, ambsmixed, regevomixed."""
from __future__ import annotations

from hpcnas.search.nas import age, agebo, ambsmixed, random_search, regevomixed  # noqa: F401 - registration

__all__ = ["age", "agebo", "ambsmixed", "random_search", "regevomixed"]
