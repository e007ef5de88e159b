"""What ``nestml-registry run`` adds to a plain BMTK PointNet job under ``mpirun``, at 1, 2 and 4 ranks.

    .venv/bin/python benchmarks/mpi_run.py [--rounds 3] [--ranks 1,2,4]

Needs NEST with MPI in .venv-mpi (``bash scripts/setup.sh mpi``). Starts ``nestml-registry serve --workers 1``
from .venv-mpi (its worker serves the MPI toolchain) on a free port with a fresh home, pushes the tutorial's
custom Izhikevich neuron and pulls its module. Builds the tutorial's network twice: with
``components.nest_modules`` naming the pulled module file (plain BMTK, the five usual lines) and with
``nestml:custom_izh_neuron`` resolved by the registry. For each rank count, alternating in each round, it
times the whole ``mpirun -n R`` job of

- plain: ``python -c <the five BMTK lines> config.json``
- warm:  ``nestml-registry run config.json`` with the module in the node's cache
- cold:  the same with an empty module cache (rank 0 resolves, one rank per node downloads)

and prints the medians, what ``run`` adds, and the registry's requests per job (resolves and downloads,
read from its /metrics): constant in the rank count. The spikes of every job are checked to be identical.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
MPI_BIN = ROOT / ".venv-mpi" / "bin"
sys.path.insert(0, str(ROOT / "tests"))

from bmtk_networks import FIVE_LINES, build_izhikevich_network, read_spikes  # noqa: E402
from bmtk_run import push_and_pull, start_server, timed  # noqa: E402

PARAMS = {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0}


def mpirun(ranks: int) -> list[str]:
    mpi = shutil.which("mpirun")
    if mpi is None:
        raise SystemExit("mpirun is not installed: bash scripts/setup.sh mpi")
    return [mpi, "--oversubscribe", "--bind-to", "none", "-n", str(ranks)]


def counters(url: str) -> tuple[float, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text

    def value(name: str) -> float:
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))
    return value("nestml_registry_resolve_requests_total"), value("nestml_registry_artifact_downloads_total")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ranks", default="1,2,4")
    args = ap.parse_args()
    if not (MPI_BIN / "nestml-registry").is_file():
        raise SystemExit(f"no NEST with MPI in {MPI_BIN.parent}: bash scripts/setup.sh mpi")
    work = Path(tempfile.mkdtemp(prefix="nmlmpi-"))
    root = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"} if os.geteuid() == 0 else {}
    server, url, env = start_server(work / "home", [str(MPI_BIN / "nestml-registry")], **root)
    cli = [str(MPI_BIN / "nestml-registry")]
    python = str(MPI_BIN / "python")
    rows = []
    try:
        module = push_and_pull(cli, env, work / "pulled")
        plain = build_izhikevich_network(work / "plain", "nestml:custom_izh_neuron_nestml", PARAMS,
                                         nest_modules=module, n=40)
        ours = build_izhikevich_network(work / "ours", "nestml:custom_izh_neuron", PARAMS, n=40)
        warm_env = dict(env, NESTML_REGISTRY_MODULE_CACHE=str(work / "warm-cache"))
        timed([*mpirun(1), *cli, "run", str(ours.config)], warm_env, ours.dir)  # the cache, the toolchain detected
        reference = read_spikes(ours.output_dir)
        for ranks in [int(r) for r in args.ranks.split(",")]:
            times: dict[str, list[float]] = {"plain": [], "warm": [], "cold": []}
            requests: list[tuple[float, float]] = []
            for i in range(args.rounds):
                times["plain"].append(timed([*mpirun(ranks), python, "-c", FIVE_LINES, str(plain.config)], env,
                                            plain.dir))
                assert read_spikes(plain.output_dir) == reference, "plain BMTK spiked differently"
                times["warm"].append(timed([*mpirun(ranks), *cli, "run", str(ours.config)], warm_env, ours.dir))
                assert read_spikes(ours.output_dir) == reference, "the registry run spiked differently"
                cold_cache = work / f"cold-{ranks}-{i}"
                before = counters(url)
                times["cold"].append(timed([*mpirun(ranks), *cli, "run", str(ours.config)],
                                           dict(env, NESTML_REGISTRY_MODULE_CACHE=str(cold_cache)), ours.dir))
                after = counters(url)
                requests.append((after[0] - before[0], after[1] - before[1]))
                shutil.rmtree(cold_cache, ignore_errors=True)
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append((ranks, med, requests[-1]))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
    print(f"{os.cpu_count()} cores; the tutorial's network with 40 cells, 1 s at dt 0.01 ms; {args.rounds} rounds of "
          f"whole mpirun jobs, medians; {len(reference)} spikes, identical in every job")
    for ranks, med, (resolves, downloads) in rows:
        print(f"{ranks} rank(s): plain {med['plain']:.2f} s; run warm {med['warm']:.2f} s "
              f"({med['warm'] - med['plain']:+.2f} s, x{med['warm'] / med['plain']:.2f}); run cold "
              f"{med['cold']:.2f} s ({med['cold'] - med['plain']:+.2f} s); per cold job {resolves:.0f} resolve(s), "
              f"{downloads:.0f} download(s)")


if __name__ == "__main__":
    main()
