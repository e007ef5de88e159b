"""Characterisation time per shipped neuron model, beside the model's own build time (the push it is
added to), and beside a plain NEST script that measures the same rheobase by bisection.

    .venv/bin/python benchmarks/characterise.py [--models iaf_psc_exp_neuron,izhikevich_neuron] [--cache DIR]

For each of NESTML's shipped neuron models (all by default): (1) a cold build with our compiler (its own
cache, so nothing is reused; the toolchain detection and the precompiled header are done beforehand);
(2) the characterisation as a worker runs it: the whole protocol in a sandboxed NEST process
(``compiler.characteriser``); (3) the plain alternative for the rheobase alone: a NEST script that
bisects one neuron at a time over 1000 ms windows to 1 % (as NeuroML-DB does). Prints each model, then
the median and worst characterisation time, and the median ratios characterise/build and
characterise/plain-bisection. Goals: median under 5 s on one core, under 10 % of a build.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from nestml_registry.compiler.characteriser import Characteriser
from nestml_registry.compiler.config import CompilerConfig
from nestml_registry.compiler.pipeline import Compiler
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.compiler.sources import Source

BISECT = r"""
import sys, warnings
warnings.simplefilter("ignore")
import nest
nest.set_verbosity("M_ERROR")
module, model = sys.argv[1], sys.argv[2]

def fires(current):
    nest.ResetKernel()
    nest.Install(module)
    n = nest.Create(model)
    try:
        dc = nest.Create("dc_generator", params={"amplitude": current})
        nest.Connect(dc, n)
    except nest.NESTError:
        n.set(I_e=n.get("I_e") + current)
    sr = nest.Create("spike_recorder")
    nest.Connect(n, sr)
    nest.Simulate(1000.0)
    return sr.n_events > 0

lo, hi = 0.0, 1.0
while not fires(hi) and hi < 1e5:
    lo, hi = hi, hi * 2
while hi < 1e5 and hi - lo > 0.01 * hi:
    mid = (lo + hi) / 2
    lo, hi = (lo, mid) if fires(mid) else (mid, hi)
print(hi)
"""


def shipped() -> Path:
    for base in (sysconfig.get_path("data"), sys.prefix):
        if (Path(base) / "models" / "neurons").is_dir():
            return Path(base) / "models" / "neurons"
    raise SystemExit("NESTML's shipped models are not installed (<prefix>/models/neurons)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="", help="comma-separated model file stems (default: every shipped neuron)")
    p.add_argument("--cache", type=Path, default=None, help="a build cache to keep between runs")
    args = p.parse_args()
    folder = shipped()
    names = [n for n in args.models.split(",") if n] or sorted(f.stem for f in folder.glob("*.nestml"))
    cache = args.cache or Path(tempfile.mkdtemp(prefix="bench-characterise-"))
    compiler = Compiler(CompilerConfig(cache_dir=cache))
    compiler.check_sandbox()
    runner = Characteriser(compiler, timeout=300)
    rows = []
    print(f"{'model':36} {'build s':>8} {'char. s':>8} {'status':>15} {'rheobase pA':>12} {'bisect s':>9}")
    for name in names:
        request = BuildRequest.create([Source.from_path(folder / f"{name}.nestml")])
        t0 = time.perf_counter()
        result = compiler.compile(request)
        build = time.perf_counter() - t0
        if not result.ok or not result.module_path:
            print(f"{name:36} build failed")
            continue
        neuron = next(m.name for m in result.models if m.kind == "neuron")
        t0 = time.perf_counter()
        char = runner.characterise(Path(result.module_path), neuron, cache / "characterise.log")
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        plain = subprocess.run([sys.executable, "-c", BISECT, str(Path(result.module_path).with_suffix("")), neuron],
                               capture_output=True, text=True, env=dict(os.environ, PYNEST_QUIET="1"), timeout=900)
        bisect = time.perf_counter() - t0 if plain.returncode == 0 else float("nan")
        rb = char.get("rheobase_pA")
        print(f"{name:36} {build:8.1f} {seconds:8.2f} {char['status']:>15} "
              f"{'-' if rb is None else f'{rb:.4g}':>12} {bisect:9.2f}", flush=True)
        rows.append((build, seconds, bisect))
    if not rows:
        return
    times = [r[1] for r in rows]
    print(f"\ncharacterisation: median {statistics.median(times):.2f} s, worst {max(times):.2f} s over {len(rows)} "
          f"models (goal: median under 5 s)")
    share = statistics.median(r[1] / r[0] for r in rows)
    print(f"characterisation / cold build: median {share:.1%} (goal: under 10 %)")
    ratios = [r[1] / r[2] for r in rows if r[2] == r[2]]
    if ratios:
        print(f"whole protocol / plain rheobase bisection: median x{statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
