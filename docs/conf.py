"""Sphinx configuration of nestml-registry's documentation (MyST Markdown, as NEST, NESTML, BMTK and PyNN
write theirs). Built with warnings as errors: ``.venv/bin/python -m sphinx -W --keep-going -b html docs
docs/_build/html`` (``scripts/docs.sh``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

from nestml_registry.about import release as _release

project = "nestml-registry"
author = "the nestml-registry developers"
copyright = "2026, the nestml-registry developers"
release = _release()
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.graphviz",
    "sphinx.ext.viewcode",
    "registry_docs",
]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"
html_theme = "alabaster"
html_title = f"nestml-registry {release}"
html_theme_options = {"description": "NESTML models compiled once, shared by a lab", "fixed_sidebar": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": False}
graphviz_output_format = "svg"
nitpicky = False
suppress_warnings: list[str] = []
