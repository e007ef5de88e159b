"""Toolchain detection on this machine: the PyPI NEST wheel, its old C++ ABI, a working nest-config."""

from __future__ import annotations

import subprocess
from pathlib import Path

from compiler.toolchain import Toolchain, abi_of_library, detect, nest_config_prefix


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


def test_detection_is_cached(registry_home: Path, toolchain: Toolchain) -> None:
    assert detect(registry_home / "cache") == toolchain


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
