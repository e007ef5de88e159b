"""What to write instead, for the NESTML 7/8 text that NESTML 9 refuses (see
:mod:`nestml_registry.compiler.upgrade`): NESTML's own message stays first, the fix and the command that
makes it follow."""

from __future__ import annotations

import dataclasses
import re

from nestml_registry.compiler.diagnostics import Diagnostic

FREE_UNIT = "NO_SOLITARY_PHYSICAL_UNITS"
_UNIT_RE = re.compile(r"\(([^()]+)\)\s*$")
_OLD_KEYWORD_RE = re.compile(r"^[ \t]*(neuron|synapse)[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*:", re.MULTILINE)


def upgrade_command(file: str | None) -> str:
    return f"'nestml-registry upgrade {file or 'FILE.nestml'} --in-place' rewrites NESTML 7/8 text for NESTML 9"


def _hint(d: Diagnostic) -> str | None:
    msg = d.message
    if d.code == FREE_UNIT:
        m = _UNIT_RE.search(msg)
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


def explain(d: Diagnostic) -> Diagnostic:
    """``d`` with what to write instead, when it is a NESTML 7/8-ism; otherwise ``d`` itself."""
    hint = _hint(d)
    if hint is None:
        return d
    return dataclasses.replace(d, message=f"{d.message}: {hint}; {upgrade_command(d.file)}")


def old_keyword(text: str, file: str) -> str | None:
    """For a source with no ``model`` line: the NESTML 7 declaration it has instead, said how to fix."""
    m = _OLD_KEYWORD_RE.search(text)
    if m is None:
        return None
    line = text.count("\n", 0, m.start()) + 1
    return (f"{file}:{line}: '{m.group(1)} {m.group(2)}:' is NESTML 7 syntax; NESTML 9 writes 'model {m.group(2)}:' "
            f"(and # comments for docstrings): {upgrade_command(file)}")
