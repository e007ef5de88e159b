"""NESTML 7/8 model text rewritten for NESTML 9, on the text itself: comments, layout and every other
character stay as written.

What NESTML 9 refuses in models written for NESTML 7 and 8 (found by checking NESTML's own example
models of 7.0.2 and 8.3.0, and BMTK's tutorial model, with NESTML 9):

- free-standing physical units in expressions (``/ mV``, ``* ms``, ``(mV * ms)``): NESTML 9 reads a name
  there as a variable, so a unit needs a number, ``/ 1 mV``. Where they are comes from NESTML itself
  (its ``NO_SOLITARY_PHYSICAL_UNITS`` diagnostics), so every one is found, and only those: ``30 mV``,
  declared types and variables that share a unit's name are left alone. ``x / 1 mV`` is the value of
  ``x / mV`` in NESTML 8, so the model computes what it computed before. Only units that models use are
  numbered (:data:`nestml_registry.compiler.hints.PLAUSIBLE_UNITS`: seconds, volts, amperes, siemens,
  ohms, farads, hertz, moles, metres, litres ... with their usual prefixes): any other name NESTML
  reads as a unit (``dd``, deci-day, for a mistyped ``d``) is a typo far more often than a unit, so it
  is refused, naming the declared name it is one edit from, and left for the person: an upgrade never
  changes what a model means.
- ``\"\"\"`` docstrings (NESTML 7): ``#`` comments now, line for line, so line numbers do not move;
- ``neuron NAME:`` and ``synapse NAME:`` (NESTML 7): ``model NAME:``. NESTML 9 takes a model for a synapse
  only when its name ends in ``synapse``, so ``synapse stdp:`` becomes ``model stdp_synapse:`` (said).
- a NESTML 7 synapse's ``deliver_spike(w, d)``, ``d`` its ``@nest::delay`` parameter: ``emit_spike(w)``
  (NEST's connection delay, which ``@nest::delay`` stood for); and a synapse with equations but no
  ``update`` block gets ``update: integrate_odes()``, which NESTML 7 did implicitly.

:func:`upgrade` needs a function that runs NESTML's checks on texts (the CLI's is
:meth:`nestml_registry.compiler.pipeline.Compiler.check`, a sandboxed child process).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from nestml_registry.compiler.diagnostics import Diagnostic
from nestml_registry.compiler.hints import FREE_UNIT, UNIT_IN_MESSAGE_RE, odd_unit

Check = Callable[[dict[str, str]], list[Diagnostic]]
_DOCSTRING_RE = re.compile(r'^([ \t]*)"""(.*?)"""[ \t]*$', re.MULTILINE | re.DOTALL)
_KEYWORD_RE = re.compile(r"^([ \t]*)(neuron|synapse)([ \t]+)([A-Za-z_][A-Za-z0-9_]*)([ \t]*:)", re.MULTILINE)
_DELIVER_RE = re.compile(r"\bdeliver_spike\(([^,()]*(?:\([^()]*\)[^,()]*)*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)")
_DELAY_RE = re.compile(r"^[ \t]*([A-Za-z_][A-Za-z0-9_]*)\b[^#\n]*@nest::delay", re.MULTILINE)
_MODEL_LINE_RE = re.compile(r"^model[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*:", re.MULTILINE)
_BLOCK_RE = re.compile(r"^([ \t]+)[a-z]+[ \t]*:", re.MULTILINE)
_UPDATE_RE = re.compile(r"^([ \t]+)update[ \t]*:[^\n]*\n(?:[ \t]*(?:#[^\n]*)?\n)*?(?=([ \t]+)[^ \t#\n])", re.MULTILINE)
_PASSES = 2  # a unit NESTML finds only once another is fixed: never seen, but bounded
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Upgraded:
    """One file's upgrade: the new text, what changed (line, what), and what could not be upgraded."""

    name: str
    original: str
    text: str
    changes: list[tuple[int, str]] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.text != self.original

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def docstrings_to_comments(up: Upgraded) -> None:
    """``\"\"\"...\"\"\"`` blocks that stand on their own lines become ``#`` comments with the same lines."""

    def comment(m: re.Match[str]) -> str:
        indent = m.group(1)
        lines = m.group(2).split("\n")
        out = []
        for line in lines:
            body = line[len(indent):] if line.startswith(indent) else line.lstrip()
            out.append(f"{indent}#" + (f" {body}".rstrip() if body.strip() else ""))
        up.changes.append((_line_of(up.text, m.start()), 'a """ docstring became # comments'))
        return "\n".join(out)

    up.text = _DOCSTRING_RE.sub(comment, up.text)


def keywords_to_model(up: Upgraded) -> None:
    """``neuron NAME:`` / ``synapse NAME:`` become ``model NAME:`` (a synapse's name ends in ``synapse``)."""

    def model(m: re.Match[str]) -> str:
        indent, keyword, space, name, colon = m.groups()
        line = _line_of(up.text, m.start())
        new = name
        if keyword == "synapse" and not name.endswith("synapse"):
            new = f"{name}_synapse"
            up.changes.append((line, f"'synapse {name}:' became 'model {new}:' (NESTML 9 takes a model for a "
                                     f"synapse only when its name ends in 'synapse'; NEST will name it "
                                     f"{new}_nestml, not {name}_nestml)"))
        else:
            up.changes.append((line, f"'{keyword} {name}:' became 'model {name}:'"))
        return f"{indent}model{space}{new}{colon}"

    up.text = _KEYWORD_RE.sub(model, up.text)


