"""How a version compares, as pages and ``show`` say it: its verdict against its NEST counterpart in a line
(the stored check of :mod:`nestml_registry.compiler.checking`, or why there is none), and what a result on a
new toolchain changed against another's (re-validation), also as ``/healthz`` problems."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nestml_registry.compiler.counterparts import counterpart_of
from nestml_registry.compiler.protocol import RHEOBASE_TOLERANCE
from nestml_registry.registry.tables import Characterisation, ModelVersion

FEATURE_CHANGE = 0.05  # a feature that moves more than this (relative) on another toolchain is flagged


def verdict_document(check: dict[str, Any] | None, nestml_name: str | None, kind: str,
                     reference: str) -> dict[str, Any]:
    """A version's verdict against its NEST counterpart as pages and ``show`` say it: the stored check with
    a one-line ``summary`` ("agrees with nest:iaf_psc_alpha", "differs from nest:aeif_psc_alpha: spike
    counts"), or ``verdict`` none with why (no counterpart; not checked yet)."""
    if check:
        against = check.get("against")
        if check.get("verdict") == "agrees":
            summary = f"agrees with {against}"
        elif check.get("verdict") == "differs":
            summary = f"differs from {against}: {', '.join(_aspects(check)) or 'see the table'}"
        else:
            summary = f"the check against {against} failed"
        return dict(check, summary=summary)
    counterpart = counterpart_of(nestml_name, kind)
    if counterpart is None:
        return {"verdict": "none", "summary": "no NEST counterpart", "against": None}
    return {"verdict": "none", "against": f"nest:{counterpart.builtin}",
            "summary": f"not checked against nest:{counterpart.builtin} yet: `nestml-registry characterise "
                       f"{reference}` checks it"}


def _aspects(check: dict[str, Any]) -> list[str]:
    """What differs, over the stimuli that disagree: spike counts, spike times, V_m; a synapse's weights."""
    tol = float((check.get("tolerances") or {}).get("vm_mv") or 0.0)
    found = []
    for row in check.get("stimuli") or []:
        if row.get("agree"):
            continue
        spikes = row.get("spikes") or []
        dv = row.get("max_vm_diff_mV")
        if "max_weight_diff" in row:
            found.append("weights")
        elif len(spikes) == 2 and spikes[0] != spikes[1]:
            found.append("spike counts")
        elif dv is not None and dv > tol:
            found.append("V_m")
        else:
            found.append("spike times")
    return sorted(set(found), key=["spike counts", "spike times", "V_m", "weights"].index)


def differences(old: Characterisation, new: Characterisation) -> list[str]:
    """What a re-validation flags: the status, the verdict, the rheobase (beyond 2 x the protocol's relative
    tolerance) or a feature (beyond FEATURE_CHANGE, relative) changed."""
    found = []
    if old.status != new.status:
        found.append(f"characterisation {old.status} -> {new.status}")
    if old.verdict != new.verdict:
        found.append(f"against NEST {old.verdict or 'none'} -> {new.verdict or 'none'}")
    a, b = (old.result or {}).get("rheobase_pA"), (new.result or {}).get("rheobase_pA")
    if (a is None) != (b is None) or (a and b and abs(a - b) > 2 * RHEOBASE_TOLERANCE * max(abs(a), abs(b))):
        found.append(f"rheobase {a} -> {b} pA")
    before, after = (old.result or {}).get("features") or {}, (new.result or {}).get("features") or {}
    for name in sorted(set(before) & set(after)):
        x, y = before[name], after[name]
        if (x is None) != (y is None) or (x is not None and y is not None
                                          and abs(x - y) > FEATURE_CHANGE * max(abs(x), abs(y), 1e-9)):
            found.append(f"{name} {x} -> {y}")
    return found


def changed_problems(session: Session, shown: int = 3) -> list[str]:
    """/healthz's line for re-validations whose result changed against another toolchain (none: [])."""
    rows = session.execute(select(ModelVersion.name, ModelVersion.version, Characterisation.toolchain,
                                  Characterisation.changed)
                           .join(ModelVersion, ModelVersion.id == Characterisation.model_version_id)
                           .where(Characterisation.changed.is_not(None))
                           .order_by(Characterisation.finished_at.desc()).limit(shown + 1)).all()
    if not rows:
        return []
    total = session.scalar(select(func.count()).where(Characterisation.changed.is_not(None))) or 0
    listed = "; ".join(f"{n}@{v} on {t} ({c})" for n, v, t, c in rows[:shown])
    return [f"{total} characterisation(s) changed on a new toolchain: {listed}"
            + (" ..." if total > shown else "") + ": see each model page's toolchains; a new NEST or NESTML behaves "
            "differently for these models"]
