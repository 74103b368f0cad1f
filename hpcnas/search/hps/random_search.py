"""Random search: the problem's starting points, then uniform random configurations.

Sampling is uniform on ConfigSpace's normalised scale (so log ranges are sampled
log-uniformly), conditions and forbidden clauses are respected, and a configuration already
asked or told is not proposed again (unless a small discrete space is exhausted).
"""
from __future__ import annotations

import numpy as np

from hpcnas.search.base import register_search
from hpcnas.search.hps._base import HpSearch


@register_search("hps", "random")
class RandomSearch(HpSearch):
    """Uniform random sampling of the problem's space (no options)."""

    def _propose(self, n: int) -> np.ndarray:
        return self.codec.sample(n)


if __name__ == "__main__":
    import sys

    from hpcnas.cli.search_cmd import module_main

    sys.exit(module_main("hps", "random"))
