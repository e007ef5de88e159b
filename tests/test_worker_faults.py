"""Faults a worker meets, made for real: a PostgreSQL server of the test's own stopped mid-build, an
artifact store with no space left, a build whose worker died (swept by the API process when no worker
is alive), an embedded worker SIGKILLed (restarted, its sandboxes and work folders gone) and a damaged
artifact (repaired by ``store verify --repair``). The workers keep going; a build fails only with a
true message of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from api_support import LiveServer, base_settings, running_api, tiny
from pg_cluster import own_cluster
from registry_fixtures import backend_params
from server_fixtures import TINY, start_server
from test_workers import builds, enqueue, variant, wait_for

from nestml_registry.compiler.pipeline import Compiler
from nestml_registry.registry import db, queue, workers
from nestml_registry.registry.tables import BuildStatus
from nestml_registry.service.api.submit import submit
from nestml_registry.service.settings import Settings
from nestml_registry.service.workers.worker import Worker

pytestmark = pytest.mark.slow


def _settings(tmp_path: Path, url: str, registry_home: Path, **extra: object) -> Settings:
    options: dict = {"lease_seconds": 6.0, "poll_seconds": 0.2, "ccache": True, **extra}
    return Settings(home=tmp_path / "home", database_url=url, store_dir=Path(str(options.pop("store", tmp_path / "s"))),
                    cache_dir=registry_home / "cache", **options)


def _env(url: str, store: Path) -> dict[str, str]:
    return {"NESTML_REGISTRY_DATABASE_URL": url, "NESTML_REGISTRY_STORE": str(store)}


def test_a_build_finishes_across_a_stopped_postgresql_server(tmp_path: Path, registry_home: Path, compiler: Compiler,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """A PostgreSQL server of the test's own, stopped while a build compiles and started again once the
    worker has tried to record it:
    the worker keeps going and records the build, the API says which dependency is missing meanwhile
    and recovers, and the next build succeeds too."""
    with own_cluster() as pg:
        url = pg.url
        db.upgrade(url)
        worker = Worker(_settings(tmp_path, url, registry_home, lease_seconds=60.0))
        thread = threading.Thread(target=worker.run, name="worker-under-test")
        thread.start()
        api = LiveServer(base_settings(tmp_path / "api", url)).start()
        try:
            (first,) = enqueue(_env(url, tmp_path / "s"), compiler.toolchain.id, [variant(uuid.uuid4().hex[:8])])
            wait_for(lambda: builds(_env(url, tmp_path / "s"), [first])[0].stage == "generating code",
                     timeout=120, what="the build to start compiling")
            pg.stop()
            # the outage lasts until the worker has a finished build it cannot record (an event it logs),
            # however long the compile takes on this machine
            wait_for(lambda: "recording build" in caplog.text, timeout=600,
                     what="the worker to try recording the build during the outage")
            assert thread.is_alive()
            health = httpx.get(f"{api.url}/healthz", timeout=30)
            assert health.status_code == 503 and health.json()["error"]["details"]["dependency"] == "database"
            pg.start()
            wait_for(lambda: builds(_env(url, tmp_path / "s"), [first])[0].status == BuildStatus.SUCCEEDED,
                     timeout=300, what="the build begun before the outage")
            assert builds(_env(url, tmp_path / "s"), [first])[0].attempts == 1  # recorded, not compiled again
            assert "trying again in" in caplog.text and "OperationalError" in caplog.text
            wait_for(lambda: httpx.get(f"{api.url}/healthz", timeout=30).status_code == 200, timeout=60,
                     what="the API to see its database again")
            (second,) = enqueue(_env(url, tmp_path / "s"), compiler.toolchain.id, [variant(uuid.uuid4().hex[:8])])
            wait_for(lambda: builds(_env(url, tmp_path / "s"), [second])[0].status == BuildStatus.SUCCEEDED,
                     timeout=300, what="a build after the outage")
            with db.make_sessionmaker(engine := db.make_engine(url))() as s:  # its heartbeat tells of the retries
                (row,) = workers.by_toolchain(s)
                assert row.live == 1 and row.retries >= 1, row
            engine.dispose()
        finally:
            api.stop()
            worker.request_stop()
            thread.join(timeout=120)
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


@pytest.mark.parametrize("backend", backend_params())
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
        health = httpx.get(f"{server.url}/healthz").json()
        assert health["status"] == "ok" and health["workers"][0]["live_workers"] == 1, health
        work = registry_home / "cache" / "work"
        assert any(f"-{worker}-" in p.name for p in work.iterdir())  # its spare's work folder
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: "restarted" in server.log_text(), timeout=60, what="the restart")
        wait_for(lambda: not any(f"-{worker}-" in p.name for p in work.iterdir()), timeout=60,
                 what="the restarted worker to remove the dead one's work folders")
        assert "nestml_registry_worker_restarts_total 1.0" in httpx.get(f"{server.url}/metrics").text
        wait_for(lambda: not any(Path(f"/proc/{c}").exists() for c in sandboxes), timeout=30,
                 what="the dead worker's sandboxes to go")
        src = tmp_path / "after_restart.nestml"
        src.write_text(TINY.replace("model tiny_neuron:", "model tiny_after_restart_neuron:"))
        pushed = server.cli("push", str(src), "--wait", "--json")
        assert pushed.returncode == 0 and json.loads(pushed.stdout)["status"] == "succeeded", pushed.stderr
    finally:
        server.stop()


def test_a_damaged_artifact_is_repaired_by_store_verify_and_pulled_again(tmp_path: Path, registry_home: Path) -> None:
    """Real module, real worker: the stored file corrupted; ``store verify --repair`` restores it from the
    worker's build cache; then deleted together with the cache's copy, so repair queues its build, which
    compiles again to the very same bytes (same build key, same module) and stores them."""
    server = start_server(tmp_path / "srv", registry_home)
    try:
        src = tmp_path / "repair_me.nestml"
        src.write_text(TINY.replace("model tiny_neuron:", f"model tiny_repair_{uuid.uuid4().hex[:6]}_neuron:"))
        pushed = server.cli("push", str(src), "--wait", "--json")
        build = json.loads(pushed.stdout)
        assert pushed.returncode == 0 and build["status"] == "succeeded", pushed.stderr
        sha, model = build["module"]["sha256"], build["models"][0]["name"]
        (stored,) = (server.home / "artifacts" / sha[:2] / sha).iterdir()
        stored.write_bytes(stored.read_bytes()[:-100] + b"\0" * 100)
        fresh = {"NESTML_REGISTRY_MODULE_CACHE": str(tmp_path / "pulled")}
        refused = server.cli("pull", model, **fresh)
        assert refused.returncode != 0 and "corrupt" in refused.stderr and "Traceback" not in refused.stderr

        repaired = server.cli("store", "verify", "--repair")
        assert repaired.returncode == 0 and "restored from" in repaired.stdout, repaired.stderr
        assert server.cli("pull", model, **fresh).returncode == 0

        stored.unlink()
        (cached,) = (registry_home / "cache" / "modules" / sha).iterdir()
        cached.unlink()
        repaired = server.cli("store", "verify", "--repair")
        assert repaired.returncode == 0 and f"rebuild queued (build {build['id']})" in repaired.stdout, repaired.stderr
        rebuilt = server.cli("build", str(build["id"]), "--wait", "--json")
        assert json.loads(rebuilt.stdout)["module"]["sha256"] == sha, rebuilt.stdout[-2000:]
        again = server.cli("pull", model, NESTML_REGISTRY_MODULE_CACHE=str(tmp_path / "pulled-again"))
        assert again.returncode == 0, again.stderr
        assert server.cli("store", "verify").returncode == 0
    finally:
        server.stop()
