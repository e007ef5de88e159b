"""The build cache: the same key never compiles again, wherever the output goes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nestml_registry.compiler.cache import LocalCache, export_module
from nestml_registry.compiler.config import CompilerConfig
from nestml_registry.compiler.pipeline import Compiler
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.compiler.result import BuildResult
from nestml_registry.compiler.sources import Source


def _no_child_processes(*args, **kwargs):
    raise AssertionError(f"a cached build ran a child process: {args[:2]}")


def test_second_compile_runs_nothing(compiler: Compiler, izh_build: BuildResult, models_dir: Path,
                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("nestml_registry.compiler.workspace.run_step", _no_child_processes)
    monkeypatch.setattr("nestml_registry.compiler.workspace.run_steps_parallel", _no_child_processes)
    monkeypatch.setattr("nestml_registry.compiler.workspace.EarlyStep", _no_child_processes)
    text = (models_dir / "neurons" / "izhikevich_neuron.nestml").read_text()
    # the same text with Windows line endings normalises to the same source
    request = BuildRequest.create([Source.from_text("izhikevich_neuron.nestml", text.replace("\n", "\r\n"))])
    again = compiler.compile(request)
    assert again.cached and again.ok
    assert again.key == izh_build.key
    assert again.module_sha256 == izh_build.module_sha256
    # a fresh Compiler (a new CLI process) with another output folder hits the same cache
    fresh = Compiler(CompilerConfig(cache_dir=compiler.config.cache_dir))
    third = fresh.compile(request)
    assert third.cached
    out = export_module(Path(third.module_path or ""), third.module_sha256 or "", tmp_path / "out")
    assert out == tmp_path / "out" / third.module_sha256[:16] / "izhikevich_neuron_nestml_module.so"
    assert out.read_bytes() == Path(izh_build.module_path or "").read_bytes()


def test_key_depends_on_inputs_only(compiler: Compiler, models_dir: Path) -> None:
    izh = Source.from_path(models_dir / "neurons" / "izhikevich_neuron.nestml")
    iaf = Source.from_path(models_dir / "neurons" / "iaf_psc_exp_neuron.nestml")
    k = compiler.key
    two = BuildRequest.create([izh, iaf], module="twomodule")
    assert k(two) == k(BuildRequest.create([iaf, izh], module="twomodule"))
    assert k(BuildRequest.create([izh])) != k(BuildRequest.create([izh], module="othermodule"))
    assert k(BuildRequest.create([izh])) != k(BuildRequest.create([izh], suffix="_v2"))
    edited = Source.from_text(izh.name, izh.text + "\n# a comment changes the source\n")
    assert k(BuildRequest.create([izh])) != k(BuildRequest.create([edited]))


def test_damaged_cached_module_is_not_returned(izh_build: BuildResult, tmp_path: Path) -> None:
    cache = LocalCache(tmp_path / "cache")
    module = cache.module_path(izh_build.module_sha256 or "", izh_build.module_name)
    module.parent.mkdir(parents=True)
    shutil.copyfile(izh_build.module_path or "", module)
    copy = BuildResult.from_dict(izh_build.to_dict())
    copy.module_path = str(module)
    cache.store_result(copy)
    assert cache.lookup(izh_build.key) is not None
    data = bytearray(module.read_bytes())
    data[len(data) // 2] ^= 0xFF
    module.write_bytes(bytes(data))
    assert cache.lookup(izh_build.key) is None
