"""What a simulation loads: each model reference resolved to a model version and a module file.

A :class:`Plan` is made by :mod:`nestml_registry.simulator.resolve` (from the registry, or from a lock file) and used
by :mod:`nestml_registry.simulator.install` (``nest.Install``) and the BMTK hook (which NEST name each
``nestml:`` template stands for). :mod:`nestml_registry.simulator.lock` writes and reads it as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LocalToolchain:
    """What decides whether a module can be loaded into this machine's NEST."""

    id: str
    nest_version: str
    cxx_abi: int
    platform: str
    builtin_models: frozenset[str] = frozenset()
    features: tuple[str, ...] = ()  # NEST's build features where they differ from the wheel's ("+mpi")

    @classmethod
    def from_toolchain(cls, tc: Any) -> LocalToolchain:
        return cls(tc.id, tc.nest_version, tc.cxx_abi, tc.platform, frozenset(tc.builtin_models),
                   tuple(getattr(tc, "features", ())))

    @property
    def has_mpi(self) -> bool:
        return "+mpi" in self.features

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "nest": self.nest_version, "abi": self.cxx_abi, "platform": self.platform,
                **({"features": list(self.features)} if self.features else {})}


@dataclass(frozen=True)
class ModuleFile:
    """A module the simulation loads: its file name, sha256 and every name it registers in NEST."""

    name: str
    sha256: str
    registers: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "registers": list(self.registers)}


@dataclass(frozen=True)
class Resolved:
    """A reference (``custom_izh_neuron@2``) resolved: the name NEST registers and where it comes from."""

    reference: str
    model: str
    version: int
    kind: str
    module: ModuleFile
    parameters: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    continuous_ports: tuple[str, ...] = ()  # input ports a current drives (not settable in dynamics_params)

    @property
    def label(self) -> str:
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "kind": self.kind, "module": self.module.sha256,
                "parameters": list(self.parameters), "state": list(self.state),
                "continuous_ports": list(self.continuous_ports)}


@dataclass
class Plan:
    """Every reference of one simulation, resolved; ``paths`` holds the verified local module files."""

    toolchain: LocalToolchain
    registry: str | None
    resolved: dict[str, Resolved] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)  # sha256 -> file

    def nest_name(self, reference: str) -> str | None:
        found = self.resolved.get(reference)
        return found.model if found is not None else None

    def modules(self) -> list[ModuleFile]:
        """The distinct modules, in the order the references first name them."""
        seen: dict[str, ModuleFile] = {}
        for r in self.resolved.values():
            seen.setdefault(r.module.sha256, r.module)
        return list(seen.values())
