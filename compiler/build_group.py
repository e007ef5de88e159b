"""One control group for a worker's build steps: memory and processes limited for the whole build.

``prlimit`` bounds each process (its address space) and the processes of a user; a build can start many
processes, and every build runs as the same sandbox user, so those limits neither bound a build as a
whole nor keep one build from starving another. Where the machine allows it (the worker runs as root and
a cgroup v1 ``memory`` and ``pids`` hierarchy, or a cgroup v2 one with both controllers, is writable), each
worker process gets a group of its own, ``nestml-registry/w<pid>-<n>``; every step it runs joins it first
(:mod:`nestml_registry.compiler.cgroup_join`), and the group's ``memory`` and ``pids`` limits are the
build's (``NESTML_REGISTRY_STEP_MEMORY``, ``NESTML_REGISTRY_STEP_PROCESSES``). Its OOM-kill and
process-limit counters tell the build's diagnostics why a step died. Elsewhere there is no group and the
per-process limits alone apply (:meth:`BuildGroup.create` returns None and says why in the log).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
PARENT = "nestml-registry"
JOIN = Path(__file__).with_name("cgroup_join.py")
_SERIAL = itertools.count(1)


@dataclass(frozen=True)
class Counters:
    oom_kills: int = 0
    process_limit_hits: int = 0


class BuildGroup:
    """The group (one folder per hierarchy) this process's build steps join."""

    def __init__(self, folders: dict[str, Path], version: int) -> None:
        self.folders = folders  # "memory" / "pids" (v1) or "unified" (v2) -> the group's folder
        self.version = version

    @classmethod
    def create(cls, memory_bytes: int, processes: int, root: Path = ROOT) -> BuildGroup | None:
        """This process's group with the limits set, or None where groups cannot be made here."""
        if os.geteuid() != 0:
            return None
        name = f"w{os.getpid()}-{next(_SERIAL)}"  # one per sandbox: closing one never touches another's
        try:
            if (root / "cgroup.controllers").is_file():
                group = cls._v2(root, name)
            elif (root / "memory").is_dir() and (root / "pids").is_dir():
                group = cls({"memory": root / "memory" / PARENT / name, "pids": root / "pids" / PARENT / name}, 1)
                for folder in group.folders.values():
                    _sweep(folder.parent)
                    folder.mkdir(parents=True, exist_ok=True)
            else:
                return None
            group._limit(memory_bytes, processes)
        except OSError as exc:
            logger.info("no control group for build steps (%s): each step's processes are limited one by one", exc)
            return None
        return group

    @classmethod
    def _v2(cls, root: Path, name: str) -> BuildGroup:
        controllers = (root / "cgroup.controllers").read_text().split()
        if not {"memory", "pids"} <= set(controllers):
            raise OSError(f"cgroup v2 without the memory and pids controllers ({' '.join(controllers)})")
        parent = root / PARENT
        parent.mkdir(exist_ok=True)
        (root / "cgroup.subtree_control").write_text("+memory +pids")
        (parent / "cgroup.subtree_control").write_text("+memory +pids")
        _sweep(parent)
        folder = parent / name
        folder.mkdir(exist_ok=True)
        return cls({"unified": folder}, 2)

    def _limit(self, memory_bytes: int, processes: int) -> None:
        if self.version == 2:
            folder = self.folders["unified"]
            (folder / "memory.max").write_text(str(memory_bytes))
            with contextlib.suppress(OSError):
                (folder / "memory.swap.max").write_text("0")
            (folder / "pids.max").write_text(str(processes))
        else:
            (self.folders["memory"] / "memory.limit_in_bytes").write_text(str(memory_bytes))
            with contextlib.suppress(OSError):  # without swap accounting there is no such file
                (self.folders["memory"] / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
            (self.folders["pids"] / "pids.max").write_text(str(processes))

    def join_prefix(self, python: str) -> list[str]:
        """The argument list that makes a step join this group before it runs."""
        return [python, "-I", "-S", str(JOIN), *(str(f / "cgroup.procs") for f in self.folders.values()), "--"]

    def counters(self) -> Counters:
        """How often the build's processes were OOM-killed and hit the process limit, so far."""
        if self.version == 2:
            folder = self.folders["unified"]
            return Counters(_field(folder / "memory.events", "oom_kill"), _field(folder / "pids.events", "max"))
        return Counters(_field(self.folders["memory"] / "memory.oom_control", "oom_kill"),
                        _field(self.folders["pids"] / "pids.events", "max"))

    def close(self) -> None:
        """Kill what is left in the group and remove it."""
        for folder in self.folders.values():
            _empty(folder)
            with contextlib.suppress(OSError):
                folder.rmdir()


def _field(path: Path, key: str) -> int:
    try:
        m = re.search(rf"^{key} (\d+)$", path.read_text(), re.MULTILINE)
    except OSError:
        return 0
    return int(m.group(1)) if m else 0


def _empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        for pid in (folder / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)


def _sweep(parent: Path) -> None:
    """Remove the groups of workers that are gone (a killed worker leaves its folder behind)."""
    if not parent.is_dir():
        return
    for folder in parent.iterdir():
        pid = folder.name[1:].split("-", 1)[0]
        if folder.is_dir() and folder.name.startswith("w") and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _empty(folder)
            with contextlib.suppress(OSError):
                folder.rmdir()
