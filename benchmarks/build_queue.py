"""The build queue: claim latency and throughput with 1, 2 and 4 worker processes on SQLite and
PostgreSQL, and compile throughput of distinct shipped models with 1 and 2 real workers.

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
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from nestml_registry.compiler.pch import PchBuild
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.compiler.sources import Source
from nestml_registry.compiler.toolchain import detect
from nestml_registry.registry import db, queue
from nestml_registry.registry.tables import BuildStatus
from nestml_registry.service.submit import submit

CLI = [sys.executable, "-m", "nestml_registry.service.cli"]  # the nestml-registry command

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


def claims(backend: str, workers: int, n: int, root: Path) -> tuple[float, list[float]]:
    url = new_database(backend, root)
    try:
        db.upgrade(url)
        fill(url, n)
        ctx = multiprocessing.get_context("spawn")
        start, out = ctx.Event(), ctx.Queue()
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
        drop_database(url)


def compile_batch(models: list[Path], workers: int, root: Path, shared: Path) -> float:
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
    t0 = time.perf_counter()
    subprocess.run([*CLI, "worker", "--burst", "--concurrency", str(workers)],
                   env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
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
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nmlqueue-"))
    print(f"{os.cpu_count()} cores; {args.claims} queued builds per run, claim -> finish, no compile")
    print(f"{'database':10} {'workers':>7} {'claims/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for backend in ("sqlite", "postgresql"):
        for workers in (1, 2, 4):
            wall, lat = claims(backend, workers, args.claims, root)
            print(f"{backend:10} {workers:>7} {args.claims / wall:>9.0f} {statistics.median(lat) * 1000:>8.2f}"
                  f" {pct(lat, 99) * 1000:>8.2f}", flush=True)
    if not args.skip_compile:
        models_dir = Path(sysconfig.get_path("data")) / "models" / "neurons"
        models = [models_dir / f"{m}.nestml" for m in args.models.split(",")]
        shared = root / "shared"
        PchBuild(detect(shared), shared, timeout=600).wait()
        print(f"\ncompile throughput, {len(models)} distinct shipped models, cold build caches, no ccache")
        one = compile_batch(models, 1, root, shared)
        print(f"1 worker : {one:6.1f} s ({len(models) / one * 60:.1f} modules/min)", flush=True)
        two = compile_batch(models, 2, root, shared)
        print(f"2 workers: {two:6.1f} s ({len(models) / two * 60:.1f} modules/min)  speed-up x{one / two:.2f}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
