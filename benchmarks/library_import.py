"""``nestml-registry library import`` end to end on this machine: every model the installed NESTML ships,
built, characterised and checked against NEST's built-ins by a real ``serve`` (its in-process workers) on
loopback. Three runs, side by side:

1. cold: a fresh registry and an empty compile cache (every module built);
2. cached: a fresh registry over the compile cache run 1 filled (each build a cache hit; the
   characterisations and checks run again): the goal is under 5 minutes on 2 cores;
3. again: the same import on run 2's registry (idempotent: nothing is built, characterised or checked).

Prints each run's wall time, the ratio cold/cached, and the verdict table of run 2 as Markdown (the table
in docs/reference/library.md is this output).

    .venv/bin/python benchmarks/library_import.py [--only iaf_psc_exp_neuron,stdp_synapse] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

CLI = [sys.executable, "-m", "nestml_registry.cli.main"]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(home: Path, cache: Path, only: str, workers: int) -> tuple[float, dict]:
    """One import against a registry in ``home`` whose workers build into ``cache``: (seconds, --json)."""
    port = _port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, NESTML_REGISTRY_HOME=str(home), NESTML_REGISTRY_CACHE=str(cache),
               NESTML_REGISTRY_URL=url, PYNEST_QUIET="1")
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "serve.log").open("ab")
    server = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", str(workers)], env=env,
                              stdout=log, stderr=log)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/v1/toolchains", timeout=2).json():
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        args = [*CLI, "library", "import", "--json"] + (["--only", only] if only else [])
        start = time.perf_counter()
        proc = subprocess.run(args, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            raise SystemExit(f"library import failed: {proc.stderr.strip()[-2000:]}")
        return seconds, json.loads(proc.stdout)
    finally:
        server.terminate()
        server.wait(timeout=120)
        log.close()


def markdown(report: dict) -> str:
    lines = ["| model | built | against NEST | why they differ |", "|---|---|---|---|"]
    verdicts = {v["model"].split("__with_")[0].removesuffix("_nestml"): v for v in report["verdicts"]}
    for row in report["builds"]:
        v = verdicts.get(row["model"], {})
        why = row.get("known_limit") or row.get("error", row["status"])
        built = "yes" if row["status"] == "succeeded" else f"no: {why}"
        lines.append(f"| `{row['model']}` | {built} | {v.get('summary') or ''} | {v.get('explanation') or ''} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="library-import-"))
    cache = base / "cache"
    cold, report = run(base / "cold", cache, args.only, args.workers)
    cached, report = run(base / "cached", cache, args.only, args.workers)
    again, _ = run(base / "cached", cache, args.only, args.workers)
    built = sum(r["status"] == "succeeded" for r in report["builds"])
    print(f"models: {len(report['builds'])} ({built} built), verdicts: {len(report['verdicts'])}")
    print(f"cold import      {cold:8.1f} s")
    print(f"cached import    {cached:8.1f} s   (cold / cached = {cold / cached:.1f})")
    print(f"second import    {again:8.1f} s")
    print()
    print(markdown(report))


if __name__ == "__main__":
    main()
