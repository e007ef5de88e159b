"""A model's ``equations:`` block as mathematics: each line (an ODE ``V_m' = ...``, an ``inline`` or a
``kernel``) is parsed by a small recursive-descent reader of NESTML's expression syntax (nothing is
evaluated) into LaTeX made only of a fixed vocabulary, the model's identifiers and its numbers, which
docutils turns into MathML and :func:`~nestml_registry.service.api.web.docs.clean` cleans, as the comment's
``.. math::`` is. A block with a line the reader does not know is shown as written.

    render_equations("V_m' = -(V_m - E_L) / tau_m + I / C_m")   # Markup with a <math> element, or None
"""

from __future__ import annotations

import logging
import re

from markupsafe import Markup

logger = logging.getLogger(__name__)
MAX_BLOCK = 32 * 1024
_TOKEN = re.compile(r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*\$?'*)"
                    r"|(?P<op>\*\*|<=|>=|==|!=|[-+*/(),=?:<>]))")
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
          "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega", "Gamma", "Delta",
          "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}
_FUNCTIONS = {"exp": r"\exp", "ln": r"\ln", "log10": r"\log_{10}", "sin": r"\sin", "cos": r"\cos", "tan": r"\tan",
              "sinh": r"\sinh", "cosh": r"\cosh", "tanh": r"\tanh", "min": r"\min", "max": r"\max"}
_COMPARE = {"<": "<", ">": ">", "<=": r"\le", ">=": r"\ge", "==": "=", "!=": r"\ne"}


class Unreadable(ValueError):
    """A line this reader does not know: the block is shown as written."""


def render_equations(block: str) -> Markup | None:
    """The block as MathML, or None when it is better shown as written."""
    if not block.strip() or len(block) > MAX_BLOCK:
        return None
    try:
        lines = [part for line in logical_lines(block) for part in latex_lines(line)]
    except Unreadable as exc:
        logger.debug("equations shown as written: %s", exc)
        return None
    if not lines:
        return None
    from docutils.core import publish_parts

    from nestml_registry.service.api.web.docs import SETTINGS, clean

    text = ".. math::\n\n" + "".join(f"   {line}\n\n" for line in lines)
    body = publish_parts(text, writer="html5", settings_overrides=SETTINGS)["body"]
    return Markup(clean(body)) if "<math" in body else None


def logical_lines(block: str) -> list[str]:
    """The block's statements, without comments, a statement continued while a parenthesis is open."""
    out, current, depth = [], "", 0
    for raw in block.splitlines():
        code = raw.split("#", 1)[0].rstrip().rstrip("\\").rstrip(";")
        if not code.strip():
            continue
        current = f"{current} {code.strip()}" if current else code.strip()
        depth += code.count("(") - code.count(")")
        if depth <= 0 and not current.endswith(","):  # a kernel of several equations goes on after a comma
            out.append(current)
            current, depth = "", 0
    if current:
        raise Unreadable("unbalanced parentheses")
    return out


def latex_lines(line: str) -> list[str]:
    """A statement as LaTeX lines: a kernel of several equations (``kernel g' = ..., g$' = ...``) gives one
    each."""
    if line.startswith("kernel ") and "," in line:
        parts, depth, start = [], 0, len("kernel ")
        for i, ch in enumerate(line):
            depth += (ch == "(") - (ch == ")")
            if ch == "," and depth == 0:
                parts.append(line[start:i])
                start = i + 1
        parts.append(line[start:])
        return [latex_line(f"kernel {p.strip()}") for p in parts if p.strip()]
    return [latex_line(line)]


def latex_line(line: str) -> str:
    """``kernel K = e``, ``inline X unit = e`` or ``Y' = e`` as ``lhs = rhs`` in LaTeX."""
    words = line.split(None, 1)
    if words and words[0] in ("kernel", "inline", "recordable"):
        rest = words[1] if len(words) > 1 else ""
        if words[0] == "recordable":
            rest = rest.split(None, 1)[1] if rest.startswith("inline ") else rest
        lhs, eq, rhs = rest.partition("=")
        name = lhs.split()[0] if lhs.split() else ""
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\$?'*", name):
            raise Unreadable(line)
        return f"{identifier(name)} = {Reader(rhs).whole()}"
    lhs, eq, rhs = line.partition("=")
    if not eq or not re.fullmatch(r"\s*[A-Za-z_][A-Za-z0-9_]*\$?'+\s*", lhs) or rhs.startswith("="):
        raise Unreadable(line)
    return f"{identifier(lhs.strip())} = {Reader(rhs).whole()}"


def identifier(name: str) -> str:
    """``V_m`` as V_{m}, ``tau_syn_exc`` as \\tau_{syn,exc}, ``g_in''`` with two primes, ``g_in$`` (a kernel's
    second state, as NESTML names it) with a star."""
    primes = len(name) - len(name.rstrip("'"))
    star = name.rstrip("'").endswith("$")
    base, *rest = name.rstrip("'").rstrip("$").split("_")
    if not base:  # a leading underscore
        base, rest = name.rstrip("'").replace("_", ""), []
    head = f"\\{base}" if base in _GREEK else base if len(base) == 1 else rf"\mathit{{{base}}}"
    subs = ",".join(rf"\{p}" if p in _GREEK else p for p in rest if p)
    text = f"{{{head}}}_{{{subs}}}" if subs else head
    if star:
        text = f"{{{{{text}}}^{{\\ast}}}}"  # {{g}^{\ast}}: a prime after it is not a second superscript
    return text + "'" * primes if primes else text


