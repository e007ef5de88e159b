"""Real compile workers (``nestml-registry worker`` processes) on a shared queue: SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DATA, nestml
from registry_fixtures import backend_params, create_database, drop_database
from server_fixtures import CLI

from nestml_registry.compiler.pipeline import Compiler
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.registry import db, records, resolving
from nestml_registry.registry.store import ArtifactStore
from nestml_registry.registry.tables import Build, BuildStatus, utcnow
from nestml_registry.service.api.submit import submit

TINY = (DATA / "tiny_neuron.nestml").read_text()
LEASE = 3.0


def variant(tag: str, broken: bool = False) -> BuildRequest:
    """A tiny neuron with its own model name (so its own build key); ``broken``: a syntax error."""
    text = TINY.replace("model tiny_neuron:", f"model tiny_{tag}_neuron:")
    if broken:
        text = text.replace("V_m' = (E_L - V_m)", "V_m' = ((E_L - V_m)")
    return BuildRequest.create([nestml(text, f"tiny_{tag}.nestml")])


@pytest.fixture(params=backend_params())
def env(request: pytest.FixtureRequest, tmp_path: Path, registry_home: Path) -> Iterator[dict[str, str]]:
    url = create_database(request.param, tmp_path)
    db.upgrade(url)
    yield {
        "NESTML_REGISTRY_HOME": str(tmp_path / "home"),
        "NESTML_REGISTRY_DATABASE_URL": url,
        "NESTML_REGISTRY_STORE": str(tmp_path / "store"),
        # the session's build cache: toolchain detection, precompiled header, ccache
        "NESTML_REGISTRY_CACHE": str(registry_home / "cache"),
        "NESTML_REGISTRY_LEASE_SECONDS": str(LEASE),
        "NESTML_REGISTRY_POLL_SECONDS": "0.2",
        "NESTML_REGISTRY_CCACHE": "1",  # one trusted user (see conftest's compiler)
    }
    drop_database(url)


def start_worker(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([*CLI, "-v", "worker", *args],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def enqueue(env: dict[str, str], toolchain: str, requests: list[BuildRequest], max_attempts: int = 3) -> list[int]:
    engine = db.make_engine(env["NESTML_REGISTRY_DATABASE_URL"])
    try:
        with db.make_sessionmaker(engine).begin() as s:
            return [submit(s, r, toolchain, max_attempts=max_attempts)[0].id for r in requests]
    finally:
        engine.dispose()


def builds(env: dict[str, str], ids: list[int]) -> list[Build]:
    engine = db.make_engine(env["NESTML_REGISTRY_DATABASE_URL"])
    try:
        with db.make_sessionmaker(engine)() as s:
            return [s.get(Build, i) for i in ids]
    finally:
        engine.dispose()


def wait_for(predicate, timeout: float = 300, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def test_sigkilled_worker_build_is_finished_by_another(env: dict[str, str], compiler: Compiler) -> None:
    (build_id,) = enqueue(env, compiler.toolchain.id, [variant(uuid.uuid4().hex[:8])])
    first = start_worker(env)
    try:
        # past its claim: it has reported a stage of the build itself (code generation or later)
        wait_for(lambda: (builds(env, [build_id])[0].stage or "claimed") not in ("claimed", "queued"),
                 what="the first worker to start the build")
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert builds(env, [build_id])[0].status == BuildStatus.RUNNING  # the dead worker still holds the lease
    finish(start_worker(env, "--burst"))
    (build,) = builds(env, [build_id])
    assert build.status == BuildStatus.SUCCEEDED, (build.error, build.diagnostics)
    assert build.attempts == 2
    engine = db.make_engine(env["NESTML_REGISTRY_DATABASE_URL"])
    with db.make_sessionmaker(engine)() as s:
        module = records.get_module(s, build.module.sha256)
        assert ArtifactStore(Path(env["NESTML_REGISTRY_STORE"])).open_verified(module.location).is_file()
        name = build.request["module"].removesuffix("_module")
        assert resolving.resolve(s, name, compiler.toolchain.id).module_sha256 == module.sha256
    engine.dispose()


def test_build_that_keeps_killing_workers_ends_failed(env: dict[str, str], compiler: Compiler) -> None:
    (build_id,) = enqueue(env, compiler.toolchain.id, [variant(uuid.uuid4().hex[:8])], max_attempts=1)
    worker = start_worker(env)
    try:
        wait_for(lambda: builds(env, [build_id])[0].status == BuildStatus.RUNNING, what="the claim")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate()
    # the dead worker's lease runs out (the time the database recorded, not a guess at how long that takes)
    wait_for(lambda: builds(env, [build_id])[0].lease_expires_at < utcnow(), what="the lease to expire")
    finish(start_worker(env, "--burst"))
    (build,) = builds(env, [build_id])
    assert build.status == BuildStatus.FAILED
    assert "lost its worker 1 times" in build.error


def test_sigterm_then_restart_finishes_every_build(env: dict[str, str], compiler: Compiler) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = enqueue(env, compiler.toolchain.id, [variant(f"{tag}{i}", broken=i > 0) for i in range(3)])
    worker = start_worker(env)
    wait_for(lambda: any(b.status == BuildStatus.RUNNING for b in builds(env, ids)), what="a claim")
    worker.send_signal(signal.SIGTERM)  # finishes its build, then exits cleanly
    out = finish(worker)
    assert "stopping after its current build" in out
    states = [b.status for b in builds(env, ids)]
    assert BuildStatus.RUNNING not in states and BuildStatus.QUEUED in states
    finish(start_worker(env, "--burst", "--concurrency", "2"))
    done = builds(env, ids)
    assert [b.status for b in done] == [BuildStatus.SUCCEEDED, BuildStatus.FAILED, BuildStatus.FAILED]
    assert all(b.attempts == 1 for b in done)
    assert done[1].diagnostics[0]["file"] == f"tiny_{tag}1.nestml"


def test_two_workers_drain_the_queue_and_no_build_is_claimed_twice(env: dict[str, str], compiler: Compiler) -> None:
    tag = uuid.uuid4().hex[:8]
    # syntax errors: each is a real NESTML run that fails within seconds
    ids = enqueue(env, compiler.toolchain.id, [variant(f"{tag}{i}", broken=True) for i in range(10)])
    out = finish(start_worker(env, "--burst", "--concurrency", "2"))
    done = builds(env, ids)
    assert all(b.status == BuildStatus.FAILED for b in done)
    assert all(b.attempts == 1 for b in done), [(b.id, b.attempts) for b in done]
    owners = {b.lease_owner for b in done}
    claims = [line for line in out.splitlines() if "claimed build" in line]
    assert len(claims) == 10 and len(owners) == 2


def test_a_worker_says_one_line_when_it_starts(env: dict[str, str], compiler: Compiler) -> None:
    """Without -v: its toolchain, its queue and its sandbox, and no library's set-up lines."""
    proc = subprocess.run([*CLI, "worker", "--burst"], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("worker ") and f"serving toolchain {compiler.toolchain.id} from the database" \
        in lines[0] and "build sandbox: " in lines[0], lines
