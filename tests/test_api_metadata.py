"""Metadata a version's owner gives (``POST /v1/models/NAME@V/metadata``, ``nestml-registry describe``):
shown first, searched, replaced by the next, refused with a reason when malformed or not the owner's, and
changing nothing of the model."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import Api, assert_error_shape, model_for, running_api, tag, tiny
from registry_fixtures import backend_params


def _published(api: Api) -> str:
    """A tiny neuron published by this machine's local token; its NEST name."""
    toolchain, t = api.register_toolchain(), tag()
    api.succeed(api.post_build([tiny(t)], toolchain=toolchain).json()["id"], toolchain, [model_for(t)])
    return f"tiny_{t}_neuron_nestml"


@pytest.mark.parametrize("backend", backend_params())
def test_an_owner_describes_a_version_and_it_is_shown_and_searched(backend: str, tmp_path: Path) -> None:
    with running_api(backend, tmp_path) as api:
        name = _published(api)
        before = api.client.get(f"/v1/models/{name}").json()
        given = {"authors": ["Ann  Author"], "license": "MIT", "dois": ["10.1152/jn.00686.2005"],
                 "keywords": ["rate model"], "references": ["Author A (2026). A tiny neuron."]}
        answer = api.client.post(f"/v1/models/{name}@1/metadata", json=given)
        assert answer.status_code == 200, answer.text
        shown = answer.json()["versions"][0]["metadata"]
        assert shown["authors"] == ["Ann Author"] and shown["license"] == "MIT" and "rate model" in shown["keywords"]
        assert shown["dois"] == ["10.1152/jn.00686.2005"]
        found = api.client.get("/v1/models", params={"q": "rate model"}).json()
        assert [m["name"] for m in found] == [name]
        assert api.client.get("/v1/models", params={"q": "ann author"}).json()[0]["name"] == name
        page = api.client.get(f"/models/{name}/1").text
        assert 'id="licence">MIT<' in page and "https://doi.org/10.1152" in page
        after = api.client.get(f"/v1/models/{name}").json()["versions"][0]
        assert {k: v for k, v in after.items() if k != "metadata"} == \
            {k: v for k, v in before["versions"][0].items() if k != "metadata"}, "nothing else changes"
        cleared = api.client.post(f"/v1/models/{name}@1/metadata", json={}).json()["versions"][0]["metadata"]
        assert cleared["license"] is None and "rate model" not in cleared["keywords"]


@pytest.mark.parametrize("backend", backend_params())
def test_malformed_or_foreign_metadata_is_refused_and_changes_nothing(backend: str, tmp_path: Path) -> None:
    with running_api(backend, tmp_path) as api:
        name = _published(api)
        before = api.client.get(f"/v1/models/{name}").json()
        for body, says in (({"dois": ["https://doi.org/10.1152/x"]}, "a DOI is 10.NNNN/suffix"),
                           ({"license": "GPL v2; rm -rf"}, "not an SPDX identifier"),
                           ({"keywords": ["<script>"]}, "letters, digits, spaces and dashes"),
                           ({"authors": ["a\u202eb"]}, "without control characters")):
            answer = api.client.post(f"/v1/models/{name}@1/metadata", json=body)
            assert_error_shape(answer, 422, "invalid_input")
            assert says in answer.json()["error"]["message"], answer.text
        assert_error_shape(api.client.post(f"/v1/models/{name}/metadata", json={}), 422)  # a version is named
        assert_error_shape(api.client.post(f"/v1/models/{name}@1/metadata", json={"colour": "red"}), 422)
        assert_error_shape(api.client.post(f"/v1/models/{name}@9/metadata", json={}), 404)
        _, other = api.token("publisher", f"someone-{tag()}")
        foreign = api.client.post(f"/v1/models/{name}@1/metadata", json={"license": "MIT"},
                                  headers={"Authorization": f"Bearer {other}"})
        assert_error_shape(foreign, 403)
        assert api.client.get(f"/v1/models/{name}").json() == before
