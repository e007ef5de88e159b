"""The sandbox every build step runs in: code generation, the C++ compiler, the NEST load check.

A published model is data, but NESTML, the C++ compiler and NEST's loader run on it, so each step
runs as if it were hostile, with what Linux and Debian already provide:

- bubblewrap (``bwrap``) gives it a mount namespace that shows the system (``/usr``), the Python
  installation and the NEST headers read-only and only its own work folder writable: no database,
  artifact store, build cache, other builds, home directories or service configuration; a network
  namespace of its own with only a loopback device (no route out); its own PID, IPC and UTS
  namespaces; it dies with its parent.
- it runs as an unprivileged user: the service's own user, or, when the service runs as root, the
  sandbox user (``nestml-build``, made by ``scripts/setup.sh``), switched to with ``setpriv`` with
  every capability dropped and ``no_new_privs`` set.
- ``prlimit`` bounds its address space, CPU time and the size of any file it writes; where the machine
  allows it, a control group per worker bounds the memory and the processes of the whole build
  (:mod:`nestml_registry.compiler.build_group`), elsewhere ``prlimit`` bounds the processes of the
  sandbox user; the work folder's size is watched while a step runs (:mod:`nestml_registry.compiler.steps`).
- its environment is built from scratch: nothing of the service's (database URL, tokens) reaches it.

Where the machine cannot do this (no bubblewrap, no user namespaces), :meth:`Sandbox.check` says
why; the operator may opt out (``NESTML_REGISTRY_SANDBOX=0``), in which case the limits and the
clean environment still apply, and everything that reports on the service says the sandbox is off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nestml_registry.compiler.build_group import BuildGroup
from nestml_registry.compiler.errors import ToolchainError

logger = logging.getLogger(__name__)

GiB = 1024 ** 3
MEMORY_NOTE = "the build reached its memory limit"
PROCESS_NOTE = "the build reached its process limit"
DEFAULT_USER = "nestml-build"
# system folders shown read-only; a top-level one that is a symbolic link (merged /usr) stays one
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt/conda")
# of /etc, only what a compiler, Python and the dynamic loader read
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/passwd",
              "/etc/group", "/etc/nsswitch.conf", "/etc/localtime", "/etc/python3", "/etc/python3.11",
              "/etc/python3.12", "/etc/python3.13", "/etc/gcc")
# what the machine sets for correctness (old OpenBLAS builds on some processors) and a NEST build may need
_PASS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LD_LIBRARY_PATH")


class SandboxError(ToolchainError):
    """Build steps cannot be sandboxed on this machine (and the operator did not opt out)."""

    code = "sandbox_unavailable"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one build process (settable: docs/reference/settings.md)."""

    memory_bytes: int = 4 * GiB  # address space of each process; with a build group, the build's memory
    file_bytes: int = 1 * GiB  # the largest file a step may write
    processes: int = 512  # processes and threads of the build (with a build group), else of the sandbox user
    work_bytes: int = 4 * GiB  # what a build's work folder may hold

    def prlimit(self, cpu_seconds: float, *, per_user_processes: bool = True) -> list[str]:
        cpu = max(1, int(cpu_seconds + 0.999))
        nproc = [f"--nproc={self.processes}"] if per_user_processes else []
        return ["prlimit", f"--as={self.memory_bytes}", f"--fsize={self.file_bytes}", *nproc, f"--cpu={cpu}",
                "--core=0", "--"]


@dataclass(frozen=True)
class SandboxConfig:
    enabled: bool = True
    user: str = DEFAULT_USER  # only used when the service runs as root
    limits: Limits = field(default_factory=Limits)
    build_group: bool = True  # a control group per worker where the machine allows it (compiler.build_group)


