"""POST /v1/builds and GET /v1/builds/{id}[/log] over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from api_support import Api, api_fixture, assert_error_shape, model_for, tag, tiny
from sqlalchemy import select

from nestml_registry.registry.tables import Build

api = api_fixture()


def test_post_queues_a_build_with_location_and_is_idempotent(api: Api) -> None:
    t, toolchain = tag(), api.register_toolchain()
    first = api.post_build([tiny(t)], toolchain=toolchain)
    assert first.status_code == 202, first.text
    doc = first.json()
    assert first.headers["location"] == f"/v1/builds/{doc['id']}"
    assert doc["status"] == "queued" and doc["module"] is None and doc["models"] == [] and doc["diagnostics"] == []
    assert doc["toolchain"] == toolchain and len(doc["key"]) == 64 and doc["attempts"] == 0
    assert doc["sources"] == [{"name": f"tiny_{t}.nestml", "sha256": doc["sources"][0]["sha256"]}]
    assert doc["request"]["module"] == f"tiny_{t}_neuron_nestml_module"
    again = api.post_build([tiny(t)], toolchain=toolchain)
    assert again.status_code == 202 and again.json()["id"] == doc["id"] and again.json()["key"] == doc["key"]
    fetched = api.client.get(first.headers["location"])
    assert fetched.status_code == 200
    got = fetched.json()
    for field in ("id", "key", "status", "toolchain", "stage", "attempts", "error", "created_at", "started_at",
                  "finished_at", "module", "models", "diagnostics"):
        assert got[field] == doc[field], field
    with api.sessions() as s:  # one build row, whatever the number of identical uploads
        assert len(s.scalars(select(Build).where(Build.key == doc["key"])).all()) == 1


def test_running_is_202_and_succeeded_is_200_with_module_and_models(api: Api) -> None:
    t, toolchain = tag(), api.register_toolchain()
    build_id = api.post_build([tiny(t)], toolchain=toolchain).json()["id"]
    api.claim(toolchain, build_id)
    running = api.post_build([tiny(t)], toolchain=toolchain)
    assert running.status_code == 202 and running.json()["status"] == "running"
    assert running.json()["started_at"] is not None and running.json()["attempts"] == 1
    sha = api.succeed(build_id, toolchain, [model_for(t)], claim=False)
    done = api.post_build([tiny(t)], toolchain=toolchain)
    assert done.status_code == 200, done.text
    assert done.headers["location"] == f"/v1/builds/{build_id}"
    doc = done.json()
    assert doc["status"] == "succeeded" and doc["finished_at"] is not None
    assert doc["module"] == {"name": f"tiny_{t}_neuron_nestml_module", "sha256": sha, "size": doc["module"]["size"],
                             "url": f"/v1/modules/{sha}/artifact"}
    assert doc["models"] == [{"name": f"tiny_{t}_neuron_nestml", "kind": "neuron", "version": 1, "breaks": {}}]
    log = api.client.get(f"/v1/builds/{build_id}/log")
    assert log.status_code == 200 and log.headers["content-type"].startswith("text/plain")
    assert log.text == f"log of build {build_id}\n"


def test_failed_build_is_returned_as_is_unless_retry(api: Api) -> None:
    t, toolchain = tag(), api.register_toolchain()
    build_id = api.post_build([tiny(t)], toolchain=toolchain).json()["id"]
    api.fail(build_id, toolchain, "No free-standing physical units allowed (mV)")
    failed = api.post_build([tiny(t)], toolchain=toolchain)
    assert failed.status_code == 200
    doc = failed.json()
    assert doc["id"] == build_id and doc["status"] == "failed"
    assert doc["error"] == "No free-standing physical units allowed (mV)"
    assert doc["diagnostics"][0]["line"] == 3 and doc["diagnostics"][0]["severity"] == "error"
    assert api.client.get(f"/v1/builds/{build_id}/log").text == "failed log\n"
    retried = api.post_build([tiny(t)], toolchain=toolchain, retry=True)
    assert retried.status_code == 202 and retried.json()["id"] == build_id
    assert retried.json()["status"] == "queued" and retried.json()["diagnostics"] == []
    assert api.client.get(f"/v1/builds/{build_id}/log").text == ""


def test_toolchain_defaults_to_the_latest_and_must_be_known(api: Api) -> None:
    older = api.register_toolchain()
    newest = api.register_toolchain()
    t = tag()
    assert api.post_build([tiny(t)]).json()["toolchain"] == newest
    assert api.post_build([tiny(t)], toolchain=older).json()["toolchain"] == older
    unknown = api.post_build([tiny(t)], toolchain="nest9.9.9-made-up")
    error = assert_error_shape(unknown, 422, "unknown_toolchain")
    assert newest in error["details"]["known"] and older in error["details"]["known"]
    assert newest in error["message"]
    listed = api.client.get("/v1/toolchains").json()
    assert [x["id"] for x in listed][:2] == [newest, older]
    assert listed[0]["details"]["nest_version"] == "3.10.0"


def test_options_are_stored_with_the_build(api: Api) -> None:
    t, toolchain = tag(), api.register_toolchain()
    neuron = tiny(t)
    synapse = (f"syn_{t}.nestml", f"model syn_{t}_synapse:\n    state:\n        w real = 1\n".encode())
    pairs = json.dumps([{"neuron": f"tiny_{t}_neuron", "synapse": f"syn_{t}_synapse", "post_ports": ["post_spikes"]}])
    response = api.post_build([neuron, synapse], toolchain=toolchain, module=f"pair_{t}_module", pairs=pairs,
                              weight_variables=json.dumps({f"syn_{t}_synapse": "w"}), suffix="_x")
    assert response.status_code == 202, response.text
    request = response.json()["request"]
    assert request == {"module": f"pair_{t}_module", "suffix": "_x",
                       "pairs": [{"neuron": f"tiny_{t}_neuron", "synapse": f"syn_{t}_synapse",
                                  "post_ports": ["post_spikes"]}],
                       "weight_variables": {f"syn_{t}_synapse": "w"}}
    assert [s["name"] for s in response.json()["sources"]] == sorted([neuron[0], synapse[0]])
    # another suffix is another build
    assert api.post_build([neuron, synapse], toolchain=toolchain, module=f"pair_{t}_module", pairs=pairs,
                          weight_variables=json.dumps({f"syn_{t}_synapse": "w"})).json()["id"] != response.json()["id"]


def test_invalid_build_requests_are_422_with_what_to_do(api: Api) -> None:
    t, toolchain = tag(), api.register_toolchain()
    cases = [
        ({"module": "not a module"}, "invalid module name"),
        ({"module": "no_suffix"}, "end in 'module'"),
        ({"pairs": "[{"}, "not valid JSON"),
        ({"pairs": '{"neuron": "a"}'}, "JSON list"),
        ({"pairs": '[{"neuron": "nope_neuron", "synapse": "nope_synapse"}]'}, "no neuron model 'nope_neuron'"),
        ({"pairs": "[42]"}, "a pair is"),
        ({"weight_variables": "[1]"}, "JSON object"),
        ({"weight_variables": '{"a_synapse": 1}'}, "maps synapse names"),
        ({"suffix": "bad-suffix"}, "invalid suffix"),
        ({"retry": "maybe"}, "use true or false"),
    ]
    for fields, needle in cases:
        error = assert_error_shape(api.post_build([tiny(t)], toolchain=toolchain, **fields), 422)
        assert needle in error["message"], (fields, error["message"])
    files = [("a.nestml", b"\xff\xfe not utf-8"), ("b.nestml", b""), ("c.nestml", b"model x:\x00\n"),
             ("", b"model y_neuron:\n")]
    for name, content in files:
        error = assert_error_shape(api.post_build([(name, content)], toolchain=toolchain), 422)
        assert "file" in error["message"], error
    two = assert_error_shape(api.post_build([tiny(t), tiny(t)], toolchain=toolchain), 422)
    assert "same name" in two["message"]


def test_unknown_and_invalid_build_ids(api: Api) -> None:
    missing = assert_error_shape(api.client.get("/v1/builds/987654"), 404, "not_found")
    assert "POST /v1/builds" in missing["message"]
    assert_error_shape(api.client.get("/v1/builds/987654/log"), 404, "not_found")
    for bad in ("abc", "-1", "0", "1e99", "99999999999999999999999", "1.5", "%20"):
        assert_error_shape(api.client.get(f"/v1/builds/{bad}"), 422, "invalid_request")
        assert_error_shape(api.client.get(f"/v1/builds/{bad}/log"), 422, "invalid_request")


def test_a_published_model_is_built_again_for_another_toolchain(api: Api) -> None:
    t, first = tag(), api.register_toolchain()
    build_id = api.post_build([tiny(t)], toolchain=first, module=f"m_{t}_module").json()["id"]
    api.succeed(build_id, first, [model_for(t)])
    second = api.register_toolchain()
    rebuilt = api.client.post(f"/v1/models/tiny_{t}_neuron@1/builds", json={"toolchain": second})
    assert rebuilt.status_code == 202, rebuilt.text
    doc = rebuilt.json()
    assert doc["id"] != build_id and doc["status"] == "queued" and doc["toolchain"] == second
    assert rebuilt.headers["location"] == f"/v1/builds/{doc['id']}"
    with api.sessions.begin() as s:  # the same sources and options as the build that published it
        old, new = s.get(Build, build_id), s.get(Build, doc["id"])
        assert new.request == old.request and [b.source_id for b in new.sources] == [b.source_id for b in old.sources]
    again = api.client.post(f"/v1/models/tiny_{t}_neuron_nestml/builds", json={"toolchain": second})
    assert again.status_code == 202 and again.json()["id"] == doc["id"]

    assert_error_shape(api.client.post(f"/v1/models/tiny_{t}_neuron/builds", json={"toolchain": "nest9-unknown"}),
                       422, "unknown_toolchain")
    assert_error_shape(api.client.post(f"/v1/models/tiny_{t}_neuron@4/builds", json={}), 404)
    assert_error_shape(api.client.post("/v1/models/no_such_neuron/builds", json={}), 404)
    assert_error_shape(api.client.post(f"/v1/models/tiny_{t}_neuron/builds", json={"toolchain": "a b"}), 422)
    assert_error_shape(api.client.post(f"/v1/models/tiny_{t}_neuron/builds", json={"tool": "x"}), 422)
    assert_error_shape(api.client.post(f"/v1/models/tiny_{t}_neuron@x/builds", json={}), 422, "invalid_reference")


def test_a_push_without_toolchain_goes_to_a_toolchain_with_a_live_worker(tmp_path) -> None:
    """The most recently seen toolchain may have no worker left (one that was started once and stopped): a
    build queued for it would wait for nobody. The default is the newest toolchain a live worker serves."""
    from api_support import running_api

    from nestml_registry.registry import workers

    with running_api("sqlite", tmp_path) as api:
        served = api.register_toolchain()
        with api.sessions.begin() as s:
            workers.beat(s, workers.Beat(f"w-{tag()}", served, "127.0.0.1", 1, alive_for=600.0))
        api.register_toolchain()  # seen last, no worker
        build = api.post_build([tiny(tag())]).json()
        assert build["toolchain"] == served
