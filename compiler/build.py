"""The C++ half of a build: NESTML's generated code compiled into a module, as our own steps.

Two ways, both argument lists with one time limit and the output in the build log:

- :func:`build_direct`, for a toolchain whose compiler flags we know ourselves (the PyPI wheel, with
  the ``nest-config`` that :mod:`nestml_registry.compiler.toolchain` writes): each generated ``.cpp`` compiled in
  parallel, largest first, then linked, with exactly the commands the CMake project NESTML writes
  would run (``CMakeFiles/*/flags.make`` and ``link.txt``), but without configuring CMake (0.3 s)
  and without make.
- :func:`build_cmake`, where NEST's own ``nest-config`` works (a source or conda build, whose
  ``--libs`` and flags may hold anything): NESTML's CMake project, ``cmake`` then ``make``.

Speed levers (measured in benchmarks/compile.py): a precompiled header of NEST's headers
(compiler.pch); ccache with CCACHE_BASEDIR so that identical generated code in another work
directory hits; NESTML is told the NEST version so it skips its probe; parallel compiles; no
``make install`` (the module is taken from the build directory). ``-ffile-prefix-map`` keeps the
work directory out of the binary.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from nestml_registry.compiler.diagnostics import Diagnostic, first_cxx_error
from nestml_registry.compiler.steps import StepResult
from nestml_registry.compiler.toolchain import Toolchain
from nestml_registry.compiler.workspace import Workspace


@dataclass(frozen=True)
class BuildSettings:
    jobs: int
    timeout: float
    ccache_dir: Path | None  # None: no ccache
    base_dir: Path  # the directory all work directories live under (CCACHE_BASEDIR)


# GCC's own garbage collector, told to wait until its heap passes 1 GB (a neuron's TU peaks at about
# 0.4 GB): 0.4-0.5 s less per neuron TU. It changes no output (tests/test_build_paths.py compares
# the objects), only when GCC frees memory, so it is not part of the toolchain's identity.
GCC_COLLECT_LESS = ("--param=ggc-min-expand=100", "--param=ggc-min-heapsize=1048576")


@dataclass(frozen=True)
class CompileRecipe:
    """How to compile and link a module for one toolchain without CMake."""

    cxx: str
    flags: tuple[str, ...]  # NEST's flags, the precompiled header and -DLTX_MODULE, in CMake's order
    include_dirs: tuple[str, ...]
    tuning: tuple[str, ...] = ()  # compiler options that change its speed, not its output

    @classmethod
    def for_toolchain(cls, tc: Toolchain, pch: Path | None) -> CompileRecipe:
        flags = [*tc.cflags.split(), *tc.prefix_maps(),
                 *(["-include", str(pch), "-Winvalid-pch"] if pch is not None else []), "-DLTX_MODULE"]
        return cls(tc.cxx, tuple(flags), tc.include_dirs, GCC_COLLECT_LESS if tc.cxx_name == "gcc" else ())

    def compile_argv(self, module: str, source: str, obj: str, target: Path) -> list[str]:
        # -fPIC and -DLTX_MODULE are compiler.pch.MODULE_FLAGS: the header is precompiled with them
        return [self.cxx, f"-D{module}_module_EXPORTS", *(f"-I{d}" for d in self.include_dirs), "-fPIC",
                *self.flags, f"-ffile-prefix-map={target}=.", *self.tuning, "-c", source, "-o", obj]

    def link_argv(self, output: str, objects: list[str]) -> list[str]:
        return [self.cxx, "-fPIC", "-shared", "-o", output, *objects]


def build_direct(ws: Workspace, target: Path, module: str, recipe: CompileRecipe, log: Path,
                 settings: BuildSettings) -> tuple[Path | None, list[Diagnostic]]:
    """Compile every generated ``.cpp`` in ``target`` (in parallel) and link them into the module."""
    ws = _with_ccache(ws, settings)
    launcher = ["ccache"] if _use_ccache(settings) else []
    sources = sorted(target.glob("*.cpp"), key=lambda p: (-p.stat().st_size, p.name))  # longest compiles first
    if not sources:
        return None, [Diagnostic.error(f"NESTML wrote no C++ source to compile; see the build log {log}",
                                       code="NO_MODULE")]
    objects = [f"{src.name}.o" for src in sources]
    steps = [(f"compile {src.name}", [*launcher, *recipe.compile_argv(module, src.name, obj, target)])
             for src, obj in zip(sources, objects, strict=True)]
    deadline = time.monotonic() + settings.timeout
    results = ws.run_parallel(steps, cwd=target, log=log, timeout=settings.timeout, jobs=settings.jobs)
    failed = _first_failure(results, settings.timeout, log)
    if failed is not None:
        return None, [failed]
    so = target / f"{module}.so"
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None, [_timeout(settings.timeout, log)]
    link = ws.run("link", recipe.link_argv(so.name, objects), cwd=target, log=log, timeout=remaining)
    failed = _first_failure([link], settings.timeout, log)
    if failed is not None:
        return None, [failed]
    return _module_file(so, log)


def _first_failure(results: list[StepResult], limit: float, log: Path) -> Diagnostic | None:
    if any(r.timed_out for r in results):
        return _timeout(limit, log)
    bad = next((r for r in results if not r.ok), None)
    if bad is None:
        return None
    return _cxx_failure("link" if bad.name == "link" else "make", log)


def _use_ccache(settings: BuildSettings) -> bool:
    """ccache is wanted and installed (a CCACHE_DIR in the caller's environment decides nothing)."""
    return settings.ccache_dir is not None and shutil.which("ccache") is not None


def ccache_env(settings: BuildSettings) -> dict[str, str]:
    """What compiler processes need in their environment for ccache, when ccache is used."""
    if not _use_ccache(settings):
        return {}
    return {"CCACHE_DIR": str(settings.ccache_dir), "CCACHE_BASEDIR": str(settings.base_dir),
            "CCACHE_NOHASHDIR": "1",
            "CCACHE_SLOPPINESS": "pch_defines,time_macros,include_file_mtime,include_file_ctime"}


def _with_ccache(ws: Workspace, settings: BuildSettings) -> Workspace:
    """The workspace for compiler steps: with ccache, its folder is writable to them too (see docs/guides/publishing.md:
    ccache is off by default, since a step that can write it can plant objects in other builds)."""
    extra = ccache_env(settings)
    return ws.with_env(extra, [settings.ccache_dir]) if extra and settings.ccache_dir is not None else ws


def cmake_env(target: Path, settings: BuildSettings, tc: Toolchain | None = None) -> dict[str, str]:
    env = {"CXXFLAGS": " ".join([f"-ffile-prefix-map={target}=.", *(tc.prefix_maps() if tc is not None else [])])}
    if _use_ccache(settings):
        env["CMAKE_CXX_COMPILER_LAUNCHER"] = "ccache"
    return env


def build_cmake(ws: Workspace, target: Path, module: str, nest_prefix: Path, log: Path,
                settings: BuildSettings, tc: Toolchain | None = None) -> tuple[Path | None, list[Diagnostic]]:
    """Configure ``target`` with CMake against ``nest_prefix``'s nest-config and run make."""
    ws = _with_ccache(ws, settings).with_env(cmake_env(target, settings, tc))
    deadline = time.monotonic() + settings.timeout
    steps = [
        ("cmake", ["cmake", f"-Dwith-nest={nest_prefix / 'bin' / 'nest-config'}", "-DCMAKE_BUILD_TYPE=", "."]),
        ("make", ["make", f"-j{settings.jobs}", "all"]),
    ]
    for name, argv in steps:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, [_timeout(settings.timeout, log)]
        step = ws.run(name, argv, cwd=target, log=log, timeout=remaining)
        if step.timed_out:
            return None, [_timeout(settings.timeout, log)]
        if not step.ok:
            return None, [_cxx_failure(name, log)]
    return _module_file(target / f"{module}.so", log)


def _module_file(so: Path, log: Path) -> tuple[Path | None, list[Diagnostic]]:
    if not so.is_file():
        return None, [Diagnostic.error(f"the C++ build finished but produced no {so.name}; see the build log {log}",
                                       code="NO_MODULE")]
    return so, []


def _timeout(limit: float, log: Path) -> Diagnostic:
    return Diagnostic.error(f"the C++ build took longer than the time limit of {limit:g} s and was stopped; "
                            f"build log: {log}", code="TIMEOUT")


def _cxx_failure(step: str, log: Path) -> Diagnostic:
    text = log.read_text(errors="replace") if log.is_file() else ""
    first = first_cxx_error(text)
    if first is None:
        msg = f"{step} failed; see the build log {log}"
    else:
        file, line, col, message = first
        where = f"{Path(file).name}:{line}:{col}: " if file and line else ""
        what = "compile" if step == "make" else step
        msg = f"C++ {what} failed: {where}{message} (generated code; full log: {log})"
    return Diagnostic.error(msg, code="CXX_BUILD_FAILED")
