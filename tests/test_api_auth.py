"""Bearer tokens and roles over real HTTP: 401 and 403 in the error shape, anonymous publishing from
this machine only (by default: a loopback peer without proxy headers), reading with a token when the
registry asks for one."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import assert_error_shape, model_for, running_api, tag, tiny
from registry_fixtures import backend_params

from nestml_registry.registry import tokens
from nestml_registry.registry.tables import Build, ModelName
from nestml_registry.service.settings import Settings, is_loopback

RELAYED = {"X-Forwarded-For": "192.0.2.10"}  # what a reverse proxy on this machine adds (a header only)


def _post_relayed(api, files, headers=RELAYED, **fields):
    data = {k: v for k, v in fields.items() if v is not None}
    return api.client.post("/v1/builds", files=[("files", (n, b, "text/plain")) for n, b in files], data=data,
                           headers=headers)


@pytest.mark.parametrize("backend", backend_params())
def test_publishing_from_another_machine_needs_a_publisher_token(backend: str, tmp_path: Path) -> None:
    # listening on every interface changes nothing: what counts is where the request comes from
    with running_api(backend, tmp_path, host="0.0.0.0") as api:
        toolchain = api.register_toolchain()
        t = tag()
        anonymous = _post_relayed(api, [tiny(t)], toolchain=toolchain)
        error = assert_error_shape(anonymous, 401, "unauthorized")
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert "publisher" in error["message"]
        _, reader = api.token("reader")
        error = assert_error_shape(api.post_build([tiny(t)], reader, toolchain=toolchain), 403, "forbidden")
        assert error["details"] == {"role": "reader", "needed": "publisher"}
        for bad in ("nrt_not-a-token", "x" * 600, "two words"):
            response = api.post_build([tiny(t)], bad, toolchain=toolchain)
            assert_error_shape(response, 401, "unauthorized")
        latin = api.client.get("/v1/models", headers={"Authorization": "Bearer caf\u00e9".encode("latin-1")})
        assert_error_shape(latin, 401, "unauthorized")
        malformed = api.client.get("/v1/models", headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert_error_shape(malformed, 401, "unauthorized")
        assert "Bearer" in malformed.json()["error"]["message"]
        publisher_id, publisher = api.token("publisher", name=f"alice-{t}")
        accepted = api.post_build([tiny(t)], publisher, toolchain=toolchain)
        assert accepted.status_code == 202, accepted.text
        build_id = accepted.json()["id"]
        with api.sessions() as s:
            assert s.get(Build, build_id).submitted_by == publisher_id
        api.succeed(build_id, toolchain, [model_for(t)])
        with api.sessions() as s:  # the token's principal owns the names it published
            assert s.get(ModelName, f"tiny_{t}_neuron_nestml").owner == f"alice-{t}"
        _, admin = api.token("admin")
        assert api.post_build([tiny(tag())], admin, toolchain=toolchain).status_code == 202
        # reading stays open, with or without a valid token; a bad one is refused
        assert api.client.get("/v1/models").status_code == 200
        assert api.client.get("/v1/models", headers={"Authorization": f"Bearer {reader}"}).status_code == 200
        assert_error_shape(api.client.get("/v1/models", headers={"Authorization": "Bearer nope"}), 401)
        with api.sessions.begin() as s:
            tokens.revoke_token(s, publisher_id)
        assert_error_shape(api.post_build([tiny(t)], publisher, toolchain=toolchain), 401, "unauthorized")


def test_anonymous_publishing_defaults(tmp_path: Path) -> None:
    with running_api("sqlite", tmp_path / "a", host="0.0.0.0") as api:  # from this machine: allowed
        toolchain = api.register_toolchain()
        t = tag()
        accepted = api.post_build([tiny(t)], toolchain=toolchain)
        assert accepted.status_code == 202
        for header in ("Forwarded", "X-Forwarded-For", "X-Real-IP", "Via"):  # relayed for someone else: not
            response = _post_relayed(api, [tiny(tag())], {header: "for=192.0.2.10"}, toolchain=toolchain)
            assert_error_shape(response, 401, "unauthorized")
        api.succeed(accepted.json()["id"], toolchain, [model_for(t)])
        with api.sessions() as s:  # names published anonymously belong to the principal 'local'
            assert s.get(ModelName, f"tiny_{t}_neuron_nestml").owner == "local"
    with running_api("sqlite", tmp_path / "b", allow_anonymous_publish=False) as api:
        assert_error_shape(api.post_build([tiny(tag())], toolchain=api.register_toolchain()), 401)
    with running_api("sqlite", tmp_path / "c", allow_anonymous_publish=True) as api:
        assert _post_relayed(api, [tiny(tag())], toolchain=api.register_toolchain()).status_code == 202


def test_reading_with_a_required_token(tmp_path: Path) -> None:
    with running_api("sqlite", tmp_path, read_requires_token=True) as api:
        toolchain = api.register_toolchain()
        _, reader = api.token("reader")
        auth = {"Authorization": f"Bearer {reader}"}
        for path in ("/v1/models", "/v1/models/x", f"/v1/modules/{'0' * 64}", f"/v1/modules/{'0' * 64}/artifact",
                     "/v1/builds/1", "/v1/builds/1/log", f"/v1/resolve?model=x&toolchain={toolchain}",
                     "/v1/toolchains", "/metrics"):
            response = api.client.get(path)
            assert_error_shape(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert api.client.get(path, headers=auth).status_code in (200, 404), path
        assert api.client.get("/healthz").status_code == 200
        assert api.client.get("/openapi.json").status_code == 200
        # publishing on loopback stays anonymous unless refused
        assert api.post_build([tiny(tag())], toolchain=toolchain).status_code == 202


def test_settings_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"NESTML_REGISTRY_HOME": str(tmp_path)})
    assert (settings.host, settings.port, settings.max_upload_bytes, settings.max_files) == \
        ("127.0.0.1", 8000, 5 * 1024 * 1024, 64)
    assert settings.read_requires_token is False and settings.allow_anonymous_publish is None
    assert "this machine only" in settings.anonymous_publish_rule
    settings = Settings.from_env({"NESTML_REGISTRY_HOME": str(tmp_path), "NESTML_REGISTRY_HOST": "0.0.0.0",
                                  "NESTML_REGISTRY_PORT": "9000", "NESTML_REGISTRY_MAX_UPLOAD_BYTES": "1000",
                                  "NESTML_REGISTRY_MAX_FILES": "3", "NESTML_REGISTRY_READ_REQUIRES_TOKEN": "1"})
    assert (settings.host, settings.port, settings.max_upload_bytes, settings.max_files) == ("0.0.0.0", 9000, 1000, 3)
    assert settings.read_requires_token is True and settings.allow_anonymous_publish is None
    settings = Settings.from_env({"NESTML_REGISTRY_HOME": str(tmp_path), "NESTML_REGISTRY_HOST": "0.0.0.0",
                                  "NESTML_REGISTRY_ALLOW_ANONYMOUS_PUBLISH": "yes"})
    assert settings.allow_anonymous_publish is True and settings.anonymous_publish_rule == "allowed from anywhere"
    with pytest.raises(ValueError, match="NESTML_REGISTRY_ALLOW_ANONYMOUS_PUBLISH"):
        Settings.from_env({"NESTML_REGISTRY_ALLOW_ANONYMOUS_PUBLISH": "perhaps"})
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.10", "registry.lab", ""))


@pytest.mark.parametrize("backend", backend_params())
def test_ownership_is_decided_before_any_work(backend: str, tmp_path: Path) -> None:
    """bob pushes a model alice owns (under any suffix): 403 at submission, nothing queued or stored; a build
    that compiled but was refused at publishing is no cached answer for alice, who submits the same text."""
    from sqlalchemy import func, select

    with running_api(backend, tmp_path) as api:
        toolchain = api.register_toolchain()
        t = tag()
        _, alice = api.token("publisher", name=f"alice-{t}")
        _, bob = api.token("publisher", name=f"bob-{t}")
        first = api.post_build([tiny(t)], alice, toolchain=toolchain)
        api.succeed(first.json()["id"], toolchain, [model_for(t)])
        with api.sessions() as s:
            builds_before = s.scalar(select(func.count()).select_from(Build))
        changed = (tiny(t)[0], tiny(t)[1].replace(b"10 ms", b"11 ms"))
        for suffix in ("_nestml", "", "_mine"):
            refused = api.post_build([changed], bob, toolchain=toolchain, suffix=suffix)
            error = assert_error_shape(refused, 403, "name_owned")
            assert f"belongs to 'alice-{t}'" in error["message"] and "owner set" in error["message"]
            assert error["details"]["family"] == f"tiny_{t}_neuron"
        with api.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Build)) == builds_before  # nothing queued
        # a publishing refusal of an older build (a race the check above cannot see) is bob's, not the text's
        second = api.post_build([changed], alice, toolchain=toolchain)
        assert second.status_code == 202, second.text
        build_id = second.json()["id"]
        api.fail(build_id, toolchain, "model name ... belongs to 'alice'")
        with api.sessions.begin() as s:
            s.get(Build, build_id).diagnostics = [{"severity": "error", "message": "owned", "code": "name_owned"}]
        _, admin = api.token("admin")
        again = api.post_build([changed], admin, toolchain=toolchain)
        assert again.status_code == 202 and again.json()["id"] == build_id, again.text
        assert again.json()["status"] == "queued"
