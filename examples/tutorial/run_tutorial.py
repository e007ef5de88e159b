"""BMTK's tutorial "Extending PointNet Networks and Simulation with External and Customized Models", all four
examples, through the registry, each compared spike for spike with plain BMTK.

    export NESTML_REGISTRY_URL=http://127.0.0.1:8000      # a running `nestml-registry serve`
    python examples/tutorial/run_tutorial.py [--work DIR]

1. the built-in ``nest:izhikevich``;
2. the tutorial's NESTML model: upgraded for NESTML 9 (``nestml-registry upgrade``), pushed, and used as
   ``nestml:custom_izh_neuron`` (plain BMTK loads the same module through ``components.nest_modules``);
3. example 2 with a ``@cell_model`` hook that jitters ``d`` (``run --hooks hooks.py``);
4. example 2 with recurrent ``tsodyks2_synapse`` edges.

Exit status 0 when every example gives the same spikes both ways. Each BMTK run is its own process (NEST
keeps one kernel per process), as a simulation job runs it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from network import build, spikes  # noqa: E402  (this folder's module)

CLI = [sys.executable, "-m", "nestml_registry.cli.main"]
MODEL = "custom_izh_neuron_nestml"
PLAIN_RUN = """
import sys, runpy
from bmtk.simulator import pointnet
for hooks in sys.argv[2:]:
    runpy.run_path(hooks)
configure = pointnet.Config.from_json(sys.argv[1])
configure.build_env()
network = pointnet.PointNetwork.from_config(configure)
pointnet.PointSimulator.from_config(configure, network).run()
"""


def cli(*args: str) -> str:
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"nestml-registry {' '.join(args)} failed:\n{proc.stderr}")
    sys.stderr.write(proc.stderr)
    return proc.stdout


def plain(config: Path, *hooks: Path) -> list[tuple[int, float]]:
    proc = subprocess.run([sys.executable, "-c", PLAIN_RUN, str(config), *map(str, hooks)], capture_output=True,
                          text=True, cwd=config.parent)
    if proc.returncode != 0:
        sys.exit(f"plain BMTK failed on {config}:\n{proc.stderr[-3000:]}")
    return spikes(config)


def registry(config: Path, *hooks: Path) -> list[tuple[int, float]]:
    cli("run", str(config), *(arg for h in hooks for arg in ("--hooks", str(h))))
    return spikes(config)


def publish(work: Path) -> Path:
    """Upgrade the tutorial's model for NESTML 9, push it, and pull its module (for the plain runs)."""
    source = work / "custom_izh_neuron.nestml"
    shutil.copy(HERE / "custom_izh_neuron.nestml", source)
    cli("upgrade", str(source), "--in-place")
    build = json.loads(cli("push", str(source), "--wait", "--json"))
    names = ", ".join(f"{m['name']}@{m['version']}" for m in build["models"])
    print(f"pushed: {names}")
    return Path(json.loads(cli("pull", MODEL, "--json"))["path"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("tutorial-work"), help="where the networks are built")
    args = p.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    module = str(publish(work))
    tsodyks = {"recurrent": "tsodyks2_synapse", "recurrent_params": {"U": 0.5, "u": 0.5, "tau_rec": 800.0,
                                                                     "tau_fac": 0.0}}
    examples = [  # name, plain network, registry network, hooks
        ("1 built-in izhikevich", dict(template="nest:izhikevich"), dict(template="nest:izhikevich"), ()),
        ("2 NESTML model", dict(template=f"nestml:{MODEL}", nest_modules=module),
         dict(template="nestml:custom_izh_neuron"), ()),
        ("3 @cell_model jitter", dict(template=f"nestml:{MODEL}", nest_modules=module, jitter=True),
         dict(template="nestml:custom_izh_neuron", jitter=True), (HERE / "hooks.py",)),
        ("4 tsodyks2 synapses", dict(template=f"nestml:{MODEL}", nest_modules=module, **tsodyks),
         dict(template="nestml:custom_izh_neuron", **tsodyks), ()),
    ]
    failed = 0
    for i, (name, plain_net, ours_net, hooks) in enumerate(examples, 1):
        expected = plain(build(work / f"example{i}-plain", **plain_net), *hooks)
        got = registry(build(work / f"example{i}", **ours_net), *hooks)
        same = bool(expected) and got == expected
        failed += not same
        print(f"example {name:24} plain BMTK {len(expected):6} spikes, registry {len(got):6} spikes: "
              + ("identical" if same else "DIFFERENT"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
