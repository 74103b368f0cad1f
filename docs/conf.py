"""Sphinx configuration of the hpcnas documentation (``sphinx-build -b html docs docs/_build``)."""
from __future__ import annotations

import importlib.util
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "hpcnas"
author = "hpcnas developers"
copyright = "2026, hpcnas developers"
release = "0.1.0"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
exclude_patterns = ["_build"]
templates_path: list[str] = []

html_theme = "sphinx_rtd_theme" if importlib.util.find_spec("sphinx_rtd_theme") else "alabaster"
html_title = "hpcnas"
