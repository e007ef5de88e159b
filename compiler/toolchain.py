"""Detect the NEST / NESTML / C++ toolchain and make a ``nest-config`` that works with it.

The toolchain is part of every build key: a module built for one NEST version, C++ ABI or compiler
must never be handed to another. Detection imports NEST in a child process (once; the result is
cached on disk, keyed by the files it came from), reads the C++ ABI from the kernel library's own
symbols, and asks the compiler for its version.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nestml_registry.compiler.errors import ToolchainError
from nestml_registry.compiler.integrity import nest_string_abi, write_atomic
from nestml_registry.compiler.launcher import launcher_free

logger = logging.getLogger(__name__)

DETECTION_VERSION = 3
_PROBE = r"""
import json, os, sys
os.environ.setdefault("PYNEST_QUIET", "1")
import nest
nest.set_verbosity("M_FATAL") if hasattr(nest, "set_verbosity") else None
info = {"version": nest.__version__, "prefix": nest.build_info.get("prefix", ""),
        "node_models": list(nest.node_models), "synapse_models": list(nest.synapse_models)}
sys.stdout.write("\n@@PROBE@@" + json.dumps(info) + "\n")
"""
_VERSION_RE = re.compile(r"(\d+\.\d+(?:\.\d+)?)")
_NEEDED_HEADERS = ("gsl/gsl_errno.h", "boost/version.hpp", "ltdl.h")  # libgsl-dev, libboost-dev, libltdl-dev
_HEADER_CHECK = "".join(f"#include <{h}>\n" for h in _NEEDED_HEADERS) + "int main() {}\n"


@dataclass(frozen=True)
class Toolchain:
    """What a module's binary compatibility depends on, plus what the build needs to know."""

    nest_version: str
    nest_package: str
    include_dirs: tuple[str, ...]
    cxx_abi: int  # 0: old std::string ABI (the PyPI wheel), 1: the C++11 ABI
    cxx: str
    cxx_name: str
    cxx_version: str
    cflags: str
    platform: str
    nestml_version: str
    nest_config: str | None = None  # NEST's own working nest-config, when there is one
    builtin_models: tuple[str, ...] = field(default=(), compare=False)
    # what NEST was built with (its config.h) where that differs from the PyPI wheel: e.g. ("+mpi",)
    features: tuple[str, ...] = ()

    def identity(self) -> dict[str, object]:
        """The fields that decide binary compatibility (no paths). NEST's build features change the layout
        of the classes a module is compiled against (``HAVE_MPI`` adds members to ``MPIManager``): they are
        part of it where they differ from the PyPI wheel's, so the wheel's toolchain keeps its id."""
        identity: dict[str, object] = {
            "nest": self.nest_version,
            "abi": self.cxx_abi,
            "cxx": f"{self.cxx_name}-{self.cxx_version}",
            "cflags": self.cflags,
            "platform": self.platform,
            "nestml": self.nestml_version,
        }
        if self.features:
            identity["features"] = list(self.features)
        return identity

    @property
    def has_mpi(self) -> bool:
        return "+mpi" in self.features

    def prefix_maps(self) -> list[str]:
        """Compiler options that write NEST's headers' folders into a module (``__FILE__`` in NEST's asserts
        and exceptions) as fixed names, not as where this machine installed NEST: the same build gives the
        same bytes on every worker of the toolchain, wherever NEST and the project are installed."""
        dirs = [d for d in self.include_dirs if os.path.isabs(d)]
        if not dirs:
            return []
        root = os.path.commonpath(dirs)
        return [f"-ffile-prefix-map={root}=/nest-include"]

    @property
    def fingerprint(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    @property
    def id(self) -> str:
        """A readable identifier that a simulation machine can compute and a registry can match (``-mpi``
        after the NEST version for a NEST built with MPI)."""
        mpi = "-mpi" if self.has_mpi else ""
        return (f"nest{self.nest_version}{mpi}-{self.platform}-{self.cxx_name}{self.cxx_version}"
                f"-abi{self.cxx_abi}-{self.fingerprint[:12]}")

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["include_dirs"] = list(self.include_dirs)
        d["builtin_models"] = list(self.builtin_models)
        d["features"] = list(self.features)
        d["id"] = self.id
        d["fingerprint"] = self.fingerprint
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Toolchain:
        kw = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        kw["include_dirs"] = tuple(kw["include_dirs"])
        kw["builtin_models"] = tuple(kw.get("builtin_models", ()))
        kw["features"] = tuple(kw.get("features", ()))
        return cls(**kw)

    def nest_version_tag(self) -> str:
        """The version string NESTML expects in ``codegen_opts["nest_version"]``."""
        return "v" + self.nest_version


# NEST's config.h switches that change what a module is compiled against, and how the PyPI wheel has them
WHEEL_FEATURES = {"MPI": False, "MUSIC": False, "SIONLIB": False, "HDF5": False, "LIBNEUROSIM": False,
                  "GSL": True, "BOOST": True, "LIBLTDL": True}
_DEFINE_RE = re.compile(r"^\s*#\s*define\s+HAVE_([A-Z0-9_]+)\b", re.MULTILINE)


def build_features(config_h: str) -> tuple[str, ...]:
    """``+mpi``, ``-gsl``, ...: where the NEST build whose ``config.h`` this is differs from the wheel."""
    defined = set(_DEFINE_RE.findall(config_h))
    return tuple(sorted(("+" if name in defined else "-") + name.lower()
                        for name, wheel in WHEEL_FEATURES.items() if (name in defined) != wheel))


def _features_of(include_dirs: list[str]) -> tuple[str, ...]:
    for d in include_dirs:
        config_h = Path(d) / "config.h"
        if config_h.is_file():
            return build_features(config_h.read_text(errors="replace"))
    raise ToolchainError(f"NEST's config.h is not in {include_dirs[0]}: the NEST installation is incomplete")


def _nest_package_dir() -> Path:
    spec = importlib.util.find_spec("nest")
    if spec is None or not spec.submodule_search_locations:
        raise ToolchainError(
            "NEST is not installed in this Python environment: install it with "
            "'pip install nest-simulator==3.10.0' (or point PYTHONPATH at a NEST build)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _kernel_library(nest_dir: Path) -> Path:
    for pattern in ("nestkernel_api*.so", "pynestkernel*.so", "nestkernel*.so"):
        found = sorted(nest_dir.glob(pattern))
        if found:
            return found[0]
    raise ToolchainError(f"no NEST kernel library (nestkernel_api*.so) in {nest_dir}: the NEST installation is broken")


def abi_of_library(path: Path) -> int:
    """The C++ string ABI of NEST's kernel library, read from its exported ``nest::`` symbols.

    Symbols that take a ``std::string`` mangle it as ``Ss`` under the old ABI and as
    ``NSt7__cxx1112basic_string...`` under the new one."""
    abi = nest_string_abi(path.read_bytes())
    if abi is None:
        raise ToolchainError(f"{path} exports no nest:: symbols; cannot tell its C++ ABI")
    return abi


def _which_cxx() -> str:
    name = os.environ.get("CXX", "g++")
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"C++ compiler {name!r} not found: install it with 'apt-get install g++' (or set CXX)")
    return str(Path(path).resolve())


def _cxx_version(cxx: str) -> tuple[str, str]:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"{cxx} --version failed: {exc}") from exc
    first = out.splitlines()[0] if out else ""
    name = "clang" if "clang" in first else "gcc" if ("g++" in first or "GCC" in first) else Path(cxx).name
    try:
        full = subprocess.run([cxx, "-dumpfullversion"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        full = ""
    m = _VERSION_RE.search(full or first)
    return name, (m.group(1) if m else "unknown")


def _probe_nest(timeout: float) -> dict:
    # not a rank of the job this process may be one of (an MPI NEST would join it, or hang)
    env = dict(launcher_free(os.environ), PYNEST_QUIET="1", OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(f"importing NEST took more than {timeout:.0f} s") from exc
    marker = "@@PROBE@@"
    for line in proc.stdout.splitlines():
        if line.startswith(marker):
            return json.loads(line[len(marker):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    raise ToolchainError("cannot import NEST in this Python environment: " + " | ".join(tail))


def _own_nest_config(prefix: str) -> tuple[str, str, list[str], str] | None:
    """NEST's own nest-config, if it works here: (path, cflags, include dirs, compiler)."""
    candidates = [Path(prefix) / "bin" / "nest-config"] if prefix else []
    on_path = shutil.which("nest-config")
    if on_path:
        candidates.append(Path(on_path))
    for cfg in candidates:
        if not cfg.is_file():
            continue
        try:
            def ask(opt: str, cfg: Path = cfg) -> str:
                return subprocess.run([str(cfg), opt], capture_output=True, text=True, timeout=30,
                                      check=True).stdout.strip()
            includes = [p[2:] for p in ask("--includes").split() if p.startswith("-I")]
            compiler = ask("--compiler")
            cflags = ask("--cflags")
            own_prefix = ask("--prefix")
        except (OSError, subprocess.SubprocessError):
            continue
        if (Path(own_prefix).is_dir() and includes and (Path(includes[0]) / "nest.h").is_file()
                and shutil.which(compiler)):
            return str(cfg), cflags, includes, compiler
        logger.debug("ignoring unusable %s (prefix %s does not exist here)", cfg, own_prefix)
    return None


def _check_headers(cxx: str, cflags: str, include_dirs: list[str]) -> None:
    argv = [cxx, *cflags.split(), *(f"-I{d}" for d in include_dirs), "-fsyntax-only", "-x", "c++", "-"]
    try:
        proc = subprocess.run(argv, input=_HEADER_CHECK, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"the C++ compiler does not run: {exc}") from exc
    if proc.returncode != 0:
        missing = []
        if "gsl" in proc.stderr:
            missing.append("libgsl-dev")
        if "boost" in proc.stderr:
            missing.append("libboost-dev")
        if "ltdl" in proc.stderr:
            missing.append("libltdl-dev")
        hint = f"install them with 'apt-get install {' '.join(missing)}'" if missing else proc.stderr.strip()[:300]
        raise ToolchainError(f"the C++ headers NESTML's code needs are missing: {hint}")


def _detect(cache_key: str, nest_dir: Path, kernel: Path, cxx: str, timeout: float, cxxflags: str = "") -> Toolchain:
    for tool in ("cmake", "make"):
        if shutil.which(tool) is None:
            raise ToolchainError(f"{tool} not found: install it with 'apt-get install {tool}'")
    probe = _probe_nest(timeout)
    abi = abi_of_library(kernel)
    own = _own_nest_config(probe["prefix"])
    if own is not None:
        nest_config, cflags, include_dirs, own_cxx = own
        cxx = str(Path(shutil.which(own_cxx) or own_cxx).resolve())
    else:
        nest_config = None
        include_dirs = [str(nest_dir / "include" / "nest"), str(nest_dir / "include")]
        if not (Path(include_dirs[0]) / "nest.h").is_file():
            raise ToolchainError(f"NEST's C++ headers are not installed ({include_dirs[0]}/nest.h is missing)")
        cflags = f"-std=c++20 -O2 -fopenmp -D_GLIBCXX_USE_CXX11_ABI={abi}"
    if cxxflags:
        cflags = f"{cflags} {cxxflags}"
    _check_headers(cxx, cflags, include_dirs)
    cxx_name, cxx_version = _cxx_version(cxx)
    features = _features_of(include_dirs)
    if "+mpi" in features:  # NEST's headers include mpi.h: the MPI compiler wrapper knows where it is
        include_dirs = [*include_dirs, *_mpi_include_dirs()]
    return Toolchain(
        nest_version=probe["version"],
        nest_package=str(nest_dir),
        include_dirs=tuple(include_dirs),
        cxx_abi=abi,
        cxx=cxx,
        cxx_name=cxx_name,
        cxx_version=cxx_version,
        cflags=cflags,
        platform=f"{sys.platform}-{platform.machine()}",
        nestml_version=importlib.metadata.version("nestml"),
        nest_config=nest_config,
        builtin_models=tuple(sorted(set(probe["node_models"]) | set(probe["synapse_models"]))),
        features=features,
    )


def _mpi_include_dirs() -> list[str]:
    """Where ``mpi.h`` is, from the MPI compiler wrapper (``mpicxx --showme:incdirs``, Open MPI's)."""
    wrapper = shutil.which("mpicxx") or shutil.which("mpic++")
    if wrapper is None:
        raise ToolchainError("this NEST is built with MPI, but no MPI compiler wrapper (mpicxx) is installed: "
                             "install Open MPI's headers with 'apt-get install libopenmpi-dev'")
    try:
        out = subprocess.run([wrapper, "--showme:incdirs"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"{wrapper} --showme:incdirs failed ({exc}): is Open MPI installed?") from exc
    return out.stdout.split()


def detect(cache_dir: Path | None = None, timeout: float = 120.0, cxxflags: str = "") -> Toolchain:
    """Detect the toolchain; with ``cache_dir``, reuse an earlier detection of the same files.

    ``cxxflags`` are extra C++ flags for every module (e.g. ``-O3 -march=native``): they make
    another binary, so another toolchain."""
    cxxflags = " ".join(cxxflags.split())
    if any(ch in cxxflags for ch in "\"'`$;|&<>"):
        raise ToolchainError(f"invalid extra C++ flags {cxxflags!r}: give plain flags such as '-O3 -march=native'")
    nest_dir = _nest_package_dir()
    kernel = _kernel_library(nest_dir)
    cxx = _which_cxx()
    try:
        nestml_version = importlib.metadata.version("nestml")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ToolchainError("NESTML is not installed: install it with 'pip install nestml==9.0.0'") from exc
    stamp = [DETECTION_VERSION, sys.executable, str(kernel), nestml_version, cxx, os.environ.get("CXX", ""), cxxflags]
    for p in (kernel, Path(cxx)):
        st = p.stat()
        stamp += [st.st_size, st.st_mtime_ns]
    cache_key = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:24]
    cache_file = cache_dir / "toolchains" / f"detected-{cache_key}.json" if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        try:
            return Toolchain.from_dict(json.loads(cache_file.read_text()))
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring unreadable toolchain cache %s", cache_file)
    tc = _detect(cache_key, nest_dir, kernel, cxx, timeout, cxxflags)
    if cache_file is not None:
        write_atomic(cache_file, json.dumps(tc.to_dict(), indent=1).encode())
    logger.info("toolchain %s", tc.id)
    return tc


_NEST_CONFIG_TEMPLATE = """#!/bin/sh
# nest-config made by nestml-registry for {nest_package}
# (the installed one names a build directory that does not exist on this machine).
for arg in "$@"; do
  case "$arg" in
    --prefix) echo "{prefix}" ;;
    --exec-prefix) echo "{prefix}" ;;
    --version) echo "{version}" ;;
    --includes) echo "{includes}" ;;
    --cflags) echo "{cflags}" ;;
    --compiler) echo "{cxx}" ;;
    --libs|--static-libraries) echo "" ;;
    --libdir) echo "{prefix}/lib" ;;
    --datadir) echo "{prefix}/share" ;;
    --python-executable) echo "{python}" ;;
    *) echo "nest-config: unknown option $arg" >&2; exit 1 ;;
  esac
done
"""


def nest_config_prefix(tc: Toolchain, cache_dir: Path, pch: Path | None = None) -> Path:
    """A directory ``P`` with a working ``P/bin/nest-config`` (NESTML's ``nest_path``).

    With ``pch``, its ``--cflags`` also force-include that precompiled header: the flags reach only
    the module's own sources (CMake's compiler checks do not see them). NEST's own nest-config, where
    it works, is used as it is (and without the header)."""
    if tc.nest_config is not None:
        return Path(tc.nest_config).parent.parent
    cflags = tc.cflags
    prefix = cache_dir / "toolchains" / tc.fingerprint[:16]
    if pch is not None:
        cflags += f" -include {pch} -Winvalid-pch"
        prefix = pch.parent / "prefix"
    script = prefix / "bin" / "nest-config"
    text = _NEST_CONFIG_TEMPLATE.format(
        nest_package=tc.nest_package, prefix=prefix, version=tc.nest_version,
        includes=" ".join(f"-I{d}" for d in tc.include_dirs), cflags=cflags, cxx=tc.cxx,
        python=sys.executable,
    )
    if not script.is_file() or script.read_text() != text:
        write_atomic(script, text.encode(), mode=0o755)
        (prefix / "lib").mkdir(exist_ok=True)
    return prefix
