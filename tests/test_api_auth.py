"""Bearer tokens and roles over real HTTP: 401 and 403 in the error shape, anonymous publishing from
this machine only (by default: a loopback peer without proxy headers), reading with a token when the
registry asks for one."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import assert_error_shape, model_for, running_api, tag, tiny
from registry_fixtures import backend_params, database_fixtures

from nestml_registry.registry import tokens
from nestml_registry.registry.tables import Build, ModelName
from nestml_registry.service.settings import Settings, is_loopback

empty_db_url, db_url, engine, sessions = database_fixtures()
RELAYED = {"X-Forwarded-For": "192.0.2.10"}  # what a reverse proxy on this machine adds (a header only)


def _post_relayed(api, files, headers=RELAYED, **fields):
    """A POST without a token, as another machine's request relayed here."""
    data = {k: v for k, v in fields.items() if v is not None}
    with api.bare() as anonymous:
        return anonymous.post("/v1/builds", files=[("files", (n, b, "text/plain")) for n, b in files], data=data,
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


def _raw_post(port: int, head: str, body: bytes) -> bytes:
    """A POST as a header-less TCP relay passes it on: bytes on a socket, nothing added."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_nothing_publishes_from_this_machine_without_the_local_token(tmp_path: Path) -> None:
    """Where a request comes from proves nothing (a relay, a tunnel or a page in a browser on this machine all
    arrive from loopback): the machine's user has the local token instead, which a relay cannot present."""
    with running_api("sqlite", tmp_path / "a", host="0.0.0.0") as api:
        toolchain = api.register_toolchain()
        t = tag()
        with api.bare() as anonymous:
            for headers in ({}, {"X-Forwarded-For": "192.0.2.10"}):
                response = anonymous.post("/v1/builds", files=[("files", tiny(tag()))], data={"toolchain": toolchain},
                                          headers=headers)
                error = assert_error_shape(response, 401, "unauthorized")
                assert "local token" in error["message"]
        body = (f'--b\r\nContent-Disposition: form-data; name="files"; filename="{tiny(t)[0]}"\r\n\r\n'
                ).encode() + tiny(t)[1] + b"\r\n--b--\r\n"
        relayed = _raw_post(api.server.port, f"POST /v1/builds HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len(body)}\r\n\r\n",
                            body)
        assert relayed.startswith(b"HTTP/1.1 401"), relayed[:200]
        accepted = api.post_build([tiny(t)], toolchain=toolchain)  # the client sends the local token
        assert accepted.status_code == 202, accepted.text
        api.succeed(accepted.json()["id"], toolchain, [model_for(t)])
        with api.sessions() as s:  # the local token's principal is 'local', as anonymous publishing's was
            assert s.get(ModelName, f"tiny_{t}_neuron_nestml").owner == "local"
    with running_api("sqlite", tmp_path / "c", allow_anonymous_publish=True) as api, api.bare() as anonymous:
        response = anonymous.post("/v1/builds", files=[("files", tiny(tag()))],
                                  data={"toolchain": api.register_toolchain()}, headers=RELAYED)
        assert response.status_code == 202, response.text


def test_the_local_token_file_is_the_users_alone_and_kept_while_valid(db_url: str, tmp_path: Path) -> None:
    import os
    import stat

    from nestml_registry.service.client import RegistryClient, local_token

    backend_url = db_url
    home = tmp_path / "home"
    path = local_token.ensure(home, backend_url)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and path.read_text().startswith("nrt_")
    secret = path.read_text()
    assert local_token.ensure(home, backend_url).read_text() == secret  # kept while it is valid
    path.unlink()
    assert local_token.ensure(home, backend_url).read_text() != secret  # made anew when gone
    env = {"NESTML_REGISTRY_HOME": str(home)}
    assert RegistryClient.from_env("http://127.0.0.1:8000", env=env).token == path.read_text().strip()
    assert RegistryClient.from_env("http://localhost:8000", env=env).token == path.read_text().strip()
    # never sent to another machine, and a token of one's own comes first
    assert RegistryClient.from_env("http://registry.lab:8000", env=env).token is None
    assert RegistryClient.from_env("http://127.0.0.1:8000", token="nrt_mine", env=env).token == "nrt_mine"


def test_state_changes_only_to_the_registrys_names_and_from_its_own_pages(tmp_path: Path) -> None:
    with running_api("sqlite", tmp_path) as api:
        toolchain = api.register_toolchain()
        post = lambda **headers: api.client.post(  # noqa: E731
            "/v1/builds", files=[("files", tiny(tag()))], data={"toolchain": toolchain}, headers=headers)
        # DNS rebinding: a name of the attacker's that points here, with a token or without
        error = assert_error_shape(post(Host="rebind.example:8000"), 403, "host_not_allowed")
        assert "NESTML_REGISTRY_ALLOWED_HOSTS" in error["message"] and "localhost" in error["details"]["allowed"]
        assert_error_shape(post(Host="rebind.example", Origin="http://rebind.example"), 403, "host_not_allowed")
        # a page on another origin of this machine (another port), or of no origin at all
        for origin in ("http://127.0.0.1:1", "http://localhost:" + str(api.server.port), "null"):
            assert_error_shape(post(Origin=origin), 403, "cross_origin")
        assert_error_shape(post(Referer="http://127.0.0.1:1/page"), 403, "cross_origin")
        assert_error_shape(post(**{"Sec-Fetch-Site": "cross-site"}), 403, "cross_origin")
        # the registry's own pages, and programs that send no origin at all
        assert post(Origin=api.url).status_code == 202
        assert post(Host="localhost:" + str(api.server.port)).status_code == 202
        assert post().status_code == 202
        # reading is not a state change: any name reads
        assert api.client.get("/v1/models", headers={"Host": "rebind.example"}).status_code == 200
        # the JSON routes too (a rebuild, a token revocation, a yank)
        for path, body in (("/v1/models/x/builds", {"toolchain": toolchain}), ("/v1/models/x@1/yank", {"reason": "r"})):
            assert_error_shape(api.client.post(path, json=body, headers={"Origin": "http://127.0.0.1:1"}), 403,
                               "cross_origin")
        assert_error_shape(api.client.delete("/v1/tokens/1", headers={"Host": "evil"}), 403, "host_not_allowed")


def test_reading_with_a_required_token(tmp_path: Path) -> None:
    with running_api("sqlite", tmp_path, read_requires_token=True) as api:
        toolchain = api.register_toolchain()
        _, reader = api.token("reader")
        auth = {"Authorization": f"Bearer {reader}"}
        for path in ("/v1/models", "/v1/models/x", f"/v1/modules/{'0' * 64}", f"/v1/modules/{'0' * 64}/artifact",
                     "/v1/builds/1", "/v1/builds/1/log", f"/v1/resolve?model=x&toolchain={toolchain}",
                     "/v1/toolchains", "/metrics"):
            with api.bare() as anonymous:
                response = anonymous.get(path)
            assert_error_shape(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert api.client.get(path, headers=auth).status_code in (200, 404), path
        assert api.client.get("/healthz").status_code == 200
        assert api.client.get("/openapi.json").status_code == 200
        # publishing needs a publisher's token: the local token is one
        assert api.post_build([tiny(tag())], toolchain=toolchain).status_code == 202


def test_settings_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"NESTML_REGISTRY_HOME": str(tmp_path)})
    assert (settings.host, settings.port, settings.max_upload_bytes, settings.max_files) == \
        ("127.0.0.1", 8000, 5 * 1024 * 1024, 64)
    assert settings.read_requires_token is False and settings.allow_anonymous_publish is False
    assert "local token" in settings.anonymous_publish_rule and settings.local_token is True
    assert "localhost" in settings.allowed_hosts and "127.0.0.1" in settings.allowed_hosts
    settings = Settings.from_env({"NESTML_REGISTRY_HOME": str(tmp_path), "NESTML_REGISTRY_HOST": "0.0.0.0",
                                  "NESTML_REGISTRY_PORT": "9000", "NESTML_REGISTRY_MAX_UPLOAD_BYTES": "1000",
                                  "NESTML_REGISTRY_MAX_FILES": "3", "NESTML_REGISTRY_READ_REQUIRES_TOKEN": "1"})
    assert (settings.host, settings.port, settings.max_upload_bytes, settings.max_files) == ("0.0.0.0", 9000, 1000, 3)
    assert settings.read_requires_token is True and settings.allow_anonymous_publish is False
    hosts = Settings.from_env({"NESTML_REGISTRY_ALLOWED_HOSTS": " Registry.Lab., [::1],localhost "}).allowed_hosts
    assert hosts == ("registry.lab", "::1", "localhost")
    with pytest.raises(ValueError, match="NESTML_REGISTRY_ALLOWED_HOSTS"):
        Settings.from_env({"NESTML_REGISTRY_ALLOWED_HOSTS": "a b/c"})
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
        with api.sessions() as s:  # queued again: audited, as every state change
            from nestml_registry.registry.tables import AuditEvent

            retried = s.scalars(select(AuditEvent).where(AuditEvent.action == "retry")).all()
            assert any(e.subject == f"build {build_id}" for e in retried)
