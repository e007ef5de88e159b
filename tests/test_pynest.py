"""PyNEST scripts through the registry: ``nestml_registry.install(...)`` against a real server, real NEST,
each script a fresh process (a fresh NEST kernel)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA
from server_fixtures import ROOT, Server, client_env, free_port, server_fixture

pytestmark = pytest.mark.slow

server = server_fixture("pynest-server")
MODEL = "custom_izh_neuron"

SCRIPT = r"""
import json, sys
import nest
import nestml_registry
from nestml_registry.simulator.errors import SimulatorError

mode, arg = sys.argv[1], sys.argv[2]
nest.set_verbosity("M_ERROR")


def spikes(name):
    cell = nest.Create(name, params={"I_e": 10.0})
    recorder = nest.Create("spike_recorder")
    nest.Connect(cell, recorder)
    nest.Simulate(300.0)
    return [round(float(t), 4) for t in recorder.get("events")["times"]]


out = {}
try:
    if mode == "by-hand":
        nest.Install(arg)
        out["spikes"] = spikes("custom_izh_neuron_nestml")
    elif mode == "install":
        name = nestml_registry.install(arg, lock=sys.argv[3] if len(sys.argv) > 3 else None)
        out["name"] = name
        out["spikes"] = spikes(name)
        assert nestml_registry.install(arg) == name  # installed already: nothing to do
        nest.ResetKernel()
        out["after_reset"] = spikes(nestml_registry.install(arg))
    elif mode == "locked":
        out["spikes"] = spikes(nestml_registry.install(locked=arg))  # what the lock file holds
    elif mode == "create":
        out["name"] = nestml_registry.install(arg)
        out["created"] = len(nest.Create(out["name"], 3))
    elif mode == "clash":
        nest.Install(arg)
        nestml_registry.install("custom_izh_neuron")
    else:
        nestml_registry.install(arg)
except SimulatorError as exc:
    out["error"] = {"code": exc.code, "message": exc.message}
print("@@" + json.dumps(out))
"""


def _script(server: Server, tmp: Path, *args: str, **env: str) -> tuple[dict, str]:
    path = tmp / "script.py"
    path.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=client_env(server.env, PYNEST_QUIET="1", OMP_NUM_THREADS="1", **env))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("@@")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][2:]), proc.stderr


@pytest.fixture(scope="module")
def pulled(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    push = server.cli("push", str(DATA / "custom_izh_neuron.nestml"), "--wait", "--json")
    assert push.returncode == 0, push.stderr[-3000:]
    proc = server.cli("pull", MODEL, "--json", "--cache", str(tmp_path_factory.mktemp("pulled")))
    assert proc.returncode == 0, proc.stderr
    return Path(json.loads(proc.stdout)["path"])


def test_install_loads_the_model_as_nest_install_by_hand_does(server: Server, pulled: Path, tmp_path: Path) -> None:
    by_hand, _ = _script(server, tmp_path, "by-hand", str(pulled.with_suffix("")))
    lock = tmp_path / "script.lock.json"
    ours, stderr = _script(server, tmp_path, "install", f"{MODEL}@1", str(lock))
    assert ours["name"] == "custom_izh_neuron_nestml"
    assert by_hand["spikes"] and ours["spikes"] == by_hand["spikes"] == ours["after_reset"]
    assert "nestml:custom_izh_neuron@1 -> custom_izh_neuron_nestml@1 (module" in stderr
    # the lock file reproduces it with no registry (the module cache has the file)
    offline = f"http://127.0.0.1:{free_port()}"
    again, _ = _script(server, tmp_path, "locked", str(lock), NESTML_REGISTRY_URL=offline)
    assert again.get("spikes") == by_hand["spikes"], again


def test_install_refuses_with_the_runs_typed_errors(server: Server, pulled: Path, tmp_path: Path) -> None:
    clash, _ = _script(server, tmp_path, "clash", str(pulled.with_suffix("")))
    assert clash["error"]["code"] == "name_clash" and "already has a model named" in clash["error"]["message"]
    unknown, _ = _script(server, tmp_path, "error", "custom_izh_neuronn")
    assert unknown["error"]["code"] == "unknown_model" and "did you mean" in unknown["error"]["message"]
    bad, _ = _script(server, tmp_path, "error", "custom izh")
    assert bad["error"]["code"] == "invalid_reference"
    assert server.cli("yank", f"{MODEL}@1", "--reason", "wrong reset").returncode == 0
    try:
        yanked, stderr = _script(server, tmp_path, "install", f"{MODEL}@1")
        assert yanked["name"] == "custom_izh_neuron_nestml" and "which is yanked: wrong reset" in stderr
    finally:
        assert server.cli("unyank", f"{MODEL}@1").returncode == 0


def test_the_client_resolves_for_this_machines_toolchain(server: Server, pulled: Path) -> None:
    from nestml_registry.service.client import RegistryClient

    with RegistryClient(server.url) as client:
        mine = client.toolchain()
        assert client.resolve(MODEL)["toolchain"] == mine == client.resolve_many([MODEL])[0]["toolchain"]
        assert client.resolve(MODEL)["model"] == "custom_izh_neuron_nestml"


def test_publish_from_text_then_install(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A notebook's flow: the tutorial's model text (upgraded for NESTML 9) in a Python string, published,
    then installed in the next cell; a text with an error raises with the error at its line and column."""
    import nestml_registry
    from nestml_registry.service.client.errors import RegistryClientError

    monkeypatch.setenv("NESTML_REGISTRY_URL", server.url)
    monkeypatch.setenv("NESTML_REGISTRY_HOME", str(server.home))
    text = (DATA / "nestml8" / "bmtk_tutorial_izh_neuron.nestml9").read_text().replace(
        "model custom_izh_neuron:", "model notebook_izh_neuron:")
    published = nestml_registry.publish(text, progress=False)
    assert published == ["notebook_izh_neuron_nestml@1"]
    ran, _ = _script(server, tmp_path, "create", published[0])
    assert ran == {"name": "notebook_izh_neuron_nestml", "created": 3}

    broken = text.replace("model notebook_izh_neuron:", "model notebook_broken_neuron:").replace(
        "v' = ", "v' = (", 1)
    with pytest.raises(RegistryClientError) as failed:
        nestml_registry.publish(broken, progress=False)
    assert failed.value.code == "build_failed"
    message = str(failed.value)
    assert "notebook_broken_neuron.nestml:" in message and ": error: " in message and "^" in message
    with pytest.raises(RegistryClientError, match="declares no model"):
        nestml_registry.publish("just some words", progress=False)
    with pytest.raises(RegistryClientError, match="not a bytes"):
        nestml_registry.publish(text.encode(), progress=False)
