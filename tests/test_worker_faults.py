"""Faults a worker meets, made for real: the PostgreSQL database refusing every connection for a while,
an artifact store with no space left; and a build whose worker died, swept by the API process when no
worker is alive. The workers keep going; a build fails only with a true message of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from api_support import running_api, tiny
from registry_fixtures import PG_URL, create_database, drop_database
from server_fixtures import TINY, start_server
from sqlalchemy import text
from sqlalchemy.engine import make_url
from test_workers import builds, enqueue, variant, wait_for

from compiler.pipeline import Compiler
from registry import db, queue
from registry.tables import BuildStatus
from service.settings import Settings
from service.submit import submit
from service.worker import Worker

pytestmark = pytest.mark.slow


def _settings(tmp_path: Path, url: str, registry_home: Path, **extra: object) -> Settings:
    return Settings(home=tmp_path / "home", database_url=url, store_dir=Path(str(extra.pop("store", tmp_path / "s"))),
                    cache_dir=registry_home / "cache", lease_seconds=6.0, poll_seconds=0.2, ccache=True, **extra)


def _env(url: str, store: Path) -> dict[str, str]:
    return {"NESTML_REGISTRY_DATABASE_URL": url, "NESTML_REGISTRY_STORE": str(store)}


def _set_connections(url: str, allowed: bool) -> None:
    """ALLOW_CONNECTIONS off, and every session of the database ended: for everyone, superusers too."""
    name = make_url(url).database
    admin = db.make_engine(PG_URL)
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if allowed else "false"}'))
            if not allowed:
                c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n "
                               "AND pid <> pg_backend_pid()"), {"n": name})
    finally:
        admin.dispose()


def test_a_worker_outlives_a_database_that_refuses_it(tmp_path: Path, registry_home: Path, compiler: Compiler,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    url = create_database("postgresql", tmp_path)
    db.upgrade(url)
    worker = Worker(_settings(tmp_path, url, registry_home))
    thread = threading.Thread(target=worker.run, name="worker-under-test")
    thread.start()
    try:
        (first,) = enqueue(_env(url, tmp_path / "s"), compiler.toolchain.id, [variant(uuid.uuid4().hex[:8])])
        wait_for(lambda: builds(_env(url, tmp_path / "s"), [first])[0].status == BuildStatus.SUCCEEDED,
                 what="the first build")
        _set_connections(url, False)
        time.sleep(8)  # the worker's loop meets the outage (polls every 0.2 s, then backs off)
        assert thread.is_alive()
        assert "trying again in" in caplog.text and "OperationalError" in caplog.text
        _set_connections(url, True)
        (second,) = enqueue(_env(url, tmp_path / "s"), compiler.toolchain.id, [variant(uuid.uuid4().hex[:8])])
        wait_for(lambda: builds(_env(url, tmp_path / "s"), [second])[0].status == BuildStatus.SUCCEEDED,
                 timeout=300, what="a build after the outage")
    finally:
        _set_connections(url, True)
        worker.request_stop()
        thread.join(timeout=120)
        drop_database(url)
    assert not thread.is_alive() and worker.processed == 2


def _small_store(path: Path) -> bool:
    path.mkdir(parents=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_store_fails_the_build_with_why_and_the_worker_goes_on(tmp_path: Path, registry_home: Path,
                                                                      compiler: Compiler) -> None:
    store = tmp_path / "full-store"
    if not _small_store(store):
        pytest.skip("cannot mount a small tmpfs here (needs root): the full store cannot be made")
    url = db.default_url(tmp_path / "home")
    db.upgrade(url)
    try:
        requests = [variant(uuid.uuid4().hex[:8]), variant(uuid.uuid4().hex[:8])]
        ids = enqueue(_env(url, store), compiler.toolchain.id, requests)
        assert Worker(_settings(tmp_path, url, registry_home, store=store), burst=True).run() == 2
        for build in builds(_env(url, store), ids):
            assert build.status == BuildStatus.FAILED
            assert "artifact store refused it" in (build.error or "") and "No space left" in build.error
    finally:
        subprocess.run(["umount", str(store)], check=False)
    # space again: the same builds, retried, succeed
    with db.make_sessionmaker(db.make_engine(url)).begin() as s:
        again = [submit(s, r, compiler.toolchain.id, retry=True)[0].id for r in requests]
    assert Worker(_settings(tmp_path, url, registry_home, store=store), burst=True).run() == 2
    assert all(b.status == BuildStatus.SUCCEEDED for b in builds(_env(url, store), again))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_api_sweeps_a_dead_workers_build(backend: str, tmp_path: Path) -> None:
    """No worker alive: the API process puts the build back in the queue when its lease runs out."""
    with running_api(backend, tmp_path, lease_seconds=3.0) as api:
        toolchain = api.register_toolchain()
        build_id = api.post_build([tiny(uuid.uuid4().hex[:8])], toolchain=toolchain).json()["id"]
        with api.sessions.begin() as s:
            claimed = queue.claim(s, "a-worker-that-dies", [toolchain], 1.0)
            assert claimed is not None and claimed.id == build_id
        deadline = time.monotonic() + 30
        status = "running"
        while time.monotonic() < deadline and status == "running":
            time.sleep(0.5)
            status = api.client.get(f"/v1/builds/{build_id}").json()["status"]
        assert status == "queued"
        assert api.server.app.state.sweeper.swept >= 1


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def test_a_killed_embedded_worker_is_restarted_and_its_sandboxes_die(tmp_path: Path, registry_home: Path) -> None:
    server = start_server(tmp_path / "srv", registry_home)
    try:
        worker = next(p for p in _children(server.proc.pid)
                      if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes())
        wait_for(lambda: any(b"bwrap" in Path(f"/proc/{c}/cmdline").read_bytes() for c in _children(worker)),
                 timeout=60, what="the worker's spare code generation sandbox")
        sandboxes = [c for c in _children(worker) if b"bwrap" in Path(f"/proc/{c}/cmdline").read_bytes()]
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: "restarted" in server.log_text(), timeout=60, what="the restart")
        wait_for(lambda: not any(Path(f"/proc/{c}").exists() for c in sandboxes), timeout=30,
                 what="the dead worker's sandboxes to go")
        src = tmp_path / "after_restart.nestml"
        src.write_text(TINY.replace("model tiny_neuron:", "model tiny_after_restart_neuron:"))
        pushed = server.cli("push", str(src), "--wait", "--json")
        assert pushed.returncode == 0 and json.loads(pushed.stdout)["status"] == "succeeded", pushed.stderr
    finally:
        server.stop()
