"""``nestml-registry run CONFIG.json``: a BMTK PointNet run with ``nestml:`` models from the registry.

Everything is resolved, fetched and checked before BMTK reads the network; then the usual BMTK
lines run unchanged (in this process: NEST keeps one kernel per process).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nestml_registry.simulator.errors import SimulatorError

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    config: Path
    output_dir: Path | None
    lock: Path | None
    models: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"status": "succeeded", "config": str(self.config),
                "output_dir": str(self.output_dir) if self.output_dir else None,
                "lock": str(self.lock) if self.lock else None, "models": self.models}


def run(config: str | os.PathLike, *, server: str | None = None, token: str | None = None,
        locked: str | os.PathLike | None = None, build: bool = True, build_timeout: float | None = None,
        cache: str | os.PathLike | None = None, progress: Callable[[str], None] | None = None,
        hooks: Sequence[str | os.PathLike] = ()) -> RunResult:
    """Resolve, check, then run the config with BMTK PointNet. Raises SimulatorError for a network
    that cannot run (before NEST is touched where possible, and before anything is written to the output
    folder); a failure inside BMTK or NEST propagates. ``hooks``: Python files to import first (their
    ``@cell_model`` functions)."""
    config_path = Path(config)
    if not config_path.is_file():
        raise SimulatorError(f"{config_path}: no such config file; give the BMTK simulation config (config.json)",
                             "missing_file")
    from nestml_registry.simulator import hooks as hook_files
    from nestml_registry.simulator.parallel import check_launcher
    from nestml_registry.simulator.session import RegistrySession, load_config, read_config, set_active

    session = RegistrySession.create(server, token, locked=locked, build=build, build_timeout=build_timeout,
                                     cache=cache, progress=progress)
    check_launcher(session.local_toolchain())  # before anything imports nest (the hooks may)
    hook_files.import_files(hooks)  # their @cell_model functions, before the network is built

    plan = session.prepare(load_config(config_path))  # before NEST is imported: refusals come at once
    from nestml_registry.simulator.bmtk import patch_bmtk

    patch_bmtk()
    set_active(session)
    from bmtk.simulator import pointnet

    configure = read_config(pointnet.Config, config_path)  # PointNetwork.from_config keeps the plan made above
    configure.build_env()  # (empties the output folder when the config says overwrite_output_dir)
    network = pointnet.PointNetwork.from_config(configure)
    sim = pointnet.PointSimulator.from_config(configure, network)
    sim.run()
    output_dir = (configure.get("output") or {}).get("output_dir")
    models = [{"reference": f"nestml:{ref}", "model": r.model, "version": r.version, "kind": r.kind,
               "module": r.module.name, "sha256": r.module.sha256}
              for ref, r in (plan.resolved.items() if plan else [])]
    return RunResult(config_path, Path(output_dir) if output_dir else None, session.lock_path, models)
