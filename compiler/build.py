"""The C++ half of a build: cmake and make on NESTML's generated code, as our own steps.

Speed levers (measured in benchmarks/compile.py): a precompiled header of NEST's headers
(compiler.pch); ccache with CCACHE_BASEDIR so that identical generated code in another work
directory hits; NESTML is told the NEST version so it skips its
probe; parallel make; no ``make install`` (the module is taken from the build directory).
``-ffile-prefix-map`` keeps the work directory out of the binary.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from compiler.diagnostics import Diagnostic, first_cxx_error
from compiler.steps import run_step


@dataclass(frozen=True)
class BuildSettings:
    jobs: int
    timeout: float
    ccache_dir: Path | None  # None: no ccache
    base_dir: Path  # the directory all work directories live under (CCACHE_BASEDIR)


def build_env(target: Path, settings: BuildSettings) -> dict[str, str]:
    env = dict(os.environ)
    env["CXXFLAGS"] = f"{env.get('CXXFLAGS', '')} -ffile-prefix-map={target}=.".strip()
    env.pop("MAKEFLAGS", None)
    if settings.ccache_dir is not None and shutil.which("ccache"):
        env["CMAKE_CXX_COMPILER_LAUNCHER"] = "ccache"
        env["CCACHE_DIR"] = str(settings.ccache_dir)
        env["CCACHE_BASEDIR"] = str(settings.base_dir)
        env["CCACHE_NOHASHDIR"] = "1"
        env["CCACHE_SLOPPINESS"] = "pch_defines,time_macros,include_file_mtime,include_file_ctime"
    return env


def build_module(target: Path, module: str, nest_prefix: Path, log: Path,
                 settings: BuildSettings) -> tuple[Path | None, list[Diagnostic]]:
    """Configure and compile ``target``; return the module file or the reason it failed."""
    env = build_env(target, settings)
    deadline = time.monotonic() + settings.timeout
    steps = [
        ("cmake", ["cmake", f"-Dwith-nest={nest_prefix / 'bin' / 'nest-config'}", "-DCMAKE_BUILD_TYPE=", "."]),
        ("make", ["make", f"-j{settings.jobs}", "all"]),
    ]
    for name, argv in steps:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, [_timeout(settings.timeout, log)]
        step = run_step(name, argv, cwd=target, log=log, timeout=remaining, env=env)
        if step.timed_out:
            return None, [_timeout(settings.timeout, log)]
        if not step.ok:
            return None, [_cxx_failure(name, log)]
    so = target / f"{module}.so"
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
        msg = f"C++ {'compile' if step == 'make' else step} failed: {where}{message} (generated code; full log: {log})"
    return Diagnostic.error(msg, code="CXX_BUILD_FAILED")
