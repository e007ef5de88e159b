"""The lock file a run leaves in its output folder: what every reference resolved to.

``nestml-registry run --locked LOCKFILE`` (or ``use_registry(locked=...)``) resolves exactly that
again: the same model versions and the same module files (by sha256), from the local module cache
when it has them, so a locked run needs no registry once the cache is filled.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nestml_registry.compiler.integrity import write_atomic
from nestml_registry.service.client.messages import check_filename, check_sha256
from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.plan import ModuleFile, Plan, Resolved

LOCK_NAME = "nestml-registry.lock.json"
PREVIOUS_NAME = "nestml-registry.lock.previous.json"  # the last run's, kept when this run resolves otherwise
FORMAT = 1


def to_document(plan: Plan, config: str | None = None) -> dict[str, Any]:
    return {
        "nestml_registry_lock": FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "registry": plan.registry,
        "toolchain": plan.toolchain.to_dict(),
        "references": {ref: r.to_dict() for ref, r in sorted(plan.resolved.items())},
        "modules": {m.sha256: m.to_dict() for m in plan.modules()},
    }


def write(plan: Plan, directory: str | os.PathLike, config: str | None = None, previous: bytes | None = None) -> Path:
    """Write the lock file into ``directory`` (atomically) and return its path; ``previous``: the last run's
    lock file, kept beside it as :data:`PREVIOUS_NAME` (it resolved otherwise)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if previous is not None:
        write_atomic(directory / PREVIOUS_NAME, previous)
    return write_file(plan, directory / LOCK_NAME, config)


def write_file(plan: Plan, path: str | os.PathLike, config: str | None = None) -> Path:
    """The plan's lock document, written atomically to ``path``."""
    path = Path(path)
    write_atomic(path, (json.dumps(to_document(plan, config), indent=1, sort_keys=True) + "\n").encode())
    return path


def read(path: str | os.PathLike) -> dict[str, Resolved]:
    """The references of a lock file; raises SimulatorError for a missing or malformed one."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise SimulatorError(f"{path}: no such lock file; a run writes {LOCK_NAME} into its output folder",
                             "missing_file") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SimulatorError(f"{path}: not a readable lock file ({exc}); use the {LOCK_NAME} a run wrote",
                             "invalid_lock") from exc
    return references(doc, str(path))


def references(doc: Any, where: str) -> dict[str, Resolved]:
    """The references of a lock document (:func:`to_document`); ``where`` names it in errors."""
    try:
        if doc.get("nestml_registry_lock") != FORMAT:
            raise ValueError(f"format {doc.get('nestml_registry_lock')!r}, expected {FORMAT}")
        modules = {check_sha256(sha): ModuleFile(check_filename(m["name"]), sha, tuple(m.get("registers") or ()))
                   for sha, m in doc["modules"].items()}
        return {ref: Resolved(ref, r["model"], int(r["version"]), r["kind"], modules[r["module"]],
                              tuple(r.get("parameters") or ()), tuple(r.get("state") or ()),
                              tuple(r.get("continuous_ports") or ()))
                for ref, r in doc["references"].items()}
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise SimulatorError(f"{where}: not a valid {LOCK_NAME} ({type(exc).__name__}: {exc}); use the lock file "
                             "a run wrote, unedited", "invalid_lock") from exc


def toolchain_of(path: str | os.PathLike) -> dict[str, Any]:
    try:
        return dict(json.loads(Path(path).read_text()).get("toolchain") or {})
    except (OSError, ValueError, AttributeError):
        return {}
