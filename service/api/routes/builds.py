"""``POST /v1/builds`` (upload sources, queue their build), ``GET /v1/builds/{id}`` and its log.

Nothing is compiled here: a build is queued for a compile worker of the chosen toolchain.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nestml_registry.compiler import hints
from nestml_registry.compiler.errors import InputError
from nestml_registry.compiler.request import DEFAULT_SUFFIX, BuildRequest, Pair
from nestml_registry.compiler.sources import Source
from nestml_registry.registry import owners, queue, rebuilds, records, repair
from nestml_registry.registry.store import ArtifactStore
from nestml_registry.registry.tables import Build as BuildRow
from nestml_registry.registry.tables import BuildStatus
from nestml_registry.service.api import reads, schemas
from nestml_registry.service.api.auth import Principal, may_read_failed_log
from nestml_registry.service.api.database import Database
from nestml_registry.service.api.deps import DatabaseDep, MetricsDep, PublisherDep, ReaderDep, SettingsDep, StoreDep
from nestml_registry.service.api.documents import build_document
from nestml_registry.service.api.errors import ApiError, error_responses
from nestml_registry.service.api.metrics import ApiMetrics
from nestml_registry.service.api.submit import submit_checked
from nestml_registry.service.api.uploads import FILE_FIELD, Rejected, Upload, read_upload
from nestml_registry.service.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["builds"])
BuildId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The build's id")]
ModelReference = Annotated[str, Path(max_length=300, description="NAME, NAME_nestml or NAME@VERSION")]
MAX_PAIRS = 64
MAX_FILE_NAME = 255
MAX_MODULE_NAME = 200
MAX_SUFFIX = 64
MAX_LIST = 500
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")

_FORM = {
    "type": "object",
    "required": [FILE_FIELD],
    "properties": {
        FILE_FIELD: {"type": "array", "minItems": 1, "items": {"type": "string", "format": "binary"},
                     "description": "One or more .nestml files (UTF-8). A part's file name is only shown in "
                                    "diagnostics; it is never used as a path."},
        "module": {"type": "string", "description": "Module name ending in 'module' (default: from the model)"},
        "pairs": {"type": "string", "description": 'JSON list of {"neuron": N, "synapse": S, "post_ports": [..]?}'},
        "suffix": {"type": "string", "description": f"Appended to every model name (default {DEFAULT_SUFFIX!r})"},
        "weight_variables": {"type": "string", "description": 'JSON object {"<synapse>": "<variable>"}'},
        "delay_variables": {"type": "string", "description": 'JSON object {"<synapse>": "<variable>"}: the '
                                                              "variable that is NEST's connection delay"},
        "toolchain": {"type": "string", "description": "A toolchain id (GET /v1/toolchains); default: the toolchain "
                                                       "a compile worker registered most recently"},
        "retry": {"type": "boolean", "description": "Queue a failed identical build again"},
        "breaking": {"type": "boolean", "description": "Publish new versions even if they drop parameters, state "
                                                       "variables or input ports of the version before"},
    },
}


def _json_field(upload: Upload, name: str, expected: type, example: str) -> Any:
    raw = upload.fields.get(name, "").strip()
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"the field {name!r} is not valid JSON ({exc.msg} at character {exc.pos}): "
                         f"write it like {example}") from None
    if not isinstance(value, expected):
        raise InputError(f"the field {name!r} must be a JSON {'object' if expected is dict else 'list'}, "
                         f"like {example}")
    return value


def _source(name: str, data: bytes) -> Source:
    """One uploaded file. Its name is only shown (never a path): a name that is a path is refused."""
    if len(name) > MAX_FILE_NAME or any(c in name for c in "/\\") or not name.isprintable():
        raise InputError(f"invalid file name {name[:80]!r}{'...' if len(name) > 80 else ''}: give each file its own "
                         f"name (no '/' or '\\', no control characters, at most {MAX_FILE_NAME} characters), "
                         "e.g. my_neuron.nestml")
    source = Source.from_bytes(name, data, max_bytes=None)  # the upload's own limit (max_upload_bytes) applies
    if not source.models():
        raise InputError(hints.old_keyword(source.text, source.name) or
                         f"{source.name}: declares no model; a NESTML file defines at least one 'model <name>:'")
    return source


def _flag(upload: Upload, name: str) -> bool:
    text = upload.fields.get(name, "").strip().lower()
    if text not in _TRUE + _FALSE:
        raise InputError(f"{name} is {text[:20]!r}: use true or false")
    return text in _TRUE


def _request_from(upload: Upload) -> tuple[BuildRequest, str | None, bool]:
    """The build request, the toolchain asked for and the retry flag; InputError when invalid."""
    sources = [_source(name, data) for name, data in upload.files]
    pairs = _json_field(upload, "pairs", list, '[{"neuron": "iaf_psc_exp_neuron", "synapse": "stdp_synapse"}]') or []
    if len(pairs) > MAX_PAIRS:
        raise InputError(f"{len(pairs)} pairs: at most {MAX_PAIRS} go into one module")
    weights = _json_field(upload, "weight_variables", dict, '{"stdp_synapse": "w"}') or {}
    delays = _json_field(upload, "delay_variables", dict, '{"stdp_synapse": "d"}') or {}
    for field, given, example in (("weight_variables", weights, "w"), ("delay_variables", delays, "d")):
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in given.items()):
            raise InputError(f'{field} maps synapse names to variable names, like {{"stdp_synapse": "{example}"}}')
    module = upload.fields.get("module", "").strip() or None
    if module is not None and len(module) > MAX_MODULE_NAME:
        raise InputError(f"the module name is longer than {MAX_MODULE_NAME} characters: give a shorter one")
    suffix = upload.fields.get("suffix", DEFAULT_SUFFIX).strip()
    if len(suffix) > MAX_SUFFIX:
        raise InputError(f"the suffix is longer than {MAX_SUFFIX} characters: give a shorter one")
    retry = _flag(upload, "retry")
    request = BuildRequest.create(sources, module=module, suffix=suffix, pairs=[Pair.from_dict(p) for p in pairs],
                                  weight_variables=weights, delay_variables=delays)
    return request, upload.fields.get("toolchain", "").strip() or None, retry


@router.post("/builds", status_code=202, response_model=schemas.Build,
             summary="Upload .nestml sources and queue their build",
             responses={200: {"model": schemas.Build, "description": "An identical build already finished "
                                                                      "(succeeded, or failed without retry)"},
                        **error_responses(400, 401, 403, 413, 415, 422, 503)},
             openapi_extra={"requestBody": {"required": True,
                                            "content": {"multipart/form-data": {"schema": _FORM}}},
                            "x-access": "publish"})
async def create_build(request: Request, response: Response, principal: PublisherDep, settings: SettingsDep,
                       metrics: MetricsDep, db: DatabaseDep, store: StoreDep) -> schemas.Build:
    """Queued or running: 202; an identical build that already succeeded: 200 (its module is ready).
    An identical build that failed is returned as it is (200) unless ``retry`` is true.
    ``Location`` names the build either way; poll it until it succeeded or failed."""
    document = await queue_upload(request, principal, settings, metrics, db, store)
    response.status_code = 202 if document.status in ("queued", "running") else 200
    response.headers["Location"] = f"/v1/builds/{document.id}"
    return document


async def queue_upload(request: Request, principal: Principal | None, settings: Settings, metrics: ApiMetrics,
                       db: Database, store: ArtifactStore,
                       adapt: Callable[[Upload], None] | None = None) -> schemas.Build:
    """Read the multipart upload of ``request`` and queue its build (or find the identical one), for the
    API and the upload page alike; ``adapt`` may rewrite the form's fields first."""
    try:
        upload = await read_upload(request, settings.max_upload_bytes, settings.max_files)
        try:
            if adapt is not None:
                adapt(upload)
            build_request, wanted, retry = _request_from(upload)
            breaking = _flag(upload, "breaking")
        except InputError as exc:
            raise Rejected(422, "invalid_input", str(exc), "invalid_input") from None
        publisher = (principal.name, principal.has("admin")) if principal else (owners.LOCAL, False)
        document, created = await db.write(submit_checked, settings, build_request, wanted, retry, breaking,
                                           principal.token_id if principal else None, publisher)
        if retry:
            document, created = await _rebuild_if_damaged(db, store, document, created,
                                                          principal.name if principal else owners.LOCAL)
    except Rejected as exc:
        metrics.reject(exc.reason)
        raise
    metrics.submissions.labels(outcome="queued" if created else "existing").inc()
    if document.status == BuildStatus.SUCCEEDED.value:
        metrics.cache_hits.inc()
    logger.info("build %d %s (%s) for %s", document.id, "queued" if created else "found", document.status,
                principal.name if principal else "anonymous")
    return document


