"""The parts import in one direction and no module imports one that imports it back.

Every import counts, at module level or inside a function, and those for type checking too; the package
root's lazy public names (``nestml_registry.install`` and the like, PEP 562) are the facade above it all.
The order of the parts, and of the service's sub-packages (``service/__init__.py`` describes them)::

    compiler  <-  registry  <-  service (settings, logs <- client <- workers | api)  <-  simulator  <-  cli
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("compiler", "registry", "service", "simulator", "cli")
RANK = {"about": 0, "compiler": 1, "registry": 2, "service": 3, "simulator": 4, "pynn": 5, "cli": 6}
# within service: what each sub-package may import of the others
SERVICE_MAY_IMPORT = {"settings": set(), "logs": set(), "client": {"settings"},
                      "workers": {"settings", "logs", "client"}, "api": {"settings"}}


def modules() -> dict[str, Path]:
    found = {"nestml_registry.about": ROOT / "nestml_registry" / "about.py",
             "nestml_registry.pynn": ROOT / "nestml_registry" / "pynn.py"}
    for part in PARTS:
        for path in (ROOT / part).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            names = list(path.relative_to(ROOT).with_suffix("").parts)
            if names[-1] == "__init__":
                names.pop()
            found[".".join(["nestml_registry", *names])] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project's modules ``name`` imports: ``from P import M`` names module P.M when there is one."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    found.add(f"{base}.{alias.name}")
                elif base in known:
                    found.add(base)
    found.discard(name)
    found.discard("nestml_registry")  # the facade
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def part(name: str) -> str:
    return name.split(".")[1]


def service_part(name: str) -> str:
    return name.split(".")[2] if name.count(".") >= 2 else ""


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert cycles(graph()) == []


def test_the_parts_import_in_one_direction() -> None:
    wrong = sorted(f"{a} imports {b}" for a, targets in graph().items() for b in targets
                   if RANK[part(b)] > RANK[part(a)])
    assert wrong == [], "\n".join(wrong)


def test_the_services_sub_packages_import_in_one_direction() -> None:
    wrong = []
    for a, targets in graph().items():
        if part(a) != "service" or not service_part(a):
            continue
        for b in targets:
            if part(b) == "service" and service_part(b) and service_part(b) != service_part(a) \
                    and service_part(b) not in SERVICE_MAY_IMPORT[service_part(a)]:
                wrong.append(f"{a} imports {b}")
    assert wrong == [], "\n".join(sorted(wrong))


def test_a_loop_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_says_what_it_holds() -> None:
    """The module map (docs/architecture.md) is made from each module's docstring."""
    silent = sorted(str(path.relative_to(ROOT)) for name, path in modules().items()
                    if not ast.get_docstring(ast.parse(path.read_text())))
    assert silent == []
