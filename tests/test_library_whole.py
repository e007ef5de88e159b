"""The whole library, as a lab's first day meets it: ``library import`` of every model the installed NESTML
ships into a fresh registry (two compile workers), each neuron characterised and every model with a NEST
counterpart checked against it, then the same import again, which changes nothing. The longest test of the
suite (about 8 minutes on 2 cores when nothing is cached); benchmarks/library_import.py times it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_fixtures import Server, start_server

from nestml_registry.compiler.counterparts import counterpart_of
from nestml_registry.compiler.library import KNOWN_LIMITS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, registry_home: Path) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("whole-library"), registry_home, workers=2)
    yield srv
    srv.stop()


def test_every_shipped_model_is_published_characterised_and_checked(server: Server, models_dir: Path) -> None:
    proc = server.cli("library", "import", "--json", timeout=3000)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    shipped = sorted(p.stem for p in models_dir.glob("*/*.nestml"))
    assert sorted(b["model"] for b in report["builds"]) == shipped, "the plan is the installed NESTML's"
    unbuilt = {b["model"] for b in report["builds"] if b["status"] != "succeeded"}
    assert unbuilt <= set(KNOWN_LIMITS), [b for b in report["builds"] if b["model"] in unbuilt]
    verdicts = {v["model"]: v for v in report["verdicts"]}
    for build in report["builds"]:
        if build["status"] != "succeeded":
            continue
        own = next(m for m in build["models"] if m["kind"] == build["kind"])
        verdict = verdicts[own["name"]]
        counterpart = counterpart_of(build["model"], build["kind"])
        if build["kind"] == "neuron":
            assert verdict["status"] in ("succeeded", "not_applicable"), verdict
        if counterpart is None:
            assert verdict["verdict"] is None or verdict["verdict"] == "none", verdict
            continue
        assert verdict["verdict"] in ("agrees", "differs"), verdict
        assert f"nest:{counterpart.builtin}" in verdict["summary"]
        if verdict["verdict"] == "differs":
            assert verdict["explanation"], f"{own['name']} differs from its built-in with no reason given"
    models = httpx.get(f"{server.url}/v1/models", timeout=30).json()
    assert len(models) >= len(shipped) - len(KNOWN_LIMITS)
    hh = _features(server, "hh_psc_alpha_neuron_nestml")
    assert hh["spike_amplitude_mV"] > 50 and 0.1 < hh["spike_half_width_ms"] < 3 and hh["ahp_depth_mV"] > 0, hh
    iaf = _features(server, "iaf_psc_alpha_neuron_nestml")
    assert iaf["spike_amplitude_mV"] is None and iaf["membrane_tau_ms"] == pytest.approx(10.0, rel=0.02), iaf
    again = server.cli("library", "import", "--json", timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(again.stdout)
    assert all(b["already"] for b in second["builds"] if b["status"] == "succeeded")
    assert [b["build"] for b in second["builds"]] == [b["build"] for b in report["builds"]]
    assert httpx.get(f"{server.url}/v1/models", timeout=30).json() == models


def _features(server: Server, name: str) -> dict:
    return httpx.get(f"{server.url}/v1/models/{name}/versions/1/characterisation", timeout=30).json()["features"]
