"""BMTK PointNet runs through the registry: real networks (bmtk's NetworkBuilder), a real server, real NEST.

The four examples of BMTK's tutorial "Extending PointNet Networks and Simulation with External and
Customized Models" and a NESTML STDP pair, each run with ``nestml-registry run`` (or a BMTK script that
calls ``use_registry()``) and compared with a plain BMTK run that loads the same module file through
``components.nest_modules``: the spikes must be identical.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from bmtk_networks import (
    Network,
    build_izhikevich_network,
    build_stdp_pair_network,
    read_jittered_d,
    read_spikes,
    run_plain_bmtk,
    write_cell_model_override,
)
from conftest import DATA
from server_fixtures import CLI, ROOT, Server, client_env, free_port, server_fixture

from nestml_registry.compiler.result import BuildResult

pytestmark = pytest.mark.slow

IZH = "custom_izh_neuron_nestml"
PAIR_NEURON = "iaf_psc_exp_neuron_nestml__with_stdp_synapse_nestml"
PAIR_SYNAPSE = "stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml"
FILLED = {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0}


server = server_fixture("sim-server")


def push(server: Server, *args: str) -> dict:
    proc = server.cli("push", *args, "--wait", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def modules(server: Server, models_dir: Path, stdp_pair_build: BuildResult, tmp_path_factory) -> dict[str, Path]:
    """The custom Izhikevich neuron and the STDP pair, pushed; their module files as the registry serves them
    (what the plain BMTK runs load through nest_modules)."""
    push(server, str(DATA / "custom_izh_neuron.nestml"))
    push(server, str(models_dir / "neurons" / "iaf_psc_exp_neuron.nestml"),
         str(models_dir / "synapses" / "stdp_synapse.nestml"), "--pair", "iaf_psc_exp_neuron:stdp_synapse")
    cache = tmp_path_factory.mktemp("pulled")
    out = {}
    for model in (IZH, PAIR_SYNAPSE):
        proc = server.cli("pull", model, "--json", "--cache", str(cache))
        assert proc.returncode == 0, proc.stderr
        out[model] = Path(json.loads(proc.stdout)["path"])
    return out


def run_registry(server: Server, net: Network, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``nestml-registry run CONFIG`` as a simulation job runs it (a fresh process, a fresh NEST)."""
    return subprocess.run([*CLI, "run", str(net.config), *args],
                          capture_output=True, text=True, timeout=600, cwd=net.dir,
                          env=client_env(server.env, OMP_NUM_THREADS="1", **env))


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    return proc


def plain_spikes(net: Network, **kw) -> list[tuple[int, float]]:
    ok(run_plain_bmtk(net.config, **kw))
    return read_spikes(net.output_dir)


def registry_spikes(server: Server, net: Network, *args: str, **env: str) -> list[tuple[int, float]]:
    ok(run_registry(server, net, *args, **env))
    return read_spikes(net.output_dir)


def error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("nestml-registry: error:")]
    assert len(lines) == 1, proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    return lines[0]


# -- the tutorial's four examples ----------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [{}, FILLED], ids=["empty-json", "filled-json"])
def test_builtin_izhikevich_runs_as_in_plain_bmtk(server: Server, tmp_path: Path, params: dict) -> None:
    plain = plain_spikes(build_izhikevich_network(tmp_path / "plain", dynamics_params=params))
    ours = registry_spikes(server, build_izhikevich_network(tmp_path / "ours", dynamics_params=params))
    assert plain and ours == plain


@pytest.mark.parametrize("reference", [IZH, "custom_izh_neuron", "custom_izh_neuron@1"])
def test_nestml_neuron_from_the_registry_spikes_like_nest_modules(server: Server, modules: dict, tmp_path: Path,
                                                                   reference: str) -> None:
    plain = plain_spikes(build_izhikevich_network(tmp_path / "plain", f"nestml:{IZH}", FILLED,
                                                  nest_modules=modules[IZH]))
    net = build_izhikevich_network(tmp_path / "ours", f"nestml:{reference}", FILLED)
    proc = ok(run_registry(server, net, "--json"))
    assert plain and read_spikes(net.output_dir) == plain
    doc = json.loads(proc.stdout)  # --json: one document on stdout, NEST's and BMTK's output went to stderr
    assert doc["models"] == [{"reference": f"nestml:{reference}", "model": IZH, "version": 1, "kind": "neuron",
                              "module": modules[IZH].stem, "sha256": modules[IZH].parent.name}]
    lock = json.loads((net.output_dir / "nestml-registry.lock.json").read_text())
    assert lock["references"][reference]["module"] == modules[IZH].parent.name
    assert lock["registry"] == server.url


