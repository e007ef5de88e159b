"""RegistryClient's requests and error handling, and the CLI's progress display, against a small HTTP
server on loopback that plays the registry (:mod:`http_stub`; the real registry is in test_client_cli.py
and test_e2e_registry.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_stub import Answer, Handler, Seen, Stub

from nestml_registry.cli import console
from nestml_registry.service.client import RegistryClient, RegistryClientError
from nestml_registry.service.client.retries import RetryPolicy

NO_RETRIES = RetryPolicy(budget=0)  # (test_retries.py tries again)


@pytest.fixture
def stub() -> Iterator[Stub]:
    with Stub() as server:
        yield server


def client(stub: Stub, handler: Handler, token: str | None = None, retry: RetryPolicy = NO_RETRIES) -> RegistryClient:
    stub.handler = handler
    return RegistryClient(stub.url + "/", token=token, retry=retry)


def test_from_env_reads_url_and_token() -> None:
    c = RegistryClient.from_env(env={"NESTML_REGISTRY_URL": "http://lab:9000/", "NESTML_REGISTRY_TOKEN": "nrt_x"})
    assert (c.base_url, c.token) == ("http://lab:9000", "nrt_x")
    c = RegistryClient.from_env(server="http://other:1", env={"NESTML_REGISTRY_URL": "http://lab:9000"})
    assert (c.base_url, c.token) == ("http://other:1", None)
    assert RegistryClient.from_env(env={}).base_url == "http://127.0.0.1:8000"


def test_a_token_that_cannot_be_a_header_is_refused_at_once() -> None:
    with pytest.raises(RegistryClientError) as info:
        RegistryClient("http://127.0.0.1:9", token="nrt_abc\nX-Injected: 1")
    assert info.value.code == "invalid_token" and "NESTML_REGISTRY_TOKEN" in info.value.message
    assert RegistryClient("http://127.0.0.1:9", token=" nrt_abc\n").token == "nrt_abc"


def test_submit_build_sends_multipart_with_token(tmp_path: Path, stub: Stub) -> None:
    seen: dict = {}

    def handler(request: Seen) -> Answer:
        seen["auth"] = request.headers.get("authorization")
        seen["path"] = request.path
        seen["body"] = request.body
        return Answer(202, json={"id": 7, "status": "queued"}, headers={"Location": "/v1/builds/7"})

    (tmp_path / "a.nestml").write_text("model a_neuron:\n")
    build = client(stub, handler, token="nrt_secret").submit_build(
        [tmp_path / "a.nestml", ("b.nestml", b"model b_synapse:\n")], module="ab_module",
        pairs=["a_neuron:b_synapse:post_spikes"], suffix="", weight_variables={"b_synapse": "w"},
        toolchain="tc-1", retry=True)
    assert build == {"id": 7, "status": "queued"}
    assert seen["auth"] == "Bearer nrt_secret" and seen["path"] == "/v1/builds"
    body = seen["body"].decode()
    for part in ('name="files"; filename="a.nestml"', 'name="files"; filename="b.nestml"', "model b_synapse:",
                 'name="module"\r\n\r\nab_module', 'name="suffix"\r\n\r\n\r\n', 'name="toolchain"\r\n\r\ntc-1',
                 'name="retry"\r\n\r\ntrue'):
        assert part in body
    assert json.dumps([{"neuron": "a_neuron", "synapse": "b_synapse", "post_ports": ["post_spikes"]}]) in body
    assert json.dumps({"b_synapse": "w"}) in body


def test_error_shapes(stub: Stub) -> None:
    def handler(request: Seen) -> Answer:
        if request.path == "/v1/models/x":
            return Answer(404, json={"error": {"code": "not_found", "message": "no model 'x'",
                                               "details": {"close_names": ["y"]}}})
        if request.path == "/v1/models":
            return Answer(502, text="<html>Bad Gateway</html>")
        return Answer(200, text="not json")

    c = client(stub, handler)
    with pytest.raises(RegistryClientError) as info:
        c.model("x")
    assert (info.value.status, info.value.code, info.value.message) == (404, "not_found", "no model 'x'")
    assert info.value.details == {"close_names": ["y"]}
    assert info.value.to_dict()["error"]["code"] == "not_found"
    with pytest.raises(RegistryClientError, match=r"answered HTTP 502: <html>Bad Gateway</html>"):
        c.models()
    with pytest.raises(RegistryClientError, match="not JSON"):
        c.get_build(1)


def test_wait_build_reports_progress_and_times_out(stub: Stub) -> None:
    answers = iter([{"id": 1, "status": "queued", "stage": "queued"},
                    {"id": 1, "status": "running", "stage": "compiling"},
                    {"id": 1, "status": "succeeded", "stage": "succeeded"}])
    c = client(stub, lambda request: Answer(200, json=next(answers)))
    seen: list[str] = []
    final = c.wait_build(1, on_progress=lambda b: seen.append(console.stage_of(b)), poll=0)
    assert final["status"] == "succeeded" and seen == ["queued", "compiling", "done"]

    stuck = client(stub, lambda request: Answer(200, json={"id": 2, "status": "queued", "stage": "queued"}))
    with pytest.raises(RegistryClientError) as info:
        stuck.wait_build(2, poll=0.01, timeout=0.05)
    assert info.value.code == "timeout" and "still queued" in info.value.message


def test_resolve_many_sends_every_model(stub: Stub) -> None:
    def handler(request: Seen) -> Answer:
        models = request.query.get("model", [])
        assert request.query["toolchain"] == ["tc"]
        return Answer(200, json={"toolchain": "tc", "resolutions": [{"model": m} for m in models]})

    assert client(stub, handler).resolve_many(["a", "b@2"], "tc") == [{"model": "a"}, {"model": "b@2"}]


def test_stage_words() -> None:
    assert console.stage_of({"status": "queued", "stage": "queued again: worker w stopped"}).startswith("queued again")
    assert console.stage_of({"status": "running", "stage": "claimed"}) == "starting"
    assert console.stage_of({"status": "running", "stage": "loading in NEST"}) == "loading in NEST"
    assert console.stage_of({"status": "failed", "stage": "failed"}) == "failed"


def test_plain_progress_prints_a_line_per_stage() -> None:
    out = io.StringIO()
    progress = console.BuildProgress(out, 5, live=False)
    for stage in ("queued", "queued", "generating code", "compiling", "compiling"):
        progress({"status": "running" if stage != "queued" else "queued", "stage": stage})
    progress({"status": "succeeded"})
    progress.close()
    assert [line.split("] ")[1] for line in out.getvalue().splitlines()] == [
        "build 5: queued", "build 5: generating code", "build 5: compiling", "build 5: done"]


def test_failure_prints_like_a_compiler() -> None:
    err = io.StringIO()
    console.print_failure({"id": 3, "status": "failed", "diagnostics": [
        {"file": "izh.nestml", "line": 8, "column": 29, "severity": "error", "message": "No free-standing units"},
        {"file": "izh.nestml", "line": 2, "column": 1, "severity": "warning", "message": "unused"}]}, err)
    assert err.getvalue().splitlines() == [
        "izh.nestml:8:29: error: No free-standing units", "izh.nestml:2:1: warning: unused",
        "build 3 failed: 1 error (its log: nestml-registry build 3 --log)"]
    err = io.StringIO()
    console.print_failure({"id": 4, "status": "failed", "diagnostics": [], "error": "killed its worker 3 times"}, err)
    assert err.getvalue().splitlines()[0] == "<build>: error: killed its worker 3 times"
