"""One build, end to end: cache lookup, NESTML in a child process, the C++ compile, loading in NEST.

    compiler = Compiler(CompilerConfig(cache_dir=...))
    result = compiler.compile(BuildRequest.create([Source.from_path("izh.nestml")]))

Success is decided from the diagnostics and the module file (NESTML returns normally for models
with errors), and finally by loading the module in a fresh NEST process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from compiler.build import BuildSettings, CompileRecipe, build_cmake, build_direct
from compiler.cache import LocalCache
from compiler.diagnostics import Diagnostic, has_errors
from compiler.key import build_key
from compiler.pch import PchBuild
from compiler.request import BuildRequest
from compiler.result import FAILED, SUCCEEDED, BuildResult, ModelInfo
from compiler.steps import EarlyStep, default_jobs, run_step
from compiler.toolchain import Toolchain, detect, nest_config_prefix

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class CompilerConfig:
    cache_dir: Path
    codegen_timeout: float = 900.0
    build_timeout: float = 900.0
    load_timeout: float = 120.0
    jobs: int = field(default_factory=default_jobs)
    ccache: bool = True
    pch: bool = True
    cxxflags: str = ""  # extra C++ flags (part of the toolchain identity)
    # keep one code generation process ready (pynestml imported) for the next build: for long-lived
    # workers, where it saves about a second of every build
    warm_codegen: bool = False
    keep_work: bool = False


class Compiler:
    """Builds NEST modules on this machine, one child process per NESTML call."""

    def __init__(self, config: CompilerConfig, toolchain: Toolchain | None = None) -> None:
        self.config = config
        self.cache = LocalCache(config.cache_dir)
        self._toolchain = toolchain
        self._spare: EarlyStep | None = None

    @property
    def toolchain(self) -> Toolchain:
        if self._toolchain is None:
            self._toolchain = detect(self.config.cache_dir, cxxflags=self.config.cxxflags)
        return self._toolchain

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
        pre = request.precheck(tc.builtin_models)
        if has_errors(pre):
            return self._failed(request, key, pre, None, timings)
        self.cache.work_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{key[:12]}-", dir=self.cache.work_dir))
        log = self.cache.log_path(key)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"build {key}\nmodule {request.module}\ntoolchain {tc.id}\n")
        ok = False
        loader: EarlyStep | None = None
        # the precompiled header builds on the other core while NESTML runs (once per toolchain)
        pch = PchBuild(tc, self.config.cache_dir, self.config.build_timeout) \
            if self.config.pch and tc.nest_config is None else None
        try:
            progress("generating code")
            t0 = time.monotonic()
            # NEST imports (for the load check) on the core that NESTML leaves idle
            loader = self._start_load(work, log)
            codegen = self._codegen(request, tc, work, log)
            timings["codegen"] = time.monotonic() - t0
            diags = pre + [Diagnostic.from_dict(d) for d in codegen["diagnostics"]]
            if not codegen["ok"] or has_errors(diags):
                return self._failed(request, key, diags, log, timings)

            progress("compiling")
            t0 = time.monotonic()
            header = pch.wait() if pch is not None else None
            pch = None
            so, build_diags = self._build_cxx(request, tc, work / "target", log, header)
            timings["build"] = time.monotonic() - t0
            if so is None:
                return self._failed(request, key, diags + build_diags, log, timings)
            path, sha, size = self.cache.store_module(so, request.module)

            progress("loading in NEST")
            t0 = time.monotonic()
            loaded = self._load(path, work, loader)
            loader = None
            timings["load"] = time.monotonic() - t0
            if not loaded.get("ok"):
                msg = (f"the module built but NEST cannot load it: {loaded.get('error', 'see the log')}"
                       f" (build log: {log})")
                return self._failed(request, key, [*diags, Diagnostic.error(msg, code="LOAD_FAILED")], log, timings)
            models = merge_models(request, codegen["models"], loaded)
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
                shutil.rmtree(work, ignore_errors=True)

    def _build_cxx(self, request: BuildRequest, tc: Toolchain, target: Path, log: Path,
                   header: Path | None) -> tuple[Path | None, list[Diagnostic]]:
        settings = BuildSettings(self.config.jobs, self.config.build_timeout,
                                 self.config.cache_dir / "ccache" if self.config.ccache else None,
                                 self.cache.work_dir)
        if tc.nest_config is None:  # our own nest-config: we know every flag, no need for CMake
            return build_direct(target, request.module, CompileRecipe.for_toolchain(tc, header), log, settings)
        prefix = nest_config_prefix(tc, self.config.cache_dir, header)
        return build_cmake(target, request.module, prefix, log, settings)

    def _child_env(self) -> dict[str, str]:
        # a fixed hash seed: NESTML orders some names through sets, and the same source should give
        # the same C++ (reproducible modules, ccache hits)
        env = dict(os.environ, PYNEST_QUIET="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
        return env

    def _codegen(self, request: BuildRequest, tc: Toolchain, work: Path, log: Path) -> dict:
        src_dir = work / "src"
        src_dir.mkdir()
        files = []
        for i, src in enumerate(request.sources):
            path = src_dir / f"f{i:02d}_{src.name.removesuffix('.nestml')}.nestml"
            path.write_text(src.text, encoding="utf-8")
            files.append({"path": str(path), "name": src.name, "models": [m.name for m in src.models()]})
        job = {
            "files": files, "target": str(work / "target"), "module": request.module, "suffix": request.suffix,
            "pairs": [p.to_dict() for p in request.pairs], "weight_variables": dict(request.weight_variables),
            "nest_path": str(nest_config_prefix(tc, self.config.cache_dir)), "nest_version": tc.nest_version_tag(),
            "template_cache": str(self.config.cache_dir / "templates" / tc.nestml_version),
        }
        (work / "job.json").write_text(json.dumps(job))
        out = work / "codegen.json"
        if self.config.warm_codegen:
            spare = self._spare or self._start_spare()
            self._spare = self._start_spare()  # the next build's, importing while this one runs
            line = json.dumps({"job": str(work / "job.json"), "result": str(out), "log": str(log), "cwd": str(work)})
            step = spare.run(line, timeout=self.config.codegen_timeout, log=log)
        else:
            step = run_step("codegen", [sys.executable, "-m", "compiler.codegen", str(work / "job.json"), str(out)],
                            cwd=work, log=log, timeout=self.config.codegen_timeout, env=self._child_env())
        if step.timed_out:
            return {"ok": False, "models": [], "diagnostics": [Diagnostic.error(
                f"code generation took longer than the time limit of {self.config.codegen_timeout:g} s "
                f"and was stopped; build log: {log}", code="TIMEOUT").to_dict()]}
        if not out.is_file():
            return {"ok": False, "models": [], "diagnostics": [Diagnostic.error(
                f"NESTML's process died (exit status {step.returncode}); see the build log {log}",
                code="CODEGEN_CRASHED").to_dict()]}
        return json.loads(out.read_text())

    def _start_spare(self) -> EarlyStep:
        where = self.cache.work_dir
        where.mkdir(parents=True, exist_ok=True)
        return EarlyStep("codegen", [sys.executable, "-m", "compiler.codegen", "--stdin"], cwd=where,
                         log=where / "spare-codegen.log", env=self._child_env())

    def prestart(self) -> None:
        """With ``warm_codegen``: start the spare code generation process now (it imports pynestml)."""
        if self.config.warm_codegen and self._spare is None:
            self._spare = self._start_spare()

    def close(self) -> None:
        """Stop the spare code generation process, if any."""
        if self._spare is not None:
            self._spare.cancel()
            self._spare = None

    def _start_load(self, work: Path, log: Path) -> EarlyStep:
        argv = [sys.executable, "-m", "compiler.introspect", "--stdin", str(work / "introspect.json")]
        return EarlyStep("load", argv, cwd=work, log=log, env=self._child_env())

    def _load(self, module: Path, work: Path, loader: EarlyStep) -> dict:
        out = work / "introspect.json"
        step = loader.run(str(module), timeout=self.config.load_timeout)
        if not out.is_file():
            state = "timed out" if step.timed_out else f"died with exit status {step.returncode}"
            return {"ok": False, "error": f"the NEST process that loads it {state}"}
        return json.loads(out.read_text())


def merge_models(request: BuildRequest, described: list[dict], loaded: dict) -> list[ModelInfo]:
    """Join what NEST registered with what the NESTML sources declare."""
    by_name = {d["nestml_name"]: d for d in described}  # NESTML's names after its transformations
    sources = {m.name: s.name for s, m in request.declared_models()}
    syns = set(loaded["synapse_models"])
    models = []
    for name in loaded["node_models"] + loaded["synapse_models"]:
        if name in syns and name.endswith(("_hpc", "_lbl")) and name[:-4] in syns:
            continue
        desc = by_name.get(name) or by_name.get(name.removesuffix(request.suffix)) or {}
        # the name in the source: paired models are "<a><sfx>__with_<b><sfx>"
        nestml_name = name.split("__with_")[0]
        if request.suffix:
            nestml_name = nestml_name.removesuffix(request.suffix)
        defaults = loaded["defaults"].get(name, {})
        models.append(ModelInfo(
            name=name,
            kind="synapse" if name in syns else "neuron",
            nestml_name=nestml_name,
            source=sources.get(nestml_name),
            parameters=[dict(p, value=defaults.get(p["name"])) for p in desc.get("parameters", [])],
            state=[dict(v, value=defaults.get(v["name"])) for v in desc.get("state", [])],
            input_ports=desc.get("input_ports", []),
            receptor_types=loaded["receptor_types"].get(name) or {},
            variants=[v for v in (name + "_hpc", name + "_lbl") if v in syns],
        ))
    return models
