"""The outcome of a build: the build document (`compile --json`, docs/guides/publishing.md), plus what the
registry stores."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from nestml_registry.compiler.diagnostics import Diagnostic

SUCCEEDED, FAILED = "succeeded", "failed"


@dataclass
class ModelInfo:
    """A model as NEST registers it, with what its NESTML source declares."""

    name: str
    kind: str  # "neuron" | "synapse"
    nestml_name: str | None = None
    source: str | None = None
    parameters: list[dict[str, Any]] = field(default_factory=list)
    state: list[dict[str, Any]] = field(default_factory=list)
    input_ports: list[dict[str, Any]] = field(default_factory=list)
    receptor_types: dict[str, int] = field(default_factory=dict)
    variants: list[str] = field(default_factory=list)
    version: int | None = None

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "version": self.version}


@dataclass
class BuildResult:
    status: str
    key: str
    module_name: str
    toolchain: str
    module_sha256: str | None = None
    module_path: str | None = None
    module_size: int | None = None
    models: list[ModelInfo] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    log_path: str | None = None
    cached: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == SUCCEEDED

    def document(self) -> dict[str, Any]:
        """The build document printed by ``compile --json`` (docs/guides/publishing.md)."""
        module: dict[str, Any] | None = None
        if self.module_sha256:
            module = {"name": self.module_name, "sha256": self.module_sha256}
            if self.module_path:
                module["path"] = self.module_path
        return {
            "status": self.status,
            "key": self.key,
            "toolchain": self.toolchain,
            "module": module,
            "models": [m.summary() for m in self.models],
            "diagnostics": [d.to_dict() for d in self.diagnostics],
            "log": self.log_path,
            "cached": self.cached,
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["diagnostics"] = [x.to_dict() for x in self.diagnostics]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BuildResult:
        d = dict(d)
        d["models"] = [ModelInfo(**m) for m in d.get("models", [])]
        d["diagnostics"] = [Diagnostic.from_dict(x) for x in d.get("diagnostics", [])]
        return cls(**d)
