"""The two ways a module's C++ is built: our own compile commands, for the wheel's toolchain whose
flags we know, and NESTML's CMake project, where NEST's own nest-config works. Both run the same
compiler commands and give the same model."""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from nestml_registry.compiler.build import GCC_COLLECT_LESS, BuildSettings, CompileRecipe, build_direct
from nestml_registry.compiler.config import CompilerConfig
from nestml_registry.compiler.pipeline import Compiler
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.compiler.result import BuildResult
from nestml_registry.compiler.sandbox import Sandbox, SandboxConfig, python_paths
from nestml_registry.compiler.sources import Source
from nestml_registry.compiler.toolchain import Toolchain, nest_config_prefix
from nestml_registry.compiler.workspace import Workspace

MODULE = "izhikevich_neuron_nestml_module"


def _without_prefix_map(argv: list[str]) -> list[str]:
    """What decides the binary: less the work directory's name and GCC's memory settings."""
    return [a for a in argv if not a.startswith("-ffile-prefix-map=") and a not in GCC_COLLECT_LESS]


def test_the_wheels_toolchain_compiles_without_cmake(izh_build: BuildResult) -> None:
    log = Path(izh_build.log_path or "").read_text()
    assert "$ cmake" not in log and "$ make" not in log
    assert "-c izhikevich_neuron_nestml.cpp -o izhikevich_neuron_nestml.cpp.o" in log
    assert f"-shared -o {MODULE}.so" in log


