"""``hpcnas nas regevomixed``: regularised (aging) evolution over architecture and hyper-parameters as one space.

A mutation changes one variable of :attr:`NaProblem.space` -- an architecture choice or a
training hyper-parameter; options as ``hpcnas hps age``.
"""
from __future__ import annotations

from hpcnas.search.base import register_search
from hpcnas.search.hps.age import AgE
from hpcnas.search.nas._mixed import MixedSearch


@register_search("nas", "regevomixed")
class RegEvoMixed(MixedSearch):
    """Aging evolution over architecture and hyper-parameters together."""

    inner_class = AgE


if __name__ == "__main__":
    import sys

    from hpcnas.cli.search_cmd import module_main

    sys.exit(module_main("nas", "regevomixed"))
