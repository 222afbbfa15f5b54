"""Sphinx configuration for the scvi documentation.

Build with ``tox -e docs`` or ``python -m sphinx -W --keep-going -b html docs
docs/_build/html``. The tutorials are the notebooks of ``../notebooks``, rendered from
their committed outputs (never executed): at every build they are copied into the
generated, git-ignored folder ``tutorials/`` beside this file, because Sphinx only reads
sources inside its source folder.
"""

import filecmp
import importlib.util
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import scvi  # noqa: E402

project = "scvi"
author = "scvi developers"
copyright = "2018-2026, the scVI authors and scvi developers"
release = scvi.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
    "myst_nb",
    "scvi_autoapi",
]
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]

# API reference (see _ext/scvi_autoapi.py).
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# hyperopt (scvi.inference.autotune) and ray (its parallel mode) are optional: stand-ins
# let the reference build where they are not installed.
autodoc_mock_imports = [
    name for name in ("hyperopt", "ray") if importlib.util.find_spec(name) is None
]
autosummary_generate = False
add_module_names = False
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = True

# Tutorials: committed outputs only.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"scvi {release}"
toc_object_entries_show_parents = "hide"

NOTEBOOKS = ROOT / "notebooks"
TUTORIALS = DOCS / "tutorials"
# Reading order of the tutorials; notebooks not named here follow, alphabetically.
TUTORIAL_ORDER = [
    "data_loading",
    "basic_tutorial",
    "harmonization",
    "linear_decoder",
    "scanpy_interaction",
    "annotation",
    "gimvi_tutorial",
    "totalVI",
    "AutoZI_tutorial",
    "autotune_advanced_notebook",
]


def _sync_tutorials() -> None:
    """Mirror ``notebooks/*.ipynb`` into ``tutorials/`` and write its toctree include.

    Unchanged notebooks are not rewritten, so incremental builds stay incremental;
    copies whose notebook is gone are deleted.
    """
    TUTORIALS.mkdir(exist_ok=True)
    sources = {path.stem: path for path in sorted(NOTEBOOKS.glob("*.ipynb"))}
    for stale in TUTORIALS.glob("*.ipynb"):
        if stale.stem not in sources:
            stale.unlink()
    for source in sources.values():
        copy = TUTORIALS / source.name
        if not copy.exists() or not filecmp.cmp(source, copy, shallow=False):
            shutil.copy2(source, copy)
    ordered = [stem for stem in TUTORIAL_ORDER if stem in sources]
    ordered += sorted((stem for stem in sources if stem not in ordered), key=str.lower)
    lines = [".. toctree::", "   :maxdepth: 1", ""]
    lines += [f"   tutorials/{stem}" for stem in ordered]
    if not ordered:
        lines = ["No notebook is in ``notebooks/`` yet."]
    toctree = TUTORIALS / "toctree.rst.inc"
    text = "\n".join(lines) + "\n"
    if not toctree.exists() or toctree.read_text() != text:
        toctree.write_text(text)


_sync_tutorials()
