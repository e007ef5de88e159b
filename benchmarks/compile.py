"""Cold and cached compiles: our compiler against NESTML's own ``generate_code_for``, side by side.

    .venv/bin/python benchmarks/compile.py [--models izhikevich_neuron,iaf_psc_exp_neuron] [--rounds 1]

For each model and round, alternating: (1) NESTML's ``NESTCodeGeneratorUtils.generate_code_for`` in a
fresh Python process, given a working ``nest_path`` (the plain path a user scripts today); (2) our
compiler with an empty build cache *and an empty ccache* (cold; the toolchain's precompiled NEST
header is built once beforehand and timed on its own, like toolchain detection); (3) our compiler with an empty
build cache but a warm ccache (the model's C++ was compiled before, e.g. under another module name);
(2b) the cold compile as a compile worker runs it, whose spare code generation process has imported
pynestml while it waited for the job; (2c) the cold compile without the build sandbox
(``NESTML_REGISTRY_SANDBOX=0``: what bubblewrap, setpriv and the limits cost);
then the cached compile, in-process and as a whole CLI process. Prints each run and the median ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from nestml_registry.compiler.config import CompilerConfig
from nestml_registry.compiler.pch import PchBuild
from nestml_registry.compiler.pipeline import Compiler
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.compiler.sandbox import SandboxConfig
from nestml_registry.compiler.sources import Source
from nestml_registry.compiler.toolchain import detect, nest_config_prefix

CLI = [sys.executable, "-m", "nestml_registry.cli.main"]  # the nestml-registry command
NESTML_PLAIN = r"""
import sys
from pynestml.codegeneration.nest_code_generator_utils import NESTCodeGeneratorUtils

module, neuron = NESTCodeGeneratorUtils.generate_code_for(sys.argv[1], target_path=sys.argv[2],
        logging_level="ERROR", codegen_opts={"nest_path": sys.argv[3]})[:2]
