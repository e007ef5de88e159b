"""A request that differs from a succeeded build only in comments compiles nothing.

Code generation never sees comments (``compiler.sanitise``), so two requests with one code key
(``compiler.key.code_key``) make the same module. A new build whose code key a succeeded build of its
toolchain already has is finished at once with that build's module, and its models are published from
the new sources: a new version (its source, description and the parameters' comments as now written)
whose page says "comments only; same module". Nothing is compiled and nothing is stored.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nestml_registry.compiler.diagnostics import Diagnostic
from nestml_registry.compiler.sanitise import sanitise
from nestml_registry.registry import characterisations, clock, model_text, owners, publishing
from nestml_registry.registry.records import declared_models
from nestml_registry.registry.tables import Build, BuildStatus

logger = logging.getLogger(__name__)


def same_code_build(session: Session, build: Build) -> Build | None:
    """The first succeeded build of ``build``'s toolchain with its code key and a module, if any."""
    if build.code_key is None:
        return None
    return session.scalars(select(Build).where(
        Build.code_key == build.code_key, Build.toolchain == build.toolchain, Build.id != build.id,
        Build.status == BuildStatus.SUCCEEDED, Build.module_id.is_not(None), Build.models.is_not(None))
        .order_by(Build.id).limit(1)).first()


def reuse(session: Session, build: Build, *, characterise: bool) -> bool:
    """Finish the just queued ``build`` with the module of a succeeded build of the same code, publishing its
    models from ``build``'s own sources; False (nothing changed) when there is none. The caller owns the
    transaction: a refusal at publishing leaves it to be rolled back."""
    done = same_code_build(session, build)
    if done is None or done.module is None:
        return False
    models = [_with_comments(m, build) for m in done.models or [] if isinstance(m, dict)]
    now = clock.now(session)
    build.status = BuildStatus.SUCCEEDED
    build.module = done.module
    build.started_at = build.finished_at = now
    build.stage = "reused"
    build.models = models
    build.timings = {}
    note = (f"only comments differ from build {done.id}: its module {done.module.sha256[:12]} is this build's too "
            "(nothing was compiled)")
    build.diagnostics = [Diagnostic(None, None, None, None, None, "warning", note, "same_code").to_dict()]
    session.flush()
    submitter, admin = owners.submitter_of(session, build)
    published = publishing.publish(session, build, done.module, models, submitter, admin=admin)
    if characterise:
        characterisations.queue_published(session, published, build.toolchain)
    logger.info("build %d reuses the module of build %d (only comments differ)", build.id, done.id)
    return True


def _with_comments(model: dict[str, Any], build: Build) -> dict[str, Any]:
    """``model`` as the new sources describe it: their file name, the comments of its declarations."""
    nestml_name = model.get("nestml_name")
    source = next((bs for bs in build.sources if nestml_name in declared_models(bs.source)), None)
    if source is None:
        return dict(model)
    text = source.source.text
    cleaned = sanitise(text, source.name)
    out = dict(model, source=source.name, source_sha256=source.source.sha256)
    for block in ("parameters", "state"):
        lines = model_text.declaration_lines(text, block, nestml_name)
        out[block] = [dict(v, comment=cleaned.description(lines[v["name"]]) if v.get("name") in lines else None)
                      for v in model.get(block) or [] if isinstance(v, dict)]
    return out
