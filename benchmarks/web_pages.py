"""The web pages against the JSON API they render, with 100, 1,000 and 10,000 registered models.

    .venv/bin/python benchmarks/web_pages.py [--sizes 100,1000,10000] [--requests 200]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Seeds a fresh database through the registry's own functions (each model: its source, a succeeded
build, a module row, ``publishing.publish``), starts ``nestml-registry serve --workers 0`` on a free
loopback port, and for each size requests, one after the other on one keep-alive connection: the
models page (``/``, 50 a page), a search (``/?q=...``: one model by a word of its description; all
by a parameter name), a model page, and side by side the JSON documents they render
(``/v1/models?limit=50``, ``/v1/models/NAME``). Prints p50 and p99 of the server's own time (its
``Server-Timing`` header) and of the round trip, and the ratio page/JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from http_api import free_port, pct

CLI = [sys.executable, "-m", "nestml_registry.cli.main"]  # the nestml-registry command
TOOLCHAIN = "bench-toolchain"
TEXT = """# A leaky integrate-and-fire neuron number {n} (benchmark seed)
model bench_{n}_neuron:
    state:
        V_m mV = -70 mV
    equations:
        V_m' = (E_L - V_m) / tau_m + I_e / C_m
    parameters:
        E_L mV = -70 mV       # resting potential
        tau_m ms = 10 ms      # membrane time constant
        C_m pF = 250 pF       # membrane capacitance
        I_e pA = 0 pA         # constant current
        V_th mV = -55 mV      # threshold
    input:
        spikes <- spike
    output:
        spike
    update:
        integrate_odes()
    onCondition(V_m >= V_th):
        V_m = E_L
        emit_spike()
"""


def _model(n: int, file: str) -> dict:
    variables = [("E_L", "mV", "-70 mV", -70.0), ("tau_m", "ms", "10 ms", 10.0), ("C_m", "pF", "250 pF", 250.0),
                 ("I_e", "pA", "0 pA", 0.0), ("V_th", "mV", "-55 mV", -55.0)]
    return {"name": f"bench_{n}_neuron_nestml", "kind": "neuron", "nestml_name": f"bench_{n}_neuron", "source": file,
            "parameters": [{"name": a, "type": u, "default": d, "value": v, "comment": None}
                           for a, u, d, v in variables],
            "state": [{"name": "V_m", "type": "mV", "default": "-70 mV", "value": -70.0, "comment": None}],
            "input_ports": [{"name": "spikes", "kind": "spike", "type": None, "size": None}],
            "receptor_types": {}, "variants": []}


def seed(url: str, start: int, stop: int) -> float:
    """Publish models ``start .. stop-1`` through the registry's functions; seconds it took."""
    from nestml_registry.registry import db, publishing, queue, records, toolchains
    from nestml_registry.registry.tables import BuildStatus, utcnow

    t0 = time.monotonic()
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    with sessions.begin() as s:
        toolchains.register(s, {"id": TOOLCHAIN, "nest_version": "3.10.0", "cxx_abi": 0, "platform": "bench"})
    for chunk in range(start, stop, 250):
        with sessions.begin() as s:
            for n in range(chunk, min(stop, chunk + 250)):
                text = TEXT.format(n=n)
                file = f"bench_{n}.nestml"
                sha = hashlib.sha256(text.encode()).hexdigest()
                key = hashlib.sha256(f"bench {n} {uuid.uuid4()}".encode()).hexdigest()
                request = {"module": f"bench_{n}_neuron_nestml_module", "suffix": "_nestml", "pairs": []}
                build, _ = queue.enqueue(s, key, TOOLCHAIN, request, [(file, sha, text)])
                module = records.get_or_create_module(s, key, request["module"], 1000, TOOLCHAIN,
                                                      f"{key[:2]}/{key}/{request['module']}.so")
                build.status, build.module, build.finished_at = BuildStatus.SUCCEEDED, module, utcnow()
                s.flush()
                publishing.publish(s, build, module, [dict(_model(n, file), source_sha256=sha)], None)
    engine.dispose()
    return time.monotonic() - t0


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    server = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "0"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code in (200, 503):
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not start within 60 s")


def measure(client: httpx.Client, path: str, count: int, html: bool) -> tuple[float, float, float, float]:
    """p50 and p99 of the server's time and of the round trip, in ms."""
    headers = {"Accept": "text/html"} if html else {"Accept": "application/json"}
    server, trip = [], []
    for _ in range(3):
        client.get(path, headers=headers)  # warm-up
    for _ in range(count):
        t0 = time.perf_counter()
        response = client.get(path, headers=headers)
        trip.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}: {response.text[:300]}")
        server.append(float(response.headers["server-timing"].split("dur=")[1]))
    return pct(server, 50), pct(server, 99), pct(trip, 50), pct(trip, 99)


def report(client: httpx.Client, size: int, count: int) -> None:
    middle = f"bench_{size // 2}_neuron_nestml"
    one = f"q=number+{size // 2}+benchmark"
    pairs = [("models page", "/", "/v1/models?limit=50"),
             ("search, 1 match", f"/?{one}", f"/v1/models?{one}&limit=50"),
             ("search, all match", "/?q=tau_m", "/v1/models?q=tau_m&limit=50"),
             ("model page", f"/models/{middle}", f"/v1/models/{middle}")]
    for label, page, api in pairs:
        ps50, ps99, pt50, _ = measure(client, page, count, True)
        js50, js99, jt50, _ = measure(client, api, count, False)
        print(f"{size:>7}  {label:<18} page {ps50:6.1f} / {ps99:6.1f} ms (trip {pt50:5.1f})   "
              f"JSON {js50:6.1f} / {js99:6.1f} ms (trip {jt50:5.1f})   page/JSON {ps50 / js50:4.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="model counts, ascending")
    parser.add_argument("--requests", type=int, default=200, help="requests per page and size")
    parser.add_argument("--postgres", help="an admin URL of a PostgreSQL server: benchmark on a fresh database there")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    from nestml_registry.registry import db

    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        home = Path(tmp)
        url = f"sqlite:///{home / 'registry.db'}"
        dropper = None
        if args.postgres:
            from sqlalchemy import create_engine, text

            name = f"bench_web_{uuid.uuid4().hex[:8]}"
            admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            url = args.postgres.rsplit("/", 1)[0] + f"/{name}"

            def dropper() -> None:
                with admin.connect() as c:
                    c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
        db.upgrade(url)
        env = {**os.environ, "NESTML_REGISTRY_HOME": str(home / "home"), "NESTML_REGISTRY_DATABASE_URL": url,
               "NESTML_REGISTRY_STORE": str(home / "store")}
        print(f"{'models':>7}  {'what':<18} p50 / p99 server time (round trip p50)", flush=True)
        seeded = 0
        try:
            for size in sizes:
                took = seed(url, seeded, size)
                print(f"seeded {size - seeded} models in {took:.1f} s", flush=True)
                seeded = size
                port = free_port()
                server = start_server(env, port)
                try:
                    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                        report(client, size, args.requests)
                finally:
                    server.send_signal(signal.SIGTERM)
                    server.wait(timeout=60)
        finally:
            if dropper is not None:
                dropper()


if __name__ == "__main__":
    main()
