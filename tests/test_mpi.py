"""NEST on a cluster: real `mpirun` (Debian's Open MPI), the PyPI wheel (no MPI) and NEST built with MPI
in .venv-mpi (`scripts/setup.sh mpi`). The MPI tests need that environment: `scripts/test.sh` builds it
and sets NESTML_REGISTRY_TEST_MPI_REQUIRED=1, so a missing one fails there; elsewhere they are skipped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bmtk_networks import Network, build_stdp_pair_network, read_spikes
from server_fixtures import Server, client_env, free_port, start_server

ROOT = Path(__file__).resolve().parent.parent
MPI_PYTHON = ROOT / ".venv-mpi" / "bin" / "python"
pytestmark = pytest.mark.slow


def _mpirun() -> list[str]:
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        pytest.fail("mpirun is not installed: run `bash scripts/setup.sh mpi` (Debian's openmpi-bin)")
    return [mpirun, "--oversubscribe", "--bind-to", "none"]


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, PYNEST_QUIET="1", OMP_NUM_THREADS="1", NESTML_REGISTRY_HOME=str(tmp / "home"),
               NESTML_REGISTRY_CACHE=str(tmp / "cache"))
    if os.geteuid() == 0:  # Open MPI refuses root unless told
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return env


def _needs_mpi_nest() -> None:
    if not MPI_PYTHON.with_name("nestml-registry").is_file():  # (scripts/nest-mpi.sh installs it last)
        if os.environ.get("NESTML_REGISTRY_TEST_MPI_REQUIRED") == "1":
            pytest.fail(f"{MPI_PYTHON} is missing: run `bash scripts/setup.sh mpi`")
        pytest.skip("no NEST with MPI here (.venv-mpi): `bash scripts/setup.sh mpi` builds it")


def test_the_wheel_under_mpirun_is_refused_with_what_to_install(tmp_path: Path) -> None:
    """NEST itself stops every rank with status 127; the registry's run says why and what to do (status 2),
    before it imports NEST."""
    env = _env(tmp_path)
    plain = subprocess.run([*_mpirun(), "-n", "2", sys.executable, "-c", "import nest"], capture_output=True,
                           text=True, timeout=300, env=env)
    assert plain.returncode == 127 and "MPI launcher" in plain.stdout + plain.stderr
    config = tmp_path / "config.json"
    config.write_text("{}")
    cli = str(Path(sys.executable).with_name("nestml-registry"))
    refused = subprocess.run([*_mpirun(), "-n", "2", cli, "run", str(config), "--server", "http://127.0.0.1:9"],
                             capture_output=True, text=True, timeout=300, env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "one of 2 ranks started by Open MPI's mpirun" in refused.stderr
    assert "built without MPI" in refused.stderr and "scripts/setup.sh mpi" in refused.stderr
    assert "Traceback" not in refused.stderr


def _detect(python: Path | str, tmp: Path) -> dict:
    code = ("import json, sys; from nestml_registry.compiler.toolchain import detect; "
            "print(json.dumps(detect().to_dict()))")
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=600, env=_env(tmp))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_nest_with_mpi_is_a_toolchain_of_its_own(tmp_path: Path) -> None:
    _needs_mpi_nest()
    mpi, wheel = _detect(MPI_PYTHON, tmp_path / "mpi"), _detect(sys.executable, tmp_path / "wheel")
    assert mpi["features"] == ["+mpi"] and wheel["features"] == []
    assert mpi["nest_version"] == wheel["nest_version"]
    assert "-mpi-" in mpi["id"] and mpi["id"] != wheel["id"] and mpi["fingerprint"] != wheel["fingerprint"]


_SPIKES = r"""
import json, sys
import nest
module, model, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
nest.ResetKernel()
nest.set(local_num_threads=threads, rng_seed=11, resolution=0.1)
nest.Install(module)
cells = nest.Create(model, 20, params={"I_e": 4.0})
noise = nest.Create("poisson_generator", params={"rate": 800.0})
recorder = nest.Create("spike_recorder")
nest.Connect(noise, cells, syn_spec={"weight": 2.0})
nest.Connect(cells, cells, {"rule": "fixed_indegree", "indegree": 4}, {"weight": 0.5, "delay": 1.5})
nest.Connect(cells, recorder)
nest.Simulate(300.0)
ev = recorder.get("events")
pairs = sorted(zip([int(s) for s in ev["senders"]], [round(float(t), 4) for t in ev["times"]]))
with open(f"{sys.argv[4]}.{nest.Rank()}", "w") as out:  # a file per rank: mpirun interleaves the ranks' stdout
    json.dump({"rank": nest.Rank(), "spikes": pairs, "procs": nest.NumProcesses()}, out)
