#!/usr/bin/env bash
# Type-check the installed package layout: mypy sees nestml_registry.compiler, .registry, .service and
# .simulator through a tree of links to the repository's folders (setuptools maps them the same way when
# it installs; mypy does not follow setuptools' editable-install import hook).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/nestml_registry"
for f in nestml_registry/*; do ln -s "$root/$f" "$tree/nestml_registry/"; done
for part in compiler registry service simulator cli; do ln -s "$root/$part" "$tree/nestml_registry/$part"; done
cd "$tree"
exec "$root/.venv/bin/mypy" --config-file "$root/pyproject.toml" --cache-dir "$root/.venv/mypy-cache" \
    -p nestml_registry "$@"
