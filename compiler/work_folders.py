"""Names of build work folders that say whose they are, and the sweep of those whose process died.

A work folder (and a spare NESTML process's log beside it) is named
``<what>-<pid>-<host>-<random>``: the process that made it and a short hash of its machine's name.
A worker killed with SIGKILL, or a machine that lost power, leaves its folders behind; the sweep
removes a folder whose process no longer runs on this machine, and any folder older than
``max_age`` (longer than any build may run, whoever made it).

    Workspace.create(cache.work_dir, owner_prefix("spare"), ...)
    removed = sweep(cache.work_dir, max_age=3600)
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import time
from pathlib import Path

logger = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9]+-(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-")
KEEP = frozenset({"sandbox-check"})  # the sandbox probe's fixed folder: made again before each check


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def owner_prefix(what: str) -> str:
    """The prefix of a new work folder of this process (``what``: letters and digits)."""
    return f"{what}-{os.getpid()}-{_host()}-"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return True


def _abandoned(entry: Path, host: str, now: float, max_age: float) -> bool:
    try:
        age = now - entry.lstat().st_mtime
    except FileNotFoundError:
        return False
    m = _NAME_RE.match(entry.name)
    if m is not None and m.group("host") == host:
        pid = int(m.group("pid"))
        return (pid != os.getpid() and not _running(pid)) or age > max_age
    return age > max_age


def sweep(work_dir: Path, max_age: float) -> int:
    """Remove the work folders (and logs) of builds whose process died; how many entries went."""
    if not work_dir.is_dir():
        return 0
    host, now, removed = _host(), time.time(), 0
    for entry in work_dir.iterdir():
        if entry.name in KEEP or not _abandoned(entry, host, now, max_age):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    if removed:
        logger.info("removed %d work folder(s) or logs of builds whose process died, from %s", removed, work_dir)
    return removed
