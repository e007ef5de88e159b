"""A precompiled header of the NEST headers NESTML's generated code includes, built once per toolchain.

Each generated translation unit spends most of its compile time parsing NEST's headers; with this
header force-included (``-include``) the neuron TU compiles in about half the time (measured in
benchmarks/compile.py). The header must be built with exactly the flags the module is built with,
so its file name carries a hash of them. It is compiled in the build sandbox, as the sandbox user, like
every other compile. If it cannot be built, or GCC finds it unusable, builds go
on without it (``-Winvalid-pch`` says so in the log): never a wrong module, only a slower one.

``nest_impl.h`` and ``nest_extension_interface.h`` stay out: ``nest_impl.h`` has no include guard.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from nestml_registry.compiler.integrity import write_atomic
from nestml_registry.compiler.sandbox import Sandbox, minimal_env
from nestml_registry.compiler.toolchain import Toolchain

logger = logging.getLogger(__name__)

PCH_HEADERS = (
    "<cmath>", "<limits>", "<gsl/gsl_errno.h>", "<gsl/gsl_matrix.h>", "<gsl/gsl_odeiv.h>",
    '"config.h"', '"archiving_node.h"', '"connection.h"', '"dict_util.h"', '"event.h"', '"exceptions.h"',
    '"kernel_manager.h"', '"nest_time.h"', '"nest_types.h"', '"numerics.h"', '"ring_buffer.h"',
    '"universal_data_logger.h"', '"universal_data_logger_impl.h"',
)
# what CMake adds to NEST_CXXFLAGS for the module target (see NESTML's CMakeLists template)
MODULE_FLAGS = ("-fPIC", "-DLTX_MODULE")


def pch_argv(tc: Toolchain, header: Path, output: Path) -> list[str]:
    includes = [f"-I{d}" for d in tc.include_dirs]
    return [tc.cxx, *MODULE_FLAGS, *tc.cflags.split(), *tc.prefix_maps(), *includes, "-x", "c++-header", str(header),
            "-o", str(output)]


def pch_header(tc: Toolchain, cache_dir: Path) -> Path:
    text = "// NEST headers precompiled by nestml-registry\n" + "".join(f"#include {h}\n" for h in PCH_HEADERS)
    stamp = hashlib.sha256(("\0".join(pch_argv(tc, Path("h"), Path("o"))) + text).encode()).hexdigest()[:16]
    return cache_dir / "toolchains" / tc.fingerprint[:16] / "pch" / stamp / "nest_pch.h"


class PchBuild:
    """Builds the header in the background (while NESTML generates code on the other core), as every other
    compile runs: in the build sandbox (``sandbox``), into a work folder of the sandbox user's, from which the
    result is moved into place. Its input is NEST's own headers, which no model reaches."""

    def __init__(self, tc: Toolchain, cache_dir: Path, timeout: float, sandbox: Sandbox | None = None) -> None:
        self.header = pch_header(tc, cache_dir)
        self.gch = self.header.with_name(self.header.name + ".gch")
        self.timeout = timeout
        self._proc: subprocess.Popen | None = None
        self._lock: object | None = None
        self._work: Path | None = None
        self._tmp = self.gch.with_name(f".{self.gch.name}.{os.getpid()}.tmp")
        if self.gch.is_file():
            return
        self.header.parent.mkdir(parents=True, exist_ok=True)
        lock = open(self.header.parent / "build.lock", "a")  # noqa: SIM115 (held until wait())
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()  # another build is making it; use it if it is there by the time we compile
            return
        self._lock = lock
        if self.gch.is_file():
            return
        write_atomic(self.header, "".join(f"#include {h}\n" for h in PCH_HEADERS).encode())
        argv, env = pch_argv(tc, self.header, self._tmp), None
        if sandbox is not None:
            self._work = Path(tempfile.mkdtemp(prefix=".pch-", dir=self.header.parent))
            sandbox.prepare(self._work)
            self._tmp = self._work / self.gch.name
            argv = sandbox.command(pch_argv(tc, self.header, self._tmp), work=self._work, cpu_seconds=timeout)
            env = minimal_env(self._work)
        logger.info("building the precompiled NEST header %s", self.gch)
        self._proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, start_new_session=True)

    def wait(self) -> Path | None:
        """The header to force-include, or None if there is no usable one."""
        try:
            if self._proc is not None:
                try:
                    _, err = self._proc.communicate(timeout=self.timeout)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.communicate()
                    err = b"timed out"
                if self._proc.returncode == 0:
                    os.replace(self._tmp, self.gch)
                else:
                    logger.warning("cannot precompile the NEST headers (builds go on without): %s",
                                   err.decode(errors="replace").strip()[-500:])
        finally:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
            if self._work is not None:
                shutil.rmtree(self._work, ignore_errors=True)
            if self._lock is not None:
                self._lock.close()  # type: ignore[attr-defined]
                self._lock = None
        return self.header if self.gch.is_file() else None