@router.get("/builds", response_model=list[schemas.BuildSummary], summary="Recent builds, newest first",
            responses=error_responses(401, 422))
async def list_builds(db: DatabaseDep, _reader: ReaderDep, status: BuildStatus | None = None,
                      submitter: Annotated[str | None, Query(max_length=255, description="A principal's name "
                                                             "(a token's name; local: anonymous)")] = None,
                      limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 50) -> list[schemas.BuildSummary]:
    return await reads.builds(db, status, submitter, limit)


@router.get("/builds/{build_id}", response_model=schemas.Build, summary="A build: status, module, models, diagnostics",
            responses=error_responses(401, 404, 422))
async def get_build(build_id: BuildId, db: DatabaseDep, _reader: ReaderDep) -> schemas.Build:
    return await reads.build(db, build_id)


@router.get("/builds/{build_id}/log", response_class=PlainTextResponse, summary="A build's log (text)",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
                       **error_responses(401, 403, 404, 422)})
async def get_build_log(build_id: BuildId, request: Request, db: DatabaseDep, settings: SettingsDep,
                        reader: ReaderDep) -> PlainTextResponse:
    """The log of the build's last attempt: empty until the build has finished (the log is stored then).
    A failed build's log is shown to its submitter and to admins only (it may show what someone is
    working on); a succeeded build's to every reader."""
    build = await readable_build(build_id, request, db, settings, reader, "log")
    return PlainTextResponse(build.log or "")


