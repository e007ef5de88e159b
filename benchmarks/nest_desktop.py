"""NEST Desktop's requests to the registry's front door against nestml-server 1.0.0b3, side by side.

    .venv/bin/python benchmarks/nest_desktop.py [--rounds 30]

Starts, each on a free loopback port with folders of its own,

- ``nestml-registry serve --workers 1`` with a fresh home and a fresh build cache (so the first request is a
  cold build: toolchain detection, precompiled header and all), NESTML_REGISTRY_COMPAT_MODULE_DIR set as
  for NEST Server;
- nestml-server 1.0.0b3 from PyPI (the test extra installs it), under gunicorn as its ``nestml-server start``
  runs it, with NEST 3.10 and NESTML 9 from PyPI,

and sends each NEST Desktop's calls with NEST Desktop's own bundled ``izhikevich_neuron.nestml``:
``generateModels`` once (cold) and then ``--rounds`` times again (what a user's second click, another
user, or NEST Desktop after a reload sends), and ``getSpecs`` (``getParams`` for 1.0.0b3, which has no
``getSpecs``). It prints the wall time of each, the answer's status and what failed, and the ratios
where both answered.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "nestml_registry.cli.main"]
SCRIPT = (ROOT / "tests" / "data" / "nest_desktop" / "izhikevich_neuron.nestml").read_text()
GENERATE = {"module_name": "nestmlmodule",
            "models": [{"element_type": "neuron", "name": "izhikevich_neuron", "script": SCRIPT}]}
SPECS = {"element_type": "neuron", "script": SCRIPT}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(url: str, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not answer {url} within {timeout:g} s")


def start_registry(work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, NESTML_REGISTRY_HOME=str(work / "home"), NESTML_REGISTRY_CACHE=str(work / "cache"),
               NESTML_REGISTRY_ALLOW_ANONYMOUS_PUBLISH="1", NESTML_REGISTRY_POLL_SECONDS="0.2",
               NESTML_REGISTRY_COMPAT_MODULE_DIR=str(work / "nest-modules"))
    with open(work / "registry.log", "w") as log:  # the server keeps its own copy of the file
        proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "1"], env=env, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # a worker has registered its toolchain
        try:
            if httpx.get(f"{url}/v1/toolchains", timeout=2).json():
                return proc, f"{url}/compat/nestml-server"
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the registry did not start")


def start_nestml_server(work: Path) -> tuple[subprocess.Popen, str] | None:
    if importlib.util.find_spec("nestml_server") is None:
        print("nestml-server is not installed (pip install nestml-server==1.0.0b3, or .[test]): baseline left out")
        return None
    port = free_port()
    env = dict(os.environ, NESTML_MODELS_PATH=str(work / "nestml-server-models"),
               NESTML_TARGETS_PATH=str(work / "nestml-server-targets"))
    with open(work / "nestml-server.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "nestml_server.main:app", "--bind",
                                 f"127.0.0.1:{port}", "--timeout", "600"], env=env, cwd=work, stdout=log,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until(url, proc, "nestml-server")
    return proc, url


def call(url: str, path: str, body: Any) -> tuple[float, int, str]:
    """One POST: seconds, status, and what failed (the answer's message), or '' for a 200."""
    start = time.perf_counter()
    response = httpx.post(url + path, json=body, timeout=900)
    seconds = time.perf_counter() - start
    if response.status_code == 200:
        return seconds, 200, ""
    try:
        text = json.loads(response.text).get("message", response.text)
    except (ValueError, AttributeError):
        text = response.text
    return seconds, response.status_code, " ".join(str(text).split())[:160]


def measure(name: str, url: str, specs_path: str, rounds: int) -> dict[str, Any]:
    cold = call(url, "/generateModels", GENERATE)
    again = [call(url, "/generateModels", GENERATE) for _ in range(rounds)]
    specs = call(url, specs_path, SPECS)
    times = sorted(t for t, _, _ in again)
    return {"name": name, "cold": cold, "again": again[-1], "median": statistics.median(times),
            "p95": times[min(len(times) - 1, int(0.95 * len(times)))], "specs": specs}


def show(result: dict[str, Any]) -> None:
    def outcome(answer: tuple[float, int, str]) -> str:
        return "200" if answer[1] == 200 else f"{answer[1]}: {answer[2]}"

    print(f"\n{result['name']}")
    print(f"  generateModels, first (cold): {result['cold'][0] * 1000:9.1f} ms  {outcome(result['cold'])}")
    print(f"  generateModels, again:        {result['median'] * 1000:9.1f} ms median, {result['p95'] * 1000:.1f} ms "
          f"p95  {outcome(result['again'])}")
    print(f"  specs:                        {result['specs'][0] * 1000:9.1f} ms  {outcome(result['specs'])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30, help="repeated generateModels requests (default 30)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nest-desktop-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        registry, ours_url = start_registry(work)
        procs.append(registry)
        ours = measure("registry /compat/nestml-server", ours_url, "/getSpecs", args.rounds)
        show(ours)
        started = start_nestml_server(work)
        if started is None:
            return
        procs.append(started[0])
        theirs = measure("nestml-server 1.0.0b3 (PyPI)", started[1], "/getParams", args.rounds)
        show(theirs)
        print("\nratios (nestml-server / registry), where both answered 200:")
        for label, a, b in (("first", theirs["cold"], ours["cold"]), ("again", theirs["again"], ours["again"])):
            if a[1] == 200 and b[1] == 200:
                key = "median" if label == "again" else None
                mine = ours[key] if key else b[0]
                print(f"  {label}: x{(theirs[key] if key else a[0]) / mine:.1f}")
            else:
                print(f"  {label}: no ratio: nestml-server answered {a[1]} after {a[0]:.1f} s ({a[2] or 'ok'})")
        print(f"\nlogs in {work}")
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
