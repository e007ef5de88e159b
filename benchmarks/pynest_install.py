"""What ``nestml_registry.install`` and ``nestml_registry.pynn.use_registry`` cost against doing it by hand.

    .venv/bin/python benchmarks/pynest_install.py [--rounds 5]

Starts ``nestml-registry serve --workers 1`` on a free port with a fresh home, pushes the tutorial's custom
Izhikevich neuron and pulls its module. Then, alternating in each round, times whole Python processes of

- by hand:  ``import nest; nest.Install("/abs/path/module")`` (the module pulled before)
- install:  ``import nest, nestml_registry; nestml_registry.install("custom_izh_neuron")`` (warm module cache)

and, for PyNN 0.13 with one NESTML cell type registered before ``sim.setup()``:

- PyNN's own: ``sim.setup()`` runs NESTML and the C++ build, every time (into a folder of its own, with a
  working nest-config: PyNN installs into NEST's prefix, which the PyPI wheel does not have, and the
  wheel's nest-config names the folder the wheel was built in)
- registry:   ``use_registry()`` first: ``sim.setup()`` finds the identical build and installs its module

(the time of ``sim.setup()`` itself, which the script measures) and prints the medians and the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bmtk_run import CLI, MODEL, push_and_pull, start_server, timed  # noqa: E402


def setup_seconds(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """How long the script's ``sim.setup()`` took (it prints it after ``@@``)."""
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("@@")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{proc.stderr[-3000:]}")
    return float(lines[-1][2:])

BY_HAND = "import sys, nest; nest.Install(sys.argv[1]); nest.Create('custom_izh_neuron_nestml')"
INSTALL = ("import nest, nestml_registry; "
           "nest.Create(nestml_registry.install('custom_izh_neuron', progress=False))")
PYNN = r"""
import sys
import pyNN.nest as sim
if sys.argv[1] == "registry":
    from nestml_registry.pynn import use_registry
    use_registry(progress=False)
else:  # PyNN's own path, installing into argv[3] (the wheel has no NEST prefix; LD_LIBRARY_PATH names it),
    # with a working nest-config (argv[4]: the wheel's own names the folder it was built in)
    import pynestml.frontend.pynestml_frontend as frontend
    generate = frontend.generate_nest_target
    def into_folder(**kw):
        kw["install_path"] = sys.argv[3]
        kw["codegen_opts"] = {**(kw.get("codegen_opts") or {}), "nest_path": sys.argv[4]}
        return generate(**kw)
    frontend.generate_nest_target = into_folder
import time
celltype = sim.nestml.nestml_cell_type("custom_izh_neuron", open(sys.argv[2]).read())
start = time.perf_counter()
sim.setup()
print(f"@@{time.perf_counter() - start}")
sim.Population(1, celltype())
"""
OWN, OURS = "PyNN's own", "PyNN + registry"


def working_nest_config(cache: Path) -> str:
    """A folder with a nest-config that works for the wheel (the registry's compiler makes one)."""
    from nestml_registry.compiler.toolchain import detect, nest_config_prefix

    return str(nest_config_prefix(detect(cache), cache))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip-pynn", action="store_true", help="only the PyNEST figures")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nmlinstall-"))
    server, _url, env = start_server(work / "home")
    times: dict[str, list[float]] = {"by hand": [], "install": [], OWN: [], OURS: []}
    try:
        module = push_and_pull(CLI, env, work / "pulled")
        warm = dict(env, NESTML_REGISTRY_MODULE_CACHE=str(work / "warm-cache"))
        timed([sys.executable, "-c", INSTALL], warm, work)  # the module cache, the toolchain detected
        pynn = not args.skip_pynn
        nest_config = working_nest_config(work / "toolchain")
        if pynn:
            timed([sys.executable, "-c", PYNN, "registry", str(MODEL)], warm, work)  # its build, once
        for _ in range(args.rounds):
            times["by hand"].append(timed([sys.executable, "-c", BY_HAND, str(module.with_suffix(""))], env, work))
            times["install"].append(timed([sys.executable, "-c", INSTALL], warm, work))
            if pynn:
                own = work / "pynn-own"
                own.mkdir(exist_ok=True)
                times[OWN].append(setup_seconds([sys.executable, "-c", PYNN, "own", str(MODEL), str(own),
                                                 nest_config], dict(env, LD_LIBRARY_PATH=str(own)), work))
                times[OURS].append(setup_seconds([sys.executable, "-c", PYNN, "registry", str(MODEL)], warm, work))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items() if v}
    print(f"{os.cpu_count()} cores; whole Python processes, medians of {args.rounds} alternating rounds")
    print(f"nest.Install by hand:            {med['by hand']:.3f} s")
    print(f"nestml_registry.install (warm):  {med['install']:.3f} s  (adds {med['install'] - med['by hand']:+.3f} s)")
    if OWN in med:
        print(f"PyNN's sim.setup(), its own build: {med[OWN]:.3f} s")
        print(f"PyNN's sim.setup(), use_registry:  {med[OURS]:.3f} s  (x{med[OWN] / med[OURS]:.1f} faster)")


if __name__ == "__main__":
    main()
