"""``nestml-registry prefetch``: fill this machine's module cache for a network (or a lock file) and exit.

Before a cluster job, run it once per node (``srun --ntasks-per-node=1 nestml-registry prefetch --locked
LOCKFILE``): the job's ranks then find every module in the node's cache, and a run with ``--locked`` needs
no registry at all. NEST is not imported (the toolchain is detected in a child process, as always).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nestml_registry.simulator import lock
from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.plan import Plan
from nestml_registry.simulator.resolve import Resolver
from nestml_registry.simulator.session import RegistrySession, load_config


def prefetch(config: str | os.PathLike | None = None, *, locked: str | os.PathLike | None = None,
             server: str | None = None, token: str | None = None, build: bool = True,
             build_timeout: float | None = None, cache: str | os.PathLike | None = None,
             progress: Callable[[str], None] | None = None,
             lock_out: str | os.PathLike | None = None) -> dict[str, Any]:
    """Resolve ``config`` (checked as a run checks it) or read ``locked``, fetch every module into the
    cache (sha256 checked) and return what is there; ``lock_out``: also write the plan as a lock file."""
    if config is None and locked is None:
        raise SimulatorError("nothing to prefetch: give the BMTK config (config.json) or --locked LOCKFILE",
                             "usage")
    session = RegistrySession.create(server, token, locked=locked, build=build, build_timeout=build_timeout,
                                     cache=cache, progress=progress, write_lock=False)
    plan: Plan | None
    if config is not None:
        if not Path(config).is_file():
            raise SimulatorError(f"{config}: no such config file; give the BMTK simulation config (config.json)",
                                 "missing_file")
        plan = session.prepare(load_config(Path(config)))
    else:
        assert locked is not None
        resolver = Resolver(session.client, session.local_toolchain(), session.cache, build=False,
                            progress=progress)
        plan = resolver.from_lock(lock.read(locked), lock.toolchain_of(locked), None, str(locked))
    written = None
    if plan is not None and lock_out is not None:
        try:
            written = lock.write_file(plan, lock_out, str(config) if config else None)
        except OSError as exc:
            raise SimulatorError(f"cannot write the lock file {lock_out} ({exc.strerror or exc}): give a path in a "
                                 "folder you can write", "not_writable") from exc
    modules = [] if plan is None else [
        {"name": m.name, "sha256": m.sha256, "path": str(plan.paths[m.sha256])} for m in plan.modules()]
    return {"toolchain": session.local_toolchain().id, "cache": str(session.cache.root), "modules": modules,
            "lock": str(written) if written else None}
