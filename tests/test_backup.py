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


def test_a_backup_of_the_previous_release_is_migrated_when_restored(tmp_path: Path) -> None:
    """A registry at the previous release's head (0013) backed up, restored into this release: at head, and
    what the newer migrations do to its data done (0014: search words with the variables' descriptions)."""
    from sqlalchemy import text

    old_home = tmp_path / "old"
    old_home.mkdir()
    url = db.default_url(old_home)
    db.upgrade(url, "0013")
    engine = db.make_engine(url)
    with engine.begin() as c:
        c.execute(text("INSERT INTO model_names (name, owner, created_at) VALUES ('izh_nestml', 'alice', "
                       "CURRENT_TIMESTAMP)"))
        c.execute(text("INSERT INTO model_versions (name, version, content_digest, nestml_name, kind, parameters, "
                       "state, input_ports, receptor_types, variants, created_at, description, keywords) VALUES "
                       "('izh_nestml', 1, :d, 'izh', 'neuron', '[]', :s, '[]', '{}', '[]', CURRENT_TIMESTAMP, "
                       "'Izhikevich', 'izh_nestml izh izhikevich')"),
                  {"d": "c" * 64, "s": '[{"name": "U_m", "comment": "recovery variable"}]'})
    engine.dispose()
    backed = admin(registry_env(url, old_home), "backup", str(tmp_path / "backup"), "--json")
    assert backed.returncode == 0, backed.stderr
    assert json.loads(backed.stdout)["revision"] == "0013"
    new_home = tmp_path / "new"
    restored = admin(registry_env(db.default_url(new_home), new_home), "restore", str(tmp_path / "backup"),
                     "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["restored_revision"] == db.head_revision()
    engine = db.make_engine(db.default_url(new_home))
    with engine.connect() as c:
        assert "recovery variable" in c.execute(text("SELECT keywords FROM model_versions")).scalar_one()
    engine.dispose()
