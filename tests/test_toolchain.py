"""Toolchain detection on this machine: the PyPI NEST wheel, its old C++ ABI, a working nest-config."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nestml_registry.compiler import toolchain as toolchain_module
from nestml_registry.compiler.toolchain import Toolchain, abi_of_library, detect, nest_config_prefix


def test_detects_the_kernel_abi_from_its_symbols(toolchain: Toolchain) -> None:
    kernel = next(Path(toolchain.nest_package).glob("nestkernel_api*.so"))
    assert abi_of_library(kernel) == toolchain.cxx_abi
    assert toolchain.cxx_abi == 0  # the PyPI wheel is built with the old std::string ABI
    assert f"-D_GLIBCXX_USE_CXX11_ABI={toolchain.cxx_abi}" in toolchain.cflags


def test_identity(toolchain: Toolchain) -> None:
    assert toolchain.nest_version.startswith("3.10")
    assert toolchain.nestml_version.startswith("9.")
    assert toolchain.id.startswith(f"nest{toolchain.nest_version}-")
    assert f"abi{toolchain.cxx_abi}" in toolchain.id
    assert "iaf_psc_alpha" in toolchain.builtin_models and "static_synapse" in toolchain.builtin_models
    assert Toolchain.from_dict(toolchain.to_dict()) == toolchain


def test_the_wheels_toolchain_keeps_its_id(toolchain: Toolchain) -> None:
    """NEST's build features enter the identity only where they differ from the wheel's: a registry's
    builds for the wheel keep resolving (its id is what it was before features were read)."""
    import hashlib
    import json

    assert toolchain.features == () and not toolchain.has_mpi and "-mpi" not in toolchain.id
    before = {"nest": toolchain.nest_version, "abi": toolchain.cxx_abi,
              "cxx": f"{toolchain.cxx_name}-{toolchain.cxx_version}", "cflags": toolchain.cflags,
              "platform": toolchain.platform, "nestml": toolchain.nestml_version}
    assert toolchain.fingerprint == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    mpi = Toolchain.from_dict({**toolchain.to_dict(), "features": ["+mpi"]})
    assert mpi.has_mpi and mpi.id.startswith(f"nest{toolchain.nest_version}-mpi-") and mpi.id != toolchain.id
    assert mpi.fingerprint != toolchain.fingerprint


def test_build_features_from_config_h() -> None:
    wheel_h = "#define HAVE_GSL 1\n#define HAVE_LIBLTDL 1\n/* #undef HAVE_MPI */\n#define HAVE_BOOST 1\n"
    assert toolchain_module.build_features(wheel_h) == ()
    mpi_h = wheel_h.replace("/* #undef HAVE_MPI */", "#define HAVE_MPI 1") + "#  define HAVE_HDF5 1\n"
    assert toolchain_module.build_features(mpi_h) == ("+hdf5", "+mpi")
    assert toolchain_module.build_features(wheel_h.replace("#define HAVE_GSL 1", "")) == ("-gsl",)


def test_detection_is_cached(registry_home: Path, toolchain: Toolchain, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second detection reads the cache: it runs none of the probes (which start NEST and the compiler)."""
    def probe(*args: object, **kwargs: object) -> None:
        raise AssertionError("detect() probed the toolchain again instead of reading its cache")

    monkeypatch.setattr(toolchain_module, "_detect", probe)
    assert detect(registry_home / "cache") == toolchain
    with pytest.raises(AssertionError, match="probed the toolchain again"):
        detect(registry_home / "cache", cxxflags="-O3")  # other flags: another toolchain, not in the cache


def test_nest_config_prefix_answers_like_nest_config(toolchain: Toolchain, tmp_path: Path) -> None:
    prefix = nest_config_prefix(toolchain, tmp_path)
    cfg = prefix / "bin" / "nest-config"

    def ask(opt: str) -> str:
        return subprocess.run([str(cfg), opt], capture_output=True, text=True, check=True).stdout.strip()

    includes = [p[2:] for p in ask("--includes").split()]
    assert (Path(includes[0]) / "nest.h").is_file()
    assert ask("--cflags") == toolchain.cflags
    assert Path(ask("--compiler")).is_file()
    assert ask("--prefix") == str(prefix)
    assert ask("--libs") == ""


def test_a_working_nest_config_of_nests_own_is_used(toolchain: Toolchain, tmp_path: Path) -> None:
    """A source or conda build of NEST ships a nest-config that works: it is taken as it is."""
    from nestml_registry.compiler.toolchain import _own_nest_config

    prefix = tmp_path / "nest-install"
    (prefix / "bin").mkdir(parents=True)
    cfg = prefix / "bin" / "nest-config"
    includes = " ".join(f"-I{d}" for d in toolchain.include_dirs)
    cfg.write_text("#!/bin/sh\ncase \"$1\" in\n"
                   f"  --includes) echo '{includes}' ;;\n  --compiler) echo '{toolchain.cxx}' ;;\n"
                   f"  --cflags) echo '-std=c++20 -O2' ;;\n  --prefix) echo '{prefix}' ;;\nesac\n")
    cfg.chmod(0o755)
    found = _own_nest_config(str(prefix))
    assert found == (str(cfg), "-std=c++20 -O2", list(toolchain.include_dirs), toolchain.cxx)
    # the wheel's own nest-config names directories of its build machine: it is not taken
    wheel_cfg = tmp_path / "wheel" / "bin" / "nest-config"
    wheel_cfg.parent.mkdir(parents=True)
    wheel_cfg.write_text("#!/bin/sh\ncase \"$1\" in\n  --includes) echo '-I/tmp/gone/include/nest' ;;\n"
                         "  --compiler) echo '/opt/rh/devtoolset-10/root/usr/bin/g++' ;;\n"
                         "  --prefix) echo '/tmp/gone' ;;\n  *) echo '' ;;\nesac\n")
    wheel_cfg.chmod(0o755)
    assert _own_nest_config(str(tmp_path / "wheel")) is None
