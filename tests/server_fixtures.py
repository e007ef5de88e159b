"""A real registry for client tests: ``nestml-registry serve`` as a subprocess on a free loopback port.

The server's build cache is the session's (``registry_home / "cache"``: the detected toolchain, the
precompiled header, ccache and the compiler's own build cache), so a source compiled once in the
session is answered from that cache by every other server's worker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import DATA

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "nestml_registry.cli.main"]  # the nestml-registry command of this interpreter
TINY = (DATA / "tiny_neuron.nestml").read_text()
# the one model the client tests compile for real (the other servers' workers find it in the build cache)
PUBLISHED_MODEL = "tiny_e2e_neuron"
PUBLISHED_TEXT = TINY.replace("model tiny_neuron:", f"model {PUBLISHED_MODEL}:")
PUBLISHED_FILE = "tiny_e2e.nestml"
# a syntax error on line 9, column 5 (1-based): NESTML fails within seconds
BROKEN_TEXT = TINY.replace("model tiny_neuron:", "model tiny_broken_neuron:").replace(
    "V_m' = (E_L - V_m)", "V_m' = ((E_L - V_m)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k != "NESTML_REGISTRY_TOKEN"}
    env.update(extra)
    return env


@dataclass
class Server:
    url: str
    home: Path
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen

    def cli(self, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
        """``nestml-registry ARGS`` as a user runs it against this server."""
        return subprocess.run([*CLI, *args], capture_output=True, text=True,
                              env=client_env(self.env, **env), cwd=ROOT, timeout=timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail("the server did not stop within 300 s of SIGTERM:\n" + self.log_text()[-3000:])
        assert self.proc.returncode == 0, self.log_text()[-3000:]


def start_server(directory: Path, registry_home: Path, *, workers: int = 1, token: str | None = None,
                 **settings: str) -> Server:
    """Start ``nestml-registry -v serve`` with its home in ``directory``; wait until it answers and (with
    workers) until a worker has registered its toolchain."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    base = {k: v for k, v in os.environ.items() if k not in ("NESTML_REGISTRY_DATABASE_URL", "NESTML_REGISTRY_STORE")}
    env = client_env(base,
                     NESTML_REGISTRY_HOME=str(directory / "home"),
                     NESTML_REGISTRY_CACHE=str(registry_home / "cache"),
                     NESTML_REGISTRY_POLL_SECONDS="0.2",
                     NESTML_REGISTRY_CCACHE="1",  # the suite is one trusted user (see conftest's compiler)
                     NESTML_REGISTRY_URL=url,
                     NESTML_REGISTRY_MODULE_CACHE=str(directory / "modules"),
                     **{f"NESTML_REGISTRY_{k.upper()}": v for k, v in settings.items()})
    log = directory / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*CLI, "-v", "serve", "--port", str(port),
                                 "--workers", str(workers)], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    server = Server(url, directory / "home", log, env, proc)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with status {proc.returncode}:\n{server.log_text()[-3000:]}")
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail("the server did not become ready:\n" + server.log_text()[-3000:])
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200 and (
                    workers == 0 or httpx.get(f"{url}/v1/toolchains", headers=headers, timeout=2).json()):
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)


def server_fixture(name: str, **settings: str) -> Any:
    """A module-scoped fixture ``server``: ``nestml-registry serve`` with one worker, stopped after the
    module's tests (its build cache is the session's)."""

    @pytest.fixture(scope="module")
    def server(tmp_path_factory: pytest.TempPathFactory, registry_home: Path) -> Iterator[Server]:
        srv = start_server(tmp_path_factory.mktemp(name), registry_home, **settings)
        yield srv
        srv.stop()

    return server
