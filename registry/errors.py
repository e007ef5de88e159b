"""The registry's errors. Each message says what is wrong and what to do about it."""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """Base class of the registry's errors."""

    code = "registry_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return self.message


class InvalidInput(RegistryError):
    """A name, file name or value that the registry refuses to store or look up."""

    code = "invalid_input"


class NotFound(RegistryError):
    """No row or artifact with that name, id or digest."""

    code = "not_found"


class Conflict(RegistryError):
    """The request contradicts what is already stored."""

    code = "conflict"


class NameOwned(RegistryError):
    """Publishing (or changing) a model name that someone else owns: forbidden, not a conflict."""

    code = "name_owned"


class BreakingChange(RegistryError):
    """A new version that drops parameters, state variables or input ports its previous version has, without
    its publisher saying it may (``push --breaking``)."""

    code = "breaking_change"


class NotReproducible(RegistryError):
    """A build made again (to repair its module) gave other bytes than the module it registered."""

    code = "not_reproducible"


class TooLarge(InvalidInput):
    """An upload bigger than the limit."""

    code = "too_large"


class CorruptArtifact(RegistryError):
    """A stored file whose bytes no longer match the sha256 in its name: it is never served."""

    code = "corrupt_artifact"


class ResolveError(RegistryError):
    """A model reference that resolves to no module; ``details`` says what exists instead. The subclasses
    name the reason (the API's status for each is in ``nestml_registry.service.api.errors``); this class itself
    is several references that do not resolve, each in ``details["errors"]`` with its own ``code``.

    Keys that may appear in ``details``: ``reference``, ``toolchain``, ``close_names``, ``versions``,
    ``toolchains`` (those the version has a module for), ``build`` (a queued, running or failed build
    for it: ``id``, ``status``, ``error``), ``conflicts``, ``module_conflicts``, ``errors``.
    """

    code = "unresolved"


class InvalidReference(ResolveError):
    """Text that is not a model reference (``details["syntax"]`` says how to write one)."""

    code = "invalid_reference"


class UnknownModel(ResolveError):
    """No model of that name (``close_names``), or not the version asked for (``versions``)."""

    code = "unknown_model"


class NotBuilt(ResolveError):
    """The version exists but has no module for the toolchain (yet): ``toolchains`` lists those it has, and
    ``build`` a build for this toolchain that is queued, running or failed."""

    code = "not_built"


class VersionConflict(ResolveError):
    """One simulation asks for two versions of one model (``conflicts``)."""

    code = "version_conflict"


class ModuleClash(ResolveError):
    """The references resolve to modules that register the same NEST name (``module_conflicts``)."""

    code = "module_clash"


class SchemaOutOfDate(RegistryError):
    """The database is not at the revision this code expects."""

    code = "schema_out_of_date"