"""


def test_a_module_for_the_mpi_toolchain_gives_the_same_spikes_on_any_number_of_ranks(tmp_path: Path) -> None:
    """Built by .venv-mpi's compiler (its own toolchain), the module loads on every rank; 2 ranks x 1 thread
    give exactly the spikes of 1 rank x 2 threads (the same virtual processes), as NEST promises."""
    _needs_mpi_nest()
    env = _env(tmp_path)
    out = tmp_path / "modules"
    compiled = subprocess.run([str(MPI_PYTHON.with_name("nestml-registry")), "compile",
                               str(ROOT / "examples" / "izhikevich_reset_neuron.nestml"), "--out", str(out), "--json"],
                              capture_output=True, text=True, timeout=900, env=env)
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    doc = json.loads(compiled.stdout)
    module = str(Path(doc["module"]["path"]).with_suffix(""))
    script = tmp_path / "spikes.py"
    script.write_text(_SPIKES)

    def run(ranks: int, threads: int) -> list:
        results = tmp_path / f"spikes-{ranks}x{threads}"
        argv = [*_mpirun(), "-n", str(ranks), str(MPI_PYTHON), str(script), module, "izhikevich_reset_neuron_nestml",
                str(threads), str(results)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        docs = [json.loads(Path(f"{results}.{rank}").read_text()) for rank in range(ranks)]
        assert len(docs) == ranks and all(d["procs"] == ranks for d in docs)
        return sorted(s for d in docs for s in d["spikes"])

    one = run(1, 2)
    assert len(one) > 50
    assert run(2, 1) == one


# -- BMTK networks through the registry, on several ranks -------------------------------------------------------

PAIR_NEURON = "iaf_psc_exp_neuron_nestml__with_stdp_synapse_nestml"
PAIR_SYNAPSE = "stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml"


@pytest.fixture(scope="module")
def mpi_registry(tmp_path_factory: pytest.TempPathFactory, registry_home: Path,
                 models_dir: Path) -> Iterator[Server]:
    """A registry whose embedded worker serves the wheel's toolchain, the STDP pair pushed for it, and a
    compile worker started from .venv-mpi on the same database and store (it serves the MPI toolchain)."""
    _needs_mpi_nest()
    directory = tmp_path_factory.mktemp("mpi-registry")
    server = start_server(directory, registry_home)
    pushed = server.cli("push", str(models_dir / "neurons" / "iaf_psc_exp_neuron.nestml"),
                        str(models_dir / "synapses" / "stdp_synapse.nestml"), "--pair",
                        "iaf_psc_exp_neuron:stdp_synapse", "--wait", "--json")
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    with open(directory / "mpi-worker.log", "w") as log:
        worker = subprocess.Popen([str(MPI_PYTHON.with_name("nestml-registry")), "-v", "worker"], stdout=log,
                                  stderr=subprocess.STDOUT, cwd=ROOT,
                                  env=client_env(server.env, NESTML_REGISTRY_CACHE=str(directory / "mpi-cache")))
        try:
            _wait_for_mpi_toolchain(server, worker, directory / "mpi-worker.log")
            yield server
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=120)
            except subprocess.TimeoutExpired:
                worker.kill()
            server.stop()


def _wait_for_mpi_toolchain(server: Server, worker: subprocess.Popen, log: Path) -> None:
    """Until the .venv-mpi worker has registered its toolchain (it detects NEST first); then both toolchains
    are on the registry's list and in its health document."""
    deadline = time.monotonic() + 300
    while True:
        ids = [t["id"] for t in httpx.get(f"{server.url}/v1/toolchains", timeout=10).json()]
        if any("-mpi-" in i for i in ids):
            break
        assert worker.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the MPI worker did not register:\n" + log.read_text()[-3000:]
        time.sleep(0.5)
    assert len(ids) == 2 and any("-mpi-" not in i for i in ids)
    time.sleep(1.1)  # (a health document is answered again for a second)
    health = httpx.get(f"{server.url}/healthz", timeout=10).json()
    assert {w["toolchain"] for w in health["workers"]} == set(ids)


def _counter(server: Server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")
               or line.startswith(name + "{"))


def _mpi_run(server: Server, net: Network, ranks: int, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*_mpirun(), "-n", str(ranks), str(MPI_PYTHON.with_name("nestml-registry")), "run",
                           str(net.config), *args], capture_output=True, text=True, timeout=1200, cwd=net.dir,
                          env=client_env({**server.env, **_env(net.dir)}, NESTML_REGISTRY_HOME=str(server.home),
                                         **env))


