"""Check module files and load them into NEST by absolute path.

A module is loaded only when its file is an ELF shared library for this machine, built against the
same C++ string ABI as this NEST's kernel (a mismatch would crash NEST or fail with a missing
symbol), and when none of the names it registers is already taken in NEST (a built-in, or a model
from ``components.nest_modules``). ``nest.ResetKernel`` unloads module models, so BMTK's simulator
installs again after each reset.
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import Any

from nestml_registry.compiler.integrity import elf_machine, nest_string_abi
from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.plan import ModuleFile, Plan

logger = logging.getLogger(__name__)



def check_file(path: Path, module: ModuleFile, abi: int) -> None:
    """Refuse a file that is not a shared library for this machine or uses the other C++ ABI."""
    head = path.read_bytes()
    label = f"module {module.name} ({module.sha256[:12]}) at {path}"
    machine = elf_machine(head)
    if machine is None:
        raise SimulatorError(f"{label} is not a shared library (no ELF header); it is not loaded. Remove it from "
                             "the cache and run again", "bad_module")
    here = platform.machine()
    if machine != here and not (machine == "aarch64" and here == "arm64"):
        raise SimulatorError(f"{label} is built for {machine}, this machine is {here}; it is not loaded",
                             "wrong_toolchain", {"module_machine": machine, "machine": here})
    module_abi = nest_string_abi(head)
    if module_abi is not None and module_abi != abi:
        raise SimulatorError(f"{label} uses the C++ string ABI {module_abi}, this NEST uses {abi}: loading it would "
                             "crash NEST, so it is not loaded. Use a module built for this machine's toolchain",
                             "wrong_toolchain", {"module_abi": module_abi, "abi": abi})


def check_files(plan: Plan) -> None:
    for module in plan.modules():
        check_file(plan.paths[module.sha256], module, plan.toolchain.cxx_abi)


def _present(nest: Any) -> set[str]:
    return set(nest.node_models) | set(nest.synapse_models)


def install(plan: Plan, nest: Any) -> list[str]:
    """``nest.Install`` every module of the plan by absolute path; returns the names now registered."""
    registered: list[str] = []
    for module in plan.modules():
        path = plan.paths[module.sha256]
        present = _present(nest)
        taken = [n for n in module.registers if n in present]
        if taken:
            raise SimulatorError(
                f"NEST already has a model named {taken[0]!r} (a built-in, or from a module in "
                f"components.nest_modules), so module {module.name} ({module.sha256[:12]}) cannot be loaded: remove "
                "that module from nest_modules, or refer to the model with nestml: only", "name_clash",
                {"name": taken[0], "module": module.sha256})
        logger.info("installing %s from %s", module.name, path)
        try:
            nest.Install(str(path.resolve()))
        except Exception as exc:  # NEST's own error types differ between versions
            raise SimulatorError(f"NEST could not load module {module.name} from {path}: {exc}", "install_failed",
                                 {"module": module.sha256}, input_error=False) from exc
        missing = [n for n in module.registers if n not in _present(nest)]
        if missing:
            raise SimulatorError(f"module {module.name} ({module.sha256[:12]}) loaded, but NEST does not know "
                                 f"{', '.join(missing)} that the registry says it registers; the registry's record of "
                                 "it is wrong: tell its administrator", "install_failed", {"missing": missing},
                                 input_error=False)
        registered += list(module.registers)
    return registered
