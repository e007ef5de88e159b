"""Runs under an MPI launcher: refused before ``import nest`` when this machine's NEST has no MPI.

A NEST built without MPI that sees Open MPI's launcher variables prints "You seem to be using NEST via an
MPI launcher ..." and exits every rank with status 127 when it is imported; under other launchers every
rank would run its own full copy of the network and write the same output files. Both are refused here,
from the launcher's variables and the toolchain's build features, with what to install instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from nestml_registry.compiler.launcher import launcher_of, world
from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.plan import LocalToolchain


def check_launcher(toolchain: LocalToolchain, env: Mapping[str, str] | None = None) -> None:
    """Raise :class:`SimulatorError` (``no_mpi``) for a run of more than one rank on a NEST without MPI."""
    env = os.environ if env is None else env
    job = world(env)
    if job is None or job[0] <= 1 or toolchain.has_mpi:
        return
    raise SimulatorError(
        f"this process is one of {job[0]} ranks started by {launcher_of(env)}, but this machine's NEST "
        f"({toolchain.id}) is built without MPI: NEST would stop every rank at 'import nest' (or each rank would "
        "run the whole network on its own). Install NEST with MPI (`bash scripts/setup.sh mpi`, then run "
        "from .venv-mpi), or run in one process (no mpirun, or -n 1; threads: run.nest.local_num_threads)",
        "no_mpi", {"ranks": job[0], "toolchain": toolchain.id})
