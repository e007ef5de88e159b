"""The local build cache: finished builds by key, modules by content hash.

    <root>/builds/<key>.json             the BuildResult of a succeeded build
    <root>/modules/<sha256>/<module>.so  the module (the directory carries the content hash); with a
                                         size bound, the least recently used go first (mtime = last use)
    <root>/logs/<key>.log                the last build log for that key
    <root>/work/                         work directories of builds in progress
    <root>/locks/<key>.lock              one build of a key at a time on this machine
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from nestml_registry.compiler.integrity import copy_atomic, sha256_file, write_atomic
from nestml_registry.compiler.result import BuildResult

if TYPE_CHECKING:
    from nestml_registry.compiler.workspace import Workspace

logger = logging.getLogger(__name__)


class LocalCache:
    def __init__(self, root: Path, max_bytes: int | None = None) -> None:
        self.root = root
        self.max_bytes = max_bytes

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    def log_path(self, key: str) -> Path:
        return self.root / "logs" / f"{key}.log"

    def module_path(self, sha256: str, module: str) -> Path:
        return self.root / "modules" / sha256 / f"{module}.so"

    def lookup(self, key: str) -> BuildResult | None:
        """A succeeded build of ``key`` whose module file is still intact, or None."""
        entry = self.root / "builds" / f"{key}.json"
        try:
            result = BuildResult.from_dict(json.loads(entry.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError):
            logger.warning("ignoring unreadable cache entry %s", entry)
            return None
        path = Path(result.module_path or "")
        if not path.is_file() or path.stat().st_size != result.module_size or sha256_file(path) != result.module_sha256:
            logger.warning("cached module for %s is missing or damaged; rebuilding", key[:12])
            return None
        result.cached = True
        with contextlib.suppress(OSError):
            os.utime(path)  # used now: the last to be evicted
        return result

    def forget(self, key: str) -> None:
        """Drop the cached result of ``key`` (its module file stays: others may use it)."""
        (self.root / "builds" / f"{key}.json").unlink(missing_ok=True)

    def store_output(self, ws: Workspace, relative: str, module: str, limit: int) -> tuple[Path, str, int]:
        """Copy the module a sandboxed build left in its work folder into the cache under its content
        hash (read without following links, at most ``limit`` bytes, and it must be an ELF file)."""
        incoming = self.root / "modules" / f".incoming-{os.getpid()}-{module}.so"
        sha = ws.copy_out(relative, incoming, limit)
        try:
            with open(incoming, "rb") as fh:
                if fh.read(4) != b"\x7fELF":
                    raise ValueError(f"{Path(relative).name} is not a shared library (no ELF header)")
            dest = self.module_path(sha, module)
            if not (dest.is_file() and sha256_file(dest) == sha):
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(incoming, dest)
            else:
                os.utime(dest)
        finally:
            incoming.unlink(missing_ok=True)
        size = dest.stat().st_size
        if self.max_bytes is not None:
            self.evict(self.max_bytes, keep=dest)
        return dest, sha, size

    def evict(self, max_bytes: int, keep: Path | None = None) -> int:
        """Delete the least recently used modules until the rest take at most ``max_bytes`` (``keep``
        stays whatever its size); their build entries then miss, and a build of them runs again."""
        files = []
        for path in (self.root / "modules").glob("*/*.so"):
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                files.append((st.st_mtime, st.st_size, path))
        total, removed = sum(size for _, size, _ in files), 0
        for _, size, path in sorted(files, key=lambda f: f[0]):
            if total <= max_bytes:
                break
            if keep is not None and path == keep:
                continue
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()
            total -= size
            removed += 1
        if removed:
            logger.info("evicted %d least recently used module(s) from %s (bound %d bytes)", removed, self.root,
                        max_bytes)
        return removed

    def store_result(self, result: BuildResult) -> None:
        write_atomic(self.root / "builds" / f"{result.key}.json", json.dumps(result.to_dict()).encode())

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        path = self.root / "locks" / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def export_module(module_path: Path, sha256: str, out_dir: Path) -> Path:
    """Copy a module to ``out_dir/<sha256[:16]>/<module>.so``: a path that carries its hash, so a
    module that a running NEST has loaded is never replaced under it."""
    dest = out_dir / sha256[:16] / module_path.name
    if dest.is_file() and sha256_file(dest) == sha256:
        return dest
    copy_atomic(module_path, dest)
    return dest
