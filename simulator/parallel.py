"""Runs under an MPI launcher: refused before ``import nest`` when this machine's NEST has no MPI, and
resolved once for the whole job when it has.

A NEST built without MPI that sees Open MPI's launcher variables prints "You seem to be using NEST via an
MPI launcher ..." and exits every rank with status 127 when it is imported; under other launchers every
rank would run its own full copy of the network and write the same output files. Both are refused here,
from the launcher's variables and the toolchain's build features, with what to install instead.

With a NEST built with MPI (and mpi4py), :class:`Job` lets rank 0 alone ask the registry and broadcast
its plan: a 64-rank job is one resolve, one download per node, one lock file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from nestml_registry.compiler.launcher import launcher_of, world
from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.plan import LocalToolchain

logger = logging.getLogger(__name__)
T = TypeVar("T")


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


@dataclass
class Job:
    """The MPI job this process is a rank of: mpi4py's world communicator and this node's (the ranks that
    share its memory, ``MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)``)."""

    comm: Any
    node: Any

    @property
    def rank(self) -> int:
        return int(self.comm.Get_rank())

    @property
    def size(self) -> int:
        return int(self.comm.Get_size())

    @property
    def node_rank(self) -> int:
        return int(self.node.Get_rank())

    @classmethod
    def current(cls, toolchain: LocalToolchain, env: Mapping[str, str] | None = None) -> Job | None:
        """The job, when this process is one of several ranks of a NEST with MPI and mpi4py is installed;
        None otherwise (every process then resolves on its own)."""
        job = world(os.environ if env is None else env)
        if job is None or job[0] <= 1 or not toolchain.has_mpi:
            return None
        try:
            from mpi4py import MPI
        except ImportError:
            logger.warning("one of %d ranks, but mpi4py is not installed: every rank resolves and downloads on its "
                           "own (pip install mpi4py: rank 0 then resolves for all)", job[0])
            return None
        comm = MPI.COMM_WORLD
        return cls(comm, comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank()))

    def share(self, make: Callable[[], tuple[T, dict[str, Any]]], use: Callable[[dict[str, Any]], T]) -> T:
        """``make`` on rank 0 only (a result and the document that stands for it, e.g. a plan and its lock
        document), broadcast; ``use`` of the document on every other rank: first on one rank per node (it
        fills the node's module cache), then on the node's others (from the cache). An error of rank 0 is
        raised on every rank (marked ``quiet`` there: rank 0 says it)."""
        if self.rank == 0:
            try:
                result, document = make()
            except SimulatorError as exc:
                self.comm.bcast(("error", (exc.message, exc.code, exc.details, exc.input_error)), root=0)
                raise
            self.comm.bcast(("ok", document), root=0)
        else:
            kind, payload = self.comm.bcast(None, root=0)
            if kind == "error":
                message, code, details, input_error = payload
                raise SimulatorError(message, code, details, input_error=input_error, quiet=True)
            document = payload
        try:
            if self.rank != 0 and self.node_rank == 0:
                result = use(document)
        finally:
            self.node.Barrier()  # the node's cache is filled (or its leader failed: the others try themselves)
        if self.node_rank != 0:
            result = use(document)
        return result