@pytest.mark.parametrize("directive", ["nest:izhikevich", "nestml:custom_izh_neuron", "nestml"])
def test_cell_model_overrides_keep_working(server: Server, modules: dict, tmp_path: Path, directive: str) -> None:
    """Example 3: a @cell_model that multiplies d by a per-cell jitter, on the built-in and on the NESTML model,
    with a specific directive and with the generic 'nestml' one; a script that calls use_registry()."""
    builtin = directive.startswith("nest:")
    ours_template = "nest:izhikevich" if builtin else "nestml:custom_izh_neuron"
    plain_template = "nest:izhikevich" if builtin else f"nestml:{IZH}"
    plain_directive = directive if builtin or directive == "nestml" else f"nestml:{IZH}"
    plain_net = build_izhikevich_network(tmp_path / "plain", plain_template, FILLED, jitter=True,
                                         nest_modules=None if builtin else modules[IZH])
    plain = ok(run_plain_bmtk(plain_net.config, script=write_cell_model_override(tmp_path / "plain", plain_directive)))
    net = build_izhikevich_network(tmp_path / "ours", ours_template, FILLED, jitter=True)
    ours = ok(run_plain_bmtk(net.config, script=write_cell_model_override(tmp_path / "ours", directive),
                             args=["--registry"], env=client_env(server.env)))
    jittered = read_jittered_d(ours.stdout)
    assert jittered and jittered == read_jittered_d(plain.stdout)
    assert all(abs(d - 8.0 * j) < 1e-9 for rec in jittered for d, j in zip(rec["d"], rec["jitter"], strict=True))
    assert jittered[0]["template"] == ("izhikevich" if builtin else IZH)  # the name NEST registered
    assert read_spikes(net.output_dir) == read_spikes(plain_net.output_dir)


def test_tsodyks2_edges_and_threads(server: Server, modules: dict, tmp_path: Path) -> None:
    """Example 4 (recurrent edges switched to tsodyks2_synapse with its JSON) on the NESTML neuron, two threads."""
    params = {"U": 0.5, "u": 0.5, "tau_rec": 800.0, "tau_fac": 0.0}
    plain = plain_spikes(build_izhikevich_network(tmp_path / "plain", f"nestml:{IZH}", FILLED,
                                                  nest_modules=[modules[IZH]], recurrent_synapse="tsodyks2_synapse",
                                                  recurrent_params=params, n_thread=2))
    ours = registry_spikes(server, build_izhikevich_network(tmp_path / "ours", "nestml:custom_izh_neuron", FILLED,
                                                            recurrent_synapse="tsodyks2_synapse",
                                                            recurrent_params=params, n_thread=2))
    assert plain and ours == plain


def test_stdp_pair_on_edges(server: Server, modules: dict, tmp_path: Path) -> None:
    """A NESTML neuron-synapse pair: nestml: on nodes and edges (BMTK would cut 'nestml:' on edges to 'l:')."""
    params = {"lambda": 0.01, "alpha": 1.0}
    plain = plain_spikes(build_stdp_pair_network(tmp_path / "plain", f"nestml:{PAIR_NEURON}", PAIR_SYNAPSE, params,
                                                 nest_modules=modules[PAIR_SYNAPSE]))
    net = build_stdp_pair_network(tmp_path / "ours", f"nestml:{PAIR_NEURON}", f"nestml:{PAIR_SYNAPSE}", params)
    assert plain and registry_spikes(server, net) == plain


