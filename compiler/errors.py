"""Errors of the compiler package.

A compile that fails because of the *model* is not an exception: it is a failed
:class:`~nestml_registry.compiler.result.BuildResult` with diagnostics. These exceptions are for
inputs that cannot be compiled at all and for a broken toolchain.
"""


class CompilerError(Exception):
    """Base class of the compiler's errors; ``code`` names the kind (the CLI's and the API's error code)."""

    code = "compiler_error"


class InputError(CompilerError):
    """The request itself is wrong (empty file, not UTF-8, bad module name, unknown pair model...)."""

    code = "invalid_input"


class ToolchainError(CompilerError):
    """NEST, NESTML or the C++ toolchain is missing or unusable on this machine."""

    code = "toolchain_error"


class CheckFailed(CompilerError):
    """The simulations of a comparison failed (the model raised, crashed or ran too long): not a disagreement."""

    code = "check_failed"
