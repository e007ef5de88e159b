"""The settings reference (docs/reference/settings.md, made from ``service.settings.VARIABLES``) lists
exactly the ``NESTML_REGISTRY_*`` variables the code reads."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from nestml_registry.service.settings import VARIABLES

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("compiler", "registry", "service", "simulator", "cli", "nestml_registry")


def read_by_the_code() -> set[str]:
    names: set[str] = set()
    for part in PARTS:
        for path in (ROOT / part).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    names.update(re.findall(r"\bNESTML_REGISTRY_([A-Z][A-Z_]*[A-Z])\b", node.value))
                # Settings.from_env: e.text("HOME"), e.number("JOBS", ...), e.flag(...), ...
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "e" and node.args \
                        and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str) \
                        and re.fullmatch(r"[A-Z][A-Z_]*", node.args[0].value):
                    names.add(node.args[0].value)
    return names


def test_every_variable_the_code_reads_is_documented_and_no_other() -> None:
    documented = {v.name for v in VARIABLES}
    assert len(documented) == len(VARIABLES), "a variable is listed twice"
    read = read_by_the_code()
    assert sorted(read - documented) == [], "read but not in service.settings.VARIABLES"
    assert sorted(documented - read) == [], "documented but read nowhere"
