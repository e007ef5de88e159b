"""How a :class:`~nestml_registry.compiler.pipeline.Compiler` builds: its cache, the steps' time limits, the
jobs of a C++ build, the compiler cache and precompiled header, extra C++ flags and the sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nestml_registry.compiler.sandbox import SandboxConfig
from nestml_registry.compiler.steps import default_jobs


@dataclass
class CompilerConfig:
    cache_dir: Path
    # a shipped model's code generation takes seconds, its C++ well under a minute (see docs/guides/publishing.md)
    codegen_timeout: float = 300.0
    build_timeout: float = 600.0
    load_timeout: float = 120.0
    jobs: int = field(default_factory=default_jobs)
    # off by default: a build step that can write a shared compiler cache could plant objects in other
    # builds; for a single user's own models it saves the C++ of code that was compiled before
    ccache: bool = False
    pch: bool = True
    cxxflags: str = ""  # extra C++ flags (part of the toolchain identity)
    # keep one code generation process ready (pynestml imported) for the next build: for long-lived
    # workers, where it saves about a second of every build
    warm_codegen: bool = False
    keep_work: bool = False
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    max_cache_bytes: int | None = None  # the local cache's modules, least recently used evicted beyond it