@router.get("/builds/{build_id}/sources", response_model=list[schemas.SourceText],
            summary="A build's uploaded sources (name, sha256, text)", responses=error_responses(401, 403, 404, 422))
async def get_build_sources(build_id: BuildId, request: Request, db: DatabaseDep, settings: SettingsDep,
                            reader: ReaderDep) -> list[schemas.SourceText]:
    """The files as uploaded, in order (what the diagnostics' lines point at); for a failed build, to
    its submitter and admins only, as its log."""
    build = await readable_build(build_id, request, db, settings, reader, "sources")
    return [schemas.SourceText(name=bs.name, sha256=bs.source.sha256, text=bs.source.text) for bs in build.sources]


async def readable_build(build_id: int, request: Request, db: Database, settings: Settings,
                         reader: Principal | None, what: str) -> BuildRow:
    """The build, if this reader may see its log and sources (403 otherwise)."""
    build, submitter = await db.read(reads.build_and_submitter, build_id)
    if build.status == BuildStatus.FAILED and not may_read_failed_log(reader, submitter, settings, request):
        raise ApiError(403, "forbidden", f"build {build_id} failed, and the {what} of a failed build "
                       f"{'is' if what == 'log' else 'are'} shown only to its submitter and to admins: send the "
                       "submitter's (or an admin's) token; its diagnostics "
                       f"are in GET /v1/builds/{build_id}", {"build": build_id})
    return build


@router.post("/models/{reference}/builds", status_code=202, response_model=schemas.Build,
             summary="Build a published model version again for another toolchain",
             responses={200: {"model": schemas.Build, "description": "That build already finished"},
                        **error_responses(401, 403, 404, 422, 503)},
             openapi_extra={"x-access": "publish"})
async def rebuild_model(reference: ModelReference, body: schemas.RebuildRequest, response: Response,
                        settings: SettingsDep, metrics: MetricsDep, principal: PublisherDep,
                        db: DatabaseDep, store: StoreDep) -> schemas.Build:
    """Queue the build of ``NAME[@VERSION]`` (the newest without a version) for ``toolchain``, from the
    sources and options of the build that published it: what a simulation machine asks for when the
    model has no module for its toolchain yet. Like any build, it needs the publisher role (or anonymous
    publishing); the build stays the original submitter's, and the audit log names who asked."""
    build_request, submitter = await db.write(_rebuild_request, reference, body,
                                              principal.name if principal else owners.LOCAL)
    try:
        # the build stays its original submitter's, whose names these are (publishing checks them again)
        document, created = await db.write(submit_checked, settings, build_request, body.toolchain, body.retry, False,
                                           submitter, None)
        if body.retry:
            document, created = await _rebuild_if_damaged(db, store, document, created,
                                                          principal.name if principal else owners.LOCAL)
    except Rejected as exc:
        metrics.reject(exc.reason)
        raise
    metrics.submissions.labels(outcome="queued" if created else "existing").inc()
    response.status_code = 202 if document.status in ("queued", "running") else 200
    response.headers["Location"] = f"/v1/builds/{document.id}"
    logger.info("rebuild of %s for %s: build %d (%s)", reference, body.toolchain or "the newest toolchain",
                document.id, document.status)
    return document


def _rebuild_request(session: Session, reference: str, body: schemas.RebuildRequest,
                     actor: str) -> tuple[BuildRequest, int | None]:
    """The request of the build that published ``reference``, and its submitter; the audit log names who asked."""
    _, original = rebuilds.publishing_build(session, reference)
    records.record_event(session, actor, "rebuild", reference,
                         {"build": original.id, "toolchain": body.toolchain, "retry": body.retry})
    return rebuilds.request_of(original), original.submitted_by


async def _rebuild_if_damaged(db: Database, store: ArtifactStore, document: schemas.Build,
                              created: bool, actor: str) -> tuple[schemas.Build, bool]:
    """``retry`` of a succeeded build whose module file is missing or corrupt queues it again (the same
    build key gives the same module, stored again); of any other build it changes nothing."""
    if document.status != BuildStatus.SUCCEEDED.value or document.module is None:
        return document, created
    module = await db.read(records.get_module, document.module.sha256)
    state = await run_in_threadpool(repair.state_of, store, module.location)
    if state is None:
        return document, created
    logger.warning("build %d: its module %s is %s in the store; queueing it again", document.id, module.sha256, state)
    return await db.write(_requeue, document.id, state, actor), True


def _requeue(session: Session, build_id: int, state: str, actor: str) -> schemas.Build:
    queue.requeue(session, build_id, f"queued again: its module was {state} in the artifact store")
    records.record_event(session, actor, "repair", f"build {build_id}", {"module": state})
    return build_document(session, queue.get_build(session, build_id))
