"""Hostile models through the service, with real workers, on SQLite and PostgreSQL: a publisher's
comments never become code (the module loads in NEST and nothing planted runs), an escaping print
string is refused with the diagnostic at its place, the build processes had no way to the database,
and a worker that cannot sandbox refuses to start unless its operator opts out (which everything
that reports on the service then says)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from conftest import DATA, run_nest_script
from registry_fixtures import backend_params, create_database, drop_database
from server_fixtures import CLI, ROOT, client_env, start_server

from nestml_registry.registry import db

pytestmark = pytest.mark.slow
HOSTILE = DATA / "hostile"
LOAD = """
import sys
import nest
nest.set_verbosity("M_ERROR")
nest.Install(sys.argv[1])
n = nest.Create(sys.argv[2])
nest.Simulate(2.0)
print("ok", n.get("V_m"))
"""


@pytest.mark.parametrize("backend", backend_params())
def test_hostile_pushes_through_real_workers(backend: str, tmp_path: Path, registry_home: Path) -> None:
    for planted in Path("/tmp").glob("PWNED*"):
        planted.unlink()
    url = create_database(backend, tmp_path) if backend == "postgresql" else None
    extra = {}
    if url is not None:
        db.upgrade(url)
        extra["database_url"] = url
    server = start_server(tmp_path / "srv", registry_home, **extra)
    try:
        name = f"comments_svc_{backend}_neuron"
        src = tmp_path / f"{name}.nestml"
        src.write_text((HOSTILE / "comments_neuron.nestml").read_text().replace("comments_neuron", name))
        pushed = server.cli("push", str(src), "--wait", "--json")
        assert pushed.returncode == 0, pushed.stderr
        doc = json.loads(pushed.stdout)
        assert doc["status"] == "succeeded"
        pulled = server.cli("pull", name, "--json")
        assert pulled.returncode == 0, pulled.stderr
        out = run_nest_script(LOAD, json.loads(pulled.stdout)["path"], f"{name}_nestml")
        assert out.startswith("ok")
        assert not list(Path("/tmp").glob("PWNED*"))
        log = httpx.get(f"{server.url}/v1/builds/{doc['id']}/log", timeout=30).text
        assert "sandbox bubblewrap" in log and str(server.home) not in log and str(registry_home) not in log

        bad = server.cli("push", str(HOSTILE / "print_neuron.nestml"), "--wait", "--json")
        assert bad.returncode == 1
        (diag,) = json.loads(bad.stdout)["diagnostics"]
        assert (diag["file"], diag["line"], diag["column"]) == ("print_neuron.nestml", 10, 17)
        assert "backslash" in diag["message"]
        health = httpx.get(f"{server.url}/healthz", timeout=30).json()
        assert health["sandbox"] == "on" and health["unsandboxed_toolchains"] == []
    finally:
        server.stop()
        if url is not None:
            drop_database(url)


def test_a_worker_that_cannot_sandbox_refuses_to_start(tmp_path: Path, registry_home: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the sandbox user is only needed when the service runs as root")
    env = client_env(dict(os.environ), NESTML_REGISTRY_HOME=str(tmp_path / "home"),
                     NESTML_REGISTRY_CACHE=str(registry_home / "cache"),
                     NESTML_REGISTRY_SANDBOX_USER="no-such-sandbox-user")
    env.pop("NESTML_REGISTRY_DATABASE_URL", None)
    proc = subprocess.run([*CLI, "worker", "--burst"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "no-such-sandbox-user' does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_opting_out_is_reported_everywhere(tmp_path: Path, registry_home: Path) -> None:
    server = start_server(tmp_path / "srv", registry_home, sandbox="0")
    try:
        src = tmp_path / "unsandboxed.nestml"  # builds still work, with the limits only
        src.write_text((DATA / "tiny_neuron.nestml").read_text().replace("model tiny_neuron:",
                                                                         "model tiny_unsandboxed_neuron:"))
        pushed = server.cli("push", str(src), "--wait", "--json")
        assert pushed.returncode == 0 and json.loads(pushed.stdout)["status"] == "succeeded", pushed.stderr
        health = httpx.get(f"{server.url}/healthz", timeout=30).json()
        assert health["sandbox"] == "off" and health["unsandboxed_toolchains"]
        metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
        assert any(line.startswith("nestml_registry_build_sandbox{") and line.endswith(" 0.0")
                   for line in metrics.splitlines()), metrics
        assert "build sandbox: off" in server.log_text() and "sandbox is OFF" in server.log_text()
    finally:
        server.stop()