assert module and neuron, "nothing generated"
"""


def plain_nestml(model: Path, work: Path, nest_path: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", NESTML_PLAIN, str(model), str(work / "target"), str(nest_path)],
                   check=True, capture_output=True, cwd=work, env=dict(os.environ, TMPDIR=str(work)))
    return time.perf_counter() - start


def ours(model: Path, cache: Path, toolchain, ccache: bool, worker: bool = False,
         sandbox: bool = True) -> tuple[float, dict]:
    """One compile; ``worker``: as a compile worker runs it, with its code generation process started
    while the worker waited for the job; ``sandbox``: with the build sandbox (the default)."""
    config = CompilerConfig(cache_dir=cache, ccache=ccache, warm_codegen=worker,
                            sandbox=SandboxConfig(enabled=sandbox))
    compiler = Compiler(config, toolchain=toolchain)
    request = BuildRequest.create([Source.from_path(model)])
    if worker:
        compiler.prestart()
        time.sleep(2.0)  # an idle worker: its spare has imported pynestml when the job comes
    start = time.perf_counter()
    try:
        result = compiler.compile(request)
    finally:
        seconds = time.perf_counter() - start
        compiler.close()
    assert result.ok, [d.format() for d in result.diagnostics]
    return seconds, result.timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="izhikevich_neuron,iaf_psc_exp_neuron,aeif_cond_exp_neuron")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    models_dir = Path(sysconfig.get_path("data")) / "models" / "neurons"
    root = Path(tempfile.mkdtemp(prefix="nmlbench-"))
    toolchain = detect(root / "detect")
    nest_path = nest_config_prefix(toolchain, root / "detect")
    # once per toolchain, like toolchain detection: the precompiled NEST header (timed on its own)
    start = time.perf_counter()
    PchBuild(toolchain, root / "shared", timeout=600).wait()
    print(f"precompiled NEST header, built once per toolchain: {time.perf_counter() - start:.1f} s")
    warm_ccache_home = root / "warm"
    rows: dict[str, list[float]] = {"nestml": [], "cold": [], "worker": [], "warm_ccache": [], "cached": [],
                                    "cached_cli": [], "unsandboxed": []}
    print(f"toolchain {toolchain.id}, {os.cpu_count()} cores")
    print(f"{'model':28} {'round':>5} {'generate_code_for':>18} {'ours cold':>10} {'worker cold':>12}"
          f" {'ours warm ccache':>17} {'cached':>8} {'cached CLI':>10} {'cold, no sandbox':>17}")
    for rnd in range(args.rounds):
        for name in args.models.split(","):
            model = models_dir / f"{name}.nestml"
            work = Path(tempfile.mkdtemp(dir=root))
            t_plain = plain_nestml(model, work, nest_path)
            cold_cache = Path(tempfile.mkdtemp(dir=root))
            shutil.copytree(root / "shared" / "toolchains", cold_cache / "toolchains")
            bare_cache = Path(tempfile.mkdtemp(dir=root))
            shutil.copytree(root / "shared" / "toolchains", bare_cache / "toolchains")
            if rnd % 2:  # which of the two goes first alternates
                t_bare, _ = ours(model, bare_cache, toolchain, ccache=True, sandbox=False)
            t_cold, timings = ours(model, cold_cache, toolchain, ccache=True)
            if not rnd % 2:
                t_bare, _ = ours(model, bare_cache, toolchain, ccache=True, sandbox=False)
            worker_cache = Path(tempfile.mkdtemp(dir=root))
            shutil.copytree(root / "shared" / "toolchains", worker_cache / "toolchains")
            t_worker, _ = ours(model, worker_cache, toolchain, ccache=True, worker=True)
            # warm ccache: same ccache directory as an earlier build of this model, fresh build cache
            shutil.rmtree(warm_ccache_home / "builds", ignore_errors=True)
            if rnd == 0:
                ours(model, warm_ccache_home, toolchain, ccache=True)
            shutil.rmtree(warm_ccache_home / "builds", ignore_errors=True)
            t_warm, _ = ours(model, warm_ccache_home, toolchain, ccache=True)
            t_cached, _ = ours(model, cold_cache, toolchain, ccache=True)
            home = cold_cache.parent / f"home-{cold_cache.name}"
            home.mkdir()
            (home / "cache").symlink_to(cold_cache)
            detect(cold_cache)  # a CLI run on a machine that has compiled before knows its toolchain
            start = time.perf_counter()
            subprocess.run([*CLI, "compile", str(model)], check=True,
                           capture_output=True, env=dict(os.environ, NESTML_REGISTRY_HOME=str(home)),
                           cwd=Path(__file__).resolve().parent.parent)
            t_cli = time.perf_counter() - start
            for k, v in zip(rows, (t_plain, t_cold, t_worker, t_warm, t_cached, t_cli, t_bare), strict=True):
                rows[k].append(v)
            print(f"{name:28} {rnd:>5} {t_plain:>17.2f}s {t_cold:>9.2f}s {t_worker:>11.2f}s {t_warm:>16.2f}s"
                  f" {t_cached:>7.3f}s"
                  f" {t_cli:>9.3f}s {t_bare:>16.2f}s   (ours: codegen {timings['codegen']:.1f}s,"
                  f" C++ {timings['build']:.1f}s, load {timings['load']:.1f}s)", flush=True)
            shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print()
    print(f"median generate_code_for {med['nestml']:.2f} s | ours cold {med['cold']:.2f} s "
          f"(x{med['nestml'] / med['cold']:.2f}) | a worker's cold {med['worker']:.2f} s "
          f"(x{med['nestml'] / med['worker']:.2f}) | ours warm ccache {med['warm_ccache']:.2f} s "
          f"(x{med['nestml'] / med['warm_ccache']:.2f})")
    print(f"the build sandbox: cold {med['cold']:.2f} s against {med['unsandboxed']:.2f} s without it "
          f"({(med['cold'] / med['unsandboxed'] - 1) * 100:+.1f} %)")
    print(f"median cached compile {med['cached'] * 1000:.1f} ms in-process, {med['cached_cli'] * 1000:.0f} ms "
          f"as a whole CLI process (x{med['nestml'] / med['cached_cli']:.0f} faster than generate_code_for)")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
