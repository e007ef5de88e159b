"""Waves of concurrent clients against a running registry (used by ``http_api.py``).

A wave starts C clients at the same instant, each opening its own connection then (C connects at
once) and sending R requests on it one after the other (HTTP/1.1 keep-alive, plain asyncio streams: a
client that costs far less CPU than httpx, which shares the machine's two cores with the server); every
answer is checked (status 200; a download's sha256). It reports errors (any other status, or no
answer within the timeout: a hang), p50/p99 latency and throughput.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit


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


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 answer: status, body (by Content-Length), whether the server keeps the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection", "").lower() != "close"


async def _one_client(host: str, port: int, path: str, sha: str | None, per_client: int, timeout: float,
                      start: asyncio.Event, wave: Wave, headers: str) -> None:
    """A client of its own connection, as lean as a client can be (plain asyncio streams, HTTP/1.1
    keep-alive), so that the server, not the clients, is what a wave measures on a shared machine."""
    await start.wait()
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n{headers}\r\n".encode()
    writer = None
    try:
        for _ in range(per_client):
            wave.requests += 1
            t0 = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
                writer.write(request)
                status, body, keep = await asyncio.wait_for(_answer(reader), timeout)
            except TimeoutError:
                wave.errors["hang"] += 1
                return
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                wave.errors[type(exc).__name__] += 1
                return
            if not keep:
                writer.close()
                writer = None
            if status != 200:
                wave.errors[str(status)] += 1
            elif sha is not None and hashlib.sha256(body).hexdigest() != sha:
                wave.errors["bad bytes"] += 1
            else:
                wave.latencies.append(time.perf_counter() - t0)
    finally:
        if writer is not None:
            writer.close()


async def _wave(url: str, kind: str, path: str, sha: str | None, clients: int, per_client: int,
                timeout: float, headers: dict[str, str]) -> Wave:
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    wave = Wave(kind, clients)
    start = asyncio.Event()
    tasks = [asyncio.create_task(_one_client(host, port, path, sha, per_client, timeout, start, wave,
                                              "".join(f"{k}: {v}\r\n" for k, v in headers.items())))
             for _ in range(clients)]
    await asyncio.sleep(0.2)  # every client is ready; then all at once
    t0 = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    wave.wall = time.perf_counter() - t0
    return wave


def run_wave(url: str, kind: str, path: str, clients: int, per_client: int = 3, sha: str | None = None,
             timeout: float = 60.0, headers: dict[str, str] | None = None) -> Wave:
    """``headers``: sent with every request (a job's token)."""
    return asyncio.run(_wave(url, kind, path, sha, clients, per_client, timeout, headers or {}))


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
