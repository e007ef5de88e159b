"""The simulator's one error type: a message that says what is wrong and what to do."""

from __future__ import annotations

from typing import Any


class SimulatorError(Exception):
    """A network, a reference or a module that cannot be run; raised before NEST is touched where possible.

    ``code`` names the kind of problem (``unknown_model``, ``invalid_parameter``, ``wrong_toolchain``, ...),
    ``details`` says more for ``--json`` output, and ``input_error`` tells the CLI whether the user's input
    was at fault (exit status 2) or the run itself failed (exit status 1). ``quiet``: another process says
    it (rank 0 of an MPI job, whose error every rank raises)."""

    def __init__(self, message: str, code: str = "simulator_error", details: dict[str, Any] | None = None,
                 *, input_error: bool = True, quiet: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details or {}
        self.input_error = input_error
        self.quiet = quiet

    def __str__(self) -> str:
        return self.message
