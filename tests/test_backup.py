"""``nestml-registry backup`` and ``restore`` as an administrator runs them: a registry with builds, models,
modules and tokens, backed up while its API serves, restored into a fresh home (SQLite) or a fresh
PostgreSQL database: every model resolves, every token still signs in, ``store verify`` finds every module
whole. Refusals (a backup folder that holds files, a registry that is not empty, a damaged backup) change
nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from api_support import model_for, running_api, tag, tiny
from registry_fixtures import backend_params, create_database, drop_database
from server_fixtures import CLI

from nestml_registry.registry import db, resolving, tokens
from nestml_registry.registry.backup import ARTIFACTS, MANIFEST

pytestmark = pytest.mark.slow  # each step is a CLI process, as an administrator runs it
ROOT = Path(__file__).resolve().parent.parent


def admin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("NESTML_REGISTRY_")}, **env})


def registry_env(url: str, home: Path) -> dict[str, str]:
    return {"NESTML_REGISTRY_DATABASE_URL": url, "NESTML_REGISTRY_HOME": str(home),
            "NESTML_REGISTRY_STORE": str(home / "store")}


@pytest.mark.parametrize("backend", backend_params())
def test_backup_while_serving_and_restore_into_a_fresh_registry(backend: str, tmp_path: Path) -> None:
    with running_api(backend, tmp_path / "old") as api:
        toolchain = api.register_toolchain()
        names = []
        for _ in range(3):
            t = tag()
            build = api.post_build([tiny(t)], toolchain=toolchain).json()
            api.succeed(build["id"], toolchain, [model_for(t)])
            names.append(f"tiny_{t}_neuron_nestml")
        _, secret = api.token("publisher", "alice")
        old = {"NESTML_REGISTRY_DATABASE_URL": str(api.engine.url.render_as_string(hide_password=False)),
               "NESTML_REGISTRY_HOME": str(api.home), "NESTML_REGISTRY_STORE": str(api.store.root)}
        backed = admin(old, "backup", str(tmp_path / "backup"), "--json")  # while the API serves
        assert backed.returncode == 0, backed.stderr
        manifest = json.loads(backed.stdout)
        assert manifest["files"] == 3 and manifest["damaged"] == [] and manifest["revision"] == db.head_revision()
        again = admin(old, "backup", str(tmp_path / "backup"))
        assert again.returncode == 2 and "not an empty folder" in again.stderr
    new_url = create_database(backend, tmp_path / "new")
    try:
        new = registry_env(new_url, tmp_path / "new" / "home")
        restored = admin(new, "restore", str(tmp_path / "backup"))
        assert restored.returncode == 0, restored.stderr
        assert "with 3 module files" in restored.stdout
        verified = admin(new, "store", "verify", "--json")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        engine = db.make_engine(new_url)
        with db.make_sessionmaker(engine)() as s:
            for name in names:
                assert resolving.resolve(s, name, toolchain).module_sha256
            assert tokens.find_token(s, secret).name == "alice"
        engine.dispose()
        twice = admin(new, "restore", str(tmp_path / "backup"))
        assert twice.returncode == 2 and "already holds tables" in twice.stderr
    finally:
        drop_database(new_url)


def test_a_damaged_backup_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with running_api("sqlite", tmp_path / "old") as api:
        toolchain = api.register_toolchain()
        t = tag()
        api.succeed(api.post_build([tiny(t)], toolchain=toolchain).json()["id"], toolchain, [model_for(t)])
        old = {"NESTML_REGISTRY_HOME": str(api.home), "NESTML_REGISTRY_STORE": str(api.store.root),
               "NESTML_REGISTRY_DATABASE_URL": str(api.engine.url)}
        assert admin(old, "backup", str(tmp_path / "backup")).returncode == 0
    (module,) = [p for p in (tmp_path / "backup" / ARTIFACTS).rglob("*") if p.is_file()]
    module.write_bytes(b"not the module")
    home = tmp_path / "new"
    refused = admin(registry_env(db.default_url(home), home), "restore", str(tmp_path / "backup"))
    assert refused.returncode == 2 and "is damaged" in refused.stderr and "Traceback" not in refused.stderr
    assert not (home / "registry.db").exists() and not (home / "store").exists()
    (tmp_path / "backup" / MANIFEST).write_text("{}")
    refused = admin(registry_env(db.default_url(home), home), "restore", str(tmp_path / "backup"))
    assert refused.returncode == 2 and "format" in refused.stderr
    missing = admin(registry_env(db.default_url(tmp_path / "none"), tmp_path / "none"), "backup",
                    str(tmp_path / "b2"))
    assert missing.returncode == 2 and "no registry database" in missing.stderr
    assert not (tmp_path / "none" / "registry.db").exists() and not (tmp_path / "b2").exists()
