"""Prometheus metrics of the API (text format at ``GET /metrics``).

Two kinds: counters of what this API process sees (downloads, build cache hits, submissions, upload
rejections by reason), kept in a registry of the app's own (so several apps in one process do not
mix), and values read from the database at each scrape (builds by status, queue depth per
toolchain, compile durations of finished builds), which every API process reports alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, extract, func, select
from sqlalchemy.orm import Session

from nestml_registry.registry import queue, toolchains, workers
from nestml_registry.registry.tables import Build, BuildStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
PREFIX = "nestml_registry_"


class ApiMetrics:
    """The counters of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.downloads = Counter(PREFIX + "artifact_downloads", "Module artifacts served (200 answers)",
                                 registry=self.registry)
        self.resolves = Counter(PREFIX + "resolve_requests", "GET /v1/resolve requests (a job that resolves once "
                                "per run, whatever its rank count, adds one per run)", registry=self.registry)
        self.not_modified = Counter(PREFIX + "artifact_not_modified", "Artifact requests answered 304",
                                    registry=self.registry)
        self.cache_hits = Counter(PREFIX + "build_cache_hits",
                                  "Build submissions answered with a build that had already succeeded",
                                  registry=self.registry)
        self.submissions = Counter(PREFIX + "build_submissions", "Accepted build submissions by outcome "
                                   "(queued: a new or requeued build; existing: an identical build already known)",
                                   ["outcome"], registry=self.registry)
        self.upload_rejections = Counter(PREFIX + "upload_rejections", "Build uploads refused, by reason",
                                         ["reason"], registry=self.registry)
        self.sweeps = Counter(PREFIX + "lease_sweeps", "Sweeps of expired leases this API process ran",
                              registry=self.registry)
        self.swept = Counter(PREFIX + "builds_swept", "Builds whose worker died that this API process's sweeps "
                             "put back in the queue (or failed after their attempts)", registry=self.registry)
        self.worker_restarts = Counter(PREFIX + "worker_restarts", "Embedded compile workers (serve) that exited "
                                       "on their own and were restarted", registry=self.registry)
        self.at_capacity = Counter(PREFIX + "requests_at_capacity", "Requests answered 503 at_capacity (every "
                                   "database connection stayed busy)", registry=self.registry)

    def reject(self, reason: str) -> None:
        self.upload_rejections.labels(reason=reason).inc()

    def render(self, session: Session) -> bytes:
        """The text exposition: this process's counters, then what the database says now."""
        snapshot = CollectorRegistry(auto_describe=False)
        snapshot.register(_DatabaseCollector(_read_database(session)))
        return generate_latest(self.registry) + generate_latest(snapshot)


def _duration_seconds(session: Session) -> Any:
    """``finished_at - started_at`` in seconds, in the database's own dialect."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(Build.finished_at) - func.julianday(Build.started_at)) * 86400.0
    return extract("epoch", Build.finished_at - Build.started_at)


def _read_database(session: Session) -> dict[str, Any]:
    duration = _duration_seconds(session)
    bucket_columns = [func.sum(case((duration <= le, 1), else_=0)) for le in DURATION_BUCKETS]
    finished = session.execute(
        select(Build.status, func.count(), func.coalesce(func.sum(duration), 0.0), *bucket_columns)
        .where(Build.finished_at.is_not(None), Build.started_at.is_not(None),
               Build.status.in_([BuildStatus.SUCCEEDED, BuildStatus.FAILED]))
        .group_by(Build.status)).all()
    depth = dict(session.execute(select(Build.toolchain, func.count()).where(Build.status == BuildStatus.QUEUED)
                                 .group_by(Build.toolchain)).all())
    return {"counts": queue.counts_by_status(session), "depth": depth,
            "durations": [(BuildStatus(r[0]).value, int(r[1]), float(r[2] or 0.0), [int(x or 0) for x in r[3:]])
                          for r in finished],
            "toolchains": [t.id for t in toolchains.known(session)],
            "sandboxed": {t.id: sandboxed(t.details) for t in toolchains.known(session)},
            "workers": workers.by_toolchain(session)}


def sandboxed(details: Any) -> bool:
    """Whether the workers of a toolchain said, when they last registered, that they sandbox builds."""
    return not isinstance(details, dict) or details.get("sandboxed", True) is not False


class _DatabaseCollector(Collector):
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def collect(self) -> Iterator[Metric]:
        builds = GaugeMetricFamily(PREFIX + "builds", "Builds in the registry by status", labels=["status"])
        for status, n in sorted(self.data["counts"].items()):
            builds.add_metric([status], n)
        yield builds
        depth = GaugeMetricFamily(PREFIX + "queue_depth", "Builds waiting for a worker, by toolchain",
                                  labels=["toolchain"])
        for toolchain in sorted(set(self.data["toolchains"]) | set(self.data["depth"])):
            depth.add_metric([toolchain], self.data["depth"].get(toolchain, 0))
        yield depth
        total = GaugeMetricFamily(PREFIX + "queue_depth_total", "Builds waiting for a worker")
        total.add_metric([], sum(self.data["depth"].values()))
        yield total
        durations = HistogramMetricFamily(PREFIX + "compile_duration_seconds",
                                          "Time from claim to finish of the finished builds (last attempt)",
                                          labels=["status"])
        for status, count, total_seconds, cumulative in self.data["durations"]:
            buckets = [(f"{le:g}", n) for le, n in zip(DURATION_BUCKETS, cumulative, strict=True)]
            durations.add_metric([status], [*buckets, ("+Inf", count)], total_seconds)
        yield durations
        known = GaugeMetricFamily(PREFIX + "toolchains", "Toolchains that compile workers have registered")
        known.add_metric([], len(self.data["toolchains"]))
        yield known
        sandbox = GaugeMetricFamily(PREFIX + "build_sandbox", "1 when a toolchain's workers sandbox their builds, "
                                    "0 when their operator turned it off (NESTML_REGISTRY_SANDBOX=0)",
                                    labels=["toolchain"])
        for toolchain, on in sorted(self.data["sandboxed"].items()):
            sandbox.add_metric([toolchain], 1 if on else 0)
        yield sandbox
        yield from _worker_metrics(self.data["workers"])


def _worker_metrics(rows: list[workers.ToolchainWorkers]) -> Iterator[Metric]:
    live = GaugeMetricFamily(PREFIX + "workers_live", "Compile workers alive (by heartbeat), by toolchain",
                             labels=["toolchain"])
    retries = GaugeMetricFamily(PREFIX + "worker_retries", "Database or disk errors the live workers of a "
                                "toolchain retried since they started", labels=["toolchain"])
    stranded = GaugeMetricFamily(PREFIX + "toolchains_stranded", "Toolchains with queued builds and no live worker")
    for row in rows:
        live.add_metric([row.toolchain], row.live)
        retries.add_metric([row.toolchain], row.retries)
    stranded.add_metric([], sum(1 for r in rows if r.stranded))
    yield live
    yield retries
    yield stranded
