"""Turn .nestml sources into NEST extension modules, cached by content and toolchain.

Nothing here imports ``pynestml`` or ``nest``: NESTML runs in child processes
(:mod:`nestml_registry.compiler.codegen`, :mod:`nestml_registry.compiler.introspect`).
"""

from nestml_registry.compiler.errors import CompilerError, InputError, ToolchainError
from nestml_registry.compiler.request import BuildRequest, Pair
from nestml_registry.compiler.result import BuildResult
from nestml_registry.compiler.sources import Source

__all__ = [
    "BuildRequest",
    "BuildResult",
    "CompilerError",
    "InputError",
    "Pair",
    "Source",
    "ToolchainError",
]
