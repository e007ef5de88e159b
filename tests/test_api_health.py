"""Truthful health: live compile workers per toolchain (from their heartbeats), ``degraded`` when queued
builds have nobody to run them, a push document (and the CLI) that warns of it; and the repair of a
damaged module: ``store verify --repair`` and a push with ``retry``. Real server, real database; the
workers' heartbeats are written the way ``nestml_registry.service.workers.worker.Worker`` writes them,
nothing compiles."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from api_support import Api, api_fixture, model_for, sha256_of, tag, tiny
from server_fixtures import CLI

from nestml_registry.registry import queue, workers
from nestml_registry.registry.repair import verify_store
from nestml_registry.registry.tables import BuildStatus
from nestml_registry.service.api.routes.health import HEALTH_MAX_AGE
from nestml_registry.service.client import RegistryClient

api = api_fixture()
ROOT = Path(__file__).resolve().parent.parent


def _beat(api: Api, toolchain: str, worker_id: str, alive_for: float = 60.0) -> None:
    with api.sessions.begin() as s:
        workers.beat(s, workers.Beat(worker_id, toolchain, "test-host", os.getpid(), alive_for, retries=2))


def _row(health: dict, toolchain: str) -> dict:
    return next(r for r in health["workers"] if r["toolchain"] == toolchain)


def _fresh_health(api: Api) -> dict:
    """The health document computed now (an answer is kept for HEALTH_MAX_AGE seconds: wait that out)."""
    time.sleep(HEALTH_MAX_AGE + 0.05)
    return api.client.get("/healthz").json()


def test_health_counts_live_workers_and_says_degraded_when_builds_are_stranded(api: Api) -> None:
    toolchain = api.register_toolchain()
    build = api.post_build([tiny(tag())], toolchain=toolchain)
    assert build.status_code == 202
    (warning,) = build.json()["warnings"]
    assert toolchain in warning and "nestml-registry worker" in warning and "none has reported yet" in warning
    health = _fresh_health(api)
    assert health["status"] == "degraded"
    assert any(toolchain in p and "no live compile worker" in p for p in health["problems"])
    assert _row(health, toolchain) == {"toolchain": toolchain, "live_workers": 0, "queued": 1, "running": 0,
                                       "last_alive": None, "worker_retries": 0}

    worker_id = f"w-{tag()}"
    _beat(api, toolchain, worker_id)
    assert api.client.get("/healthz").json() == health  # answered again within the second
    health = _fresh_health(api)
    assert _row(health, toolchain)["live_workers"] == 1 and _row(health, toolchain)["worker_retries"] == 2
    assert not any(toolchain in p for p in health["problems"])
    assert api.client.get(f"/v1/builds/{build.json()['id']}").json()["warnings"] == []
    metrics = api.client.get("/metrics").text
    assert f'nestml_registry_workers_live{{toolchain="{toolchain}"}} 1.0' in metrics

    with api.sessions.begin() as s:
        workers.stopped(s, worker_id)
    (warning,) = api.client.get(f"/v1/builds/{build.json()['id']}").json()["warnings"]
    assert "none has been since" in warning
    assert _fresh_health(api)["status"] == "degraded"
    with api.sessions.begin() as s:  # the stranded build ends: the toolchain is no longer a problem
        queue.claim(s, "someone", [toolchain], 60)
        queue.finish(s, build.json()["id"], "someone", BuildStatus.FAILED, [], None)
    assert not any(toolchain in p for p in _fresh_health(api)["problems"])


def test_the_cli_prints_the_warning_of_a_push_nobody_will_build(api: Api, tmp_path: Path) -> None:
    toolchain = api.register_toolchain()
    name, text = tiny(tag())
    (tmp_path / name).write_bytes(text)
    env = dict(os.environ, NESTML_REGISTRY_URL=api.url, NESTML_REGISTRY_HOME=str(api.home))
    done = subprocess.run([*CLI, "push", name, "--toolchain", toolchain],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "warning: queued, but no compile worker for the toolchain" in done.stderr
    assert "Traceback" not in done.stderr


def _damaged_module(api: Api) -> tuple[dict, str, Path, str]:
    """A succeeded build whose stored module has then been damaged: (build, sha256, its file, its tag)."""
    toolchain = api.register_toolchain()
    t = tag()
    build = api.post_build([tiny(t)], toolchain=toolchain).json()
    content = f"module bytes {t}".encode() * 100
    sha = api.succeed(build["id"], toolchain, [model_for(t)], content)
    (path,) = (api.store.root / sha[:2] / sha).iterdir()
    path.write_bytes(b"flipped" + content[7:])
    return build, sha, path, t


def test_a_push_with_retry_rebuilds_a_succeeded_build_whose_module_is_damaged(api: Api) -> None:
    build, sha, _, t = _damaged_module(api)
    artifact = api.client.get(f"/v1/modules/{sha}/artifact")
    assert artifact.status_code == 500 and artifact.json()["error"]["code"] == "corrupt_artifact"
    assert str(api.store.root) not in artifact.text  # no server paths for anyone
    assert "store verify --repair" in artifact.json()["error"]["message"]
    again = api.post_build([tiny(t)], toolchain=build["toolchain"])
    assert again.status_code == 200 and again.json()["status"] == "succeeded"  # without retry: as it is
    retried = api.post_build([tiny(t)], toolchain=build["toolchain"], retry=True)
    assert retried.status_code == 202, retried.text
    assert (retried.json()["id"], retried.json()["status"]) == (build["id"], "queued")
    assert retried.json()["stage"] == "queued again: its module was corrupt in the artifact store"
    # a worker builds it again: the same build key gives the same module, which it stores again
    assert api.succeed(build["id"], build["toolchain"], [model_for(t)], f"module bytes {t}".encode() * 100) == sha
    repaired = api.client.get(f"/v1/modules/{sha}/artifact")
    assert repaired.status_code == 200 and sha256_of(repaired.content) == sha
    assert api.client.get(f"/v1/builds/{build['id']}").json()["status"] == "succeeded"


@pytest.mark.parametrize("with_copy", [True, False])
def test_store_verify_repairs_from_a_cache_copy_or_queues_the_build(api: Api, tmp_path: Path, with_copy: bool) -> None:
    build, sha, path, _ = _damaged_module(api)
    copies = []
    if with_copy:
        cache = tmp_path / "cache"
        (cache / "modules" / sha).mkdir(parents=True)
        (cache / "modules" / sha / path.name).write_bytes(b"module " + path.read_bytes()[7:])
        copies = [tmp_path / "empty", cache]
    found = verify_store(api.sessions, api.store)
    assert [(d.sha256, d.state, d.action) for d in found.damaged if d.sha256 == sha] == [(sha, "corrupt", "")]
    repaired = verify_store(api.sessions, api.store, repair=True, copies=copies)
    (damage,) = [d for d in repaired.damaged if d.sha256 == sha]
    if with_copy:
        assert damage.action.startswith("restored from")
        assert api.client.get(f"/v1/modules/{sha}/artifact").status_code == 200
        assert not [d for d in verify_store(api.sessions, api.store).damaged if d.sha256 == sha]
    else:
        assert damage.action == f"rebuild queued (build {build['id']})"
        assert api.client.get(f"/v1/builds/{build['id']}").json()["status"] == "queued"


@pytest.mark.slow
def test_the_store_verify_command_reports_in_json_and_fails_on_damage(api: Api, tmp_path: Path) -> None:
    _, sha, path, _ = _damaged_module(api)
    path.unlink()
    env = dict(os.environ, NESTML_REGISTRY_DATABASE_URL=api.server.settings.database_url,
               NESTML_REGISTRY_STORE=str(api.store.root), NESTML_REGISTRY_HOME=str(tmp_path / "home"),
               NESTML_REGISTRY_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([*CLI, "store", "verify", "--json"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert {"sha256": sha, "name": path.stem, "state": "missing", "action": ""} in report["damaged"]
    repaired = subprocess.run([*CLI, "store", "verify", "--repair"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert repaired.returncode == 0, repaired.stderr
    assert "rebuild queued" in repaired.stdout and "Traceback" not in repaired.stderr


@pytest.mark.slow
def test_store_verify_on_a_database_that_does_not_answer_says_so_in_one_line(tmp_path: Path) -> None:
    env = dict(os.environ, NESTML_REGISTRY_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
               NESTML_REGISTRY_HOME=str(tmp_path / "home"))
    done = subprocess.run([*CLI, "store", "verify"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cannot reach the database" in done.stderr and "NESTML_REGISTRY_DATABASE_URL" in done.stderr


def test_the_python_client_reads_health_and_toolchains(api: Api) -> None:
    """RegistryClient.healthz() and .toolchains(), the public client calls a lab's monitoring uses."""
    toolchain = api.register_toolchain()
    with RegistryClient(api.url) as client:
        health = client.healthz()
        assert health["status"] in ("ok", "degraded") and health["database"] == "ok"
        assert toolchain in [t["id"] for t in client.toolchains()]


def test_store_verify_finds_a_file_no_module_names_and_repair_removes_it(api: Api) -> None:
    import os
    import time

    fresh = api.store.put_stream([f"a module being reported {tag()}".encode()], "fresh_module.so")
    orphan = api.store.put_stream([f"a module whose build was refused {tag()}".encode()], "orphan_module.so")
    old = time.time() - 2 * 3600
    os.utime(api.store.path_of(orphan.sha256, "orphan_module.so"), (old, old))
    found = [d for d in verify_store(api.sessions, api.store).damaged if d.state == "unregistered"]
    assert [(d.sha256, d.action) for d in found if d.sha256 in (fresh.sha256, orphan.sha256)] == [(orphan.sha256, "")]
    repaired = verify_store(api.sessions, api.store, repair=True)
    (removed,) = [d for d in repaired.damaged if d.sha256 == orphan.sha256]
    assert removed.action.startswith("removed") and removed not in repaired.unrepaired
    assert not api.store.path_of(orphan.sha256, "orphan_module.so").exists()
    assert api.store.path_of(fresh.sha256, "fresh_module.so").exists()  # an upload whose report is on its way