def test_locked_run_needs_no_registry(server: Server, modules: dict, tmp_path: Path) -> None:
    net = build_izhikevich_network(tmp_path / "net", "nestml:custom_izh_neuron", FILLED)
    first = registry_spikes(server, net)
    lock = tmp_path / "run.lock.json"
    shutil.copy(net.output_dir / "nestml-registry.lock.json", lock)
    offline = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert registry_spikes(server, net, "--locked", str(lock), NESTML_REGISTRY_URL=offline) == first
    # without --locked, the last run's lock in the output folder stands in for the registry
    proc = ok(run_registry(server, net, NESTML_REGISTRY_URL=offline))
    assert proc.stderr.count("the registry did not answer; using what the last run locked") == 1, proc.stderr
    assert "registry unreachable" not in proc.stderr  # said once, not again as a warning
    assert read_spikes(net.output_dir) == first
    # with no lock anywhere, the registry is needed, and the message says so
    shutil.rmtree(net.output_dir)
    proc = run_registry(server, net, NESTML_REGISTRY_URL=offline)
    assert proc.returncode == 2 and "did not answer" in error_line(proc)
    # an empty module cache and no registry: the locked module cannot be had
    proc = run_registry(server, net, "--locked", str(lock), NESTML_REGISTRY_URL=offline,
                        NESTML_REGISTRY_MODULE_CACHE=str(tmp_path / "empty-cache"))
    assert proc.returncode == 2 and "did not answer" in error_line(proc)
    # a lock made on another toolchain: its modules are never handed to this NEST
    doc = json.loads(lock.read_text())
    doc["toolchain"]["id"] = "nest3.10.0-linux-x86_64-gcc99.0.0-abi1-000000000000"
    lock.write_text(json.dumps(doc))
    proc = run_registry(server, net, "--locked", str(lock))
    assert proc.returncode == 2 and "was made on toolchain nest3.10.0-linux-x86_64-gcc99" in error_line(proc)
    # a module cache that cannot be a folder
    (tmp_path / "a-file").write_text("")
    proc = run_registry(server, net, "--cache", str(tmp_path / "a-file"))
    assert proc.returncode == 2 and "cannot use the module cache" in error_line(proc)


# -- refused before NEST is touched --------------------------------------------------------------------------------

def test_unknown_model_version_and_parameter(server: Server, modules: dict, tmp_path: Path) -> None:
    net = build_izhikevich_network(tmp_path / "a", "nestml:custom_izh_neuronn", FILLED)
    proc = run_registry(server, net)
    assert proc.returncode == 2 and f"did you mean {IZH}" in error_line(proc)
    assert "net_node_types.csv" in error_line(proc)

    net = build_izhikevich_network(tmp_path / "b", "nestml:custom_izh_neuron@7", FILLED)
    proc = run_registry(server, net, "--json")
    assert proc.returncode == 2 and "has no version 7: it has versions 1" in error_line(proc)
    assert json.loads(proc.stdout)["error"]["code"] == "unknown_model"

    net = build_izhikevich_network(tmp_path / "c", "nestml:custom_izh_neuron", {**FILLED, "V_thr": 30.0})
    proc = run_registry(server, net)
    assert proc.returncode == 2 and "sets 'V_thr'" in error_line(proc) and "did you mean 'V_th'" in error_line(proc)
    assert not (net.output_dir / "spikes.csv").exists()


def test_paired_synapse_onto_another_neuron_is_refused(server: Server, modules: dict, tmp_path: Path) -> None:
    net = build_stdp_pair_network(tmp_path / "net", f"nestml:{PAIR_NEURON}", f"nestml:{PAIR_SYNAPSE}",
                                  wrong_target_template="nest:iaf_psc_exp")
    proc = run_registry(server, net)
    line = error_line(proc)
    assert proc.returncode == 2 and f"partner neuron is {PAIR_NEURON}" in line and "nest:iaf_psc_exp" in line


