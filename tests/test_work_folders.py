"""What killed builds leave on disk: work folders of dead processes swept, the local module cache bounded
(least recently used evicted)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from nestml_registry.compiler import work_folders
from nestml_registry.compiler.cache import LocalCache
from nestml_registry.compiler.integrity import sha256_file


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_sweep_removes_folders_of_dead_processes_and_old_ones_only(tmp_path: Path) -> None:
    host = work_folders.owner_prefix("x").split("-")[2]
    mine = tmp_path / f"{work_folders.owner_prefix('abc123')}q1"
    dead = tmp_path / f"abc123-{_dead_pid()}-{host}-q2"
    dead_log = tmp_path / f"spare-{_dead_pid()}-{host}-q3.log"
    other_host = tmp_path / f"abc123-{_dead_pid()}-00000000-q4"  # another machine's: only by age
    old_other = tmp_path / "unnamed-old"
    probe = tmp_path / "sandbox-check"
    for d in (mine, dead, other_host, old_other, probe):
        (d / "src").mkdir(parents=True)
        (d / "src" / "x.cpp").write_text("int x;")
    dead_log.write_text("log")
    old = time.time() - 7200
    os.utime(old_other, (old, old))
    os.utime(probe, (old, old))
    assert work_folders.sweep(tmp_path, max_age=3600) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other_host.name, probe.name])
    assert work_folders.sweep(tmp_path / "missing", max_age=1) == 0


def _module(cache: LocalCache, name: str, size: int, age: float) -> Path:
    data = os.urandom(size)
    tmp = cache.root / f"{name}.tmp"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(data)
    path = cache.module_path(sha256_file(tmp), name)
    path.parent.mkdir(parents=True)
    tmp.rename(path)
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_the_module_cache_evicts_the_least_recently_used_beyond_its_bound(tmp_path: Path) -> None:
    cache = LocalCache(tmp_path, max_bytes=2500)
    oldest, middle, newest = (_module(cache, f"m{i}module", 1000, age) for i, age in enumerate((300, 200, 100)))
    assert cache.evict(2500) == 1
    assert not oldest.exists() and not oldest.parent.exists() and middle.exists() and newest.exists()
    os.utime(middle)  # used now (a cache hit touches it)
    huge = _module(cache, "hugemodule", 5000, 0)
    assert cache.evict(2500, keep=huge) == 2  # never the one just built, whatever its size
    assert huge.exists() and not middle.exists() and not newest.exists()
