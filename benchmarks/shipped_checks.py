"""Which of NESTML's shipped neuron models behave like the NEST built-in they reimplement: each one is
pushed to a registry of its own (a real ``serve`` with one worker on loopback) and compared with
``nestml-registry check MODEL --against nest:BUILTIN``, with NESTML's usual parameter names mapped to
NEST's. Prints one line per model (the table in docs/guides/characterisation.md) and the time each check took.

    .venv/bin/python benchmarks/shipped_checks.py [--models iaf_psc_exp_neuron,izhikevich_neuron]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import httpx

CLI = [sys.executable, "-m", "nestml_registry.cli.main"]
# NESTML's names -> NEST's, where the shipped models and the built-ins spell a parameter differently
RENAMES = {"refr_T": "t_ref", "tau_syn_exc": "tau_syn_ex", "tau_syn_inh": "tau_syn_in", "E_exc": "E_ex",
           "E_inh": "E_in", "tau_syn_rise_exc": "tau_rise_ex", "tau_syn_decay_exc": "tau_decay_ex",
           "tau_syn_rise_inh": "tau_rise_in", "tau_syn_decay_inh": "tau_decay_in", "tau_exc": "tau_syn_ex",
           "tau_inh": "tau_syn_in", "G_ahp": "g_ahp", "tau_syn_rise_E": "tau_rise_ex",
           "tau_syn_decay_E": "tau_decay_ex", "tau_syn_rise_I": "tau_rise_in",
           "tau_syn_decay_I": "tau_decay_in", "firing_rate": "rate"}
BUILTIN_PARAMS = ("import json, nest, sys; print(json.dumps({m: sorted(nest.GetDefaults(m)) for m in sys.argv[1:] "
                  "if m in nest.node_models}))")


def shipped() -> Path:
    for base in (sysconfig.get_path("data"), sys.prefix):
        if (Path(base) / "models" / "neurons").is_dir():
            return Path(base) / "models" / "neurons"
    raise SystemExit("NESTML's shipped models are not installed")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="")
    args = p.parse_args()
    folder = shipped()
    stems = [s for s in args.models.split(",") if s] or sorted(f.stem for f in folder.glob("*_neuron.nestml"))
    pairs = {s: s.removesuffix("_neuron") for s in stems}
    env0 = dict(os.environ, PYNEST_QUIET="1")
    out = subprocess.run([sys.executable, "-c", BUILTIN_PARAMS, *pairs.values()], capture_output=True, text=True,
                         env=env0, check=True).stdout
    builtins = json.loads(out.strip().splitlines()[-1])
    pairs = {s: b for s, b in pairs.items() if b in builtins}
    home = Path(tempfile.mkdtemp(prefix="shipped-checks-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = dict(env0, NESTML_REGISTRY_HOME=str(home), NESTML_REGISTRY_URL=url, NESTML_REGISTRY_CHARACTERISE="0",
               NESTML_REGISTRY_MODULE_CACHE=str(home / "modules"))
    server = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "1"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/v1/toolchains", timeout=2).json():
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        print(f"{'model':32} {'built-in':24} {'result':8} {'seconds':>7}  where they differ / what is not set")
        for stem, builtin in pairs.items():
            push = subprocess.run([*CLI, "push", str(folder / f"{stem}.nestml"), "--wait", "--json"], env=env,
                                  capture_output=True, text=True)
            if push.returncode != 0:
                print(f"{stem:32} {builtin:24} {'no build':8}")
                continue
            shown = json.loads(subprocess.run([*CLI, "show", stem, "--json"], env=env, capture_output=True,
                                              text=True).stdout)
            declared = {x["name"] for x in shown["versions"][0]["parameters"]}
            maps = [f"--map={k}={v}" for k, v in RENAMES.items()
                    if k in declared and v in builtins[builtin] and k != v]
            t0 = time.perf_counter()
            check = subprocess.run([*CLI, "check", stem, "--against", f"nest:{builtin}", "--json", *maps], env=env,
                                   capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            if check.returncode not in (0, 1):
                print(f"{stem:32} {builtin:24} {'error':8} {seconds:7.1f}  {check.stderr.strip()[-200:]}")
                continue
            report = json.loads(check.stdout)
            differ = [f"{r['stimulus']} ({r['spikes'][0]}/{r['spikes'][1]} spikes, dV {r['max_vm_diff_mV']})"
                      for r in report["stimuli"] if not r["agree"]]
            note = "; ".join(differ[:2]) + (f" (+{len(differ) - 2})" if len(differ) > 2 else "")
            unset = f" not set: {', '.join(report['unmapped'])}" if report["unmapped"] else ""
            print(f"{stem:32} {builtin:24} {'agree' if report['agree'] else 'DIFFER':8} {seconds:7.1f}  "
                  f"{note}{unset}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=120)


if __name__ == "__main__":
    main()