def _folder(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def test_a_name_nest_already_has_is_refused_before_anything_is_touched(server: Server, modules: dict,
                                                                      tmp_path: Path) -> None:
    # the module loaded through nest_modules too: NEST would already have the name
    net = build_izhikevich_network(tmp_path / "a", "nestml:custom_izh_neuron", FILLED, nest_modules=modules[IZH])
    net.output_dir.mkdir(parents=True, exist_ok=True)
    (net.output_dir / "spikes.h5").write_bytes(b"the last run's spikes")
    before = _folder(net.output_dir)
    proc = run_registry(server, net)
    assert proc.returncode == 2 and f"NEST already has a model named '{IZH}'" in error_line(proc)
    assert _folder(net.output_dir) == before  # byte for byte, and no lock file


def test_an_edge_model_nest_does_not_have_is_refused_with_the_close_names(server: Server, modules: dict,
                                                                          tmp_path: Path) -> None:
    """The tutorial's own typo: tsodysk2_synapse on the recurrent edges."""
    net = build_izhikevich_network(tmp_path / "a", "nestml:custom_izh_neuron", FILLED,
                                   recurrent_synapse="tsodysk2_synapse")
    net.output_dir.mkdir(parents=True, exist_ok=True)
    (net.output_dir / "spikes.h5").write_bytes(b"the last run's spikes")
    before = _folder(net.output_dir)
    proc = run_registry(server, net)
    line = error_line(proc)
    assert proc.returncode == 2 and "'tsodysk2_synapse' is no model NEST has" in line, proc.stderr[-2000:]
    assert "did you mean 'tsodyks2_synapse'" in line
    assert _folder(net.output_dir) == before


def test_nest_connect_errors_reach_the_user(server: Server, modules: dict, tmp_path: Path) -> None:
    """BMTK 1.2.0 on NEST 3.10 replaces a failing nest.Connect's error with an AttributeError about nest.kernel."""
    net = build_izhikevich_network(tmp_path / "net", "nestml:custom_izh_neuron", FILLED, dt=4.0)  # delay 1.5 < dt
    proc = run_registry(server, net)
    line = error_line(proc)
    assert proc.returncode == 1 and "BadDelay" in line and "AttributeError" not in line


def test_a_model_not_built_for_this_toolchain_is_built_on_demand(server: Server, modules: dict, registry_home: Path,
                                                                 tmp_path: Path) -> None:
    """A machine whose toolchain differs (here: other C++ flags) asks the registry to build the model for it,
    and follows the build; with --no-build it is told what to do instead."""
    flags = {"NESTML_REGISTRY_CXXFLAGS": "-O1"}
    net = build_izhikevich_network(tmp_path / "net", "nestml:custom_izh_neuron", FILLED)
    proc = run_registry(server, net, **flags)
    assert proc.returncode == 2 and "no compile worker of the registry serves it" in error_line(proc)

    worker = subprocess.Popen([*CLI, "-v", "worker"], cwd=ROOT,
                              env=client_env(server.env, **flags), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while len(httpx.get(f"{server.url}/v1/toolchains", timeout=5).json()) < 2:  # the new worker registers
            assert worker.poll() is None and time.monotonic() < deadline, "the -O1 worker did not register"
            time.sleep(0.2)
        proc = run_registry(server, net, "--no-build", **flags)
        assert proc.returncode == 2 and "run without --no-build" in error_line(proc)
        proc = ok(run_registry(server, net, **flags))
        assert "the registry builds it" in proc.stderr and "succeeded" in proc.stderr
        lock = json.loads((net.output_dir / "nestml-registry.lock.json").read_text())
        assert lock["toolchain"]["id"] != json.loads(server.cli("pull", IZH, "--json").stdout)["toolchain"]
    finally:
        worker.terminate()
        worker.wait(timeout=300)
    assert read_spikes(net.output_dir)


# -- hooks by every spelling, refusals that leave the output folder alone, drift ---------------------------------

@pytest.mark.parametrize(("template", "directive"), [
    ("nestml:custom_izh_neuron", f"nestml:{IZH}"),
    (f"nestml:{IZH}", "nestml:custom_izh_neuron"),
    ("nestml:custom_izh_neuron@1", f"nestml:{IZH}"),
    ("nestml:custom_izh_neuron", "nestml:custom_izh_neuron@1"),
])
def test_hooks_are_found_by_every_spelling_of_the_model(server: Server, modules: dict, tmp_path: Path,
                                                         template: str, directive: str) -> None:
    """Example 3 as `nestml-registry run CONFIG --hooks FILE.py`: the hook runs whichever way the node type and the
    directive spell the model."""
    net = build_izhikevich_network(tmp_path / "net", template, FILLED, jitter=True)
    hooks = write_cell_model_override(tmp_path / "hooks", directive)
    proc = ok(run_registry(server, net, "--hooks", str(hooks)))
    jittered = read_jittered_d(proc.stdout)
    assert jittered and all(rec["template"] == IZH for rec in jittered)
    assert all(abs(d - 8.0 * j) < 1e-9 for rec in jittered for d, j in zip(rec["d"], rec["jitter"], strict=True))
    assert "is never called" not in proc.stderr
    assert f"nestml:{template.removeprefix('nestml:')} -> {IZH}@1 (module" in proc.stderr  # what it resolved to


def test_a_hook_for_a_model_the_network_does_not_use_is_warned_about(server: Server, modules: dict,
                                                                      tmp_path: Path) -> None:
    net = build_izhikevich_network(tmp_path / "net", "nestml:custom_izh_neuron", FILLED, jitter=True)
    hooks = write_cell_model_override(tmp_path / "hooks", "nestml:custom_izhi_neuron")
    proc = ok(run_registry(server, net, "--hooks", str(hooks)))
    assert not read_jittered_d(proc.stdout)
    assert ("warning: @cell_model(directive='nestml:custom_izhi_neuron') is never called: no node type of this "
            f"network uses that model (its nestml: neurons: {IZH})") in proc.stderr
    bad = tmp_path / "broken_hooks.py"
    bad.write_text("import no_such_module_here\n")
    proc = run_registry(server, net, "--hooks", str(bad))
    assert proc.returncode == 2 and "importing it failed: ModuleNotFoundError" in error_line(proc)


@pytest.mark.parametrize("how", ["cli", "use_registry"])
def test_a_refused_run_leaves_the_output_folder_as_it_was(server: Server, modules: dict, tmp_path: Path,
                                                         how: str) -> None:
    net = build_izhikevich_network(tmp_path / "net", "nestml:custom_izh_neuron", {**FILLED, "V_thr": 30.0})
    net.output_dir.mkdir(parents=True, exist_ok=True)
    (net.output_dir / "spikes.csv").write_text("the last run's spikes\n")
    before = sorted(p.name for p in net.output_dir.iterdir())
    if how == "cli":
        proc = run_registry(server, net)
        assert proc.returncode == 2 and "sets 'V_thr'" in error_line(proc)
    else:  # the tutorial's own script: Config.from_json, build_env, PointNetwork.from_config
        script = write_cell_model_override(tmp_path / "script", "nestml")
        proc = run_plain_bmtk(net.config, script=script, args=["--registry"], env=client_env(server.env))
        assert proc.returncode != 0 and "sets 'V_thr'" in proc.stderr
    assert sorted(p.name for p in net.output_dir.iterdir()) == before  # no lock file for a run that never ran
    assert (net.output_dir / "spikes.csv").read_text() == "the last run's spikes\n"


def test_a_new_version_is_said_to_differ_from_the_last_run(server: Server, modules: dict, tmp_path: Path) -> None:
    """Unpinned references follow the newest version: the run says what changed since the last run in the same
    output folder, and how to repeat that run."""
    tiny = (DATA / "tiny_neuron.nestml").read_text().replace("tiny_neuron", "drifting_neuron")
    src = tmp_path / "drifting_neuron.nestml"
    src.write_text(tiny)
    push(server, str(src))
    net = build_izhikevich_network(tmp_path / "net", "nestml:drifting_neuron", {})
    first = ok(run_registry(server, net))
    assert "nestml:drifting_neuron -> drifting_neuron_nestml@1 (module drifting_neuron_nestml_module, sha256 " \
        in first.stderr
    assert "differs from the last run" not in first.stderr
    src.write_text(tiny.replace("I_e pA = 0 pA", "I_e pA = 400 pA"))
    push(server, str(src))
    second = ok(run_registry(server, net))
    lock = net.output_dir / "nestml-registry.lock.json"
    kept = net.output_dir / "nestml-registry.lock.previous.json"
    assert ("nestml:drifting_neuron differs from the last run in this output folder: was drifting_neuron_nestml@1, "
            f"now drifting_neuron_nestml@2; results may differ. The last run's lock file is kept as {kept}. To "
            f"repeat the last run: nestml-registry run CONFIG --locked {kept}, or pin the reference as "
            "nestml:drifting_neuron_nestml@1") in second.stderr
    assert json.loads(lock.read_text())["references"]["drifting_neuron"]["version"] == 2
    assert json.loads(kept.read_text())["references"]["drifting_neuron"]["version"] == 1  # what the advice names
    spikes_v2 = read_spikes(net.output_dir)
    again = ok(run_registry(server, net, "--locked", str(kept)))  # the last run, repeated
    assert "drifting_neuron_nestml@1" in again.stderr and read_spikes(net.output_dir) != spikes_v2