class Sandbox:
    """Turns a step's argument list into the argument list that runs it sandboxed."""

    def __init__(self, config: SandboxConfig, readable: Iterable[Path] = ()) -> None:
        self.config = config
        self.readable = tuple(readable)
        self._ids: tuple[int, int] | None = None
        self._group: BuildGroup | None = None
        self._group_tried = False

    def group(self) -> BuildGroup | None:
        """This process's build group (made at the first step), or None where there is none."""
        if not self._group_tried and self.config.build_group:
            self._group_tried = True
            self._group = BuildGroup.create(self.limits.memory_bytes, self.limits.processes)
        return self._group

    @contextlib.contextmanager
    def noting_limits(self, log: Path) -> Iterator[None]:
        """Around a step: if the build group's memory or process limit stopped something meanwhile, the log
        says so (where the step's own output may only show a kill)."""
        group = self.group()
        before = group.counters() if group is not None else None
        try:
            yield
        finally:
            if group is not None and before is not None:
                after = group.counters()
                notes = []
                if after.oom_kills > before.oom_kills:
                    notes.append(f"[{MEMORY_NOTE} of {self.limits.memory_bytes // 1024 ** 2} MiB: processes were "
                                 "killed (NESTML_REGISTRY_STEP_MEMORY)]")
                if after.process_limit_hits > before.process_limit_hits:
                    notes.append(f"[{PROCESS_NOTE} of {self.limits.processes} (NESTML_REGISTRY_STEP_PROCESSES)]")
                if notes:
                    with contextlib.suppress(OSError), open(log, "a") as fh:
                        fh.write("\n" + "\n".join(notes) + "\n")

    def close(self) -> None:
        if self._group is not None:
            self._group.close()
            self._group, self._group_tried = None, False

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    @property
    def limits(self) -> Limits:
        return self.config.limits

    def describe(self) -> str:
        group = self.group()
        limits = (f"; per build: memory {self.limits.memory_bytes // 1024 ** 2} MiB, {self.limits.processes} "
                  f"processes (cgroup v{group.version})") if group is not None else ""
        if not self.enabled:
            return "off (NESTML_REGISTRY_SANDBOX=0: build steps run unsandboxed, with resource limits only)" + limits
        who = f"user {self.config.user}" if os.geteuid() == 0 else f"user {pwd.getpwuid(os.geteuid()).pw_name}"
        return f"bubblewrap, {who}, no network{limits}"

    def ids(self) -> tuple[int, int] | None:
        """(uid, gid) the steps switch to, or None when they run as the service's own (non-root) user."""
        if os.geteuid() != 0:
            return None
        if self._ids is None:
            try:
                entry = pwd.getpwnam(self.config.user)
            except KeyError as exc:
                raise SandboxError(
                    f"the sandbox user '{self.config.user}' does not exist: build steps never run as root. Create "
                    f"it with 'useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "
                    f"{self.config.user}' (scripts/setup.sh does), or name another unprivileged user in "
                    "NESTML_REGISTRY_SANDBOX_USER") from exc
            if entry.pw_uid == 0:
                raise SandboxError(f"the sandbox user '{self.config.user}' is root: name an unprivileged user "
                                   "in NESTML_REGISTRY_SANDBOX_USER")
            self._ids = (entry.pw_uid, entry.pw_gid)
        return self._ids

    def user_label(self) -> str:
        """The name of the user steps run as (for folders of their own, such as an opted-in ccache)."""
        return self.config.user if self.enabled and os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def shared_folder(self, path: Path) -> Path:
        """``path``, made if needed, writable by the steps' user: for what the operator chose to share between
        builds (ccache). Only for trusted setups: every build may write it."""
        path.mkdir(parents=True, exist_ok=True)
        self.prepare(path)
        return path

    def prepare(self, work: Path) -> None:
        """Make ``work`` (a fresh folder of the service's) the step's own: writable by the step's user."""
        ids = self.ids() if self.enabled else None
        if ids is not None:
            os.chown(work, *ids)
        os.chmod(work, 0o700)

    def command(self, argv: Sequence[str], *, work: Path, cpu_seconds: float, cwd: Path | None = None,
                writable: Sequence[Path] = (), readable: Sequence[Path] = ()) -> list[str]:
        """The argument list that runs ``argv`` in the sandbox (in ``cwd``, by default ``work``, the one
        folder it may write besides ``writable``), with the limits."""
        group = self.group()
        joined = group.join_prefix(sys.executable) if group is not None else []
        limited = [*self.limits.prlimit(cpu_seconds, per_user_processes=group is None), *argv]
        if not self.enabled:
            return [*joined, *limited]
        ids = self.ids()
        cmd = ["bwrap", *_mounts([*self.readable, *readable], [work, *writable]),
               "--chdir", str(cwd or work), "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
               "--unshare-cgroup-try", "--hostname", "nestml-build", "--die-with-parent", "--new-session"]
        if ids is None:  # an unprivileged service: bwrap makes a user namespace for the others
            cmd += ["--unshare-user", "--disable-userns", "--", *limited]
        else:  # root: bwrap sets up, then setpriv becomes the sandbox user with no capabilities left
            uid, gid = ids
            cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                    "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all",
                    "--bounding-set=-all", "--no-new-privs", "--", *limited]
        return [*joined, *cmd]

    def check(self, scratch: Path) -> None:
        """Run a trivial step through the whole sandbox; raise :class:`SandboxError` saying why it fails."""
        if not self.enabled:
            return
        missing = [tool for tool in ("bwrap", "setpriv", "prlimit") if shutil.which(tool) is None]
        if missing:
            raise SandboxError(
                f"cannot sandbox build steps: {', '.join(missing)} not found. Install Debian's bubblewrap and "
                "util-linux (scripts/setup.sh does), or set NESTML_REGISTRY_SANDBOX=0 to run builds "
                "unsandboxed (only for models you trust)")
        scratch.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix="probe-", dir=scratch))
        try:
            self.prepare(probe)
            argv = self.command([sys.executable, "-c", "import os; open('ok', 'w').write(str(os.getuid()))"],
                                work=probe, cpu_seconds=30)
            try:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=minimal_env(probe),
                                      stdin=subprocess.DEVNULL)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise SandboxError(f"cannot sandbox build steps: {exc}") from exc
            ok = (probe / "ok").is_file()
        finally:
            shutil.rmtree(probe, ignore_errors=True)
        if proc.returncode != 0 or not ok:
            why = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
            raise SandboxError(
                f"cannot sandbox build steps on this machine: {why[0]}. bubblewrap needs user namespaces (or "
                "root; in a container, see docs/explanations/security.md). Or set NESTML_REGISTRY_SANDBOX=0 to "
                "run builds unsandboxed (only for models you trust)")


