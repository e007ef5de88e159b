"""The service over real HTTP on loopback: cached push latency, module download throughput, and waves
of 32, 200 and 1,000 concurrent clients on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/http_api.py [--pushes 200] [--downloads 2000] [--clients 32]
        [--waves 32,200,1000] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Starts ``nestml-registry serve --workers 1`` on a free port with a fresh home, pushes one model and
waits for its compile (the cold figure), then (1) pushes the same sources again N times, one after the
other, timing each whole HTTP round trip (p50, p99), and (2) downloads its module with 32 concurrent
clients (keep-alive connections, each download read to the end and its sha256 checked), and again
with curl's parallel mode (when curl is installed), a client that leaves the two cores to the server.

Then (3) waves (``load_waves.py``): C clients start at the same instant, each on its own connection,
each sending 3 requests: downloads with a cold artifact cache (a freshly started API, so the whole
first wave misses its in-memory cache at once), downloads with a warm one, resolves (without a token, and
with the local token a job on this machine sends), model pages and
``/healthz``. Errors (anything but 200, or no answer in 60 s), p50/p99 latency and throughput, with
the throughput's ratio to the smallest wave's; on SQLite and, with ``--postgres``, on a fresh
PostgreSQL database (whose server compiles nothing: the build cache is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from load_waves import Wave, run_wave

CLI = [sys.executable, "-m", "nestml_registry.cli.main"]  # the nestml-registry command

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "izhikevich_reset_neuron.nestml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


async def download_all(url: str, sha: str, total: int, clients: int) -> float:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        remaining = total

        async def one_client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                r = await client.get(f"/v1/modules/{sha}/artifact")
                assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == sha

        start = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        return time.perf_counter() - start


def curl_downloads(url: str, sha: str, size: int, total: int, clients: int, work: Path) -> float | None:
    """The same downloads with curl's parallel mode, every answer checked for status 200 and full size."""
    curl = shutil.which("curl")
    if curl is None:
        return None
    config = work / "curl.cfg"
    config.write_text("".join(f'url = "{url}/v1/modules/{sha}/artifact"\noutput = "/dev/null"\n' for _ in range(total)))
    start = time.perf_counter()
    cmd = [curl, "-s", "--parallel", "--parallel-max", str(clients), "-w", "%{http_code} %{size_download}\n",
           "-K", str(config)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - start
    answers = out.split()
    assert answers[0::2] == ["200"] * total and answers[1::2] == [str(size)] * total, out[:500]
    return wall


def start_server(env: dict[str, str], port: int, workers: int) -> subprocess.Popen:
    server = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers",
                               str(workers)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not start")


def stop_server(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)


def local_token(home: Path) -> dict[str, str]:
    """The publisher token `serve` wrote for this machine's user (as the CLI sends it by itself)."""
    for _ in range(300):
        if (home / "local-token").is_file():
            return {"Authorization": f"Bearer {(home / 'local-token').read_text().strip()}"}
        time.sleep(0.1)
    raise SystemExit(f"serve wrote no local token into {home}")


def publish(url: str, home: Path) -> tuple[str, str, str, float]:
    """Push the model and wait for it: its module's sha256, its name, its toolchain and the time taken."""
    files = [("files", (MODEL.name, MODEL.read_bytes(), "text/plain"))]
    with httpx.Client(base_url=url, timeout=60, headers=local_token(home)) as client:
        start = time.perf_counter()
        build = client.post("/v1/builds", files=files).json()
        while build["status"] in ("queued", "running"):
            time.sleep(0.2)
            build = client.get(f"/v1/builds/{build['id']}").json()
    assert build["status"] == "succeeded", build
    return build["module"]["sha256"], build["models"][0]["name"], build["toolchain"], time.perf_counter() - start


def waves(env: dict[str, str], port: int, sizes: list[int], label: str) -> None:
    """Publish the model on a server of ``env``, then the waves, each printed as it ends."""
    url = f"http://127.0.0.1:{port}"
    server = start_server(env, port, workers=1)
    try:
        sha, name, toolchain, took = publish(url, Path(env["NESTML_REGISTRY_HOME"]))
    finally:
        stop_server(server)
    print(f"\n{label}: model published in {took:.1f} s; waves of concurrent clients, 3 requests each")
    resolve = f"/v1/resolve?model={name}&toolchain={toolchain}"
    paths = {"download (warm)": f"/v1/modules/{sha}/artifact", "resolve": resolve, "resolve (token)": resolve,
             "model page": f"/v1/models/{name}", "healthz": "/healthz"}
    token = local_token(Path(env["NESTML_REGISTRY_HOME"]))  # what a job on this machine sends by itself
    results: dict[str, list[Wave]] = {}
    for clients in sizes:
        server = start_server(env, port, workers=0)  # a fresh API: its artifact cache is cold
        try:
            for kind, path in [("download (cold)", paths["download (warm)"]), *paths.items()]:
                wave = run_wave(url, kind, path, clients, sha=sha if kind.startswith("download") else None,
                                headers=token if kind.endswith("(token)") else None)
                results.setdefault(kind, []).append(wave)
                print("  " + wave.line(results[kind][0]), flush=True)
        finally:
            stop_server(server)


def postgres_env(base: dict[str, str], admin_url: str, cache: Path) -> dict[str, str]:
    """A fresh database beside ``admin_url``'s, migrated; the SQLite run's build cache."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"nr_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    home = Path(tempfile.mkdtemp(prefix="nmlservice-pg-"))
    env = dict(base, NESTML_REGISTRY_HOME=str(home), NESTML_REGISTRY_DATABASE_URL=url,
               NESTML_REGISTRY_CACHE=str(cache))
    subprocess.run([*CLI, "db", "upgrade"], env=env, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pushes", type=int, default=200)
    ap.add_argument("--downloads", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--waves", default="32,200,1000", help="client counts of the waves ('' for none)")
    ap.add_argument("--postgres", default=os.environ.get("NESTML_REGISTRY_TEST_POSTGRES_URL"),
                    help="a PostgreSQL server's URL: the waves also run on a fresh database there")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="nmlservice-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, NESTML_REGISTRY_HOME=str(home))
    server = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "1"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        with httpx.Client(base_url=url, timeout=60, headers=local_token(home)) as client:
            for _ in range(600):
                try:
                    if client.get("/v1/toolchains").json():
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            files = [("files", (MODEL.name, MODEL.read_bytes(), "text/plain"))]
            start = time.perf_counter()
            build = client.post("/v1/builds", files=files).json()
            while build["status"] in ("queued", "running"):
                time.sleep(0.2)
                build = client.get(f"/v1/builds/{build['id']}").json()
            cold = time.perf_counter() - start
            assert build["status"] == "succeeded", build
            sha = build["module"]["sha256"]
            latencies = []
            for _ in range(args.pushes):
                t0 = time.perf_counter()
                r = client.post("/v1/builds", files=files)
                latencies.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
        size = len(httpx.get(f"{url}/v1/modules/{sha}/artifact").content)
        wall = asyncio.run(download_all(url, sha, args.downloads, args.clients))
        curl_wall = curl_downloads(url, sha, size, args.downloads, args.clients, home)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    print(f"{os.cpu_count()} cores, server and clients on one machine (loopback)")
    print(f"cold push -> compiled module: {cold:.1f} s")
    print(f"cached push ({args.pushes} sequential): p50 {pct(latencies, 50) * 1000:.1f} ms, "
          f"p99 {pct(latencies, 99) * 1000:.1f} ms (x{cold / pct(latencies, 50):.0f} faster than the cold push)")
    print(f"downloads of the {size / 1024:.0f} KB module, {args.clients} concurrent clients: "
          f"{args.downloads / wall:.0f} downloads/s ({args.downloads * size / wall / 1e6:.0f} MB/s) "
          "with Python clients (httpx, each response hashed)")
    if curl_wall is not None:
        print(f"the same with curl --parallel-max {args.clients} (a client that costs little CPU): "
              f"{args.downloads / curl_wall:.0f} downloads/s ({args.downloads * size / curl_wall / 1e6:.0f} MB/s)")
    sizes = [int(n) for n in args.waves.split(",") if n.strip()]
    if sizes:
        waves(env, free_port(), sizes, "SQLite")
        if args.postgres:
            waves(postgres_env(env, args.postgres, home / "cache"), free_port(), sizes, "PostgreSQL")


if __name__ == "__main__":
    main()