def test_nests_own_nest_config_builds_through_cmake_with_the_same_commands(
        toolchain: Toolchain, izh_build: BuildResult, models_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    # a nest-config that works, standing in for the one of a source or conda build of NEST
    own = nest_config_prefix(toolchain, tmp_path / "nest") / "bin" / "nest-config"
    tc = dataclasses.replace(toolchain, nest_config=str(own))
    compiler = Compiler(CompilerConfig(cache_dir=cache, ccache=False), toolchain=tc)
    cmake: dict[str, str] = {}

    def progress(stage: str) -> None:  # the work directory is still there while the module loads
        if stage == "loading in NEST":
            flags = next(cache.glob("work/*/target/CMakeFiles/*.dir/flags.make"))
            cmake.update(flags=flags.read_text(), link=(flags.parent / "link.txt").read_text())

    request = BuildRequest.create([Source.from_path(models_dir / "neurons" / "izhikevich_neuron.nestml")])
    result = compiler.compile(request, progress)
    assert result.ok, [d.format() for d in result.diagnostics]
    assert "$ cmake" in Path(result.log_path or "").read_text()
    assert result.models == izh_build.models

    variables = dict(line.split(" = ", 1) for line in cmake["flags"].splitlines() if " = " in line)
    cmake_compile = shlex.split(" ".join(variables[v] for v in ("CXX_DEFINES", "CXX_INCLUDES", "CXX_FLAGS")))
    ours = CompileRecipe.for_toolchain(tc, None).compile_argv(MODULE, "x.cpp", "x.o", tmp_path)
    assert _without_prefix_map(cmake_compile) == _without_prefix_map(ours[1:ours.index("-c")])
    cmake_link = _without_prefix_map(shlex.split(cmake["link"]))
    ours_link = CompileRecipe.for_toolchain(tc, None).link_argv(f"{MODULE}.so", ["a.o"])
    assert Path(cmake_link[0]).resolve() == Path(ours_link[0]).resolve()
    assert cmake_link[1:cmake_link.index("-o") + 2] == ours_link[1:ours_link.index("-o") + 2]


def _workspace(tmp_path: Path) -> Workspace:
    """A sandboxed work folder, as a build has (stand-in compilers live inside it, where steps can read)."""
    return Workspace.create(tmp_path, "work-", Sandbox(SandboxConfig(), python_paths()), {})


def test_compiles_past_the_time_limit_are_stopped(tmp_path: Path) -> None:
    """A stand-in compiler that never finishes: both parallel compiles are killed at the limit."""
    ws = _workspace(tmp_path)
    slow = ws.path / "slow-cxx"
    slow.write_text("#!/bin/sh\nsleep 60\n")
    slow.chmod(0o755)
    target = ws.path / "target"
    target.mkdir()
    for name in ("a_neuron_nestml.cpp", "m_module.cpp"):
        (target / name).write_text("int x;\n")
    settings = BuildSettings(jobs=2, timeout=0.5, ccache_dir=None, base_dir=tmp_path)
    start = time.monotonic()
    so, diags = build_direct(ws, target, "m_module", CompileRecipe(str(slow), (), ()), tmp_path / "build.log",
                             settings)
    assert so is None and [d.code for d in diags] == ["TIMEOUT"]
    assert "time limit of 0.5 s" in diags[0].message and time.monotonic() - start < 10
    assert (tmp_path / "build.log").read_text().count("killed after the time limit") == 2


# big enough that GCC collects garbage under its default settings (0.28 s of -ftime-report here)
GCC_WORK = """
#include <map>
#include <string>
#include <vector>
#include "kernel_manager.h"
#include "nest_impl.h"
#include "archiving_node.h"
#include "universal_data_logger_impl.h"
struct Model { std::map<std::string, std::vector<double>> traces; };
double run(Model& m, const std::string& key, long steps) {
  auto& v = m.traces[key];
  for (long i = 0; i < steps; ++i) v.push_back(nest::Time(nest::Time::step(i)).get_ms() * 0.5);
  return v.empty() ? 0.0 : v.back();
}
"""


def test_gccs_memory_settings_change_no_output(toolchain: Toolchain, tmp_path: Path) -> None:
    source = tmp_path / "work.cpp"
    source.write_text(GCC_WORK)
    recipe = CompileRecipe.for_toolchain(toolchain, None)
    assert recipe.tuning == GCC_COLLECT_LESS  # the toolchain here is GCC
    objects = []
    for tuning in ((), GCC_COLLECT_LESS):
        obj = tmp_path / f"work{len(objects)}.o"
        argv = dataclasses.replace(recipe, tuning=tuning).compile_argv("m", str(source), str(obj), tmp_path)
        subprocess.run(argv, check=True, capture_output=True, timeout=300)
        objects.append(obj.read_bytes())
    assert objects[0] == objects[1]


def test_no_ccache_when_the_build_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CCACHE_DIR in the caller's environment does not turn ccache on (a stand-in compiler that
    writes what -o names)."""
    monkeypatch.setenv("CCACHE_DIR", str(tmp_path / "someone-elses-ccache"))
    ws = _workspace(tmp_path)
    cxx = ws.path / "cxx"
    cxx.write_text('#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && : > "$2"; shift; done\n')
    cxx.chmod(0o755)
    target = ws.path / "target"
    target.mkdir()
    os.chown(target, ws.path.stat().st_uid, ws.path.stat().st_gid)
    (target / "m_module.cpp").write_text("int x;\n")
    settings = BuildSettings(jobs=1, timeout=60, ccache_dir=None, base_dir=tmp_path)
    so, diags = build_direct(ws, target, "m_module", CompileRecipe(str(cxx), (), ()), tmp_path / "build.log",
                             settings)
    assert so == target / "m_module.so" and diags == []
    commands = [line for line in (tmp_path / "build.log").read_text().splitlines() if line.startswith("$ ")]
    assert len(commands) == 2 and all(line.startswith(f"$ {cxx} ") for line in commands)


def test_one_build_gives_one_module_wherever_nest_and_the_cache_are(toolchain: Toolchain, izh_build: BuildResult,
                                                                    models_dir: Path, tmp_path: Path) -> None:
    """The same build key on another installation (NEST's headers copied to another folder, another build cache:
    another precompiled header, other work folders) gives the same bytes: no path of this machine's is in a
    module."""
    import shutil

    root = Path(os.path.commonpath(toolchain.include_dirs))
    copy = tmp_path / "elsewhere" / "site-packages" / "nest" / "include"
    shutil.copytree(root, copy)
    moved = tuple(str(copy / Path(d).relative_to(root)) for d in toolchain.include_dirs)
    tc = dataclasses.replace(toolchain, include_dirs=moved)
    assert tc.id == toolchain.id  # one toolchain: paths are not part of it
    compiler = Compiler(CompilerConfig(cache_dir=tmp_path / "another-cache", ccache=False), toolchain=tc)
    request = BuildRequest.create([Source.from_path(models_dir / "neurons" / "izhikevich_neuron.nestml")])
    try:
        result = compiler.compile(request)
    finally:
        compiler.close()
    assert result.ok, [d.format() for d in result.diagnostics]
    assert f"-ffile-prefix-map={copy}=/nest-include" in Path(result.log_path or "").read_text()
    assert result.key == izh_build.key and result.module_sha256 == izh_build.module_sha256
    assert str(tmp_path).encode() not in Path(result.module_path or "").read_bytes()
