"""What ``nestml-registry run`` adds to a plain BMTK PointNet run of the same network.

    .venv/bin/python benchmarks/bmtk_run.py [--rounds 5]

Starts ``nestml-registry serve --workers 1`` on a free port with a fresh home and pushes the tutorial's
custom Izhikevich neuron. Builds the tutorial's network (10 cells, 10 virtual inputs, 1 s) twice: once
with ``model_template nestml:custom_izh_neuron_nestml`` and ``components.nest_modules`` naming the
pulled module file (plain BMTK, the five usual lines), once with ``nestml:custom_izh_neuron`` resolved by
the registry. Then, alternating in each round, times the whole process of

- plain:  ``python -c <the five BMTK lines> config.json`` (module through nest_modules)
- warm:   ``nestml-registry run config.json`` with the module in the local cache
- cold:   the same with an empty module cache (resolution + download from the server)

and prints the medians and what ``run`` adds. The spikes of all three are checked to be identical.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "nestml_registry.cli.main"]
sys.path.insert(0, str(ROOT / "tests"))

from bmtk_networks import FIVE_LINES, build_izhikevich_network, read_spikes  # noqa: E402

MODEL = ROOT / "tests" / "data" / "custom_izh_neuron.nestml"
PARAMS = {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0}


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """The wall time of the whole process ``cmd``; its failure ends the benchmark with its stderr."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:8])} failed:\n{proc.stderr[-3000:]}")
    return wall


def start_server(home: Path, cli: list[str] = CLI, **env_extra: str) -> tuple[subprocess.Popen, str, dict[str, str]]:
    """``cli serve --workers 1`` on a free port with its home in ``home``, once a worker registered; the
    server, its URL and the environment for its clients (with ``env_extra``)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, NESTML_REGISTRY_HOME=str(home), NESTML_REGISTRY_URL=url, PYNEST_QUIET="1",
               OMP_NUM_THREADS="1", **env_extra)
    server = subprocess.Popen([*cli, "serve", "--port", str(port), "--workers", "1"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    for _ in range(1500):
        try:
            if httpx.get(f"{url}/v1/toolchains", timeout=2).json():
                return server, url, env
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


def push_and_pull(cli: list[str], env: dict[str, str], cache: Path) -> Path:
    """The tutorial's custom Izhikevich neuron pushed (and built); its module pulled into ``cache``."""
    push = subprocess.run([*cli, "push", str(MODEL), "--wait", "--json"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    if push.returncode != 0:
        raise SystemExit(f"the push failed:\n{push.stderr[-3000:]}")
    pulled = subprocess.run([*cli, "pull", "custom_izh_neuron", "--json", "--cache", str(cache)],
                            env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return Path(json.loads(pulled.stdout)["path"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nmlsim-"))
    server, _url, env = start_server(work / "home")
    cli = CLI
    try:
        module = push_and_pull(cli, env, work / "pulled")
        plain = build_izhikevich_network(work / "plain", "nestml:custom_izh_neuron_nestml", PARAMS,
                                         nest_modules=module)
        ours = build_izhikevich_network(work / "ours", "nestml:custom_izh_neuron", PARAMS)
        warm_cache = work / "warm-cache"
        warm_env = dict(env, NESTML_REGISTRY_MODULE_CACHE=str(warm_cache))
        timed([*cli, "run", str(ours.config)], warm_env, ours.dir)  # fills the cache, detects the toolchain once
        times: dict[str, list[float]] = {"plain": [], "warm": [], "cold": []}
        for i in range(args.rounds):
            times["plain"].append(timed([sys.executable, "-c", FIVE_LINES, str(plain.config)], env, plain.dir))
            times["warm"].append(timed([*cli, "run", str(ours.config)], warm_env, ours.dir))
            cold_cache = work / f"cold-cache-{i}"
            times["cold"].append(timed([*cli, "run", str(ours.config)],
                                       dict(env, NESTML_REGISTRY_MODULE_CACHE=str(cold_cache)), ours.dir))
            shutil.rmtree(cold_cache, ignore_errors=True)
        spikes_plain, spikes_ours = read_spikes(plain.output_dir), read_spikes(ours.output_dir)
        assert spikes_plain and spikes_plain == spikes_ours, "the registry run spiked differently"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{os.cpu_count()} cores; network: 10 cells, 10 virtual inputs, 1 s at dt 0.01 ms; {args.rounds} rounds, "
          f"whole processes, medians; {len(spikes_plain)} spikes, identical")
    print(f"plain BMTK with nest_modules:           {med['plain']:.3f} s")
    print(f"nestml-registry run, warm module cache: {med['warm']:.3f} s  (adds {med['warm'] - med['plain']:+.3f} s, "
          f"x{med['warm'] / med['plain']:.2f})")
    print(f"nestml-registry run, cold (download):   {med['cold']:.3f} s  (adds {med['cold'] - med['plain']:+.3f} s, "
          f"x{med['cold'] / med['plain']:.2f})")


if __name__ == "__main__":
    main()
