"""Queue a build request for a toolchain after the checks every submission gets: what ``POST /v1/builds``
and the NEST Desktop front door call (the queueing itself: :func:`nestml_registry.registry.submitting.submit`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from nestml_registry.compiler.key import build_key
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.registry import owners, queue, records, toolchains, workers
from nestml_registry.registry.submitting import submit
from nestml_registry.service.api import schemas
from nestml_registry.service.api.documents import build_document
from nestml_registry.service.api.uploads import Rejected
from nestml_registry.service.settings import Settings


def submit_checked(s: Session, settings: Settings, request: BuildRequest, wanted: str | None, retry: bool,
                   breaking: bool, submitted_by: int | None,
                   publisher: tuple[str, bool] | None) -> tuple[schemas.Build, bool]:
    """Queue ``request`` for the toolchain ``wanted`` (None: the newest one a live worker serves), after the
    checks every submission gets: the publisher owns (or may claim) every name it declares, and the
    toolchain is approved and served. Refusals raise :class:`Rejected` and change nothing."""
    if publisher is not None:  # ownership is decided before any work: nothing of another owner's is compiled
        owners.require_families(s, {m.name for _, m in request.declared_models()}, *publisher)
    known = [t.id for t in toolchains.approved(s)]
    if wanted is not None and wanted not in known and wanted in {t.id for t in toolchains.known(s)}:
        raise Rejected(422, "toolchain_not_approved",
                       f"the toolchain {wanted[:200]!r} was reported by an HTTP worker and waits for an admin's "
                       f"approval (`nestml-registry toolchain approve {wanted[:200]}`): nothing is built for it until "
                       "then; "
                       f"approved: {', '.join(known) or 'none yet'}", "toolchain_not_approved",
                       {"toolchain": wanted[:200], "known": known})
    if wanted is not None and not known and not toolchains.known(s):
        toolchains.check_id(wanted)  # a fresh registry whose first worker is still starting: queued for it
    elif wanted is not None and wanted not in known:
        raise Rejected(422, "unknown_toolchain",
                       f"no compile worker serves the toolchain {wanted[:200]!r}: leave out 'toolchain' for the "
                       f"newest one, or use one of: {', '.join(known) or 'none yet'}", "unknown_toolchain",
                       {"toolchain": wanted[:200], "known": known})
    if not known and wanted is None:
        raise Rejected(503, "no_worker", "no compile worker has registered with this registry yet, so there is no "
                       "toolchain to build for: start one with `nestml-registry worker` (or run the server with "
                       "`nestml-registry serve`, which starts workers), then submit again, or name the toolchain "
                       "to build for (push --toolchain ID: it waits for the first worker of that toolchain)",
                       "no_worker")
    toolchain = wanted or default_toolchain(s, known)
    existed = queue.get_build_by_key(s, build_key(request, toolchain)) is not None
    build, created = submit(s, request, toolchain, submitted_by=submitted_by, max_attempts=settings.max_attempts,
                            retry=retry, allow_breaking=breaking, characterise=settings.characterise)
    if created and existed:  # a failed build queued again: audited
        records.record_event(s, publisher[0] if publisher else owners.principal_name(s, submitted_by), "retry",
                             f"build {build.id}", {"toolchain": build.toolchain})
    return build_document(s, build), created


def default_toolchain(s: Session, known: list[str]) -> str:
    """The most recently seen toolchain that a live worker serves (a toolchain whose workers all stopped
    would queue the build for nobody); the most recently seen one when none is live."""
    return next((t for t in known if workers.of_toolchain(s, t)[0] > 0), known[0])


__all__ = ["default_toolchain", "submit", "submit_checked"]