def check_sandbox(config: SandboxConfig, scratch: Path) -> str:
    """Check that build steps can be sandboxed here (see :meth:`Sandbox.check`); return what they get."""
    box = Sandbox(config, python_paths())
    try:
        box.check(scratch)
        described = box.describe()
    finally:
        box.close()
    if not config.enabled:
        logger.warning("the build sandbox is OFF (NESTML_REGISTRY_SANDBOX=0): every model built here can run "
                       "code as %s on this machine; build only models you trust", pwd.getpwuid(os.geteuid()).pw_name)
    return described


def minimal_env(work: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a build step: nothing of the service's own (database URL, tokens)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(work),
        "TMPDIR": str(work),
        "LANG": "C.UTF-8",
        "MPLCONFIGDIR": str(work / ".matplotlib"),
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "PYNEST_QUIET": "1",
    }
    env.update({k: os.environ[k] for k in _PASS_ENV if k in os.environ})
    env.update(extra or {})
    return env


def python_paths() -> list[Path]:
    """What a Python child needs to read: the interpreter, its standard library and site-packages."""
    paths = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    paths.add(Path(os.path.realpath(sys.executable)).parent.parent)
    paths.update(Path(p) for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and os.path.isdir(p))
    return sorted(paths)


def _mounts(readable: Sequence[Path], writable: Sequence[Path]) -> list[str]:
    """bwrap options for a root of its own: system folders, then the given paths (parents made 0755)."""
    args: list[str] = []
    for d in _SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    args += ["--perms", "0755", "--dir", "/etc"]
    for f in _ETC_FILES:
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    args += ["--dev", "/dev", "--proc", "/proc"]
    shown = {"/", *(d for d in _SYSTEM_DIRS if os.path.exists(d)), "/dev", "/proc"}
    made: set[str] = set()
    binds: list[tuple[str, str, bool]] = []  # (source, destination, writable)
    for paths, rw in ((readable, False), (writable, True)):
        for p in paths:
            real = os.path.realpath(p)
            if not os.path.exists(real):
                continue
            for dest in dict.fromkeys((os.path.abspath(p), real)):
                binds.append((real, dest, rw))
    for src, dest, rw in sorted(binds, key=lambda b: (b[1].count("/"), b[1], b[2])):
        if not rw and _under(dest, shown):
            continue  # already visible through a folder shown above
        for parent in _parents(dest):
            if parent not in made and not _under(parent, shown):
                args += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        args += ["--bind" if rw else "--ro-bind", src, dest]
        shown.add(dest)
    args += ["--remount-ro", "/"]
    return args


def _parents(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _under(path: str, shown: set[str]) -> bool:
    return any(path == s or path.startswith(s.rstrip("/") + "/") for s in shown if s != "/") or path == "/"
