"""Reference pages made from the code that is their truth: the command line (its argparse parsers), the
settings (``service.settings.VARIABLES``), the HTTP API (the application's OpenAPI document) and the module
map (each module's docstring). Each directive writes MyST Markdown, which the page parses in its place:

    ```{cli-reference}
    ```
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles


class _Generated(SphinxDirective):
    has_content = False

    def lines(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        section = nodes.section()
        section.document = self.state.document
        nested_parse_with_titles(self.state, StringList(self.lines(), source=self.get_source_info()[0]), section)
        return list(section.children)


def _literal(text: str) -> list[str]:
    return ["```text", *text.rstrip().splitlines(), "```", ""]


def _cell(text: str) -> str:
    """Text for a cell of a Markdown table: reStructuredText's roles (:mod:`x`) as code, no pipes."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", " ".join(text.split()))
    return text.replace("|", "\\|")


class CliReference(_Generated):
    """Every command of ``nestml-registry``, with its usage and help, as argparse prints them."""

    def lines(self) -> list[str]:
        from nestml_registry.cli.main import parser

        top = parser()
        out = [*_literal(top.format_help())]
        for name, command in _commands(top):
            out += [f"## nestml-registry {name}", "", *_literal(command.format_help())]
        return out


def _commands(p: argparse.ArgumentParser, prefix: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = f"{prefix}{name}"
                found.append((full, sub))
                found += _commands(sub, full + " ")
    return found


class SettingsReference(_Generated):
    """The ``NESTML_REGISTRY_*`` variables: a table."""

    def lines(self) -> list[str]:
        from nestml_registry.service.settings import ENV_PREFIX, VARIABLES

        out = ["| variable | default | meaning |", "|---|---|---|"]
        for v in sorted(VARIABLES, key=lambda v: v.name):
            out.append(f"| `{ENV_PREFIX}{v.name}` | {_cell(v.default)} | {_cell(v.meaning)} |")
        return [*out, ""]


class HttpReference(_Generated):
    """Every operation of the HTTP API: method, path, access, summary, description, parameters, answers."""

    def lines(self) -> list[str]:
        document = _openapi()
        out: list[str] = []
        for path, operations in document["paths"].items():
            for method, op in operations.items():
                out += [f"## `{method.upper()} {path}`", "", f"*{_cell(op.get('summary', ''))}*", ""]
                out += [f"Access: {op.get('x-access', 'public') if 'security' in op else 'public'}", ""]
                if op.get("description"):  # the route's docstring
                    out += [_cell(op["description"]), ""]
                params = op.get("parameters", [])
                if params:
                    out += ["Parameters:", ""]
                    out += [f"- `{p['name']}` ({p['in']}{', required' if p.get('required') else ''}): "
                            f"{_cell(p.get('description', ''))}" for p in params]
                    out.append("")
                answers = ", ".join(sorted(op.get("responses", {})))
                out += [f"Answers: {answers}", ""]
        return out


class ModuleMap(_Generated):
    """Every module of the project with the first line of its docstring, part by part."""

    PARTS = ("compiler", "registry", "service", "simulator", "cli")

    def lines(self) -> list[str]:
        import ast

        root = Path(__file__).resolve().parents[2]
        out: list[str] = []
        for part in self.PARTS:
            out += [f"### `{part}/`", "", "| module | what it holds |", "|---|---|"]
            for path in sorted((root / part).rglob("*.py")):
                if "versions" in path.parts:
                    continue
                doc = ast.get_docstring(ast.parse(path.read_text())) or ""
                first = _cell(doc.split("\n\n")[0])
                first = first.split(". ")[0].rstrip(".") + "." if first else ""
                out.append(f"| `{path.relative_to(root)}` | {first} |")
            out.append("")
        return out


def _openapi() -> dict[str, Any]:
    from nestml_registry.service.api.app import create_app
    from nestml_registry.service.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:  # nothing is opened: the document is made from the routes
        home = Path(tmp)
        app = create_app(Settings(home=home, database_url=f"sqlite:///{home / 'never.db'}", store_dir=home / "store",
                                  cache_dir=home / "cache"))
        return app.openapi()


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("cli-reference", CliReference)
    app.add_directive("settings-reference", SettingsReference)
    app.add_directive("http-reference", HttpReference)
    app.add_directive("module-map", ModuleMap)
    return {"version": "1", "parallel_read_safe": True}
