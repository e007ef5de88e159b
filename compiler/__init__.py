"""Turn .nestml sources into NEST extension modules, cached by content and toolchain.

Nothing here imports ``pynestml`` or ``nest``: NESTML runs in child processes
(:mod:`compiler.codegen`, :mod:`compiler.introspect`).
"""

from compiler.errors import CompilerError, InputError, ToolchainError
from compiler.request import BuildRequest, Pair
from compiler.result import BuildResult
from compiler.sources import Source

__all__ = [
    "BuildRequest",
    "BuildResult",
    "CompilerError",
    "InputError",
    "Pair",
    "Source",
    "ToolchainError",
]
