"""Sphinx configuration for the scvi documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "scvi"
author = "scvi developers"
release = "0.5.1"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
autosummary_generate = True
napoleon_numpy_docstring = True
html_theme = "alabaster"
exclude_patterns = ["_build"]
