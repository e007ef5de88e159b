"""The one error shape, everywhere: FastAPI's own 404/405/422, unexpected exceptions (500, logged), a
database that does not answer (503), a server with no compile worker yet (503); /metrics parses as
Prometheus text; and a schemathesis run over /openapi.json finds no 5xx and no other error shape."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import schemathesis
from api_support import Api, LiveServer, api_fixture, assert_error_shape, base_settings, model_for, tag, tiny
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

api = api_fixture()
FUZZ_EXAMPLES = 25
NESTML_RUNS = {"/compat/nestml-server/getSpecs", "/compat/nestml-server/getParams"}


def test_framework_errors_take_the_shape(api: Api) -> None:
    assert_error_shape(api.client.get("/nope"), 404, "not_found")
    assert_error_shape(api.client.get("/v1"), 404, "not_found")
    response = api.client.delete("/v1/models")
    assert_error_shape(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]
    assert_error_shape(api.client.put("/v1/builds"), 405, "method_not_allowed")
    error = assert_error_shape(api.client.get("/v1/builds/x"), 422, "invalid_request")
    assert error["details"]["errors"][0]["location"] == ["path", "build_id"]
    assert "build_id" in error["message"]


def test_a_nul_character_is_refused_as_422_on_every_database(api: Api) -> None:
    for path, params in (("/v1/models", {"q": "a\x00b"}), ("/v1/resolve", {"model": "x\x00", "toolchain": "t"}),
                         ("/v1/builds", {"submitter": "\x00"}), ("/v1/models/a%00b", {})):
        error = assert_error_shape(api.client.get(path, params=params), 422, "invalid_input")
        assert "NUL" in error["message"], path
    _, admin = api.token("admin")
    body = api.client.post("/v1/models/x@1/yank", json={"reason": "a\x00b"},
                           headers={"Authorization": f"Bearer {admin}"})
    assert body.status_code in (404, 422), body.text  # no such model; never a 500 (PostgreSQL refuses the NUL)


def test_a_full_disk_makes_health_say_so(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    from nestml_registry.service.api.routes.health import HEALTH_MAX_AGE

    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100 * 1024 ** 3, 100 * 1024 ** 3 - 10 ** 6, 10 ** 6))
    time.sleep(HEALTH_MAX_AGE + 0.05)  # (a health document is answered again for that long)
    health = api.client.get("/healthz").json()
    assert health["status"] == "degraded" and any("MiB free" in p for p in health["problems"]), health
    monkeypatch.undo()
    time.sleep(HEALTH_MAX_AGE + 0.05)
    assert not any("MiB free" in p for p in api.client.get("/healthz").json()["problems"])


def test_openapi_document_and_docs(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    post = document["paths"]["/v1/builds"]["post"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["files"] and {"module", "pairs", "toolchain", "retry"} <= set(form["properties"])
    assert {"200", "202", "401", "403", "413", "415", "422", "503"} <= set(post["responses"])
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:  # every documented error is the one JSON shape
                    assert list(response["content"]) == ["application/json"], (method, path, status)
                    assert response["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    docs = api.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_unexpected_exceptions_are_500_in_the_shape(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def configure(app: FastAPI) -> None:
        @app.get("/boom", include_in_schema=False)
        def boom() -> None:
            raise RuntimeError("a bug")

    from api_support import running_api

    with running_api("sqlite", tmp_path, configure=configure) as live:
        response = live.client.get("/boom")
        error = assert_error_shape(response, 500, "internal_error")
        assert error["details"]["error_id"] in error["message"] and "a bug" not in response.text
        assert any(error["details"]["error_id"] in r.getMessage() for r in caplog.records)
        assert live.client.get("/healthz").status_code == 200


def test_database_down_is_503(tmp_path: Path) -> None:
    settings = base_settings(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    server = LiveServer(settings).start()
    try:
        with requests.Session() as http:
            error = assert_error_shape_requests(http.get(f"{server.url}/healthz", timeout=60), 503)
            assert error["code"] == "database_unavailable"
            for path in ("/v1/models", "/v1/builds/1", "/v1/toolchains", "/metrics"):
                assert_error_shape_requests(http.get(f"{server.url}{path}", timeout=60), 503)
    finally:
        server.stop()


def assert_error_shape_requests(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_no_registered_toolchain_is_503(tmp_path: Path) -> None:
    from api_support import running_api

    with running_api("sqlite", tmp_path) as live:
        error = assert_error_shape(live.post_build([tiny(tag())]), 503, "no_worker")
        assert "nestml-registry worker" in error["message"] and "--toolchain" in error["message"]
        # a client that names its toolchain is queued: the first worker of that toolchain builds it
        early = live.post_build([tiny(tag())], toolchain="nest3.10.0-linux-x86_64-gcc12.2.0-abi0-000000000000")
        assert early.status_code == 202, early.text
        assert "no compile worker" in early.json()["warnings"][0]


def test_metrics_parse_as_prometheus_text(api: Api) -> None:
    t, toolchain, waiting = tag(), api.register_toolchain(), api.register_toolchain()
    queued = api.post_build([tiny(f"{t}q")], toolchain=waiting)
    build_id = api.post_build([tiny(t)], toolchain=toolchain).json()["id"]
    sha = api.succeed(build_id, toolchain, [model_for(t)])

    def scrape() -> dict[str, list]:
        response = api.client.get("/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        return {f.name: f.samples for f in text_string_to_metric_families(response.text)}

    def value(families: dict[str, list], sample_name: str, **labels: str) -> float:
        matching = [s.value for fam in families.values() for s in fam
                    if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())]
        assert matching, sample_name
        return matching[0]

    before = scrape()
    assert api.post_build([tiny(t)], toolchain=toolchain).status_code == 200  # a cache hit
    assert api.client.get(f"/v1/modules/{sha}/artifact").status_code == 200
    after = scrape()
    assert value(after, "nestml_registry_build_cache_hits_total") == \
        value(before, "nestml_registry_build_cache_hits_total") + 1
    assert value(after, "nestml_registry_artifact_downloads_total") == \
        value(before, "nestml_registry_artifact_downloads_total") + 1
    assert value(after, "nestml_registry_queue_depth", toolchain=waiting) == 1  # the other build still waits
    assert value(after, "nestml_registry_queue_depth", toolchain=toolchain) == 0
    assert queued.json()["status"] == "queued"
    assert value(after, "nestml_registry_builds", status="succeeded") >= 1
    assert value(after, "nestml_registry_builds", status="queued") >= 1
    assert value(after, "nestml_registry_compile_duration_seconds_count", status="succeeded") >= 1
    assert value(after, "nestml_registry_compile_duration_seconds_bucket", status="succeeded", le="+Inf") >= 1
    assert value(after, "nestml_registry_toolchains") >= 1
    assert "nestml_registry_upload_rejections" in after


@pytest.mark.slow
def test_openapi_fuzz_finds_no_server_error(api: Api) -> None:
    """Positive and negative examples for every operation (bounded), checked for 5xx, the error shape,
    the documented content types and the response schemas; the server keeps serving."""
    toolchain = api.register_toolchain()
    t = tag()
    build_id = api.post_build([tiny(t)], toolchain=toolchain).json()["id"]
    sha = api.succeed(build_id, toolchain, [model_for(t)])
    _, token = api.token("publisher")
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    document = api.client.get("/openapi.json").json()
    assert {"/v1/builds", "/v1/builds/{build_id}", "/v1/builds/{build_id}/log", "/v1/models",
            "/v1/models/{reference}", "/v1/modules/{sha256}", "/v1/modules/{sha256}/artifact", "/v1/resolve",
            "/healthz", "/metrics"} <= set(document["paths"])
    http = requests.Session()
    checked: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in NESTML_RUNS:
            continue  # each valid example runs NESTML (seconds): test_nestml_server.py sends them real scripts
        fuzz(operation, api.url, f"Bearer {token}", http, checked)
    assert len(checked) >= 10
    assert http.get(f"{api.url}/healthz", timeout=60).status_code == 200
    assert http.get(f"{api.url}/v1/modules/{sha}/artifact", timeout=60).status_code == 200


def fuzz(operation: schemathesis.APIOperation, base_url: str, token: str, http: requests.Session,
         checked: dict[str, int]) -> None:
    name = operation.label
    strategy = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in GenerationMode))

    @given(case=strategy)
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        # a valid token in place of the generated ones, which would only ever be refused (401)
        response = case.call(base_url=base_url, session=http, timeout=60, headers={"Authorization": token})
        checked[name] = checked.get(name, 0) + 1
        assert response.status_code < 500, (case.method, case.path, case.path_parameters, response.text[:300])
        if response.status_code >= 400:
            body = response.json()
            # NEST Desktop's front door adds nestml-server's fields beside the shape (service.nestml_server)
            extra = {"message", "lineNumber"} if case.path.startswith("/compat/nestml-server") else set()
            assert set(body) - extra == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
        case.validate_response(response, checks=[not_a_server_error, content_type_conformance,
                                                 response_schema_conformance])

    run()
