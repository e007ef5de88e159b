"""MPI launchers read from the environment (no MPI, no NEST): who is a rank, and a child that is not one."""

from __future__ import annotations

import pytest

from nestml_registry.compiler.launcher import launcher_free, launcher_of, world
from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.parallel import check_launcher
from nestml_registry.simulator.plan import LocalToolchain

OPEN_MPI = {"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1", "PMIX_RANK": "1", "PATH": "/usr/bin"}
WHEEL = LocalToolchain("nest3.10.0-linux-x86_64-gcc12.2.0-abi0-123456789abc", "3.10.0", 0, "linux-x86_64")
MPI = LocalToolchain("nest3.10.0-mpi-linux-x86_64-gcc12.2.0-abi1-123456789abc", "3.10.0", 1, "linux-x86_64",
                     features=("+mpi",))


@pytest.mark.parametrize(("env", "expected"), [
    ({}, None),
    ({"SLURM_NTASKS": "64", "SLURM_PROCID": "0"}, None),  # a batch script is not a rank
    (OPEN_MPI, (2, 1)),
    ({"PMIX_SIZE": "4", "PMIX_RANK": "3"}, (4, 3)),  # srun --mpi=pmix
    ({"PMI_SIZE": "3", "PMI_RANK": "0"}, (3, 0)),  # MPICH's Hydra
    ({"PMI_SIZE": "many", "PMI_RANK": "0"}, None),
])
def test_world(env: dict[str, str], expected: tuple[int, int] | None) -> None:
    assert world(env) == expected


def test_a_child_without_the_launchers_variables() -> None:
    assert launcher_free(OPEN_MPI) == {"PATH": "/usr/bin"}
    assert launcher_of(OPEN_MPI) == "Open MPI's mpirun"


def test_several_ranks_need_a_nest_with_mpi() -> None:
    with pytest.raises(SimulatorError) as refused:
        check_launcher(WHEEL, OPEN_MPI)
    assert refused.value.code == "no_mpi" and refused.value.input_error
    assert "one of 2 ranks started by Open MPI's mpirun" in refused.value.message
    assert "scripts/setup.sh mpi" in refused.value.message and "-n 1" in refused.value.message
    check_launcher(MPI, OPEN_MPI)
    check_launcher(WHEEL, {"OMPI_COMM_WORLD_SIZE": "1", "OMPI_COMM_WORLD_RANK": "0"})
    check_launcher(WHEEL, {})
