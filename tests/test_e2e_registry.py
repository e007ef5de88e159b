"""End to end, as users run it: ``serve`` with a worker, ``push --wait --json`` from ten processes at once,
``pull`` on "another machine" (a fresh module cache), the module loaded and simulated in a fresh NEST;
then tokens: ``token create`` and a server that needs them."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import run_nest_script
from server_fixtures import (
    CLI,
    PUBLISHED_FILE,
    PUBLISHED_MODEL,
    PUBLISHED_TEXT,
    ROOT,
    Server,
    client_env,
    server_fixture,
    start_server,
)
from sqlalchemy import func, select

from nestml_registry.registry import db
from nestml_registry.registry.tables import Build

NAME = f"{PUBLISHED_MODEL}_nestml"
PUSHES = 10

SIMULATE = """
import sys
import nest
nest.set_verbosity("M_ERROR")
nest.Install(sys.argv[1])
neuron = nest.Create(sys.argv[2], params={"I_e": 500.0})
nest.Simulate(5.0)
print("V_m", neuron.get("V_m"))
"""


server = server_fixture("e2e-server")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / PUBLISHED_FILE
    path.write_text(PUBLISHED_TEXT)
    return path


@pytest.fixture(scope="module")
def pushed(server: Server, source: Path) -> dict:
    """Ten identical ``push --wait --json`` at once: every one gets the same build and module."""
    procs = [subprocess.Popen([*CLI, "push", str(source), "--wait", "--json"],
                              env=client_env(server.env), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(PUSHES)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0] * PUSHES, [err[-2000:] for _, err in outs]
    docs = [json.loads(out) for out, _ in outs]
    assert all(err == "" for _, err in outs)  # --json and no terminal: nothing but the document
    return {"docs": docs}


def builds_with_key(server: Server, key: str) -> int:
    engine = db.make_engine(db.default_url(server.home))
    try:
        with db.make_sessionmaker(engine)() as s:
            return s.scalar(select(func.count()).select_from(Build).where(Build.key == key))
    finally:
        engine.dispose()


def test_concurrent_identical_pushes_get_one_build_and_one_compile(server: Server, pushed: dict) -> None:
    docs = pushed["docs"]
    assert {d["status"] for d in docs} == {"succeeded"}
    assert len({d["id"] for d in docs}) == 1
    assert len({d["module"]["sha256"] for d in docs}) == 1
    doc = docs[0]
    assert doc["module"]["name"] == f"{NAME}_module"
    assert doc["models"] == [{"name": NAME, "kind": "neuron", "version": 1, "breaks": {}}]
    assert doc["attempts"] == 1
    assert builds_with_key(server, doc["key"]) == 1
    claims = re.findall(rf"claimed build {doc['id']} ", server.log_text())
    assert len(claims) == 1


def test_pull_on_another_machine_then_simulate_in_nest(server: Server, pushed: dict, tmp_path: Path) -> None:
    sha = pushed["docs"][0]["module"]["sha256"]
    fresh = tmp_path / "fresh-module-cache"
    proc = server.cli("pull", PUBLISHED_MODEL, "--json", NESTML_REGISTRY_MODULE_CACHE=str(fresh))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["model"], doc["version"], doc["sha256"]) == (NAME, 1, sha)
    path = Path(doc["path"])
    assert path == fresh / sha[:2] / sha / f"{NAME}_module.so"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    # the plain form prints the path alone on stdout (the same file: no second download needed)
    proc = server.cli("pull", f"{NAME}@1", NESTML_REGISTRY_MODULE_CACHE=str(fresh))
    assert proc.returncode == 0 and proc.stdout.strip() == str(path)
    out = run_nest_script(SIMULATE, str(path.with_suffix("")), NAME)
    v_m = float(re.search(r"^V_m (\S+)$", out, re.MULTILINE).group(1))
    assert -70.0 < v_m < -55.0  # driven up from rest by I_e, below threshold after 5 ms


def run_cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = client_env(dict(os.environ), NESTML_REGISTRY_HOME=str(home), **env)
    full.pop("NESTML_REGISTRY_DATABASE_URL", None)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=full,
                          cwd=ROOT, timeout=600)


def create_token(home: Path, role: str) -> str:
    proc = run_cli(home, "token", "create", "--role", role, "--name", f"test {role}")
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"nrt_[A-Za-z0-9_-]{20,}", token), proc.stdout
    return token


def test_tokens_and_a_server_that_requires_them(tmp_path: Path, registry_home: Path, source: Path,
                                                pushed: dict) -> None:
    home = tmp_path / "locked" / "home"
    reader, publisher = create_token(home, "reader"), create_token(home, "publisher")
    proc = run_cli(home, "token", "create", "--role", "admin", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["role"] == "admin"
    assert run_cli(home, "token", "create", "--role", "root").returncode == 2

    server = start_server(tmp_path / "locked", registry_home, token=reader, read_requires_token="1")
    elsewhere = str(tmp_path / "another-user")  # a user without the server's local token
    try:
        proc = server.cli("models", NESTML_REGISTRY_HOME=elsewhere)
        assert proc.returncode == 2 and "needs a token to read" in proc.stderr
        assert server.cli("models").returncode == 0  # the server's own user has the local token
        proc = server.cli("models", NESTML_REGISTRY_TOKEN="nrt_not-a-real-token")
        assert proc.returncode == 2 and "unknown or revoked" in proc.stderr
        proc = server.cli("push", str(source), NESTML_REGISTRY_TOKEN=reader)
        assert proc.returncode == 2 and "publisher" in proc.stderr
        proc = server.cli("push", str(source), NESTML_REGISTRY_HOME=elsewhere)
        assert proc.returncode == 2 and "publisher role" in proc.stderr and "local token" in proc.stderr

        proc = server.cli("push", str(source), "--wait", "--json", NESTML_REGISTRY_TOKEN=publisher)
        assert proc.returncode == 0, proc.stderr
        build = json.loads(proc.stdout)
        # the worker answers from the session's build cache: the same module as the other server's
        assert build["status"] == "succeeded"
        assert build["module"]["sha256"] == pushed["docs"][0]["module"]["sha256"]

        proc = server.cli("pull", PUBLISHED_MODEL, "--json", NESTML_REGISTRY_TOKEN=reader)
        assert proc.returncode == 0, proc.stderr
        assert Path(json.loads(proc.stdout)["path"]).is_file()
        models = json.loads(server.cli("models", "--json", NESTML_REGISTRY_TOKEN=reader).stdout)
        assert [m["name"] for m in models] == [NAME]
        assert models[0]["owner"]  # the publisher's token owns the name
    finally:
        server.stop()
