"""Who may do what, over real HTTP: rebuilds need the publisher role, a failed build's log is its
submitter's and the admins', what non-admins see carries no server paths, the OpenAPI document
declares authentication as it is enforced, and the audit log (admins) records who did what."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from api_support import (
    Api,
    assert_error_shape,
    model_for,
    running_api,
    tag,
    tiny,
    toolchain_details,
)
from registry_fixtures import backend_params
from server_fixtures import CLI, ROOT

from nestml_registry.registry import toolchains

RELAYED = {"X-Forwarded-For": "192.0.2.10"}  # a request a proxy on this machine relays (a header only)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("backend", backend_params())
def test_roles_for_rebuilds_failed_logs_and_the_audit_log(backend: str, tmp_path: Path) -> None:
    with running_api(backend, tmp_path) as api:
        toolchain, second = api.register_toolchain(), api.register_toolchain()
        _, alice = api.token("publisher", name="alice")
        _, bob = api.token("publisher", name="bob")
        _, reader = api.token("reader", name="rita")
        _, admin = api.token("admin", name="ada")
        t = tag()
        ok = api.post_build([tiny(t)], alice, toolchain=toolchain).json()["id"]
        api.succeed(ok, toolchain, [model_for(t)])
        bad = api.post_build([tiny(tag())], alice, toolchain=toolchain).json()["id"]
        api.fail(bad, toolchain)

        # rebuilding (for another toolchain) needs the publisher role, like any build
        url = f"/v1/models/tiny_{t}_neuron/builds"
        assert_error_shape(api.client.post(url, json={"toolchain": second}, headers=_auth(reader)), 403, "forbidden")
        with api.bare() as anonymous:
            assert_error_shape(anonymous.post(url, json={"toolchain": second}, headers=RELAYED), 401, "unauthorized")
        assert api.client.post(url, json={"toolchain": second}, headers=_auth(bob)).status_code == 202

        # a failed build's log: its submitter and admins; a succeeded one's: every reader
        log = f"/v1/builds/{bad}/log"
        for who in (bob, reader):
            error = assert_error_shape(api.client.get(log, headers=_auth(who)), 403, "forbidden")
            assert f"GET /v1/builds/{bad}" in error["message"]
        assert_error_shape(api.client.get(log), 403)  # this machine's local token is 'local', not alice
        assert api.client.get(log, headers=_auth(alice)).text == "failed log\n"
        assert api.client.get(log, headers=_auth(admin)).text == "failed log\n"
        assert api.client.get(f"/v1/builds/{ok}/log", headers=_auth(reader)).status_code == 200
        assert api.client.get(f"/v1/builds/{ok}/log").status_code == 200

        # the audit log: admins only; it names who rebuilt
        for who, status in ((reader, 403), (alice, 403)):
            assert_error_shape(api.client.get("/v1/audit", headers=_auth(who)), status, "forbidden")
        with api.bare() as anonymous:
            assert_error_shape(anonymous.get("/v1/audit"), 401, "unauthorized")
        events = api.client.get("/v1/audit", headers=_auth(admin)).json()
        rebuild = next(e for e in events if e["action"] == "rebuild")
        assert rebuild["actor"] == "bob" and rebuild["subject"] == f"tiny_{t}_neuron"
        assert any(e["action"] == "publish" and e["actor"] == "alice" for e in events)
        only = api.client.get("/v1/audit", params={"action": "rebuild", "limit": 1}, headers=_auth(admin)).json()
        assert [e["action"] for e in only] == ["rebuild"]
        if backend == "sqlite":  # the CLI, as an administrator on another machine runs it
            env = {"PATH": "/usr/bin:/bin", "NESTML_REGISTRY_HOME": str(tmp_path / "cli-home")}
            cmd = [*CLI, "audit", "--server", api.url, "--action", "rebuild"]
            shown = subprocess.run([*cmd, "--json"], capture_output=True, text=True, cwd=ROOT, timeout=60,
                                   env={**env, "NESTML_REGISTRY_TOKEN": admin})
            assert shown.returncode == 0, shown.stderr
            assert [(e["actor"], e["action"]) for e in json.loads(shown.stdout)] == [("bob", "rebuild")]
            table = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60,
                                   env={**env, "NESTML_REGISTRY_TOKEN": admin}).stdout.splitlines()
            assert table[0].split() == ["TIME", "(UTC)", "ACTOR", "ACTION", "SUBJECT", "DETAILS"], table
            assert table[1].split()[2:5] == ["bob", "rebuild", f"tiny_{t}_neuron"], table
            refused = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60,
                                     env={**env, "NESTML_REGISTRY_TOKEN": reader})
            assert refused.returncode == 2 and "admin role" in refused.stderr and "Traceback" not in refused.stderr


def test_non_admins_see_no_server_paths_of_toolchains(tmp_path: Path) -> None:
    with running_api("sqlite", tmp_path) as api:
        details = dict(toolchain_details("nest3.10.0-test-abi0-aaaa"), include_dirs=["/opt/secret/nest/include"],
                       cxx="/opt/secret/bin/g++", nest_config="/opt/secret/bin/nest-config", sandboxed=True)
        with api.sessions.begin() as s:
            toolchains.register(s, details)
        _, admin = api.token("admin")
        shown = api.client.get("/v1/toolchains").json()
        assert "/opt/secret" not in json.dumps(shown) and shown[0]["details"]["sandboxed"] is True
        assert "/opt/secret" in json.dumps(api.client.get("/v1/toolchains", headers=_auth(admin)).json())


def _security(document: dict, path: str, method: str) -> list:
    return document["paths"][path][method]["security"]


def test_openapi_declares_authentication_as_enforced(tmp_path: Path) -> None:
    bearer = {"HTTPBearer": []}
    with running_api("sqlite", tmp_path / "open") as api:
        doc = api.client.get("/openapi.json").json()
        assert _security(doc, "/v1/models", "get") == [{}, bearer]  # reading is open, a token is optional
        assert _security(doc, "/v1/builds", "post") == [bearer]  # no anonymous publishing (a local token instead)
        assert _security(doc, "/v1/models/{reference}/builds", "post") == [bearer]
        assert _security(doc, "/v1/audit", "get") == [bearer]
        assert "security" not in doc["paths"]["/healthz"]["get"]
    with running_api("sqlite", tmp_path / "closed", read_requires_token=True, allow_anonymous_publish=False) as api:
        doc = api.client.get("/openapi.json").json()
        assert _security(doc, "/v1/models", "get") == [bearer]
        assert _security(doc, "/v1/builds", "post") == [bearer]


@pytest.mark.slow
def test_admin_commands_on_the_database(tmp_path: Path, api: Api | None = None) -> None:
    """token create/list/revoke and owner set, as a lab's administrator runs them; each is audited."""
    env = {"NESTML_REGISTRY_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*CLI, *args], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=120)

    made = cli("token", "create", "--role", "publisher", "--name", "alice", "--json")
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)
    listed = cli("token", "list", "--json")
    assert [(t["id"], t["name"], t["revoked_at"]) for t in json.loads(listed.stdout)] == [(token["id"], "alice", None)]
    assert token["token"] not in listed.stdout
    table = cli("token", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "ROLE", "NAME", "CREATED", "STATE"], table
    assert table[1].split()[:3] == [str(token["id"]), "publisher", "alice"] and table[1].endswith("active"), table
    assert len(table[1].split()[3]) == 10 and len(table[1].split()[4]) == 8  # the created date and time
    assert cli("token", "revoke", str(token["id"])).returncode == 0
    assert json.loads(cli("token", "list", "--json").stdout)[0]["revoked_at"] is not None
    assert " revoked 20" in cli("token", "list").stdout
    missing = cli("token", "revoke", "999")
    assert missing.returncode == 2 and "no token 999" in missing.stderr and "Traceback" not in missing.stderr
    unknown = cli("owner", "set", "nope_nestml", "bob")
    assert unknown.returncode == 2 and "no model name 'nope_nestml'" in unknown.stderr
    from nestml_registry.registry import db
    from nestml_registry.registry.tables import AuditEvent

    engine = db.make_engine(f"sqlite:///{tmp_path / 'home' / 'registry.db'}")
    try:
        with db.make_sessionmaker(engine)() as s:
            actions = [e.action for e in s.query(AuditEvent).order_by(AuditEvent.id)]
    finally:
        engine.dispose()
    assert actions == ["token_create", "token_revoke"]
