"""Waves of concurrent clients against a running registry (used by ``http_api.py``).

A wave starts C clients at the same instant, each on its own connection (one pool of C connections,
opened as the wave starts: C connects at once), each sending R requests one after the other; every
answer is checked (status 200; a download's sha256). It reports errors (any other status, or no
answer within the timeout: a hang), p50/p99 latency and throughput.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class Wave:
    kind: str
    clients: int
    requests: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    wall: float = 0.0

    def pct(self, p: float) -> float:
        values = sorted(self.latencies) or [float("nan")]
        return values[min(len(values) - 1, int(p / 100 * len(values)))]

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    def line(self, base: Wave | None = None) -> str:
        errors = sum(self.errors.values())
        detail = f" ({', '.join(f'{k} x{n}' for k, n in self.errors.most_common(3))})" if errors else ""
        ratio = f", x{self.throughput / base.throughput:.2f} the throughput at {base.clients}" \
            if base is not None and base is not self and base.throughput else ""
        return (f"{self.kind:<16} {self.clients:>5} clients: {self.requests:>5} requests, {errors} errors{detail}, "
                f"p50 {self.pct(50) * 1000:7.1f} ms, p99 {self.pct(99) * 1000:7.1f} ms, "
                f"{self.throughput:6.0f} req/s{ratio}")


async def _one_client(client: httpx.AsyncClient, path: str, sha: str | None, per_client: int,
                      start: asyncio.Event, wave: Wave) -> None:
    await start.wait()
    for _ in range(per_client):
        t0 = time.perf_counter()
        wave.requests += 1
        try:
            r = await client.get(path)
        except httpx.TimeoutException:
            wave.errors["hang"] += 1
            continue
        except httpx.TransportError as exc:
            wave.errors[type(exc).__name__] += 1
            continue
        if r.status_code != 200:
            code = r.json().get("error", {}).get("code", "") if r.headers.get("content-type", "").startswith(
                "application/json") else ""
            wave.errors[f"{r.status_code} {code}".strip()] += 1
            continue
        if sha is not None and hashlib.sha256(r.content).hexdigest() != sha:
            wave.errors["bad bytes"] += 1
            continue
        wave.latencies.append(time.perf_counter() - t0)


async def _wave(url: str, kind: str, path: str, sha: str | None, clients: int, per_client: int,
                timeout: float) -> Wave:
    wave = Wave(kind, clients)
    start = asyncio.Event()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        tasks = [asyncio.create_task(_one_client(client, path, sha, per_client, start, wave))
                 for _ in range(clients)]
        await asyncio.sleep(0.2)  # every client is ready; then all at once
        t0 = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        wave.wall = time.perf_counter() - t0
    return wave


def run_wave(url: str, kind: str, path: str, clients: int, per_client: int = 3, sha: str | None = None,
             timeout: float = 60.0) -> Wave:
    return asyncio.run(_wave(url, kind, path, sha, clients, per_client, timeout))


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="One wave against a running registry: "
                                             "load_waves.py http://127.0.0.1:8000 /healthz --clients 1000")
    ap.add_argument("url")
    ap.add_argument("path", help="e.g. /healthz, /v1/resolve?model=M&toolchain=T, /v1/modules/SHA/artifact")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--requests", type=int, default=3, help="requests per client, one after the other")
    ap.add_argument("--sha256", help="check each answer's bytes against this sha256 (downloads)")
    args = ap.parse_args()
    print(run_wave(args.url, args.path, args.path, args.clients, args.requests, args.sha256).line())


if __name__ == "__main__":
    main()
