"""The CLI's registry commands against a real server (``nestml-registry serve`` with one worker):
push, build, models, show, errors; one server for the module, one real compile at most."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from server_fixtures import (
    BROKEN_TEXT,
    PUBLISHED_FILE,
    PUBLISHED_MODEL,
    PUBLISHED_TEXT,
    Server,
    free_port,
    server_fixture,
)

NAME = f"{PUBLISHED_MODEL}_nestml"
DIAGNOSTIC_RE = re.compile(r"^tiny_broken\.nestml:\d+:\d+: error: .+", re.MULTILINE)


server = server_fixture("cli-server")


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sources")
    (d / PUBLISHED_FILE).write_text(PUBLISHED_TEXT)
    (d / "tiny_broken.nestml").write_text(BROKEN_TEXT)
    (d / "empty.nestml").write_text("")
    return d


@pytest.fixture(scope="module")
def published(server: Server, sources: Path) -> dict:
    """The model pushed and built (plain output, no terminal: one line per stage on stderr)."""
    proc = server.cli("push", str(sources / PUBLISHED_FILE), "--wait")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    module, sha, build_id = re.match(r"^(\w+_module), sha256 ([0-9a-f]{64}) \(build (\d+)\)$", lines[0]).groups()
    assert module == f"{NAME}_module"
    assert lines[1].split() == ["neuron", NAME, "version", "1"]
    stages = re.findall(rf"^\[\s*[\d.]+ s\] build {build_id}: (.+)$", proc.stderr, re.MULTILINE)
    assert stages[0] in ("queued", "starting", "generating code", "done") and stages[-1] == "done"
    assert len(stages) == len(set(stages))  # a line per change, not per poll
    return {"id": int(build_id), "sha256": sha, "module": module}


def one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nestml-registry: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_push_again_answers_from_the_registry(server: Server, sources: Path, published: dict) -> None:
    proc = server.cli("push", str(sources / PUBLISHED_FILE))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{published['module']}, sha256 {published['sha256']} (build {published['id']})")
    proc = server.cli("push", str(sources / PUBLISHED_FILE), "--json")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    assert (doc["id"], doc["status"], doc["module"]["sha256"]) == (published["id"], "succeeded", published["sha256"])
    assert doc["models"] == [{"name": NAME, "kind": "neuron", "version": 1, "breaks": {}}]
    assert proc.stderr == ""


def test_build_command_shows_document_and_log(server: Server, published: dict) -> None:
    proc = server.cli("build", str(published["id"]), "--json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["status"] == "succeeded"
    proc = server.cli("build", str(published["id"]), "--log")
    assert proc.returncode == 0 and proc.stdout.strip()
    proc = server.cli("build", "999999")
    assert proc.returncode == 2
    assert "999999" in one_error_line(proc) and "nestml-registry builds" in one_error_line(proc)


def test_models_table_and_json(server: Server, published: dict) -> None:
    proc = server.cli("models")
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.strip().splitlines()
    assert header.split()[:4] == ["NAME", "KIND", "VERSION", "VERSIONS"]
    assert [NAME, "neuron", "1", "1"] in [r.split()[:4] for r in rows]
    proc = server.cli("models", "--json")
    models = json.loads(proc.stdout)
    assert {"name": NAME, "kind": "neuron", "version": 1, "versions": 1}.items() <= \
        next(m for m in models if m["name"] == NAME).items()
    found = json.loads(server.cli("models", "--search", "TAU_M leaky", "--kind", "neuron", "--json").stdout)
    assert NAME in [m["name"] for m in found]  # a parameter name and a word of the comment, any case
    proc = server.cli("models", "--search", "tau_m", "--kind", "synapse")
    assert proc.returncode == 0 and NAME not in proc.stdout and "no model matches" in proc.stderr


def test_builds_lists_recent_builds(server: Server, published: dict) -> None:
    proc = server.cli("builds", "--status", "succeeded")
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.strip().splitlines()
    assert header.split()[:3] == ["ID", "STATUS", "MODULE"]
    assert [str(published["id"]), "succeeded"] in [r.split()[:2] for r in rows]
    listed = json.loads(server.cli("builds", "--submitter", "local", "--limit", "5", "--json").stdout)
    assert published["id"] in [b["id"] for b in listed] and len(listed) <= 5
    assert server.cli("builds", "--status", "queued", "--submitter", "nobody").stderr.startswith("no builds match")
    bad = server.cli("builds", "--limit", "0")
    assert bad.returncode == 2 and "--limit 0" in bad.stderr


def test_show_parameters_state_and_ports(server: Server, published: dict) -> None:
    proc = server.cli("show", PUBLISHED_MODEL)  # without the suffix, as in the source
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"{NAME}  neuron version 1")
    params = out.split("parameters:")[1].split("state:")[0]
    # NEST's default with its unit: NEST keeps E_L in mV
    assert re.search(r"^\s+E_L\s+mV\s+-70 mV\s+-70 mV\s+resting potential$", params, re.MULTILINE), params
    assert re.search(r"^\s+tau_m\s+ms\s+10 ms", params, re.MULTILINE)
    assert re.search(r"^\s+V_m\s+mV", out.split("state:")[1], re.MULTILINE)
    assert re.search(r"^\s+spikes\s+spike", out.split("input ports:")[1], re.MULTILINE)
    doc = json.loads(server.cli("show", f"{NAME}@1", "--json").stdout)
    assert doc["name"] == NAME and [v["version"] for v in doc["versions"]] == [1]
    e_l = next(p for p in doc["versions"][0]["parameters"] if p["name"] == "E_L")
    assert (e_l["unit"], e_l["default"]) == ("mV", "-70 mV")
    proc = server.cli("show", "no_such_neuron")
    assert proc.returncode == 2 and "no model 'no_such_neuron'" in one_error_line(proc)


def test_push_of_a_broken_model_exits_1_with_compiler_style_diagnostics(server: Server, sources: Path) -> None:
    proc = server.cli("push", str(sources / "tiny_broken.nestml"), "--wait")
    assert proc.returncode == 1, proc.stderr
    assert DIAGNOSTIC_RE.search(proc.stderr), proc.stderr
    assert re.search(r"^build \d+ failed: 1 error", proc.stderr, re.MULTILINE)
    assert proc.stdout == ""
    again = server.cli("push", str(sources / "tiny_broken.nestml"))  # the same build, failed before: said so
    assert again.returncode == 1 and "failed to build before" in again.stderr and "--retry" in again.stderr
    proc = server.cli("push", str(sources / "tiny_broken.nestml"), "--wait", "--json")  # the same build, failed
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["status"] == "failed" and doc["module"] is None
    assert doc["diagnostics"][0]["file"] == "tiny_broken.nestml" and doc["diagnostics"][0]["severity"] == "error"


@pytest.mark.parametrize(("args", "message"), [
    (["push", "missing.nestml"], "no such file"),
    (["push", "{dir}/empty.nestml"], "file is empty"),
    (["push", "{dir}/" + PUBLISHED_FILE, "--pair", "nope"], "invalid pair"),
    (["push", "{dir}/" + PUBLISHED_FILE, "--module", "bad-name"], "end in 'module'"),
    (["push", "{dir}/" + PUBLISHED_FILE, "--toolchain", "no-such-toolchain"], "no compile worker serves"),
    (["pull", "bad@@ref", "--toolchain", "x"], "invalid model reference"),
])
def test_bad_input_exits_2_with_one_line(server: Server, sources: Path, args: list[str], message: str) -> None:
    args = [a.format(dir=sources) for a in args]
    proc = server.cli(*args)
    assert proc.returncode == 2
    assert message in one_error_line(proc)
    proc = server.cli(*args, "--json")
    assert proc.returncode == 2
    assert message in json.loads(proc.stdout)["error"]["message"]


def test_unreachable_registry_names_the_url(server: Server, sources: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    proc = server.cli("models", NESTML_REGISTRY_URL=dead)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert dead in line and "NESTML_REGISTRY_URL" in line and "nestml-registry serve" in line
    proc = server.cli("push", str(sources / PUBLISHED_FILE), "--json", NESTML_REGISTRY_URL=dead)
    assert proc.returncode == 2 and json.loads(proc.stdout)["error"]["code"] == "unreachable"
    # --server (before or after the command) wins over the environment
    assert server.cli("--server", server.url, "models", NESTML_REGISTRY_URL=dead).returncode == 0
    assert server.cli("models", "--server", server.url, NESTML_REGISTRY_URL=dead).returncode == 0


def test_serve_on_a_port_in_use_exits_2(server: Server, tmp_path: Path) -> None:
    port = server.url.rsplit(":", 1)[1]
    proc = server.cli("serve", "--port", port, "--workers", "0", NESTML_REGISTRY_HOME=str(tmp_path / "home"))
    assert proc.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in one_error_line(proc)
