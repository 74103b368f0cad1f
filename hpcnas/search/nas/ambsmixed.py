"""``hpcnas nas ambsmixed``: AMBS (Bayesian optimisation) over architecture and hyper-parameters as one space.

The architecture choices are categoricals of :attr:`NaProblem.space` next to the training
hyper-parameters; all AMBS options (``--kappa``, ``--surrogate-model``, ``--n-jobs`` ...) apply.
"""
from __future__ import annotations

from hpcnas.search.base import register_search
from hpcnas.search.hps.ambs import AMBS
from hpcnas.search.nas._mixed import MixedSearch


@register_search("nas", "ambsmixed")
class AMBSMixed(MixedSearch):
    """Bayesian optimisation over architecture and hyper-parameters together."""

    inner_class = AMBS


if __name__ == "__main__":
    import sys

    from hpcnas.cli.search_cmd import module_main

    sys.exit(module_main("nas", "ambsmixed"))
