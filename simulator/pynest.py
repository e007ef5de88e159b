"""PyNEST scripts and notebooks: ``nestml_registry.install("custom_izh_neuron@2")`` and go.

::

    import nest, nestml_registry
    name = nestml_registry.install("custom_izh_neuron@2")   # -> "custom_izh_neuron_nestml"
    cells = nest.Create(name, 100)

The references are resolved for this machine's toolchain (the registry builds a model on demand, as for
``nestml-registry run``), fetched into the module cache (sha256 checked), checked (ELF machine, C++ ABI,
one version per model, no clash with NEST's own names or another module's) and installed by absolute
path. The same line as a run's says what each reference resolved to. After ``nest.ResetKernel()`` (which
unloads module models) a call installs again, from the plan this process made before. ``lock=PATH``
writes the plan as a lock file; ``locked=PATH`` resolves exactly that again, with no registry once the
module cache has the files.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from nestml_registry.simulator import checks, drift
from nestml_registry.simulator import install as installing
from nestml_registry.simulator import lock as locking
from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.plan import Plan
from nestml_registry.simulator.references import PREFIX, Use, reference_of
from nestml_registry.simulator.resolve import Resolver
from nestml_registry.simulator.session import RegistrySession

logger = logging.getLogger(__name__)

_plans: dict[tuple[Any, ...], Plan] = {}  # what this process resolved, by what it was asked
_installed: set[str] = set()  # sha256 of the modules this process installed (in the kernel before a reset)


def _say(line: str) -> None:
    sys.stderr.write(f"nestml-registry: {line}\n")
    sys.stderr.flush()


def uses_of(references: Sequence[str]) -> list[Use]:
    """``custom_izh_neuron``, ``custom_izh_neuron_nestml``, ``custom_izh_neuron@2`` or ``nestml:...`` each, as
    the references of a script."""
    if not references:
        raise SimulatorError("install() needs at least one model reference, e.g. install('custom_izh_neuron@2')",
                             "usage")
    uses = []
    for given in references:
        if not isinstance(given, str):
            raise SimulatorError(f"a model reference is text such as 'custom_izh_neuron@2', not {type(given).__name__}",
                                 "invalid_reference")
        template = given.strip() if given.strip().startswith(PREFIX) else PREFIX + given.strip()
        reference = reference_of(template)
        assert reference is not None
        uses.append(Use(template, reference, "model", "this script", None))
    return uses


def plan_for(references: Sequence[str], *, server: str | None = None, token: str | None = None,
             locked: str | os.PathLike | None = None, build: bool = True, build_timeout: float | None = None,
             cache: str | os.PathLike | None = None, progress: Callable[[str], None] | None = None) -> Plan:
    """The checked plan of ``references`` for this machine (made once per process and arguments)."""
    key = (tuple(references), server, token, str(locked) if locked else None, str(cache) if cache else None)
    if key in _plans:
        return _plans[key]
    uses = uses_of(references)
    session = RegistrySession.create(server, token, locked=locked, build=build, build_timeout=build_timeout,
                                     cache=cache, progress=progress, write_lock=False)
    resolver = Resolver(session.client, session.local_toolchain(), session.cache, build=build,
                        build_timeout=build_timeout, progress=progress)
    plan = session.plan_of(resolver, uses, {})
    checks.check_versions(plan)
    checks.check_modules(plan)
    installing.check_files(plan)
    for line in drift.resolutions(plan):
        (progress or logger.info)(line)
    _plans[key] = plan
    return plan


def install(*references: str, server: str | None = None, token: str | None = None,
            locked: str | os.PathLike | None = None, lock: str | os.PathLike | None = None, build: bool = True,
            build_timeout: float | None = None, cache: str | os.PathLike | None = None,
            progress: Callable[[str], None] | bool = True) -> Any:
    """Load registry models into this process's NEST; the NEST name of the one reference given (a list for
    several; with ``locked`` and no reference, every model of the lock file), ready for ``nest.Create`` or
    ``nest.Connect``. Raises :class:`SimulatorError` (with a
    ``code``: ``unknown_model``, ``not_built``, ``wrong_toolchain``, ``name_clash``, ...) for what cannot
    be loaded, before NEST is touched where it can."""
    say = _say if progress is True else (progress or None)
    if not references and locked is not None:  # every model the lock file holds
        references = tuple(sorted(locking.read(locked)))
    plan = plan_for(references, server=server, token=token, locked=locked, build=build,
                    build_timeout=build_timeout, cache=cache, progress=say)
    if lock is not None:
        try:
            locking.write_file(plan, lock)
        except OSError as exc:
            raise SimulatorError(f"cannot write the lock file {lock} ({exc.strerror or exc}): give a path in a "
                                 "folder you can write", "not_writable") from exc
    import nest

    load(plan, nest)
    names = [plan.resolved[use.reference].model for use in uses_of(references)]
    return names[0] if len(names) == 1 else names


def load(plan: Plan, nest: Any) -> None:
    """Install the plan's modules that this kernel does not have yet (again after ``ResetKernel``)."""
    present = set(nest.node_models) | set(nest.synapse_models)
    missing = Plan(plan.toolchain, plan.registry)
    for ref, resolved in plan.resolved.items():
        module = resolved.module
        if module.sha256 in _installed and all(n in present for n in module.registers):
            continue  # this process installed it, and no reset has unloaded it since
        missing.resolved[ref] = resolved
        missing.paths[module.sha256] = plan.paths[module.sha256]
    for module in missing.modules():
        _installed.discard(module.sha256)
    installing.install(missing, nest)
    _installed.update(m.sha256 for m in missing.modules())
