"""One build, end to end: cache lookup, NESTML in a child process, the C++ compile, loading in NEST.

    compiler = Compiler(CompilerConfig(cache_dir=...))
    result = compiler.compile(BuildRequest.create([Source.from_path("izh.nestml")]))

Success is decided from the diagnostics and the module file (NESTML returns normally for models
with errors), and finally by loading the module in a fresh NEST process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import nestml_registry
from nestml_registry.compiler import work_folders
from nestml_registry.compiler.build import BuildSettings, CompileRecipe, build_cmake, build_direct
from nestml_registry.compiler.cache import LocalCache
from nestml_registry.compiler.children import CodegenRunner, Loader, limit_diagnostics
from nestml_registry.compiler.config import CompilerConfig
from nestml_registry.compiler.diagnostics import Diagnostic, has_errors
from nestml_registry.compiler.generated_check import check_generated
from nestml_registry.compiler.key import build_key
from nestml_registry.compiler.outputs import OutputError
from nestml_registry.compiler.pch import PchBuild
from nestml_registry.compiler.request import PAIR_MARK, BuildRequest
from nestml_registry.compiler.result import FAILED, SUCCEEDED, BuildResult, ModelInfo
from nestml_registry.compiler.sandbox import Sandbox, python_paths
from nestml_registry.compiler.sanitise import Sanitised, sanitise
from nestml_registry.compiler.toolchain import Toolchain, detect, nest_config_prefix
from nestml_registry.compiler.workspace import Workspace

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]
# what a child step imports of ours: this package and the namespace package above it (two folders in a
# checkout installed in editable mode, one folder in site-packages otherwise)
_CODE_DIRS = (Path(__file__).resolve().parent, Path(nestml_registry.__file__).resolve().parent)
MAX_MODULE_BYTES = 512 * 1024 * 1024


class Compiler:
    """Builds NEST modules on this machine, each step a sandboxed child process."""

    def __init__(self, config: CompilerConfig, toolchain: Toolchain | None = None) -> None:
        self.config = config
        self.cache = LocalCache(config.cache_dir, config.max_cache_bytes)
        self._toolchain = toolchain
        self._sandbox: Sandbox | None = None
        self._sandbox_checked = False
        self._codegen: CodegenRunner | None = None

    @property
    def toolchain(self) -> Toolchain:
        if self._toolchain is None:
            self._toolchain = detect(self.config.cache_dir, cxxflags=self.config.cxxflags)
        return self._toolchain

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox of every step: what it may read besides the system
        (see :mod:`nestml_registry.compiler.sandbox`)."""
        if self._sandbox is None:
            tc = self.toolchain
            readable = [*python_paths(), *_CODE_DIRS, self.config.cache_dir / "toolchains",
                        *(Path(d) for d in tc.include_dirs)]
            if tc.nest_config is not None:
                readable.append(Path(tc.nest_config).resolve().parent.parent)
            self._sandbox = Sandbox(self.config.sandbox, readable)
        return self._sandbox

    @property
    def codegen(self) -> CodegenRunner:
        if self._codegen is None:
            self._codegen = CodegenRunner(self.config, self.cache, self.sandbox, self.toolchain)
        return self._codegen

    def check_sandbox(self) -> None:
        """Raise :class:`~nestml_registry.compiler.sandbox.SandboxError` if build steps cannot be sandboxed
        here (checked once per Compiler, before its first build)."""
        if not self._sandbox_checked:
            self.sandbox.check(self.cache.work_dir / "sandbox-check")
            self._sandbox_checked = True

    def sweep_work(self) -> int:
        """Remove the work folders of builds whose process died (or older than any build may run)."""
        c = self.config
        return work_folders.sweep(self.cache.work_dir, max(3600.0, 2 * (c.codegen_timeout + c.build_timeout
                                                                         + c.load_timeout)))

    def key(self, request: BuildRequest) -> str:
        return build_key(request, self.toolchain.id)

    def lookup(self, request: BuildRequest) -> BuildResult | None:
        return self.cache.lookup(self.key(request))

    def compile(self, request: BuildRequest, progress: Progress | None = None) -> BuildResult:
        key = self.key(request)
        cached = self.cache.lookup(key)
        if cached is not None:
            return cached
        with self.cache.lock(key):
            cached = self.cache.lookup(key)  # another process may have built it while we waited
            if cached is not None:
                return cached
            return self._build(request, key, progress or (lambda stage: None))

    def _failed(self, request: BuildRequest, key: str, diags: list[Diagnostic], log: Path | None,
                timings: dict[str, float]) -> BuildResult:
        return BuildResult(FAILED, key, request.module, self.toolchain.id, diagnostics=diags,
                           log_path=str(log) if log else None, timings=timings)

    def _build(self, request: BuildRequest, key: str, progress: Progress) -> BuildResult:
        tc = self.toolchain
        timings: dict[str, float] = {}
        sanitised = {s.name: sanitise(s.text, s.name) for s in request.sources}
        pre = request.precheck(tc.builtin_models) + [d for s in sanitised.values() for d in s.diagnostics]
        if has_errors(pre):
            return self._failed(request, key, pre, None, timings)
        self.check_sandbox()
        log = self.cache.log_path(key)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"build {key}\nmodule {request.module}\ntoolchain {tc.id}\nsandbox {self.sandbox.describe()}\n")
        ws = self.codegen.workspace(key)
        ok = False
        loader: Loader | None = None
        # the precompiled header builds on the other core while NESTML runs (once per toolchain)
        pch = PchBuild(tc, self.config.cache_dir, self.config.build_timeout, self.sandbox) \
            if self.config.pch and tc.nest_config is None else None
        try:
            progress("generating code")
            t0 = time.monotonic()
            # NEST imports (for the load check) on the core that NESTML leaves idle
            loader = Loader(ws, log, self.config.load_timeout)
            codegen = self.codegen.run(request, sanitised, ws, log)
            timings["codegen"] = time.monotonic() - t0
            diags = pre + codegen.diagnostics
            if not codegen.ok or has_errors(diags):
                return self._failed(request, key, diags, log, timings)
            unexpected = check_generated(ws.path / "target")
            if unexpected:
                return self._failed(request, key, diags + unexpected, log, timings)

            progress("compiling")
            t0 = time.monotonic()
            header = pch.wait() if pch is not None else None
            pch = None
            so, build_diags = self._build_cxx(ws, request, tc, log, header)
            timings["build"] = time.monotonic() - t0
            if so is None:
                return self._failed(request, key, diags + build_diags, log, timings)
            try:
                path, sha, size = self.cache.store_output(ws, so, request.module, MAX_MODULE_BYTES)
            except (OutputError, ValueError) as exc:
                return self._failed(request, key, [*diags, Diagnostic.error(
                    f"the C++ build left no usable module: {exc}", code="NO_MODULE")], log, timings)

            progress("loading in NEST")
            t0 = time.monotonic()
            loaded = loader.run(ws.path / so)
            loader = None
            timings["load"] = time.monotonic() - t0
            if not loaded.get("ok"):
                msg = f"the module built but NEST cannot load it: {loaded.get('error', 'see the build log')}"
                return self._failed(request, key, [*diags, Diagnostic.error(msg, code="LOAD_FAILED")], log, timings)
            models = merge_models(request, codegen.models, loaded, sanitised)
            result = BuildResult(SUCCEEDED, key, request.module, tc.id, sha, str(path), size, models, diags,
                                 str(log), False, timings)
            self.cache.store_result(result)
            ok = True
            return result
        finally:
            if loader is not None:
                loader.cancel()
            if pch is not None:
                pch.wait()
            if ok or not self.config.keep_work:
                ws.remove()

    def _build_cxx(self, ws: Workspace, request: BuildRequest, tc: Toolchain, log: Path,
                   header: Path | None) -> tuple[str | None, list[Diagnostic]]:
        """The C++ step; the module's path relative to the work folder, or the diagnostics."""
        ccache = self.sandbox.shared_folder(self.config.cache_dir / "ccache" / self.sandbox.user_label()) \
            if self.config.ccache else None
        settings = BuildSettings(self.config.jobs, self.config.build_timeout, ccache, self.cache.work_dir)
        target = ws.path / "target"
        if tc.nest_config is None:  # our own nest-config: we know every flag, no need for CMake
            so, diags = build_direct(ws, target, request.module, CompileRecipe.for_toolchain(tc, header), log,
                                     settings)
        else:
            prefix = nest_config_prefix(tc, self.config.cache_dir, header)
            so, diags = build_cmake(ws, target, request.module, prefix, log, settings, tc)
        diags = limit_diagnostics(diags, log, self.sandbox.limits, "the C++ compiler")
        return (str(so.relative_to(ws.path)) if so is not None else None), diags

    def check(self, texts: dict[str, str]) -> list[Diagnostic]:
        """NESTML's diagnostics of each text (file name -> NESTML text), without generating code."""
        self.check_sandbox()
        return self.codegen.check(texts).diagnostics

    def prestart(self) -> None:
        """With ``warm_codegen``: start the spare code generation process now (it imports pynestml)."""
        if self.config.warm_codegen:
            self.codegen.prestart()

    def close(self) -> None:
        """Stop the spare code generation process, if any, and remove the build group."""
        if self._codegen is not None:
            self._codegen.close()
        if self._sandbox is not None:
            self._sandbox.close()


