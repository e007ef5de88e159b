"""The build queue: claim latency and throughput with 1, 2 and 4 worker processes on SQLite and
PostgreSQL, for database workers and for HTTP workers (``worker --server URL``: the same claims through a
real API server on loopback) side by side; and compile throughput of distinct shipped models with 1 and 2
real workers of each kind.

    .venv/bin/python benchmarks/build_queue.py [--claims 400] [--models izhikevich_neuron,...] [--skip-compile]

Claims: N queued builds, W processes that each loop claim -> finish (no compile), so the figures are
the queue's own cost. Compiles: the same batch of distinct models, cold build caches (the toolchain's
precompiled header is built beforehand, once), drained by ``nestml-registry worker --burst
--concurrency W``; wall time and the speed-up of 2 workers over 1.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from nestml_registry.compiler.pch import PchBuild
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.compiler.sources import Source
from nestml_registry.compiler.toolchain import detect
from nestml_registry.registry import db, queue
from nestml_registry.registry.tables import BuildStatus
from nestml_registry.service.api.submit import submit

CLI = [sys.executable, "-m", "nestml_registry.cli.main"]  # the nestml-registry command

PG_ADMIN = os.environ.get("NESTML_REGISTRY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TOOLCHAIN = "bench-toolchain"


def new_database(backend: str, root: Path) -> str:
    if backend == "sqlite":
        return db.default_url(root / f"sqlite-{uuid.uuid4().hex[:6]}")
    name = f"nr_bench_{uuid.uuid4().hex[:10]}"
    admin = db.make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    if db.is_sqlite(url):
        return
    admin = db.make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def fill(url: str, n: int) -> None:
    engine = db.make_engine(url)
    with db.make_sessionmaker(engine).begin() as s:
        for i in range(n):
            body = f"model q{i}_neuron:\n"
            key = hashlib.sha256(f"{uuid.uuid4()}".encode()).hexdigest()
            queue.enqueue(s, key, TOOLCHAIN, {"module": f"q{i}module"},
                          [(f"q{i}.nestml", hashlib.sha256(body.encode()).hexdigest(), body)])
    engine.dispose()


def claimer(url: str, start: multiprocessing.synchronize.Event, out: multiprocessing.Queue) -> None:
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    wid = f"bench-{os.getpid()}"
    latencies = []
    start.wait()
    while True:
        t0 = time.perf_counter()
        with sessions.begin() as s:
            build = queue.claim(s, wid, [TOOLCHAIN], 60)
        latencies.append(time.perf_counter() - t0)
        if build is None:
            break
        with sessions.begin() as s:
            queue.finish(s, build.id, wid, BuildStatus.FAILED, [], None, error="benchmark")
    engine.dispose()
    out.put(latencies[:-1])


def http_claimer(server: str, token: str, start: multiprocessing.synchronize.Event, out: multiprocessing.Queue) -> None:
    from nestml_registry.service.workers.http_access import HttpAccess
    from nestml_registry.service.workers.queue_access import Outcome

    access = HttpAccess(server, token)
    wid = f"bench:{os.getpid()}:x"
    latencies = []
    start.wait()
    while True:
        t0 = time.perf_counter()
        build = access.claim(wid, TOOLCHAIN, 60)
        latencies.append(time.perf_counter() - t0)
        if build is None:
            break
        access.finish(build, wid, Outcome([{"severity": "error", "message": "benchmark"}], None))
    access.close()
    out.put(latencies[:-1])


def serve(url: str, home: Path) -> tuple[subprocess.Popen, str, str]:
    """``nestml-registry serve --workers 0`` on ``url``, and a worker token for it."""
    from nestml_registry.registry import tokens

    engine = db.make_engine(url)
    with db.make_sessionmaker(engine).begin() as s:
        _, token = tokens.create_token(s, "bench-node", "worker")
    engine.dispose()
    port = free_port()
    # publishing queues characterisations where the API records builds: off, as for the database workers
    env = dict(os.environ, NESTML_REGISTRY_HOME=str(home), NESTML_REGISTRY_DATABASE_URL=url,
               NESTML_REGISTRY_CHARACTERISE="0")
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{server}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, server, token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def claims(backend: str, workers: int, n: int, root: Path, http: bool = False) -> tuple[float, list[float]]:
    url = new_database(backend, root)
    server = None
    try:
        db.upgrade(url)
        fill(url, n)
        ctx = multiprocessing.get_context("spawn")
        start, out = ctx.Event(), ctx.Queue()
        if http:
            server, base, token = serve(url, Path(tempfile.mkdtemp(dir=root)))
            procs = [ctx.Process(target=http_claimer, args=(base, token, start, out)) for _ in range(workers)]
        else:
            procs = [ctx.Process(target=claimer, args=(url, start, out)) for _ in range(workers)]
        for p in procs:
            p.start()
        time.sleep(1.5)  # let every process import and connect
        t0 = time.perf_counter()
        start.set()
        latencies = [x for _ in procs for x in out.get()]
        wall = time.perf_counter() - t0
        for p in procs:
            p.join()
        assert len(latencies) == n, (len(latencies), n)
        return wall, latencies
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
        drop_database(url)


def compile_batch(models: list[Path], workers: int, root: Path, shared: Path, http: bool = False) -> float:
    home = Path(tempfile.mkdtemp(dir=root))
    cache = home / "cache"
    shutil.copytree(shared / "toolchains", cache / "toolchains")  # detection + precompiled header only
    url = db.default_url(home)
    db.upgrade(url)
    toolchain = detect(cache)
    engine = db.make_engine(url)
    with db.make_sessionmaker(engine).begin() as s:
        for m in models:
            submit(s, BuildRequest.create([Source.from_path(m)]), toolchain.id)
    engine.dispose()
    env = dict(os.environ, NESTML_REGISTRY_HOME=str(home), NESTML_REGISTRY_CCACHE="0")
    server, argv = None, [*CLI, "worker", "--burst", "--concurrency", str(workers)]
    if http:  # the worker's home has only the build cache: no database, no store
        server, base, token = serve(url, Path(tempfile.mkdtemp(dir=root)))
        env.update(NESTML_REGISTRY_TOKEN=token)
        argv += ["--server", base]
    env["NESTML_REGISTRY_CHARACTERISE"] = "0"
    try:
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        wall = time.perf_counter() - t0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
    engine = db.make_engine(url)
    with db.make_sessionmaker(engine)() as s:
        counts = queue.counts_by_status(s)
    engine.dispose()
    assert counts[BuildStatus.SUCCEEDED.value] == len(models), counts
    return wall


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--claims", type=int, default=400)
    ap.add_argument("--models", default="izhikevich_neuron,iaf_psc_exp_neuron,iaf_psc_delta_neuron,"
                                        "aeif_cond_exp_neuron")
    ap.add_argument("--skip-compile", action="store_true")
    ap.add_argument("--skip-claims", action="store_true")
    ap.add_argument("--rounds", type=int, default=1, help="compile rounds, alternating which kind goes first")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nmlqueue-"))
    print(f"{os.cpu_count()} cores; {args.claims} queued builds per run, claim -> finish, no compile")
    print(f"{'database':10} {'workers':>7} {'claims/s':>9} {'p50 ms':>8} {'p99 ms':>8}   {'HTTP claims/s':>13} "
          f"{'p50 ms':>8} {'p99 ms':>8}  p50 HTTP/DB")
    for backend in () if args.skip_claims else ("sqlite", "postgresql"):
        for workers in (1, 2, 4):
            wall, lat = claims(backend, workers, args.claims, root)
            hwall, hlat = claims(backend, workers, args.claims, root, http=True)
            print(f"{backend:10} {workers:>7} {args.claims / wall:>9.0f} {statistics.median(lat) * 1000:>8.2f}"
                  f" {pct(lat, 99) * 1000:>8.2f}   {args.claims / hwall:>13.0f} {statistics.median(hlat) * 1000:>8.2f}"
                  f" {pct(hlat, 99) * 1000:>8.2f}  x{statistics.median(hlat) / statistics.median(lat):.1f}",
                  flush=True)
    if not args.skip_compile:
        models_dir = Path(sysconfig.get_path("data")) / "models" / "neurons"
        models = [models_dir / f"{m}.nestml" for m in args.models.split(",")]
        shared = root / "shared"
        PchBuild(detect(shared), shared, timeout=600).wait()
        print(f"\ncompile throughput, {len(models)} distinct shipped models, cold build caches, no ccache")
        for workers in (1, 2):
            ratios = []
            for r in range(args.rounds):
                first_http = r % 2 == 1
                a = compile_batch(models, workers, root, shared, http=first_http)
                b = compile_batch(models, workers, root, shared, http=not first_http)
                on_db, on_http = (b, a) if first_http else (a, b)
                ratios.append(on_http / on_db)
                print(f"{workers} worker(s): database {on_db:6.1f} s ({len(models) / on_db * 60:.1f} modules/min), "
                      f"HTTP {on_http:6.1f} s ({len(models) / on_http * 60:.1f} modules/min): HTTP/database "
                      f"x{on_http / on_db:.3f}", flush=True)
            print(f"{workers} worker(s): median HTTP/database x{statistics.median(ratios):.3f} over {len(ratios)} "
                  "round(s)", flush=True)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