def nestml7_synapses(up: Upgraded) -> None:
    """``deliver_spike(w, d)`` -> ``emit_spike(w)``; ``update: integrate_odes()`` where NESTML 7 implied it."""
    delays = set(_DELAY_RE.findall(up.text))

    def emit(m: re.Match[str]) -> str:
        line = _line_of(up.text, m.start())
        if m.group(2) in delays:
            up.changes.append((line, f"'deliver_spike(..., {m.group(2)})' became 'emit_spike(...)' (the delay is "
                                     "NEST's connection delay, as @nest::delay made it)"))
            return f"emit_spike({m.group(1).strip()})"
        up.changes.append((line, "'deliver_spike' became 'emit_spike'"))
        return "emit_spike(" + m.group(0)[len("deliver_spike("):]

    up.text = _DELIVER_RE.sub(emit, up.text).replace("deliver_spike(", "emit_spike(")
    starts = list(_MODEL_LINE_RE.finditer(up.text))
    for i in reversed(range(len(starts))):
        m = starts[i]
        end = starts[i + 1].start() if i + 1 < len(starts) else len(up.text)
        body, added = up.text[m.start():end], []
        first = _BLOCK_RE.search(body)
        if not m.group(1).endswith("synapse") or first is None:
            continue
        indent = first.group(1)
        if "emit_spike(" in body and not _has_block(body, "output"):
            added.append(("output", "spike", "'output: spike' added (NESTML 9 emits spikes through an output port)"))
        update = _UPDATE_RE.search(body)
        if _has_block(body, "equations") and "integrate_odes" not in body:
            if update is None:
                added.append(("update", "integrate_odes()", "'update: integrate_odes()' added (NESTML 7 integrated "
                                                            "a synapse's equations implicitly)"))
            else:
                body = body[:update.end()] + f"{update.group(2)}integrate_odes()\n" + body[update.end():]
                up.changes.append((_line_of(up.text, m.start() + update.end()), "'integrate_odes()' added first in "
                                   "'update' (NESTML 7 integrated a synapse's equations implicitly)"))
        kept = body.rstrip("\n")
        addition = "".join(f"\n\n{indent}{block}:\n{indent * 2}{stmt}" for block, stmt, _ in added)
        up.text = up.text[:m.start()] + kept + addition + (body[len(kept):] or "\n") + up.text[end:]
        line = _line_of(up.text, m.start() + len(kept))
        for k, (_, _, what) in enumerate(added):
            up.changes.append((line + 2 + 3 * k, what))


def _has_block(body: str, name: str) -> bool:
    return re.search(rf"^[ \t]+{name}[ \t]*:", body, re.MULTILINE) is not None


def number_free_units(up: Upgraded, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Write ``1 `` before each free-standing unit NESTML found; the diagnostics not fixed are returned."""
    lines = up.text.split("\n")
    at: dict[int, dict[int, str]] = {}
    left = []
    for d in diagnostics:
        m = UNIT_IN_MESSAGE_RE.search(d.message)
        if d.code != FREE_UNIT or d.line is None or d.column is None or m is None or not 0 < d.line <= len(lines):
            left.append(d)
            continue
        unit, col = m.group(1), d.column - 1
        if lines[d.line - 1][col:col + len(unit)] != unit:
            left.append(d)  # not where NESTML says: never guess
            continue
        odd = odd_unit(d)
        if odd is not None:
            left.append(_typo(d, odd, up.text))  # a typo far more often than a unit: for the person
            continue
        at.setdefault(d.line, {})[col] = unit
    for line, units in at.items():
        text = lines[line - 1]
        for col in sorted(units, reverse=True):
            text = text[:col] + "1 " + text[col:]
        lines[line - 1] = text
        shown = ", ".join(f"'1 {units[c]}'" for c in sorted(units))
        up.changes.append((line, f"free-standing unit{'s' if len(units) > 1 else ''} written {shown}"))
    up.text = "\n".join(lines)
    return left


def _typo(d: Diagnostic, unit: str, text: str) -> Diagnostic:
    """The error for a free-standing name that NESTML reads as an unusual unit: left as it is."""
    code = "\n".join(line.split("#", 1)[0] for line in text.split("\n"))
    names = sorted({n for n in _NAME_RE.findall(code) if n != unit and _one_edit(n, unit)})
    guess = f"did you mean {' or '.join(repr(n) for n in names[:3])}? " if names else ""
    return Diagnostic.error(
        f"'{unit}' stands alone where a value belongs, and NESTML reads it as a unit that models do not use; "
        f"{guess}upgrade leaves it as it is: write the name you meant, or '1 {unit}' if it is the unit",
        d.file, d.line, d.column, code="UNKNOWN_NAME")


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` by inserting, deleting or replacing one character."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def upgrade(texts: dict[str, str], check: Check) -> list[Upgraded]:
    """Upgrade each text (file name -> NESTML text); NESTML's remaining errors are the diagnostics."""
    ups = [Upgraded(name, text, text) for name, text in texts.items()]
    for up in ups:
        docstrings_to_comments(up)
        keywords_to_model(up)
        nestml7_synapses(up)
    pending = list(ups)
    for attempt in range(_PASSES + 1):
        if not pending:
            break
        found = [d for d in check({up.name: up.text for up in pending}) if d.severity == "error"]
        still = []
        for up in pending:
            mine = [d for d in found if d.file == up.name]
            if attempt == _PASSES:
                up.diagnostics = mine + ([Diagnostic.error(
                    f"free-standing units were still found after {_PASSES} rewrites; write the rest as '1 mV' by "
                    "hand", file=up.name, code=FREE_UNIT)] if any(d.code == FREE_UNIT for d in mine) else [])
                continue
            before = up.text
            up.diagnostics = number_free_units(up, mine)
            if up.text != before:
                still.append(up)  # checked again: what is left, and nothing new
        pending = still
    for up in ups:
        up.changes.sort()
    return ups
