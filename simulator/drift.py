"""What a run's references resolved to, said out loud, and how that differs from the last run.

An unpinned ``nestml:custom_izh_neuron`` follows the newest version: a colleague's new version changes a
network's results. Every run therefore says what each reference resolved to (model@version and the
module's sha256 prefix), and when the lock file the last run left in the same output folder says
otherwise, it says what changed and how to repeat the old run (pin ``@VERSION``, or ``--locked``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from nestml_registry.simulator import lock
from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.plan import Plan

logger = logging.getLogger(__name__)


def resolutions(plan: Plan) -> list[str]:
    return [f"nestml:{ref} -> {r.label} (module {r.module.name}, sha256 {r.module.sha256[:12]})"
            for ref, r in sorted(plan.resolved.items())]


def differences(plan: Plan, last_lock: Path) -> list[str]:
    """How ``plan`` differs from the lock file of the last run (nothing when there is none, or it is unreadable)."""
    try:
        before = lock.read(last_lock)
    except SimulatorError as exc:
        logger.debug("no comparison with %s: %s", last_lock, exc.message)
        return []
    out = []
    for ref, r in sorted(plan.resolved.items()):
        old = before.get(ref)
        if old is None or (old.model, old.version, old.module.sha256) == (r.model, r.version, r.module.sha256):
            continue
        what = (f"{old.label}, now {r.label}" if (old.model, old.version) != (r.model, r.version)
                else f"{old.label} built as sha256 {old.module.sha256[:12]}, now sha256 {r.module.sha256[:12]}")
        kept = last_lock.with_name(lock.PREVIOUS_NAME)
        out.append(f"nestml:{ref} differs from the last run in this output folder: was {what}; results may differ. "
                   f"The last run's lock file is kept as {kept}. To repeat the last run: nestml-registry run CONFIG "
                   f"--locked {kept}, or pin the reference as nestml:{old.model}@{old.version}")
    return out


def report(plan: Plan, last_lock: Path | None) -> list[str]:
    """The lines a run prints before it builds the network."""
    lines = resolutions(plan)
    if last_lock is not None and last_lock.is_file():
        lines += differences(plan, last_lock)
    return lines
