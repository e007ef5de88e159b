"""Models, modules, artifacts and resolution over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib

from api_support import Api, api_fixture, assert_error_shape, model_for, tag, tiny

api = api_fixture()


def published(api: Api, t: str, toolchain: str, version: int = 1, content: bytes | None = None) -> tuple[int, str]:
    """A build of ``tiny(t)`` (for a ``version`` after the first, its code changed: a comment alone would
    reuse the first build's module) that succeeded: (id, module sha)."""
    name, source = tiny(t)
    source = source.replace(b"C_m pF = 250 pF", f"C_m pF = {249 + version} pF".encode())
    response = api.post_build([(name, source)], toolchain=toolchain)
    assert response.status_code == 202, response.text
    build_id = response.json()["id"]
    return build_id, api.succeed(build_id, toolchain, [model_for(t)], content)


def test_models_list_and_detail(api: Api) -> None:
    t, toolchain = tag(), api.register_toolchain()
    published(api, t, toolchain)
    published(api, t, toolchain, 2)
    name = f"tiny_{t}_neuron_nestml"
    listed = api.client.get("/v1/models")
    assert listed.status_code == 200
    first = listed.json()[0]  # the newest first
    assert first["name"] == name and first["kind"] == "neuron" and first["version"] == 2 and first["versions"] == 2
    assert first["toolchains"] == [toolchain]
    for reference in (name, f"tiny_{t}_neuron", f"nestml:{name}"):
        detail = api.client.get(f"/v1/models/{reference}")
        assert detail.status_code == 200, (reference, detail.text)
        doc = detail.json()
        assert doc["name"] == name and doc["version"] == 2 and [v["version"] for v in doc["versions"]] == [2, 1]
    newest = doc["versions"][0]
    assert newest["parameters"][0] == {"name": "E_L", "unit": "mV", "type": "mV", "default": "-70 mV",
                                       "value": -70.0, "comment": "resting potential"}
    assert newest["state"][0]["name"] == "V_m" and newest["input_ports"][0]["name"] == "spikes"
    assert newest["source"]["name"] == f"tiny_{t}.nestml" and "C_m pF = 251 pF" in newest["source"]["text"]
    assert newest["modules"][0]["toolchain"] == toolchain
    assert newest["modules"][0]["url"] == f"/v1/modules/{newest['modules'][0]['sha256']}/artifact"
    one = api.client.get(f"/v1/models/{name}@1").json()
    assert one["version"] == 1 and [v["version"] for v in one["versions"]] == [1]
    assert "C_m pF = 250 pF" in one["versions"][0]["source"]["text"]
    error = assert_error_shape(api.client.get(f"/v1/models/{name}@7"), 404, "not_found")
    assert error["details"]["versions"] == [1, 2]


def test_unknown_model_names_close_ones(api: Api) -> None:
    t, toolchain = tag(), api.register_toolchain()
    published(api, t, toolchain)
    error = assert_error_shape(api.client.get(f"/v1/models/tiny_{t}_neuronn"), 404)
    assert f"tiny_{t}_neuron_nestml" in error["details"]["close_names"]
    assert "did you mean" in error["message"]
    for bad in ("a b", "1abc", "x@0", "x@y", "a" * 400):
        assert_error_shape(api.client.get(f"/v1/models/{bad}"), 422)


def test_module_metadata(api: Api) -> None:
    t, toolchain = tag(), api.register_toolchain()
    _, sha = published(api, t, toolchain)
    response = api.client.get(f"/v1/modules/{sha}")
    assert response.status_code == 200
    doc = response.json()
    assert doc["sha256"] == sha and doc["toolchain"] == toolchain and doc["name"] == f"tiny_{t}_neuron_nestml_module"
    assert doc["size"] > 0 and doc["registers"] == [f"tiny_{t}_neuron_nestml"]
    assert doc["models"] == [{"name": f"tiny_{t}_neuron_nestml", "kind": "neuron", "version": 1, "breaks": {}}]
    assert doc["url"] == f"/v1/modules/{sha}/artifact"
    assert api.client.get(f"/v1/modules/{sha.upper()}").json()["sha256"] == sha
    assert_error_shape(api.client.get(f"/v1/modules/{'0' * 64}"), 404, "not_found")
    for bad in ("abc", "0" * 63, "0" * 65, "z" * 64, "%2e%2e", "-1"):
        assert_error_shape(api.client.get(f"/v1/modules/{bad}"), 422)
        assert_error_shape(api.client.get(f"/v1/modules/{bad}/artifact"), 422)


def test_artifact_download_headers_and_304(api: Api) -> None:
    t, toolchain = tag(), api.register_toolchain()
    content = b"\x7fELF fake module bytes " + t.encode() * 1000
    _, sha = published(api, t, toolchain, content=content)
    assert sha == hashlib.sha256(content).hexdigest()
    response = api.client.get(f"/v1/modules/{sha}/artifact")
    assert response.status_code == 200 and response.content == content
    headers = response.headers
    assert headers["etag"] == f'"{sha}"'
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["x-content-sha256"] == sha
    assert headers["repr-digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(content).digest()).decode()}:"
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"] == f'attachment; filename="tiny_{t}_neuron_nestml_module.so"'
    for tag_header in (f'"{sha}"', f'W/"{sha}"', f'"other", "{sha}"', "*"):
        cached = api.client.get(f"/v1/modules/{sha}/artifact", headers={"If-None-Match": tag_header})
        assert cached.status_code == 304 and cached.content == b"", tag_header
        assert cached.headers["etag"] == f'"{sha}"'
    other = api.client.get(f"/v1/modules/{sha}/artifact", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == content
    assert_error_shape(api.client.get(f"/v1/modules/{'1' * 64}/artifact"), 404, "not_found")


def test_corrupt_artifact_is_never_served(api: Api) -> None:
    t, toolchain = tag(), api.register_toolchain()
    content = b"good bytes " + t.encode()
    _, sha = published(api, t, toolchain, content=content)
    path = api.store.open_verified(sha)
    path.write_bytes(b"evil bytes " + t.encode())
    response = api.client.get(f"/v1/modules/{sha}/artifact")
    error = assert_error_shape(response, 500, "corrupt_artifact")
    assert b"evil" not in response.content and "will not be served" in error["message"]
    assert str(api.store.root) not in response.text  # no server paths for clients
    path.unlink()
    error = assert_error_shape(api.client.get(f"/v1/modules/{sha}/artifact"), 500, "artifact_missing")
    assert api.client.get("/healthz").status_code == 200


def test_resolve_one_and_many(api: Api) -> None:
    t, toolchain = tag(), api.register_toolchain()
    _, sha1 = published(api, t, toolchain)
    _, sha2 = published(api, t, toolchain, 2)
    u = tag()
    _, other_sha = published(api, u, toolchain)
    name = f"tiny_{t}_neuron_nestml"
    response = api.client.get("/v1/resolve", params={"model": f"tiny_{t}_neuron", "toolchain": toolchain})
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc == {"model": name, "version": 2, "kind": "neuron", "toolchain": toolchain, "yanked": None,
                   "module": {"name": f"tiny_{t}_neuron_nestml_module", "sha256": sha2, "size": None,
                              "url": f"/v1/modules/{sha2}/artifact"}}
    old = api.client.get("/v1/resolve", params={"model": f"{name}@1", "toolchain": toolchain}).json()
    assert old["version"] == 1 and old["module"]["sha256"] == sha1
    many = api.client.get("/v1/resolve", params=[("model", f"{name}@2"), ("model", f"tiny_{u}_neuron"),
                                                 ("toolchain", toolchain)])
    assert many.status_code == 200, many.text
    assert [(r["model"], r["module"]["sha256"]) for r in many.json()["resolutions"]] == [
        (name, sha2), (f"tiny_{u}_neuron_nestml", other_sha)]
    conflict = api.client.get("/v1/resolve", params=[("model", f"{name}@1"), ("model", f"{name}@2"),
                                                     ("toolchain", toolchain)])
    error = assert_error_shape(conflict, 409, "version_conflict")
    assert error["details"]["conflicts"][0]["model"] == name
    missing = api.client.get("/v1/resolve", params={"model": f"tiny_{t}_neuronx", "toolchain": toolchain})
    error = assert_error_shape(missing, 404, "unknown_model")
    assert name in error["details"]["close_names"]
    elsewhere = api.client.get("/v1/resolve", params={"model": name, "toolchain": "nest3.10.0-other-toolchain"})
    error = assert_error_shape(elsewhere, 404, "not_built")
    assert error["details"]["toolchains"] == [toolchain]
    assert_error_shape(api.client.get("/v1/resolve", params={"model": "x@0", "toolchain": toolchain}), 422,
                       "invalid_reference")
    assert_error_shape(api.client.get("/v1/resolve", params={"model": name}), 422, "invalid_request")
    assert_error_shape(api.client.get("/v1/resolve", params={"toolchain": toolchain}), 422, "invalid_request")


def test_resolve_names_the_unfinished_build(api: Api) -> None:
    t, toolchain = tag(), api.register_toolchain()
    build_id = api.post_build([tiny(t)], toolchain=toolchain).json()["id"]
    error = assert_error_shape(api.client.get("/v1/resolve", params={"model": f"tiny_{t}_neuron",
                                                                     "toolchain": toolchain}), 404, "unknown_model")
    assert error["details"]["build"]["id"] == build_id and error["details"]["build"]["status"] == "queued"
    assert f"/v1/builds/{build_id}" in error["message"]


def test_checked_bytes_are_kept_for_the_next_downloads(api: Api) -> None:
    t, toolchain = tag(), api.register_toolchain()
    content = b"good bytes " + t.encode()
    _, sha = published(api, t, toolchain, content=content)
    first = api.client.get(f"/v1/modules/{sha}/artifact")
    assert first.status_code == 200 and first.content == content
    assert first.headers["content-disposition"] == f'attachment; filename="tiny_{t}_neuron_nestml_module.so"'
    api.store.open_verified(sha).write_bytes(b"evil bytes " + t.encode())  # the disk is not read again
    again = api.client.get(f"/v1/modules/{sha}/artifact")
    assert again.status_code == 200 and again.content == content
    assert api.client.get(f"/v1/modules/{sha}/artifact", headers={"If-None-Match": f'"{sha}"'}).status_code == 304


def test_files_too_large_to_keep_are_streamed_after_the_check(api: Api) -> None:
    from nestml_registry.service.api.artifacts import VerifiedArtifacts

    kept = api.server.app.state.artifacts
    api.server.app.state.artifacts = VerifiedArtifacts(0)  # every file is "large"
    try:
        t, toolchain = tag(), api.register_toolchain()
        content = b"streamed bytes " + t.encode() * 1000
        _, sha = published(api, t, toolchain, content=content)
        response = api.client.get(f"/v1/modules/{sha}/artifact")
        assert response.status_code == 200 and response.content == content
        assert response.headers["x-content-sha256"] == sha and response.headers["etag"] == f'"{sha}"'
        assert f'filename="tiny_{t}_neuron_nestml_module.so"' in response.headers["content-disposition"]
        api.store.open_verified(sha).write_bytes(b"evil" + content[4:])
        assert_error_shape(api.client.get(f"/v1/modules/{sha}/artifact"), 500, "corrupt_artifact")
    finally:
        api.server.app.state.artifacts = kept


def test_search_reads_the_descriptions_of_parameters(api: Api) -> None:
    """model_for's E_L is described as the "resting potential": a search for those words finds the model."""
    t, toolchain = tag(), api.register_toolchain()
    api.succeed(api.post_build([tiny(t)], toolchain=toolchain).json()["id"], toolchain, [model_for(t)])
    found = api.client.get("/v1/models", params={"q": f"resting {t}"}).json()
    assert [m["name"] for m in found] == [f"tiny_{t}_neuron_nestml"]
    assert api.client.get("/v1/models", params={"q": f"restless {t}"}).json() == []
