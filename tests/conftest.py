"""Shared fixtures: one toolchain detection and one compile of each real model per session."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from nestml_registry.compiler.config import CompilerConfig
from nestml_registry.compiler.pipeline import Compiler
from nestml_registry.compiler.request import BuildRequest, Pair
from nestml_registry.compiler.result import BuildResult
from nestml_registry.compiler.sources import Source

DATA = Path(__file__).parent / "data"
# fixtures that compile, detect the toolchain (which runs NEST) or start a server with compile workers: a
# test that uses one is in the slow lane (pytest -m "not slow" is the fast one, which compiles nothing)
COMPILING_FIXTURES = frozenset({"compiler", "toolchain", "izh_build", "stdp_pair_build", "server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if COMPILING_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def shipped_models_dir() -> Path:
    """The models NESTML installs beside the environment (``<prefix>/models``)."""
    for base in (sysconfig.get_path("data"), sys.prefix):
        d = Path(base) / "models"
        if (d / "neurons").is_dir():
            return d
    pytest.fail("NESTML's shipped models (<prefix>/models/neurons) are not installed")


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return shipped_models_dir()


@pytest.fixture(scope="session")
def registry_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A NESTML_REGISTRY_HOME shared by the session (its cache holds the compiled modules)."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="session")
def compiler(registry_home: Path) -> Compiler:
    # ccache: the suite is one trusted user, whose tests build the same generated C++ under other keys
    return Compiler(CompilerConfig(cache_dir=registry_home / "cache", ccache=True))


@pytest.fixture(scope="session")
def toolchain(compiler: Compiler):
    return compiler.toolchain


@pytest.fixture(scope="session")
def izh_build(compiler: Compiler, models_dir: Path) -> BuildResult:
    request = BuildRequest.create([Source.from_path(models_dir / "neurons" / "izhikevich_neuron.nestml")])
    result = compiler.compile(request)
    assert result.ok, [d.format() for d in result.diagnostics]
    return result


@pytest.fixture(scope="session")
def stdp_pair_build(compiler: Compiler, models_dir: Path) -> BuildResult:
    request = BuildRequest.create(
        [Source.from_path(models_dir / "neurons" / "iaf_psc_exp_neuron.nestml"),
         Source.from_path(models_dir / "synapses" / "stdp_synapse.nestml")],
        pairs=[Pair.parse("iaf_psc_exp_neuron:stdp_synapse")],
    )
    result = compiler.compile(request)
    assert result.ok, [d.format() for d in result.diagnostics]
    return result


def run_nest_script(code: str, *args: str, timeout: float = 300) -> str:
    """Run ``code`` in a fresh Python process (a fresh NEST); return its stdout, fail on error."""
    env = dict(os.environ, PYNEST_QUIET="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def nestml(text: str, name: str = "model.nestml") -> Source:
    return Source.from_text(name, text)