class Reader:
    """One expression, read by precedence: ternary, or, and, not, comparison, sum, product, sign, power."""

    def __init__(self, text: str) -> None:
        self.tokens, pos = [], 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise Unreadable(f"cannot read {text[pos:pos + 20]!r}")
            self.tokens.append((m.lastgroup or "", m.group(m.lastgroup or 0)))
            pos = m.end()
        self.i = 0

    def whole(self) -> str:
        out = self.ternary()
        if self.i != len(self.tokens):
            raise Unreadable(f"unexpected {self.tokens[self.i][1]!r}")
        return out

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens) or (value is not None and self.tokens[self.i][1] != value):
            raise Unreadable(f"expected {value or 'more'}")
        self.i += 1
        return self.tokens[self.i - 1]

    def ternary(self) -> str:
        cond = self.logic("or")
        if self.peek() != "?":
            return cond
        self.take("?")
        yes = self.ternary()
        self.take(":")
        no = self.ternary()
        return rf"\begin{{cases}} {yes} & \text{{if }} {cond} \\ {no} & \text{{otherwise}} \end{{cases}}"

    def logic(self, op: str) -> str:
        out = self.logic("and") if op == "or" else self.negation()
        while self.peek() == op:
            self.take()
            right = self.logic("and") if op == "or" else self.negation()
            out = rf"{out} \{'lor' if op == 'or' else 'land'} {right}"
        return out

    def negation(self) -> str:
        if self.peek() == "not":
            self.take()
            return rf"\neg {self.negation()}"
        return self.comparison()

    def comparison(self) -> str:
        out = self.sum()
        while self.peek() in _COMPARE:
            op = self.take()[1]
            out = f"{out} {_COMPARE[op]} {self.sum()}"
        return out

    def sum(self) -> str:
        out = self.product()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            out = f"{out} {op} {self.product()}"
        return out

    def product(self) -> str:
        out = self.sign()
        while self.peek() in ("*", "/") or (self.peek() is not None and self.tokens[self.i][0] == "name"
                                            and self.tokens[self.i - 1][0] == "num"):
            if self.peek() == "/":
                self.take()
                out = rf"\frac{{{_bare(out)}}}{{{_bare(self.sign())}}}"
            elif self.peek() == "*":
                self.take()
                out = rf"{out} \cdot {self.sign()}"
            else:  # a unit after a number: 1 mV, 0.01 s**-1
                out = rf"{out}\,{self.unit()}"
        return out

    def unit(self) -> str:
        name = self.take()[1].replace("$", "")
        if self.peek() == "**":
            self.take()
            return rf"\mathrm{{{name}}}^{{{_bare(self.sign())}}}"
        return rf"\mathrm{{{name}}}"

    def sign(self) -> str:
        if self.peek() in ("-", "+"):
            op = self.take()[1]
            return f"{op}{self.sign()}"
        return self.power()

    def power(self) -> str:
        base = self.atom()
        if self.peek() == "**":
            self.take()
            return f"{{{base}}}^{{{_bare(self.sign())}}}"
        return base

    def atom(self) -> str:
        kind, value = self.take()
        if kind == "num":
            mantissa, _, exponent = value.lower().partition("e")
            return rf"{mantissa} \cdot 10^{{{int(exponent)}}}" if exponent else value
        if kind == "name":
            if self.peek() == "(":
                return self.call(value)
            return identifier(value)
        if value == "(":
            inner = self.ternary()
            self.take(")")
            return rf"\left({inner}\right)"
        raise Unreadable(f"unexpected {value!r}")

    def call(self, name: str) -> str:
        self.take("(")
        args = [self.ternary()]
        while self.peek() == ",":
            self.take(",")
            args.append(self.ternary())
        self.take(")")
        if name == "sqrt" and len(args) == 1:
            return rf"\sqrt{{{args[0]}}}"
        if name == "convolve" and len(args) == 2:
            return rf"\left({args[0]} \ast {args[1]}\right)"
        escaped = name.replace("_", r"\_")
        head = _FUNCTIONS.get(name) or rf"\operatorname{{{escaped}}}"
        return rf"{head}\left({', '.join(args)}\right)"


def _bare(latex: str) -> str:
    r"""A fraction's part without the \left( \right) around the whole of it."""
    if latex.startswith(r"\left(") and latex.endswith(r"\right)") and _balanced(latex[6:-7]):
        return latex[6:-7]
    return latex


def _balanced(inner: str) -> bool:
    depth = 0
    for token in re.findall(r"\\left\(|\\right\)", inner):
        depth += 1 if token == r"\left(" else -1
        if depth < 0:
            return False
    return depth == 0
