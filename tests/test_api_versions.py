"""What a new version is: a change in comments only compiles nothing and says so; a version that drops
parameters, state variables or input ports is published only with the publisher's --breaking, and says
what it breaks (build document, model document, `show`)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from api_support import assert_error_shape, model_for, running_api, tag, tiny
from registry_fixtures import backend_params
from sqlalchemy import func, select

from nestml_registry.cli import console
from nestml_registry.registry.tables import Build, ModelVersion


def _comments_changed(t: str) -> tuple[str, bytes]:
    name, text = tiny(t)
    text = text.replace(b"# resting potential", b"# the resting potential (as measured)")
    text = text.replace(b"model tiny_", b"# a new comment line above the model\n# and one more\nmodel tiny_")
    return name, text.replace(b"    input:", b"    # the inputs\n    input:")


@pytest.mark.parametrize("backend", backend_params())
def test_a_comment_only_change_compiles_nothing_and_is_a_version_with_the_same_module(
        backend: str, tmp_path: Path) -> None:
    with running_api(backend, tmp_path) as api:
        toolchain = api.register_toolchain()
        t = tag()
        first = api.post_build([tiny(t)], toolchain=toolchain)
        sha = api.succeed(first.json()["id"], toolchain, [model_for(t)])
        files_before = sorted(p.name for p in api.store.root.rglob("*") if p.is_file())

        again = api.post_build([_comments_changed(t)], toolchain=toolchain)
        assert again.status_code == 200, again.text  # finished at once
        doc = again.json()
        assert doc["status"] == "succeeded" and doc["id"] != first.json()["id"]
        assert doc["module"]["sha256"] == sha and doc["stage"] == "reused"
        assert [(m["name"], m["version"]) for m in doc["models"]] == [(f"tiny_{t}_neuron_nestml", 2)]
        assert any(d.get("code") == "same_code" for d in doc["diagnostics"])
        assert sorted(p.name for p in api.store.root.rglob("*") if p.is_file()) == files_before  # nothing stored
        with api.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Build).where(Build.status == "queued")) == 0

        detail = api.client.get(f"/v1/models/tiny_{t}_neuron_nestml").json()
        newest = detail["versions"][0]
        assert newest["version"] == 2 and newest["changes"]["comments_only"] and newest["changes"]["same_module"]
        assert newest["source"]["text"] == _comments_changed(t)[1].decode()  # what the author wrote now
        e_l = next(p for p in newest["parameters"] if p["name"] == "E_L")
        assert e_l["comment"] == "the resting potential (as measured)"
        out = io.StringIO()
        console.print_model(detail, f"tiny_{t}_neuron_nestml", out)
        assert "changed since version 1: comments only; same module" in out.getvalue()
        page = api.client.get(f"/models/tiny_{t}_neuron_nestml")
        assert "comments only; same module" in page.text

        # the same comments again: the same build; a change in the code: compiled
        assert api.post_build([_comments_changed(t)], toolchain=toolchain).json()["id"] == doc["id"]
        code = (tiny(t)[0], tiny(t)[1].replace(b"10 ms", b"12 ms"))
        assert api.post_build([code], toolchain=toolchain).status_code == 202


@pytest.mark.parametrize("backend", backend_params())
def test_a_version_that_drops_names_needs_breaking_and_says_what_it_breaks(backend: str, tmp_path: Path) -> None:
    with running_api(backend, tmp_path) as api:
        toolchain = api.register_toolchain()
        t = tag()
        first = api.post_build([tiny(t)], toolchain=toolchain)
        api.succeed(first.json()["id"], toolchain, [model_for(t)])
        renamed = (tiny(t)[0], tiny(t)[1].replace(b"E_L", b"E_rest").replace(b"spikes <-", b"spikes_in <-"))
        dropped = model_for(t, parameters=[{"name": "E_rest", "type": "mV", "default": "-70 mV", "comment": None,
                                            "value": -70.0}],
                            input_ports=[{"name": "spikes_in", "kind": "spike", "type": None, "size": None}])

        second = api.post_build([renamed], toolchain=toolchain)
        assert second.status_code == 202
        build_id = second.json()["id"]
        api.succeed(build_id, toolchain, [dropped])
        refused = api.client.get(f"/v1/builds/{build_id}").json()
        assert refused["status"] == "failed"
        message = refused["error"]
        assert "parameters E_L" in message and "input ports spikes" in message and "--breaking" in message
        with api.sessions() as s:  # nothing published
            assert s.scalar(select(func.count()).select_from(ModelVersion)
                            .where(ModelVersion.name == f"tiny_{t}_neuron_nestml")) == 1

        # the same push without the flag: the refusal stands; with it: built again and published
        assert api.post_build([renamed], toolchain=toolchain).json()["status"] == "failed"
        bad = api.post_build([renamed], toolchain=toolchain, breaking="maybe")
        assert "breaking is 'maybe'" in assert_error_shape(bad, 422, "invalid_input")["message"]
        allowed = api.post_build([renamed], toolchain=toolchain, breaking=True)
        assert allowed.status_code == 202 and allowed.json()["id"] == build_id
        api.succeed(build_id, toolchain, [dropped])
        doc = api.client.get(f"/v1/builds/{build_id}").json()
        assert doc["status"] == "succeeded"
        breaks = doc["models"][0]["breaks"]
        assert breaks == {"from_version": 1, "parameters": ["E_L"], "input_ports": ["spikes"]}
        out, err = io.StringIO(), io.StringIO()
        console.print_success(doc, out, err)
        assert "breaks what version 1 has: parameters E_L; input ports spikes" in out.getvalue()

        detail = api.client.get(f"/v1/models/tiny_{t}_neuron_nestml").json()
        changes = detail["versions"][0]["changes"]
        assert changes["breaks"] == {"parameters": ["E_L"], "state": [], "input_ports": ["spikes"]}
        assert not changes["comments_only"]
        text = io.StringIO()
        console.print_model(detail, f"tiny_{t}_neuron_nestml", text)
        assert "breaks: parameters E_L; input ports spikes" in text.getvalue()
        page = api.client.get(f"/models/tiny_{t}_neuron_nestml").text
        assert "breaks:" in page and "<code>E_L</code>" in page


@pytest.mark.parametrize("backend", backend_params())
def test_resolutions_kept_by_the_api_follow_every_publish_and_yank(backend: str, tmp_path: Path) -> None:
    """The API keeps resolutions per generation (service.read_cache): a version published by a worker (another
    connection, as another process's), a yank and an unyank are in the very next answer."""
    import concurrent.futures

    with running_api(backend, tmp_path) as api:
        toolchain = api.register_toolchain()
        t = tag()
        name = f"tiny_{t}_neuron_nestml"
        api.succeed(api.post_build([tiny(t)], toolchain=toolchain).json()["id"], toolchain, [model_for(t)])
        reads = api.server.app.state.reads

        def resolved() -> int:
            answer = api.client.get("/v1/resolve", params={"model": name, "toolchain": toolchain})
            assert answer.status_code == 200, answer.text
            return answer.json()["version"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:  # many at once: one answer made, the rest kept
            assert set(pool.map(lambda _: resolved(), range(40))) == {1}
        # made once: the resolution, and the local token's owner (read at the push's generation, then at the
        # publish's); the rest kept
        assert reads.hits >= 30 and reads.misses <= 3
        for version in (2, 3):
            code = (tiny(t)[0], tiny(t)[1].replace(b"10 ms", f"{10 + version} ms".encode()))
            api.succeed(api.post_build([code], toolchain=toolchain).json()["id"], toolchain, [model_for(t)])
            assert resolved() == version
        assert api.client.post(f"/v1/models/{name}@3/yank", json={"reason": "wrong"}).status_code == 200
        assert resolved() == 2
        assert api.client.post(f"/v1/models/{name}@3/unyank").status_code == 200
        assert resolved() == 3
        assert api.client.get("/v1/resolve", params={"model": f"{name}@2", "toolchain": toolchain}).json()[
            "version"] == 2
        missing = api.client.get("/v1/resolve", params={"model": f"{name}@9", "toolchain": toolchain})
        assert missing.status_code == 404  # errors are answered afresh, never kept
