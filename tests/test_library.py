"""NESTML's shipped library in a registry, as a lab meets it: ``library import`` (the plan read from the
installed NESTML, then real builds, characterisations and checks by a worker of ``serve``), idempotent; and
the synapse checks against NEST's built-ins (stdp_synapse by its weights and STDP window, tsodyks_synapse by
its efficacies against frequency), a changed STDP parameter differing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from server_fixtures import Server, server_fixture

from nestml_registry.compiler import library

server = server_fixture("library-server")
SOME = "iaf_psc_exp_neuron,stdp_synapse,tsodyks_synapse"


@pytest.fixture(scope="module")
def imported(server: Server) -> dict:
    proc = server.cli("library", "import", "--only", SOME, "--json", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    return json.loads(proc.stdout)


def test_the_plan_is_every_model_the_installed_nestml_ships(server: Server, models_dir: Path) -> None:
    proc = server.cli("library", "import", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    planned = json.loads(proc.stdout)
    shipped = sorted(p.stem for p in models_dir.glob("*/*.nestml"))
    assert sorted(b["model"] for b in planned) == shipped and len(shipped) > 30
    stdp = next(b for b in planned if b["model"] == "stdp_synapse")
    assert stdp["pair"] == {"neuron": library.PARTNER, "synapse": "stdp_synapse"}
    assert next(b for b in planned if b["model"] == "tsodyks_synapse")["pair"] is None
    proc = server.cli("library", "import", "--only", "stdp_synapse,nope_neuron")
    assert proc.returncode == 2 and "no shipped model nope_neuron" in proc.stderr and "stdp_synapse" in proc.stderr


def test_import_publishes_builds_and_checks_and_a_second_changes_nothing(server: Server, imported: dict) -> None:
    assert [b["status"] for b in imported["builds"]] == ["succeeded"] * 3, imported["builds"]
    verdicts = {v["model"]: v for v in imported["verdicts"]}
    assert verdicts["iaf_psc_exp_neuron_nestml"]["summary"] == "agrees with nest:iaf_psc_exp", verdicts
    assert verdicts["iaf_psc_exp_neuron_nestml"]["rheobase_pA"] > 0
    stdp = "stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml"
    assert verdicts[stdp]["summary"] == "agrees with nest:stdp_synapse", verdicts[stdp]
    assert verdicts["tsodyks_synapse_nestml"]["summary"] == "agrees with nest:tsodyks_synapse"
    models = httpx.get(f"{server.url}/v1/models", timeout=10).json()
    plain = next(m for m in models if m["name"] == "iaf_psc_exp_neuron_nestml")
    assert plain["versions"] == 1, "the plain neuron a pair's module registers is the neuron built alone"
    found = httpx.get(f"{server.url}/v1/models", params={"q": "current-based integrate-and-fire"}, timeout=10).json()
    assert "iaf_psc_exp_neuron_nestml" in [m["name"] for m in found], found
    found = httpx.get(f"{server.url}/v1/models", params={"q": "short-term plasticity"}, timeout=10).json()
    assert [m["name"] for m in found] == ["tsodyks_synapse_nestml"], found
    detail = httpx.get(f"{server.url}/v1/models/iaf_psc_exp_neuron_nestml", timeout=10).json()
    assert detail["versions"][0]["metadata"]["license"] == "GPL-2.0-or-later"
    assert "short-term plasticity" in httpx.get(f"{server.url}/v1/models/tsodyks_synapse_nestml",
                                                timeout=10).json()["versions"][0]["metadata"]["keywords"]
    again = server.cli("library", "import", "--only", SOME, "--json", timeout=300)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert [b["build"] for b in second["builds"]] == [b["build"] for b in imported["builds"]]
    assert all(b["already"] for b in second["builds"])
    assert httpx.get(f"{server.url}/v1/models", timeout=10).json() == models
    proc = server.cli("library", "import", "--only", "iaf_psc_exp_neuron")
    assert proc.returncode == 0 and "[1/1] iaf_psc_exp_neuron: already published" in proc.stdout, proc.stdout
    assert "agrees with nest:iaf_psc_exp" in proc.stdout


def test_a_synapse_page_shows_its_verdict_and_stdp_window(server: Server, imported: dict) -> None:
    name = "stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml"
    doc = httpx.get(f"{server.url}/v1/models/{name}/versions/1/characterisation", timeout=10).json()
    window = doc["check"]["curves"][0]
    assert window["title"] == "STDP window" and len(window["x"]) == 21
    assert window["model"] == pytest.approx(window["reference"], abs=1e-9)
    before = [w for d, w in zip(window["x"], window["model"], strict=True) if d < 0]
    after = [w for d, w in zip(window["x"], window["model"], strict=True) if d > 0]
    assert max(before) < 0 < min(after), "pre after post depresses, post after pre potentiates"
    page = httpx.get(f"{server.url}/models/{name}/1", timeout=10).text
    assert 'id="verdict">agrees with nest:stdp_synapse<' in page and 'id="check-plots"' in page
    svg = httpx.get(f"{server.url}/models/{name}/1/check.svg", timeout=60)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "<script" not in svg.text
    stp = httpx.get(f"{server.url}/v1/models/tsodyks_synapse_nestml/versions/1/characterisation", timeout=10).json()
    assert [c["title"] for c in stp["check"]["curves"]] == ["paired-pulse ratio", "steady state"]
    assert all(r < 1 for r in stp["check"]["curves"][0]["model"]), "depressing at every rate"
    neuron = httpx.get(f"{server.url}/models/iaf_psc_exp_neuron_nestml/1", timeout=10)
    assert 'id="equations-math"' in neuron.text and "<math" in neuron.text
    assert 'id="metadata"' in neuron.text and 'id="licence">GPL-2.0-or-later<' in neuron.text
    missing = httpx.get(f"{server.url}/models/iaf_psc_exp_neuron_nestml/1/check.svg", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_a_changed_stdp_parameter_differs_and_check_says_where(server: Server, imported: dict, models_dir: Path,
                                                               tmp_path: Path) -> None:
    text = (models_dir / "synapses" / "stdp_synapse.nestml").read_text()
    changed = re.sub(r"(\n\s+lambda real =\s+)0?\.01\b", r"\g<1>0.02", text)
    assert changed != text
    (tmp_path / "stdp_synapse.nestml").write_text(changed)
    proc = server.cli("push", str(models_dir / "neurons" / "iaf_psc_exp_neuron.nestml"),
                      str(tmp_path / "stdp_synapse.nestml"), "--pair", "iaf_psc_exp_neuron:stdp_synapse", "--wait")
    assert proc.returncode == 0, proc.stderr
    name = "stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml"
    proc = server.cli("check", f"{name}@1", "--against", "nest:stdp_synapse")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "STDP window (21 pairings" in proc.stdout and proc.stdout.rstrip().splitlines()[-1].startswith("agree")
    proc = server.cli("check", f"{name}@2", "--against", "nest:stdp_synapse", "--json")
    assert proc.returncode == 0, "the built-in takes the model's lambda, so they agree: " + proc.stdout
    assert {"name": "lambda", "value": 0.02, "default": 0.01} in json.loads(proc.stdout)["carried"]
    proc = server.cli("check", f"{name}@2", "--against", "nest:stdp_synapse", "--map", "lambda=", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert not report["agree"] and all(not r["agree"] for r in report["stimuli"])
    proc = server.cli("check", f"{name}@1", "--against", "nest:iaf_psc_exp")
    assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr, proc.stderr


def test_a_folder_without_readable_models_is_refused_in_one_line(server: Server, tmp_path: Path) -> None:
    (tmp_path / "neurons").mkdir()
    (tmp_path / "synapses").mkdir()
    (tmp_path / "synapses" / "x_synapse.nestml").write_bytes(b"\xff\xfe\x00not text")
    for folder, says in ((tmp_path, "cannot be read as NESTML text"), (tmp_path / "nope", "holds no NESTML models")):
        proc = server.cli("library", "import", "--from", str(folder), "--dry-run")
        assert proc.returncode == 2 and says in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
