"""NEST Desktop's front door, ``/compat/nestml-server``, without compiling: CORS for NEST Desktop's origins
(preflight and answers, errors included), tokens as NEST Desktop sends them (``AccessToken``), the error
shape with nestml-server's ``message`` and ``lineNumber`` beside the registry's, refusals that change
nothing, and ``installed`` for a module a (stand-in) worker built. The real builds, NEST Server and
Chromium are in ``test_nestml_server.py``."""

from __future__ import annotations

import json

import httpx
import pytest
from api_support import Api, api_fixture, model_for, tag, tiny

from nestml_registry.registry.tables import Build

FRONT = "/compat/nestml-server"
TOOLCHAIN = "nest3.10.0-frontdoor-test"
DESKTOP = "http://localhost:54286"
api = api_fixture(compat_toolchain=TOOLCHAIN)


def front_error(response: httpx.Response, status: int, code: str) -> dict:
    """An error of the front door: the registry's shape, with nestml-server's ``message`` beside it."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) in ({"error", "message"}, {"error", "message", "lineNumber"}), body
    assert body["error"]["code"] == code, body
    assert body["message"] == body["error"]["message"] and len(body["message"]) > 10
    return body


def generate_body(name: str, script: str, module: str = "nestmlmodule") -> dict:
    return {"module_name": module, "models": [{"element_type": "neuron", "name": name, "script": script}]}


def test_preflight_from_nest_desktop_origins_is_answered(api: Api) -> None:
    for origin in (DESKTOP, "http://127.0.0.1:8000", "http://[::1]:54286", "http://localhost"):
        response = api.bare().options(f"{FRONT}/getSpecs", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,accesstoken"})
        assert response.status_code == 204, response.text
        assert response.headers["access-control-allow-origin"] == origin
        assert "accesstoken" in response.headers["access-control-allow-headers"].lower()
        assert "POST" in response.headers["access-control-allow-methods"]


def test_preflight_from_another_origin_is_refused_in_the_shape(api: Api) -> None:
    for origin in ("https://evil.example", "http://localhost.evil.example:8000", "null"):
        response = api.bare().options(f"{FRONT}/generateModels", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        body = front_error(response, 403, "cross_origin")
        assert "NESTML_REGISTRY_COMPAT_ORIGINS" in body["message"]
        assert "access-control-allow-origin" not in response.headers


def test_cors_is_only_the_front_doors(api: Api) -> None:
    """The rest of the registry lets no other origin in: no CORS header, and writes refused."""
    response = api.bare().get("/v1/models", headers={"Origin": DESKTOP})
    assert "access-control-allow-origin" not in response.headers
    response = api.bare().options("/v1/builds", headers={"Origin": DESKTOP, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in response.headers
    name, data = tiny(tag())
    response = api.client.post("/v1/builds", files=[("files", (name, data, "text/plain"))], headers={"Origin": DESKTOP})
    assert response.status_code == 403 and response.json()["error"]["code"] == "cross_origin"


def test_versions_are_the_front_doors_toolchain(api: Api) -> None:
    api.register_toolchain(TOOLCHAIN)
    response = api.bare().get(FRONT, headers={"Origin": DESKTOP})
    assert response.status_code == 200, response.text
    assert response.json() == {"nest": "3.10.0", "nestml": "", "toolchain": TOOLCHAIN}
    assert response.headers["access-control-allow-origin"] == DESKTOP
    assert api.bare().get(FRONT + "/").json()["toolchain"] == TOOLCHAIN


def test_generating_needs_a_publishers_token_sent_as_nest_desktop_sends_it(api: Api) -> None:
    body = generate_body("tiny_front_neuron", tiny("front")[1].decode().replace("tiny_front_neuron", "x"))
    response = api.bare().post(f"{FRONT}/generateModels", json=body, headers={"Origin": DESKTOP})
    assert "publisher" in front_error(response, 401, "unauthorized")["message"]
    assert response.headers["access-control-allow-origin"] == DESKTOP  # NEST Desktop can read why
    _, reader = api.token("reader")
    response = api.bare().post(f"{FRONT}/generateModels", json=body, headers={"Origin": DESKTOP, "AccessToken": reader})
    front_error(response, 403, "forbidden")
    response = api.bare().post(f"{FRONT}/generateModels", json=body, headers={"AccessToken": "not-a-token"})
    front_error(response, 401, "unauthorized")


def test_refusals_say_what_to_do_and_queue_nothing(api: Api) -> None:
    _, publisher = api.token("publisher")
    headers = {"Origin": DESKTOP, "AccessToken": publisher}
    with api.sessions() as s:
        builds_before = s.query(Build).count()
    t = tag()
    script = tiny(t)[1].decode()
    cases = [
        (generate_body("other_neuron", script), 422, "invalid_input", "declares"),
        (generate_body(f"tiny_{t}_neuron", script, module="bad-name"), 422, "invalid_input", "module"),
        (generate_body(f"tiny_{t}_neuron", "no model here"), 422, "invalid_input", "declares no model"),
        ({"models": [{"name": "a"}]}, 422, "invalid_request", "script"),
        ({"module_name": "nestmlmodule", "models": [generate_body(f"tiny_{t}_neuron", script)["models"][0]] * 2},
         422, "invalid_input", "twice"),
        # no live worker serves the front door's toolchain: 503, saying what to start
        (generate_body(f"tiny_{t}_neuron", script), 503, "no_worker", "nestml-registry worker"),
    ]
    for body, status, code, words in cases:
        response = api.bare().post(f"{FRONT}/generateModels", json=body, headers=headers)
        assert words in front_error(response, status, code)["message"], response.text
    response = api.bare().post(f"{FRONT}/generateModels", content=b"{not json", headers=headers)
    front_error(response, 422, "invalid_request")
    response = api.bare().post(f"{FRONT}/generateModels", content=b"x" * (api.server.settings.max_upload_bytes + 1),
                               headers=headers)
    front_error(response, 413, "too_large")
    response = api.bare().post(f"{FRONT}/generateModels", json=generate_body("a", script),
                               headers={**headers, "Origin": "https://evil.example"})
    front_error(response, 403, "cross_origin")
    with api.sessions() as s:
        assert s.query(Build).count() == builds_before
    assert api.bare().post(f"{FRONT}/generateModels", json={"models": []}, headers=headers).json() == {
        "status": {"INITIALIZED": [], "WRITTEN": [], "BUILT": [], "INSTALLED": []}}


def test_installed_lists_what_the_newest_build_of_the_module_registers(api: Api) -> None:
    api.register_toolchain(TOOLCHAIN)
    t = tag()
    module = f"front_{t}_module"
    response = api.bare().get(f"{FRONT}/module/{module}/installed", headers={"Origin": DESKTOP})
    assert "generate it first" in front_error(response, 404, "not_found")["message"]
    build = api.post_build([tiny(t)], toolchain=TOOLCHAIN, module=module, suffix="").json()
    api.succeed(build["id"], TOOLCHAIN, [dict(model_for(t), name=f"tiny_{t}_neuron")])
    response = api.bare().get(f"{FRONT}/module/{module}/installed", headers={"Origin": DESKTOP})
    assert response.status_code == 200, response.text
    assert response.json() == [f"tiny_{t}_neuron"]
    front_error(api.bare().get(f"{FRONT}/module/not-a-module/installed"), 422, "invalid_input")


def test_specs_need_a_script(api: Api) -> None:
    for path in ("getSpecs", "getParams"):
        response = api.bare().post(f"{FRONT}/{path}", json={"element_type": "neuron"}, headers={"Origin": DESKTOP})
        assert "script" in front_error(response, 422, "invalid_request")["message"]


def test_openapi_documents_the_front_door(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    assert {FRONT, f"{FRONT}/generateModels", f"{FRONT}/getSpecs", f"{FRONT}/getParams",
            f"{FRONT}/module/{{module}}/installed"} <= set(paths)
    assert paths[f"{FRONT}/generateModels"]["post"]["x-access"] == "publish"
    json.dumps(paths)


@pytest.mark.parametrize("origin", ["https://desktop.lab", "http://desktop.lab:8080"])
def test_configured_origins_are_let_in(origin: str) -> None:
    from nestml_registry.service.api.cross_origin import origin_allowed
    from nestml_registry.service.settings import Settings, SettingsError

    settings = Settings.from_env({"NESTML_REGISTRY_COMPAT_ORIGINS": f"{origin}, https://other.lab/"})
    assert origin_allowed(origin, settings) and origin_allowed("https://other.lab", settings)
    assert not origin_allowed("https://evil.example", settings)
    assert origin_allowed("https://anything.example", Settings.from_env({"NESTML_REGISTRY_COMPAT_ORIGINS": "*"}))
    with pytest.raises(SettingsError, match="web origins"):
        Settings.from_env({"NESTML_REGISTRY_COMPAT_ORIGINS": "desktop.lab"})
