"""What to write instead, for the NESTML 7/8 text that NESTML 9 refuses (see
:mod:`nestml_registry.compiler.upgrade`): NESTML's own message stays first, the fix and the command that
makes it follow."""

from __future__ import annotations

import dataclasses
import re

from nestml_registry.compiler.diagnostics import Diagnostic

FREE_UNIT = "NO_SOLITARY_PHYSICAL_UNITS"
_PREFIXED = ("s", "V", "A", "S", "Ohm", "F", "Hz", "mol", "M", "m", "L", "l", "g", "W", "J", "C", "K")
# the units models use: a free-standing name NESTML reads as any other unit is a typo far more often
PLAUSIBLE_UNITS = frozenset({f"{prefix}{unit}" for unit in _PREFIXED for prefix in ("", "k", "M", "G", "m", "u",
                                                                                      "n", "p", "f")}
                            | {"cm", "dm", "min", "h", "d", "mmHg", "percent"}) - {"Ms", "Gs"}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# the unit in NESTML's message, as NESTML wrote it or with a hint after it (what Compiler.check returns)
UNIT_IN_MESSAGE_RE = re.compile(r"\(([^()]+)\)(?::|\s*$)")
_OLD_KEYWORD_RE = re.compile(r"^[ \t]*(neuron|synapse)[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*:", re.MULTILINE)


def upgrade_command(file: str | None) -> str:
    return f"'nestml-registry upgrade {file or 'FILE.nestml'} --in-place' rewrites NESTML 7/8 text for NESTML 9"


def odd_unit(d: Diagnostic) -> str | None:
    """The name in a free-standing-unit diagnostic that is no unit models use (a typo, most likely), or None."""
    m = UNIT_IN_MESSAGE_RE.search(d.message) if d.code == FREE_UNIT else None
    return next((u for u in _NAME_RE.findall(m.group(1)) if u not in PLAUSIBLE_UNITS), None) if m else None


def _hint(d: Diagnostic) -> str | None:
    msg = d.message
    if d.code == FREE_UNIT:
        m = UNIT_IN_MESSAGE_RE.search(msg)
        unit = m.group(1) if m else "mV"
        return f"write '1 {unit}' (a number and the unit) where '{unit}' stands alone, as NESTML 9 requires"
    if "token recognition error at: '\"" in msg:
        return 'NESTML 9 has no """ docstrings: write them as # comments'
    m = re.search(r"mismatched input '(neuron|synapse)' expecting", msg)
    if m:
        return f"NESTML 9 declares every model as 'model NAME:', not '{m.group(1)} NAME:'"
    if 'Function "deliver_spike" is not declared' in msg:
        return ("NESTML 9 takes a model for a synapse only when its name ends in 'synapse': rename it "
                "(e.g. 'model stdp_synapse:')")
    return None


def explain(d: Diagnostic, command: bool = True) -> Diagnostic:
    """``d`` with what to write instead, when it is a NESTML 7/8-ism (and, with ``command``, the upgrade
    command); a free-standing name that is no unit models use is said to be a likely typo instead."""
    odd = odd_unit(d)
    if odd is not None:
        return dataclasses.replace(d, message=f"{d.message}: '{odd}' is no unit models use; if it is a mistyped "
                                              "name, write the name you meant")
    hint = _hint(d)
    if hint is None:
        return d
    return dataclasses.replace(d, message=f"{d.message}: {hint}" + (f"; {upgrade_command(d.file)}" if command
                                                                     else ""))


def explain_all(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Each diagnostic explained; the upgrade command said once per file (with its first NESTML 7/8-ism)."""
    told: set[str | None] = set()
    out = []
    for d in diagnostics:
        first = d.file not in told and odd_unit(d) is None and _hint(d) is not None
        out.append(explain(d, command=first))
        if first:
            told.add(d.file)
    return out


def old_keyword(text: str, file: str) -> str | None:
    """For a source with no ``model`` line: the NESTML 7 declaration it has instead, said how to fix."""
    m = _OLD_KEYWORD_RE.search(text)
    if m is None:
        return None
    line = text.count("\n", 0, m.start()) + 1
    return (f"{file}:{line}: '{m.group(1)} {m.group(2)}:' is NESTML 7 syntax; NESTML 9 writes 'model {m.group(2)}:' "
            f"(and # comments for docstrings): {upgrade_command(file)}")
