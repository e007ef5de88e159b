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

from nestml_registry.registry import agreement as agreement_
from nestml_registry.registry import characterisations, owners, publishing, queue, records, reported
from nestml_registry.registry.errors import NotReproducible
from nestml_registry.registry.store import StoredArtifact
from nestml_registry.registry.tables import BuildStatus


def record_success(session: Session, build_id: int, worker_id: str, stored: StoredArtifact, module_name: str,
                   diagnostics: list[dict], log: str | None, timings: dict[str, float] | None,
                   models: list[dict[str, Any]], *, characterise: bool, agreement: int = 1) -> bool:
    """The build succeeded with the module ``stored`` in the artifact store: record it (for the build's own
    toolchain, whatever the worker's is), publish its models as versions of their names once they are checked
    against the build (:mod:`nestml_registry.registry.reported`) and (with ``characterise``) queue their
    characterisations. ``worker_id`` (the lease owner) is recorded as the build's ``built_by``. With
    ``agreement`` > 1, a report is kept and the build queued for another worker until that many agree
    (:mod:`nestml_registry.registry.agreement`)."""
    if not queue.holds(session, build_id, worker_id):
        return False
    build = queue.get_build(session, build_id)
    models = reported.checked_models(build, module_name, models)  # what the build allows, never the worker's word
    if build.module is not None and build.module.sha256 != stored.sha256:  # made again to repair its module
        raise NotReproducible(
            f"build {build_id} was made again to repair its module {build.module.sha256}, but gave other bytes "
            f"({stored.sha256}): the module is not repaired. Its toolchain's builds differ between this worker and "
            "the one that built it first; restore the module from a copy (store verify --repair --copies) or push "
            "the model as a new version", {"registered": build.module.sha256, "rebuilt": stored.sha256})
    if not agreement_.judge(session, build, worker_id, stored, agreement).publish:
        return True  # kept: another worker builds it too
    module = records.get_or_create_module(session, stored.sha256, module_name, stored.size, build.toolchain,
                                          stored.location)
    if not queue.finish(session, build_id, worker_id, BuildStatus.SUCCEEDED, diagnostics, log, module,
                        timings=timings):
        return False
    build = queue.get_build(session, build_id)
    build.models = models  # what a later request with only other comments publishes (registry.same_code)
    submitter, admin = owners.submitter_of(session, build)
    published = publishing.publish(session, build, module, models, submitter, admin=admin, built_by=worker_id)
    if characterise:
        characterisations.queue_published(session, published, build.toolchain)
    return True


def record_failure(session: Session, build_id: int, worker_id: str, diagnostics: list[dict], log: str | None,
                   timings: dict[str, float] | None = None) -> bool:
    return queue.finish(session, build_id, worker_id, BuildStatus.FAILED, diagnostics, log, timings=timings)
