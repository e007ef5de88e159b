"""Characterisation, as users meet it: real builds through ``serve`` with a worker, each new neuron version
characterised in NEST by the worker (a leaky integrate-and-fire neuron whose rheobase is known in closed
form, one with no current input, one whose simulation raises); the API document, ``show``, ``characterise``,
the model page and its plots; and the runner's time limit and its checks of what the child writes."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest
from conftest import DATA
from server_fixtures import Server, server_fixture

from nestml_registry.compiler import protocol
from nestml_registry.compiler.characteriser import Characteriser, characterisation

PROBES = DATA / "characterise"
FINISHED = ("succeeded", "failed", "not_applicable")
# (V_th - E_L) * C_m / tau_m of lif_probe_neuron.nestml
LIF_RHEOBASE = 15.0 * 200.0 / 20.0

server = server_fixture("characterise-server")


def _characterisation(server: Server, name: str, version: int = 1, after: str | None = None) -> dict:
    deadline = time.monotonic() + 300
    while True:
        doc = httpx.get(f"{server.url}/v1/models/{name}/versions/{version}/characterisation", timeout=10).json()
        if doc["status"] in FINISHED and (after is None or (doc.get("finished_at") or "") > after):
            return doc
        assert time.monotonic() < deadline, (doc, server.log_text()[-3000:])
        time.sleep(0.3)


@pytest.fixture(scope="module")
def pushed(server: Server) -> dict:
    files = sorted(str(p) for p in PROBES.glob("*.nestml"))
    proc = server.cli("push", *files, "--wait", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_lif_neurons_rheobase_is_found_within_one_percent(server: Server, pushed: dict) -> None:
    doc = _characterisation(server, "lif_probe_neuron")
    assert doc["status"] == "succeeded", doc
    assert doc["injection"] == "port"
    assert doc["protocol"]["version"] == protocol.VERSION
    assert abs(doc["rheobase_pA"] - LIF_RHEOBASE) / LIF_RHEOBASE < 0.01
    fi = doc["fi_curve"]
    assert len(fi) >= 20
    rates = [p["rate_hz"] for p in fi]
    assert rates == sorted(rates), "the f-I curve is monotonic"
    assert all(p["rate_hz"] == 0 for p in fi if p["current_pA"] < LIF_RHEOBASE)
    assert all(p["rate_hz"] > 0 for p in fi if p["current_pA"] > 1.01 * LIF_RHEOBASE)
    kinds = [t["kind"] for t in doc["traces"]]
    assert kinds.count("step") == len(protocol.STEP_FACTORS) + 1 and kinds.count("psp") == 2  # + hyperpolarising
    below, above = doc["traces"][0], doc["traces"][len(protocol.STEP_FACTORS) - 1]
    assert below["spikes_ms"] == [] and above["spikes_ms"], "half the rheobase never fires, twice it does"
    psp = next(t for t in doc["traces"] if t["label"] == "excitatory")
    assert max(psp["V_m"]) > -65.0 > min(next(t for t in doc["traces"] if t["label"] == "inhibitory")["V_m"])


def test_protocol_2_measures_input_resistance_and_time_constant_in_closed_form(server: Server,
                                                                               pushed: dict) -> None:
    """lif_probe_neuron: R = tau_m / C_m = 20 ms / 200 pF = 100 MOhm, and tau = 20 ms, within 2 %."""
    doc = _characterisation(server, "lif_probe_neuron")
    found = doc["features"]
    assert found["input_resistance_MOhm"] == pytest.approx(100.0, rel=0.02), found
    assert found["membrane_tau_ms"] == pytest.approx(20.0, rel=0.02), found
    assert found["sag_ratio"] == pytest.approx(0.0, abs=0.01)
    assert found["isi_cv"] == pytest.approx(0.0, abs=0.01) and found["first_spike_latency_ms"] > 0
    assert found["fi_slope_Hz_per_pA"] > 0 and found["coarsest_dt_ms"] in protocol.DT_STEPS_MS
    assert [r["dt_ms"] for r in doc["dt_sensitivity"]["runs"]] == list(protocol.DT_STEPS_MS)
    assert any(t["current_pA"] < 0 for t in doc["traces"] if t["kind"] == "step"), "the hyperpolarising step"
    page = httpx.get(f"{server.url}/models/lif_probe_neuron_nestml/1", timeout=10).text
    assert 'id="features"' in page and "steady-state change of the membrane potential" in page
    proc = server.cli("show", "lif_probe_neuron")
    assert "input_resistance_MOhm 100," in proc.stdout and "membrane_tau_ms 20" in proc.stdout, proc.stdout


def test_a_model_with_no_membrane_potential_says_why(server: Server, pushed: dict) -> None:
    doc = _characterisation(server, "unitless_probe_neuron")
    assert doc["status"] == "succeeded" and doc["rheobase_pA"] > 0 and doc["membrane"] is None
    assert doc["traces"] == [] and "no V_m and no state variable in volts" in doc["membrane_reason"]
    page = httpx.get(f"{server.url}/models/unitless_probe_neuron_nestml/1", timeout=10).text
    assert 'id="membrane-reason"' in page


def test_a_model_with_no_current_input_is_not_characterised(server: Server, pushed: dict) -> None:
    doc = _characterisation(server, "deaf_probe_neuron")
    assert doc["status"] == "not_applicable"
    assert "no current input" in doc["reason"]


def test_a_model_whose_simulation_raises_fails_and_keeps_its_module(server: Server, pushed: dict,
                                                                    tmp_path: Path) -> None:
    doc = _characterisation(server, "raising_probe_neuron")
    assert doc["status"] == "failed"
    assert "TypeMismatch" in doc["error"] and "I_e" in doc["error"]
    proc = server.cli("pull", "raising_probe_neuron", "--json", "--cache", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert Path(json.loads(proc.stdout)["path"]).is_file()


def test_show_prints_the_rheobase_and_characterise_queues_it_again(server: Server, pushed: dict) -> None:
    first = _characterisation(server, "lif_probe_neuron")
    proc = server.cli("show", "lif_probe_neuron")
    assert proc.returncode == 0, proc.stderr
    assert f"rheobase: {first['rheobase_pA']:.4g} pA" in proc.stdout
    assert "f-I: 0 pA: 0 Hz" in proc.stdout
    proc = server.cli("characterise", "lif_probe_neuron@1")
    assert proc.returncode == 0, proc.stderr
    assert "lif_probe_neuron_nestml@1: queued on" in proc.stdout
    again = _characterisation(server, "lif_probe_neuron", after=first["finished_at"])
    assert again["rheobase_pA"] == first["rheobase_pA"]
    proc = server.cli("characterise", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    assert {(r["model"], r["status"]) for r in json.loads(proc.stdout)} >= {("lif_probe_neuron_nestml", "queued")}
    for bad in (["characterise"], ["characterise", "lif_probe_neuron", "--all"], ["characterise", "nope_neuron"]):
        proc = server.cli(*bad)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_the_model_page_shows_it_with_plots(server: Server, pushed: dict) -> None:
    doc = _characterisation(server, "lif_probe_neuron")
    page = httpx.get(f"{server.url}/models/lif_probe_neuron_nestml/1", timeout=10).text
    assert 'id="characterisation"' in page and f"{doc['rheobase_pA']:.4g} pA" in page
    svg = httpx.get(f"{server.url}/models/lif_probe_neuron_nestml/1/characterisation.svg", timeout=60)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.lstrip().startswith("<?xml") and "<script" not in svg.text
    assert "script-src" not in svg.headers["content-security-policy"]
    missing = httpx.get(f"{server.url}/models/deaf_probe_neuron_nestml/1/characterisation.svg", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_the_runner_stops_a_characterisation_at_its_time_limit(server: Server, pushed: dict, compiler,
                                                               tmp_path: Path) -> None:
    proc = server.cli("pull", "lif_probe_neuron", "--json", "--cache", str(tmp_path / "m"))
    module = Path(json.loads(proc.stdout)["path"])
    result = Characteriser(compiler, timeout=0.5).characterise(module, "lif_probe_neuron_nestml", tmp_path / "log")
    assert result["status"] == "failed" and "time limit of 0.5 s" in result["error"]
    result = Characteriser(compiler, timeout=120).characterise(module, "no_such_model", tmp_path / "log")
    assert result["status"] == "failed" and "no_such_model is not a neuron model" in result["error"]


@pytest.mark.parametrize("forged", [
    {"status": "succeeded", "rheobase_pA": "many"},
    {"status": "succeeded", "rheobase_pA": 1.0, "fi_curve": [{"current_pA": 1.0}]},
    {"status": "succeeded", "rheobase_pA": 1.0, "traces": [{"kind": "script", "V_m": []}]},
    {"status": "exploded"},
])
def test_what_the_child_writes_is_checked(forged: dict) -> None:
    with pytest.raises((TypeError, ValueError, KeyError)):
        characterisation(forged)


def test_a_result_is_normalised_and_bounded() -> None:
    out = characterisation({"status": "succeeded", "injection": "port", "rheobase_pA": 10,
                            "fi_curve": [{"current_pA": 0, "rate_hz": 0}],
                            "traces": [{"kind": "psp", "label": "<b>x</b>" * 50, "t0_ms": 0.1, "dt_ms": 0.1,
                                        "V_m": [1e300, -70.0], "spikes_ms": []}]})
    assert out["protocol"] == protocol.describe()
    assert out["traces"][0]["V_m"] == [1e6, -70.0] and len(out["traces"][0]["label"]) == 100
    assert characterisation({"status": "not_applicable", "reason": "r"})["fi_curve"] == []


@pytest.fixture(scope="module")
def izhikevich(server: Server, models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """NESTML's izhikevich_neuron as version 1, and as version 2 with one parameter changed (a: 0.02 -> 0.1)."""
    shipped = models_dir / "neurons" / "izhikevich_neuron.nestml"
    proc = server.cli("push", str(shipped), "--wait")
    assert proc.returncode == 0, proc.stderr
    text = shipped.read_text()
    changed = re.sub(r"(\n\s+a real = )0\.02", r"\g<1>0.1", text)
    assert changed != text
    path = tmp_path_factory.mktemp("v2") / "izhikevich_neuron.nestml"
    path.write_text(changed)
    proc = server.cli("push", str(path), "--wait")
    assert proc.returncode == 0, proc.stderr


