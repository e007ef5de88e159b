"""Build a published model version again for another toolchain (a simulation machine's).

The sources and options are those of the build that published the version, so the new module has
the same behaviour; the new build is attributed to the original submitter, whose names it publishes.
Functions take a Session and do not commit."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from nestml_registry.compiler.request import BuildRequest
from nestml_registry.compiler.sources import Source as SourceText
from nestml_registry.registry import listing, resolving
from nestml_registry.registry.errors import NotFound
from nestml_registry.registry.queue import sources_of
from nestml_registry.registry.tables import Build, BuildStatus, ModelModule, ModelVersion


def publishing_build(session: Session, reference: str) -> tuple[ModelVersion, Build]:
    """The model version ``reference`` (``NAME[@VERSION]``, newest without a version) and the succeeded
    build that published it. Raises InvalidReference for a reference that is not one, NotFound (listing
    the versions, or close names) when there is none."""
    _, wanted = resolving.parse_reference(reference)
    detail = listing.model_detail(session, reference)  # NotFound with close names for an unknown model
    name = detail["name"]
    numbers = sorted(v["version"] for v in detail["versions"])
    if not numbers or (wanted is not None and wanted not in numbers):
        raise NotFound(f"model {name!r} has no version {wanted}: it has versions {', '.join(map(str, numbers))}; "
                       "use one of them or leave out @VERSION for the newest", {"model": name, "versions": numbers})
    number = wanted if wanted is not None else numbers[-1]
    version = session.scalars(select(ModelVersion).where(ModelVersion.name == name,
                                                         ModelVersion.version == number)).one()
    module_ids = select(ModelModule.module_id).where(ModelModule.model_version_id == version.id)
    build = session.scalars(select(Build).where(Build.module_id.in_(module_ids),
                                                Build.status == BuildStatus.SUCCEEDED)
                            .order_by(Build.finished_at, Build.id).limit(1)).first()
    if build is None:
        raise NotFound(f"{name}@{number} has no successful build to repeat: push its source again",
                       {"model": name, "version": number})
    return version, build


def request_of(build: Build) -> BuildRequest:
    """The build request of a stored build, rebuilt from its sources and options."""
    sources = [SourceText.from_text(name, text) for name, _, text in sources_of(build)]
    return BuildRequest.from_dict(sources, build.request or {})
