"""SymPy's parser without Python: installed in the code generation child before NESTML runs.

NESTML and ODE-toolbox turn model expressions into SymPy objects by printing them as text and
handing the text to :func:`sympy.parsing.sympy_parser.parse_expr` (directly, through ``sympify`` of a
string, and through SymPy itself: an undefined function applied to a string argument sympifies that
string). ``parse_expr`` rewrites the text's tokens and then **evaluates it as Python** with
``eval``: with the default namespace, Python's builtin functions (``eval``, ``exec``, ``open``,
``__import__``, ...) are names in reach, and a string literal inside the text is parsed again the same
way. A model is data, so this module closes every route of model text to Python, at the two
functions every ``parse_expr`` call goes through (module globals, looked up at each call, so callers
that imported ``parse_expr`` by name are covered too):

- ``stringify_expr`` (the text, before any rewriting) refuses text that holds a string literal,
  an attribute access (``x.attr``), or a Python keyword that no expression needs (``lambda``, ``for``,
  ``import``, ...): the text NESTML and ODE-toolbox produce is arithmetic on names, numbers and calls.
- both ``stringify_expr`` and ``eval_expr`` see a namespace without any of Python's builtins: the
  builtin functions SymPy adds to its default namespace are removed (``abs``, ``max``, ``min`` and
  ``pow`` become SymPy's ``Abs``, ``Max``, ``Min`` and ``Pow``), so a name like ``ord`` or ``eval``
  becomes a SymPy symbol or undefined function, and ``eval`` runs with an empty ``__builtins__``.

A refusal raises :class:`UnsafeExpression`; NESTML reports it as a failed build.
"""

from __future__ import annotations

import builtins
import io
import keyword
import tokenize
from typing import Any

_KEYWORDS_ALLOWED = frozenset({"True", "False", "None", "and", "or", "not", "if", "else"})
_SUBSTITUTES = {"abs": "Abs", "max": "Max", "min": "Min", "pow": "Pow"}
_BUILTIN_IDS = frozenset(id(v) for v in vars(builtins).values())
_installed = False


class UnsafeExpression(ValueError):
    """Text handed to SymPy that is not a plain expression."""


def check_text(text: str) -> None:
    """Refuse text that is more than names, numbers, operators and calls (see the module docstring)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError) as exc:
        raise UnsafeExpression(f"SymPy was handed text it cannot tokenise: {text[:200]!r}") from exc
    previous: tokenize.TokenInfo | None = None
    for tok in tokens:
        if tok.type == tokenize.STRING or tok.type == getattr(tokenize, "FSTRING_START", -1):
            raise UnsafeExpression(f"a string reached SymPy's parser in {text[:200]!r}: model text is never "
                                   "evaluated as Python")
        if tok.type == tokenize.NAME:
            if keyword.iskeyword(tok.string) and tok.string not in _KEYWORDS_ALLOWED:
                raise UnsafeExpression(f"the Python keyword {tok.string!r} reached SymPy's parser in {text[:200]!r}")
            if previous is not None and previous.type == tokenize.OP and previous.string == ".":
                raise UnsafeExpression(f"an attribute access ('.{tok.string}') reached SymPy's parser in "
                                       f"{text[:200]!r}")
        if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT):
            previous = tok


def strip_builtins(namespace: dict) -> dict:
    """``namespace`` (changed in place) without Python's builtins; SymPy's equivalents where NESTML means them."""
    import sympy

    removed = [n for n, v in namespace.items() if id(v) in _BUILTIN_IDS and not isinstance(v, (bool, type(None)))]
    for name in removed:
        del namespace[name]
    for name, sympy_name in _SUBSTITUTES.items():
        if name in removed:
            namespace[name] = getattr(sympy, sympy_name)
    namespace["__builtins__"] = {}
    return namespace


def install() -> None:
    """Patch ``stringify_expr`` and ``eval_expr`` of SymPy's parser, once per process."""
    global _installed
    if _installed:
        return
    from sympy.parsing import sympy_parser

    stringify, evaluate = sympy_parser.stringify_expr, sympy_parser.eval_expr

    def stringify_expr(s: str, local_dict: dict, global_dict: dict, transformations: Any) -> str:
        check_text(s)
        return stringify(s, local_dict, strip_builtins(dict(global_dict)), transformations)

    def eval_expr(code: Any, local_dict: dict, global_dict: dict) -> Any:
        return evaluate(code, local_dict, strip_builtins(dict(global_dict)))

    sympy_parser.stringify_expr = stringify_expr
    sympy_parser.eval_expr = eval_expr
    _installed = True
