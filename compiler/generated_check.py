"""A check of the C++ NESTML generated, in the worker (outside the sandbox), before it is compiled.

Defence in depth behind :mod:`nestml_registry.compiler.sanitise` (nothing of a comment or string reaches
code generation unchecked) and :mod:`nestml_registry.compiler.sympy_guard` (no model text runs as
Python): if code generation were subverted all the same, the C++ it wrote is held against what
NESTML's NEST templates can produce. Their ``#include`` lines name NEST's headers by plain file name,
the model's own headers, and four of the standard library and GSL; they never call a process, a
shell, the dynamic loader or a system call, nor declare code that runs when a library is loaded
(``__attribute__((constructor))``) or inline assembly. A generated file that does is refused, with
the file and line, and nothing is compiled.
"""

from __future__ import annotations

import re
from pathlib import Path

from nestml_registry.compiler.diagnostics import Diagnostic

_INCLUDE_RE = re.compile(r"^\s*#\s*include\s*(\S.*?)\s*$")
_QUOTED_HEADER_RE = re.compile(r'"[A-Za-z0-9_]+\.h"')
_SYSTEM_HEADERS = frozenset({"<cmath>", "<limits>", "<random>", "<gsl/gsl_errno.h>", "<gsl/gsl_matrix.h>",
                             "<gsl/gsl_odeiv.h>"})
_CALLS = ("system", "popen", "execl", "execle", "execlp", "execv", "execve", "execvp", "execvpe", "fork", "vfork",
          "clone", "posix_spawn", "posix_spawnp", "dlopen", "dlsym", "syscall", "ptrace", "setuid", "setgid",
          "seteuid", "chmod", "chown", "unlink", "rmdir", "rename", "remove", "socket", "connect_socket", "kill",
          "getenv", "setenv", "putenv", "fopen", "freopen", "mmap", "mprotect")
_FORBIDDEN_RE = re.compile(
    r"(?<![\w.>])(?:std\s*::\s*|::\s*)?(?P<call>" + "|".join(_CALLS) + r")\s*\("
    r"|(?P<word>__attribute__|__asm__|__asm|\basm\b|init_priority|__declspec)")
_SUFFIXES = (".h", ".hpp", ".cpp", ".cc", ".cxx", ".c", ".inc", ".ipp")


def check_generated(target: Path) -> list[Diagnostic]:
    """Every problem in the generated sources under ``target`` (an empty list: compile them)."""
    problems: list[Diagnostic] = []
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        if path.suffix not in _SUFFIXES:
            continue
        for number, line in enumerate(path.read_text(errors="replace").split("\n"), start=1):
            why = _line_problem(line)
            if why is not None:
                problems.append(Diagnostic.error(
                    f"the generated C++ ({path.name}:{number}) {why}, which NESTML's templates never produce: "
                    "nothing was compiled; report this model to the registry's admins", code="UNEXPECTED_CODE"))
                if len(problems) >= 20:
                    return problems
    return problems


def _line_problem(line: str) -> str | None:
    include = _INCLUDE_RE.match(line)
    if include is not None:
        header = include.group(1)
        if header in _SYSTEM_HEADERS or _QUOTED_HEADER_RE.fullmatch(header):
            return None
        return f"includes {header[:80]}"
    m = _FORBIDDEN_RE.search(line)  # comments included: a line comment can continue onto the next line
    if m is None:
        return None
    return f"calls {m.group('call')}()" if m.group("call") else f"uses {m.group('word')}"