def _pair_network(directory: Path, threads: int) -> Network:
    net = build_stdp_pair_network(directory, f"nestml:{PAIR_NEURON}", f"nestml:{PAIR_SYNAPSE}",
                                  {"lambda": 0.01, "alpha": 1.0}, n=12, tstop=500.0)
    config = json.loads(net.config.read_text())
    config["run"]["n_thread"] = threads
    net.config.write_text(json.dumps(config))
    return net


def test_bmtk_on_several_ranks_resolves_once_and_gives_the_spikes_of_one(mpi_registry: Server,
                                                                           tmp_path: Path) -> None:
    server = mpi_registry
    cache = tmp_path / "node-cache"  # one node: its module cache
    # the pair is built for the wheel only: the MPI toolchain gets its own build, on demand, from .venv-mpi's worker
    first = _pair_network(tmp_path / "one-rank", threads=2)
    one = _mpi_run(server, first, 1, "--cache", str(cache))
    assert one.returncode == 0, one.stderr[-4000:]
    assert "is not built for nest3.10.0-mpi-" in one.stderr and "the registry builds it" in one.stderr
    spikes = read_spikes(first.output_dir)
    assert len(spikes) > 50
    locked = json.loads((first.output_dir / "nestml-registry.lock.json").read_text())
    assert "-mpi-" in locked["toolchain"]["id"]
    wheel = httpx.get(f"{server.url}/v1/resolve", params={"model": PAIR_SYNAPSE, "toolchain": _wheel_id(tmp_path)},
                      timeout=10).json()
    assert wheel["module"]["sha256"] not in locked["modules"]  # never the wheel's module

    for ranks in (2, 3):
        net = _pair_network(tmp_path / f"ranks-{ranks}", threads=1)
        if ranks == 3:  # the same number of virtual processes as the one-rank run: 3 x 1 against 1 x 3
            single = _pair_network(tmp_path / "one-rank-3", threads=3)
            assert _mpi_run(server, single, 1, "--cache", str(cache)).returncode == 0
            expected = read_spikes(single.output_dir)
        else:
            expected = spikes
        fresh = tmp_path / f"cache-{ranks}"
        resolves, downloads = _counter(server, "nestml_registry_resolve_requests_total"), _counter(
            server, "nestml_registry_artifact_downloads_total")
        proc = _mpi_run(server, net, ranks, "--cache", str(fresh))
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert read_spikes(net.output_dir) == expected
        references = len(locked["references"])
        assert _counter(server, "nestml_registry_resolve_requests_total") - resolves == references  # not x ranks
        assert _counter(server, "nestml_registry_artifact_downloads_total") - downloads == 1  # one node, one module
        said = proc.stderr.count("nestml-registry: nestml:")  # (mpirun may interleave a line with another rank's)
        assert 1 <= said <= references  # rank 0 alone says what resolved, not every rank
        assert (net.output_dir / "nestml-registry.lock.json").is_file()


def _wheel_id(tmp: Path) -> str:
    return _detect(sys.executable, tmp / "wheel-id")["id"]


def test_prefetch_then_a_locked_run_needs_no_registry(mpi_registry: Server, tmp_path: Path) -> None:
    server = mpi_registry
    net = _pair_network(tmp_path / "net", threads=1)
    lock_file = tmp_path / "job.lock.json"
    cache = tmp_path / "node-cache"
    mpi_cli = str(MPI_PYTHON.with_name("nestml-registry"))
    env = client_env({**server.env, **_env(tmp_path)}, NESTML_REGISTRY_HOME=str(server.home))
    staged = subprocess.run([mpi_cli, "prefetch", str(net.config), "--lock", str(lock_file), "--cache", str(cache),
                             "--json"], capture_output=True, text=True, timeout=1200, env=env, cwd=net.dir)
    assert staged.returncode == 0, staged.stderr[-3000:]
    doc = json.loads(staged.stdout)
    assert doc["lock"] == str(lock_file) and doc["modules"] and all(Path(m["path"]).is_file() for m in doc["modules"])
    again = subprocess.run([mpi_cli, "prefetch", "--locked", str(lock_file), "--cache", str(tmp_path / "other"),
                            "--json"], capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["modules"], again.stderr[-3000:]
    offline = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proc = _mpi_run(server, net, 2, "--locked", str(lock_file), "--cache", str(cache), NESTML_REGISTRY_URL=offline)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert len(read_spikes(net.output_dir)) > 50
    neither = subprocess.run([mpi_cli, "prefetch", str(net.config), "--locked", str(lock_file)],
                             capture_output=True, text=True, timeout=600, env=env)
    assert neither.returncode == 2 and "not both" in neither.stderr
