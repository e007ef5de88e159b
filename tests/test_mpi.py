"""NEST on a cluster: real `mpirun` (Debian's Open MPI), the PyPI wheel (no MPI) and NEST built with MPI
in .venv-mpi (`scripts/setup.sh mpi`). The MPI tests need that environment: `scripts/test.sh` builds it
and sets NESTML_REGISTRY_TEST_MPI_REQUIRED=1, so a missing one fails there; elsewhere they are skipped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
    if not MPI_PYTHON.is_file():
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
print("@@" + json.dumps({"rank": nest.Rank(), "spikes": pairs, "procs": nest.NumProcesses()}))
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
        argv = [*_mpirun(), "-n", str(ranks), str(MPI_PYTHON), str(script), module, "izhikevich_reset_neuron_nestml",
                str(threads)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        docs = [json.loads(line[2:]) for line in proc.stdout.splitlines() if line.startswith("@@")]
        assert len(docs) == ranks and all(d["procs"] == ranks for d in docs)
        return sorted(s for d in docs for s in d["spikes"])

    one = run(1, 2)
    assert len(one) > 50
    assert run(2, 1) == one
