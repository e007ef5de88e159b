"""What an MPI launcher (``mpirun``, ``mpiexec``, ``srun``) tells the processes it starts, read from the
environment without importing MPI or NEST.

A rank's environment names its job (Open MPI's ``OMPI_COMM_WORLD_*``, PMIx's ``PMIX_*`` as ``srun
--mpi=pmix`` sets them, the PMI-1/2 and Hydra ``PMI_*``, Intel MPI's ``MPI_LOCAL*``). Slurm's own task
variables alone say nothing: a batch script has them and is not a rank. A child process that inherits
them believes it is a rank of that job: the NEST probe of :mod:`nestml_registry.compiler.toolchain` runs
without them.
"""

from __future__ import annotations

from collections.abc import Mapping

# prefixes of the variables that make a process a rank of an MPI job
LAUNCHER_PREFIXES = ("OMPI_", "PMIX_", "PMI_", "MPI_LOCALRANKID", "MPI_LOCALNRANKS", "HYDRA_", "I_MPI_", "MPIR_")
# (size variable, rank variable) pairs, in the order a launcher is recognised
_WORLD = (("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"), ("PMIX_SIZE", "PMIX_RANK"), ("PMI_SIZE", "PMI_RANK"),
          ("MPI_LOCALNRANKS", "MPI_LOCALRANKID"))


def launcher_free(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the variables of an MPI launcher: for a child that must not join the job."""
    return {k: v for k, v in env.items() if not k.startswith(LAUNCHER_PREFIXES)}


def world(env: Mapping[str, str]) -> tuple[int, int] | None:
    """``(size, rank)`` of the MPI job this process was started in, or None when no launcher started it
    (or the variables do not read as numbers)."""
    for size_var, rank_var in _WORLD:
        size, rank = env.get(size_var), env.get(rank_var)
        if size is None and rank is None:
            continue
        try:
            return int(size or "1"), int(rank or "0")
        except ValueError:
            continue
    return None


def launcher_of(env: Mapping[str, str]) -> str:
    """A name for the launcher, for messages."""
    if "OMPI_COMM_WORLD_SIZE" in env:
        return "Open MPI's mpirun"
    if "SLURM_STEP_ID" in env:
        return "srun"
    return "an MPI launcher"