def merge_models(request: BuildRequest, described: list[dict], loaded: dict,
                 sanitised: dict[str, Sanitised]) -> list[ModelInfo]:
    """Join what NEST registered with what the NESTML sources declare (descriptions from their comments)."""
    by_name = {d["nestml_name"]: d for d in described}  # NESTML's names after its transformations
    sources = {m.name: s.name for s, m in request.declared_models()}
    syns = set(loaded["synapse_models"])
    models = []
    for name in loaded["node_models"] + loaded["synapse_models"]:
        if name in syns and name.endswith(("_hpc", "_lbl")) and name[:-4] in syns:
            continue
        desc = by_name.get(name) or by_name.get(name.removesuffix(request.suffix)) or {}
        # the name in the source: paired models are "<a><sfx>__with_<b><sfx>"
        nestml_name = name.split(PAIR_MARK)[0]
        if request.suffix:
            nestml_name = nestml_name.removesuffix(request.suffix)
        defaults = loaded["defaults"].get(name, {})
        text = sanitised.get(sources.get(nestml_name) or "")

        def described_as(decl: dict, text: Sanitised | None = text) -> str | None:
            return text.description(decl["line"]) if text is not None and decl.get("line") else None

        models.append(ModelInfo(
            name=name,
            kind="synapse" if name in syns else "neuron",
            nestml_name=nestml_name,
            source=sources.get(nestml_name),
            parameters=[_declared(p, defaults, described_as(p)) for p in desc.get("parameters", [])],
            state=[_declared(v, defaults, described_as(v)) for v in desc.get("state", [])],
            input_ports=desc.get("input_ports", []),
            receptor_types=loaded["receptor_types"].get(name) or {},
            variants=[v for v in (name + "_hpc", name + "_lbl") if v in syns],
        ))
    return models


def _declared(decl: dict, defaults: dict, comment: str | None) -> dict:
    out = {k: v for k, v in decl.items() if k != "line"}
    return dict(out, comment=comment, value=defaults.get(decl["name"]))
