#!/usr/bin/env bash
# The documentation (docs/, Sphinx with MyST Markdown), built with warnings as errors into docs/_build/html
# (open docs/_build/html/index.html). Needs the test set-up (scripts/setup.sh test: Sphinx, MyST, graphviz).
#   scripts/docs.sh [extra sphinx-build options]
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m sphinx -W --keep-going -q -b html "$@" docs docs/_build/html
