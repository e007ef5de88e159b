"""Two workers agree before a module is published (``NESTML_REGISTRY_AGREEMENT=2``).

Builds are reproducible (one build key gives one sha256 on every worker of a toolchain), so a lab whose
workers run on machines it does not fully trust (HTTP workers with worker tokens) can require that a
second worker, of another machine or token, builds the same bytes before anything is published. The
first report is kept on the build (``reports``) and the build goes back to the queue, where neither that
worker nor any other of its machine or token may claim it (``reported_by``); the second report publishes
the module if its sha256 is the same, and fails the build, naming both, if it is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from nestml_registry.registry.errors import Conflict
from nestml_registry.registry.store import StoredArtifact
from nestml_registry.registry.tables import Build, BuildStatus


class WorkersDisagree(Conflict):
    """Two workers built one build key to different bytes."""

    code = "workers_disagree"


@dataclass(frozen=True)
class Verdict:
    publish: bool  # False: the report was kept and the build waits for another worker


def identity(lease_owner: str) -> str:
    """Who a worker is for agreement: its token's name (HTTP workers: ``token/worker``), else its machine
    (database workers: ``host:pid:random``)."""
    return lease_owner.split("/", 1)[0] if "/" in lease_owner else lease_owner.split(":", 1)[0]


def judge(session: Session, build: Build, worker_id: str, stored: StoredArtifact, needed: int) -> Verdict:
    """With ``needed`` workers to agree: keep this report and queue the build for another worker, or say it
    may be published (enough workers built these bytes); raises :class:`WorkersDisagree` when they differ."""
    if needed <= 1:
        return Verdict(True)
    who = identity(worker_id)
    reports: list[dict[str, Any]] = [dict(r) for r in build.reports or []]
    others = [r for r in reports if r.get("by") != who]
    differing = [r for r in others if r.get("sha256") != stored.sha256]
    if differing:
        raise WorkersDisagree(
            f"workers disagree on build {build.id}: {differing[0].get('by')} built {differing[0].get('sha256')}, "
            f"{who} built {stored.sha256}; nothing was published. One of them is not a faithful worker of the "
            "toolchain (or the builds are not reproducible): check both machines",
            {"reports": [*differing, {"by": who, "sha256": stored.sha256}]})
    if len({r.get("by") for r in others}) + 1 >= needed:
        return Verdict(True)
    reports.append({"by": who, "sha256": stored.sha256, "size": stored.size, "location": stored.location})
    session.execute(update(Build).where(Build.id == build.id, Build.status == BuildStatus.RUNNING,
                                        Build.lease_owner == worker_id)
                    .values(status=BuildStatus.QUEUED, lease_owner=None, lease_expires_at=None, heartbeat_at=None,
                            stage=f"built by {who}; waiting for another worker to agree", reports=reports,
                            reported_by="|" + "|".join(sorted({r["by"] for r in reports})) + "|")
                    .execution_options(synchronize_session=False))
    return Verdict(False)
