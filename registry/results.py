"""A finished build's result, recorded by the worker that holds its lease: the one path for a worker on
the database (``service.worker``) and for one that reports over HTTP (``service.routes.worker_api``).

Call each in its own transaction and commit at once; both return False (nothing written) when the worker
no longer holds the lease. ``record_success`` raises a :class:`~nestml_registry.registry.errors.RegistryError`
when the models cannot be published (e.g. a name owned by someone else): roll back, then
``record_failure`` with the error's message in a new transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from nestml_registry.registry import characterisations, owners, publishing, queue, records
from nestml_registry.registry.store import StoredArtifact
from nestml_registry.registry.tables import BuildStatus


def record_success(session: Session, build_id: int, worker_id: str, stored: StoredArtifact, module_name: str,
                   toolchain: str, diagnostics: list[dict], log: str | None, timings: dict[str, float] | None,
                   models: list[dict[str, Any]], *, characterise: bool) -> bool:
    """The build succeeded with the module ``stored`` in the artifact store: record it, publish its models
    as versions of their names and (with ``characterise``) queue their characterisations."""
    module = records.get_or_create_module(session, stored.sha256, module_name, stored.size, toolchain,
                                          stored.location)
    if not queue.finish(session, build_id, worker_id, BuildStatus.SUCCEEDED, diagnostics, log, module,
                        timings=timings):
        return False
    build = queue.get_build(session, build_id)
    submitter, admin = owners.submitter_of(session, build)
    published = publishing.publish(session, build, module, models, submitter, admin=admin)
    if characterise:
        characterisations.queue_published(session, published, build.toolchain)
    return True


def record_failure(session: Session, build_id: int, worker_id: str, diagnostics: list[dict], log: str | None,
                   timings: dict[str, float] | None = None) -> bool:
    return queue.finish(session, build_id, worker_id, BuildStatus.FAILED, diagnostics, log, timings=timings)
