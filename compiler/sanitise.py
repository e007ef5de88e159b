"""What of a NESTML source reaches code generation: the model, never its comments or unsafe strings.

NESTML copies text of the source into the C++ it generates in two ways that are not checked by its
grammar: comments (printed inside ``/* ... */`` and ``//`` in many places, so a comment containing
``*/`` becomes live C++) and string literals (``print``/``println`` pieces and string expressions are
printed between quotes as written, so a backslash escapes the closing quote). Everything else NESTML
prints comes from grammar tokens that cannot carry code: names (``[A-Za-z_$][A-Za-z0-9_$]*``),
numbers, operators and keywords.

:func:`sanitise` therefore hands code generation a copy of the text in which

- every comment (``#`` to the end of the line, outside string literals) is removed with the blanks
  before it; a comment always ends its line, so lines and columns of everything else stay where they
  were and diagnostics still point at the user's file;
- every string literal is checked to hold only printable ASCII without a backslash (and without a
  trigraph); anything else is refused with a diagnostic at the string, since no escaping of ours
  could survive NESTML's own printer exactly;
- a string literal is allowed only as the one argument of ``print``/``println``: anywhere else
  (a function's argument, a parameter's default, an ODE) it would reach SymPy's parser, which NESTML
  and ODE-toolbox hand expressions to and which evaluates text as Python (see
  :mod:`nestml_registry.compiler.sympy_guard`, the second line of defence, in the child);
- a name that is one of Python's builtins (``eval``, ``ord``, ``open``, ...; NESTML's own ``abs``,
  ``max``, ``min``, ``pow``, ``print``, ``round``, the ``input`` block and the unit ``bin`` excepted) or
  begins with two underscores (NESTML's generated names, and Python's special names) is refused
  where it stands: SymPy resolves such names to Python's objects.

The comments it removed are returned by line, so descriptions of parameters and state variables
(NESTML's "pre" and "inline" comments of a declaration) still come from the source as written.
The registry keeps the full text for people to read.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field

from nestml_registry.compiler.diagnostics import Diagnostic

# NESTML's STRING_LITERAL: '"' ('\\' (([ \t]+ ('\r'? '\n')?)|.) | ~[\\\r\n"])* '"'
_STRING_RE = re.compile(r'"(?:\\(?:[ \t]+\r?\n?|.)|[^\\\r\n"])*"', re.DOTALL)
_SAFE_STRING_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) - {"\\"}
_TRIGRAPH_RE = re.compile(r"\?\?[=/'()!<>-]")
_NAME_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?")
_PRINTS = ("print", "println")
# Python's builtins (Python 3.9 to 3.13) that NESTML itself uses: its functions abs, max, min, pow,
# print and round, its keyword input, its unit bin (a byte count) and the literals True and False;
# tests/test_sanitise.py checks this against the installed Python and NESTML
_PYTHON_BUILTINS = frozenset(dir(builtins)) | {"aiter", "anext", "breakpoint", "EncodingWarning",
                                               "BaseExceptionGroup", "ExceptionGroup", "PythonFinalizationError",
                                               "_IncompleteInputError"}
NESTML_NAMES_THAT_ARE_PYTHON_BUILTINS = frozenset({"abs", "max", "min", "pow", "print", "round", "input", "bin",
                                                   "True", "False", "None"})


@dataclass(frozen=True)
class Sanitised:
    """The text for code generation, the comments taken out of it (line -> text), and problems."""

    text: str
    comments: dict[int, str] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def code(self) -> str:
        """The text without comments, blank lines and trailing blanks: two sources with the same code differ
        only in comments and layout between lines, which code generation never sees (the build's code key)."""
        return "\n".join(line.rstrip() for line in self.text.splitlines() if line.strip())

    def description(self, line: int) -> str | None:
        """NESTML's comments of a declaration on ``line``: the comment-only lines right above it,
        then the comment on the line itself."""
        lines = self.text.split("\n")
        above: list[str] = []
        i = line - 1
        while i >= 1 and i in self.comments and not lines[i - 1].strip():
            above.append(self.comments[i])
            i -= 1
        parts = [*reversed(above), *([self.comments[line]] if line in self.comments else [])]
        text = " ".join(p.strip() for p in parts if p.strip())
        return text or None


def sanitise(text: str, file: str) -> Sanitised:
    """Blank the comments of ``text`` and check its string literals (see the module's docstring)."""
    out: list[str] = []
    comments: dict[int, str] = {}
    problems: list[Diagnostic] = []
    i, line, line_start, n = 0, 1, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            comments[line] = text[i + 1:end].rstrip("\r")
            _drop_trailing_blanks(out)
            i = end
        elif ch == '"':
            m = _STRING_RE.match(text, i)
            if m is None:
                problems.append(_problem("this string literal is not closed on its line: end it with '\"'",
                                         file, line, i - line_start))
                end = text.find("\n", i)
                i = n if end < 0 else end  # the rest of the line goes: the build is refused anyway
                continue
            literal = m.group(0)
            bad = _unsafe(literal[1:-1]) or _misplaced("".join(out[-64:]), text[m.end():m.end() + 64])
            if bad is not None:
                problems.append(_problem(bad, file, line, i - line_start))
            out.append(literal)
            newlines = literal.count("\n")
            if newlines:
                line += newlines
                line_start = i + literal.rfind("\n") + 1
            i = m.end()
        else:
            out.append(ch)
            if ch == "\n":
                line += 1
                line_start = i + 1
            i += 1
    cleaned = "".join(out)
    return Sanitised(cleaned, comments, tuple(problems + _unsafe_names(cleaned, file) + _indentation(cleaned, file)))


def _drop_trailing_blanks(out: list[str]) -> None:
    """Remove the spaces before a comment, up to the line's start: a comment-only line becomes empty
    (an indented blank line can confuse NESTML's indentation rules), and nothing else moves."""
    while out and out[-1] in (" ", "\t"):
        out.pop()


def _unsafe(content: str) -> str | None:
    """Why a string literal's content cannot go into generated C++, or None."""
    if "\\" in content:
        return ("a string literal may not contain a backslash (NESTML copies strings into the generated C++ "
                "as written, where a backslash changes what follows): remove it")
    odd = next((c for c in content if c not in _SAFE_STRING_CHARS), None)
    if odd is not None:
        return (f"a string literal may contain only printable ASCII characters, not {odd!r} "
                f"(U+{ord(odd):04X}): replace it")
    if _TRIGRAPH_RE.search(content):
        return "a string literal may not contain '??' followed by one of =/'()!<>- (a C++ trigraph): change it"
    return None


def _misplaced(before: str, after: str) -> str | None:
    """Why a string literal may not stand where it does (between ``before`` and ``after``), or None."""
    head = before.rstrip()
    if head.endswith("("):
        head = head[:-1].rstrip()
        if any(head.endswith(p) and not (head[:-len(p)][-1:].isalnum() or head[:-len(p)][-1:] in "_$")
               for p in _PRINTS) and after.lstrip().startswith(")"):
            return None
    return ("a string literal may stand only as the one argument of print or println: anywhere else NESTML "
            "hands it to SymPy, which would read it as code (remove it, or use a number)")


def _unsafe_names(text: str, file: str) -> list[Diagnostic]:
    """Each name in ``text`` (comments already gone, strings skipped) that reaches Python as Python's own."""
    problems, line, line_start, i, n = [], 1, 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line, line_start, i = line + 1, i + 1, i + 1
        elif ch == '"':
            m = _STRING_RE.match(text, i)
            i = n if m is None else m.end()
        elif ch.isdigit() or (ch == "." and text[i + 1:i + 2].isdigit()):
            i = _NUMBER_RE.match(text, i).end()  # type: ignore[union-attr]
        elif ch.isalpha() or ch in "_$":
            name = _NAME_RE.match(text, i).group(0)  # type: ignore[union-attr]
            why = _name_problem(name)
            if why is not None:
                problems.append(_problem(why, file, line, i - line_start))
            i += len(name)
        else:
            i += 1
    return problems


def _indentation(text: str, file: str) -> list[Diagnostic]:
    """Indentation NESTML cannot read, said as such (NESTML's own message is about an unexpected ``<EOF>``
    or ``DEDENT``): a ``model`` line that does not start its line, or a line that returns to a column no
    enclosing block starts at. Continuation lines (after ``\\`` or ``,``, or inside brackets) are left alone."""
    if '"""' in text:
        return []  # NESTML 7 docstrings: its own hint says what to do (compiler.hints)
    levels, depth, continued = [0], 0, False
    for number, line in enumerate(text.split("\n"), start=1):
        code = line.rstrip()
        stripped = code.lstrip(" \t")
        if stripped and not continued and depth == 0:
            width = len(code) - len(stripped)
            if "\t" in code[:width] and " " in code[:width]:
                return [_problem("this line is indented with both tabs and spaces: use spaces only", file, number, 0)]
            if stripped.startswith("model ") and width:
                return [_problem(f"the 'model' line is indented by {width}: it must start at the beginning of its "
                                 "line, and the blocks under it are indented from there", file, number, 0)]
            if width > levels[-1]:
                levels.append(width)
            elif width < levels[-1]:
                while levels and width < levels[-1]:
                    levels.pop()
                if not levels or width != levels[-1]:
                    return [_problem(f"inconsistent indentation: this line starts at column {width + 1}, where no "
                                     f"enclosing block starts (they start at columns "
                                     f"{', '.join(str(c + 1) for c in sorted(set(levels or [0])))}): indent it as "
                                     "the lines of its block", file, number, 0)]
        depth = max(0, depth + _brackets(stripped))
        continued = code.endswith(("\\", ","))
    return []


def _brackets(code: str) -> int:
    """Opened minus closed brackets on a line, outside string literals."""
    bare = _STRING_RE.sub('""', code)
    return sum(bare.count(c) for c in "([{") - sum(bare.count(c) for c in ")]}")


def _name_problem(name: str) -> str | None:
    if name.startswith("__"):
        return (f"the name '{name}' begins with two underscores, which are kept for NESTML's generated names and "
                "Python's special names: rename it")
    if name in _PYTHON_BUILTINS and name not in NESTML_NAMES_THAT_ARE_PYTHON_BUILTINS:
        return (f"'{name}' is the name of a Python builtin, which SymPy (NESTML's equation solver) would call "
                f"instead of the model's own: rename it (e.g. '{name}_')")
    return None


def _problem(message: str, file: str, line: int, column0: int) -> Diagnostic:
    return Diagnostic.error(message, file, line, column0 + 1, code="UNSAFE_SOURCE")
