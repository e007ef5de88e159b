"""A PostgreSQL server of a test's own (Debian's PostgreSQL binaries, run as the ``postgres`` user on a
free loopback port), so that a test can stop it and start it again.

    with own_cluster() as pg:
        url = pg.url            # postgresql+psycopg://postgres@127.0.0.1:<port>/postgres
        pg.stop(); pg.start()
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    bindir: Path
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bindir / "pg_ctl"), "-D", str(self.root / "db"),
                        "-w", "-t", "60", *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-l", str(self.root / "server.log"), "-o", options, "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")


@contextmanager
def own_cluster() -> Iterator[Cluster]:
    bindir = _bindir()
    if bindir is None or os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and Debian's postgresql package (scripts/setup.sh test installs it) to run a "
                    "PostgreSQL server of the test's own")
    root = Path(tempfile.mkdtemp(prefix="nr-pg-"))
    shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(bindir, root, _free_port())
    try:
        subprocess.run(["runuser", "-u", "postgres", "--", str(bindir / "initdb"), "-D", str(root / "db"), "-A",
                        "trust", "-U", "postgres", "--no-sync"], check=True, capture_output=True, timeout=120)
        cluster.start()
        yield cluster
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", str(bindir / "pg_ctl"), "-D", str(root / "db"), "-m",
                        "immediate", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)