def test_check_agrees_with_the_builtin_and_not_with_a_changed_parameter(server: Server, izhikevich: None) -> None:
    proc = server.cli("check", "izhikevich_neuron@1", "--against", "nest:izhikevich")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "agree" in proc.stdout.splitlines()[-1]
    proc = server.cli("check", "izhikevich_neuron@2", "--against", "nest:izhikevich")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DIFFER" in proc.stdout and " NO" in proc.stdout
    proc = server.cli("check", "izhikevich_neuron@1", "--against", "izhikevich_neuron@2", "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["processes"] == 2 and not report["agree"]
    assert any(r["spikes"][0] != r["spikes"][1] for r in report["stimuli"])


def test_check_maps_parameters_by_name(server: Server, pushed: dict, izhikevich: None) -> None:
    proc = server.cli("check", "izhikevich_neuron@1", "--against", "nest:izhikevich", "--json")
    report = json.loads(proc.stdout)
    assert report["agree"] and report["processes"] == 1 and report["unmapped"] == ["V_m_init"]


@pytest.mark.parametrize(("args", "says"), [
    (["--against", "nest:izhikevic"], "NEST has no built-in model 'izhikevic'; did you mean izhikevich"),
    (["--against", "nest:izhikevich", "--map", "aa=a"], "no parameter or state variable 'aa' (closest: a"),
    (["--against", "nest:izhikevich", "--map", "a=aa"], "izhikevich has no parameter 'aa'"),
    (["--against", "nest:izhikevich", "--map", "a"], "write NESTML=NEST"),
])
def test_check_refuses_bad_input_with_the_closest_names(server: Server, izhikevich: None, args: list[str],
                                                       says: str) -> None:
    proc = server.cli("check", "izhikevich_neuron@1", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr
    proc = server.cli("check", "no_such_neuron", "--against", "nest:izhikevich")
    assert proc.returncode == 2 and "push its .nestml source first" in proc.stderr


@pytest.fixture(scope="module")
def izhikevich_v(server: Server, models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """NESTML's izhikevich_neuron with its state named as BMTK's tutorial names it: ``v`` and ``u``."""
    text = (models_dir / "neurons" / "izhikevich_neuron.nestml").read_text()
    text = re.sub(r"\bU_m\b", "u", re.sub(r"\bV_m\b", "v", text)).replace("model izhikevich_neuron:",
                                                                           "model izhikevich_v_neuron:")
    path = tmp_path_factory.mktemp("v") / "izhikevich_v_neuron.nestml"
    path.write_text(text)
    proc = server.cli("push", str(path), "--wait")
    assert proc.returncode == 0, proc.stderr
    return "izhikevich_v_neuron"


def test_check_names_what_it_carried_over_with_both_values(server: Server, izhikevich: None) -> None:
    proc = server.cli("check", "izhikevich_neuron@2", "--against", "nest:izhikevich", "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["carried"] == [{"name": "a", "value": 0.1, "default": 0.02}], report["carried"]
    assert report["membrane"] == ["V_m", "V_m"] and report["aligned"] == {"V_m": "V_m", "U_m": "U_m"}
    proc = server.cli("check", "izhikevich_neuron@2", "--against", "nest:izhikevich")
    assert "other than its defaults: a 0.1 (default 0.02)" in proc.stdout, proc.stdout
    if any(r["max_spike_time_diff_ms"] is None for r in report["stimuli"]):
        assert "'-' under MAX DT: the spike counts differ" in proc.stdout, proc.stdout


def test_a_model_whose_membrane_is_v_gets_its_step_and_psp_traces(server: Server, izhikevich_v: str) -> None:
    doc = _characterisation(server, izhikevich_v)
    assert doc["membrane"] == "v" and doc["status"] == "succeeded", doc
    kinds = {t["kind"] for t in doc["traces"]}
    assert kinds == {"step", "psp"} and all(t["V_m"] for t in doc["traces"])
    page = httpx.get(f"{server.url}/models/{izhikevich_v}_nestml/1", timeout=10).text
    assert 'Membrane potential recorded: <code>v</code>' in page


def test_check_finds_the_membrane_variable_and_maps_state(server: Server, izhikevich_v: str) -> None:
    """``v`` (in mV) is the membrane potential compared with the built-in's V_m, and starts it; ``u`` has no
    state of its name on the built-in until --map u=U_m maps it."""
    proc = server.cli("check", izhikevich_v, "--against", "nest:izhikevich", "--json")
    report = json.loads(proc.stdout)
    assert report["membrane"] == ["v", "V_m"], report
    assert report["aligned"] == {"v": "V_m"} and report["not_aligned"] == ["u"], report
    assert all(r["max_vm_diff_mV"] is not None for r in report["stimuli"]), report["stimuli"]
    proc = server.cli("check", izhikevich_v, "--against", "nest:izhikevich", "--map", "v=V_m", "--map", "u=U_m")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "initial state from the model: u -> U_m, v -> V_m" in proc.stdout, proc.stdout
    assert "not aligned" not in proc.stdout and "'-' under MAX DV_m" not in proc.stdout
    proc = server.cli("check", izhikevich_v, "--against", "nest:izhikevich", "--map", "w=V_m")
    assert proc.returncode == 2 and "no parameter or state variable 'w'" in proc.stderr, proc.stderr


def test_each_version_is_checked_against_its_nest_counterpart_and_the_verdict_kept(
        server: Server, pushed: dict, izhikevich: None) -> None:
    """izhikevich_neuron is NESTML's reimplementation of nest:izhikevich (compiler.counterparts): the worker
    checks each version after characterising it; version 2 (a: 0.02 -> 0.1) differs, and says so."""
    first = _characterisation(server, "izhikevich_neuron", 1)["check"]
    assert first["verdict"] == "agrees" and first["summary"] == "agrees with nest:izhikevich", first
    assert first["protocol"] == protocol.VERSION and first["stimuli"] and "test_nest_neuron" in first["asserted"]
    second = _characterisation(server, "izhikevich_neuron", 2)["check"]
    assert second["verdict"] == "differs" and second["summary"].startswith("differs from nest:izhikevich: spike")
    assert second["carried"] == [{"name": "a", "value": 0.1, "default": 0.02}]
    assert _characterisation(server, "lif_probe_neuron")["check"]["summary"] == "no NEST counterpart"

    def listed(verdict: str) -> set[str]:
        answer = httpx.get(f"{server.url}/v1/models", params={"verdict": verdict}, timeout=10)
        assert answer.status_code == 200, answer.text
        return {m["name"] for m in answer.json()}

    assert "izhikevich_neuron_nestml" in listed("differs") and "izhikevich_neuron_nestml" not in listed("agrees")
    assert "lif_probe_neuron_nestml" in listed("none") and "lif_probe_neuron_nestml" not in listed("differs")
    bad = httpx.get(f"{server.url}/v1/models", params={"verdict": "maybe"}, timeout=10)
    assert bad.status_code == 422 and "agrees" in bad.text
    page = httpx.get(f"{server.url}/models/izhikevich_neuron_nestml/1", timeout=10).text
    assert 'id="verdict">agrees with nest:izhikevich<' in page and 'id="check-table"' in page
    page = httpx.get(f"{server.url}/", params={"verdict": "differs"}, timeout=10).text
    assert "izhikevich_neuron_nestml" in page and "lif_probe_neuron_nestml" not in page
    proc = server.cli("show", "izhikevich_neuron@2")
    assert "against NEST: differs from nest:izhikevich: spike" in proc.stdout, proc.stdout
    proc = server.cli("models", "--verdict", "agrees")
    assert proc.returncode == 0 and "izhikevich_neuron_nestml" not in proc.stdout
