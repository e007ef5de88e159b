"""The HTTP worker protocol, ``/v1/worker/...``: a compile worker with a worker token and no database or
artifact store of its own claims a build for its toolchain, renews its lease, uploads the module and
reports the outcome; between builds it runs characterisations. The same queue as the database workers
(leases, the API's sweep, attempts), through the same registry functions.

1. ``POST /v1/worker/register`` its toolchain, then ``POST /v1/worker/beat`` every few seconds.
2. ``POST /v1/worker/claim`` ``{"toolchain", "lease_seconds"}``: 200 with the build (its request and
   sources), or 204 when nothing waits.
3. ``POST /v1/worker/builds/{id}/renew`` every third of the lease (409: the lease is lost, stop).
4. ``POST /v1/worker/builds/{id}/module?worker_id=&sha256=&name=`` the ``.so`` as the body: hashed while
   it arrives, stored only if it matches ``sha256`` (422 otherwise) and only while the lease is held (409).
5. ``POST /v1/worker/builds/{id}/succeeded`` (module, models) or ``/failed`` (diagnostics, log).
6. ``POST /v1/worker/characterisations/claim``, ``GET .../{id}/module``, ``POST .../{id}/finish``.

A worker token can do nothing else; every lease is the token's name plus the worker's own id.
"""

from __future__ import annotations

import os
import tempfile
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nestml_registry.compiler.characteriser import characterisation
from nestml_registry.compiler.checking import stored_check
from nestml_registry.compiler.integrity import CHUNK
from nestml_registry.compiler.pipeline import MAX_MODULE_BYTES
from nestml_registry.registry import characterisations, queue, results, revalidation, toolchains, workers
from nestml_registry.registry.errors import RegistryError, TooLarge
from nestml_registry.registry.records import record_event
from nestml_registry.registry.store import StoredArtifact
from nestml_registry.service.api import worker_schemas as ws
from nestml_registry.service.api.auth import Principal, check_serves
from nestml_registry.service.api.deps import DatabaseDep, SettingsDep, StoreDep, WorkerDep
from nestml_registry.service.api.errors import ApiError, error_responses
from nestml_registry.service.settings import Settings

router = APIRouter(prefix="/v1/worker", tags=["worker protocol"])
Id = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
WorkerId = Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:@+-]+$")]
ERRORS = error_responses(401, 403, 409, 422)


def lease_owner(principal: Principal, worker_id: str) -> str:
    """The id a lease is held under: the token's principal and the worker's own id."""
    return f"{principal.name}/{worker_id}"


def _lost(what: str, item_id: int) -> ApiError:
    return ApiError(409, "lease_lost", f"this worker does not hold the lease of {what} {item_id} (it expired and "
                    "was swept, or another worker holds it): drop the work; nothing was stored",
                    {"id": item_id})


@router.post("/register", status_code=204, responses=ERRORS, summary="Say which toolchain this worker serves")
async def register(body: ws.Register, db: DatabaseDep, principal: WorkerDep, settings: SettingsDep) -> Response:
    """A toolchain the token may serve is recorded (approved: a new one gets the library's builds, see
    ``registry.revalidation``); any other is recorded as waiting for an admin's approval (never the default,
    nothing is queued for it) and the worker is refused (403)."""
    toolchain_id = str(body.toolchain.get("id"))
    allowed = principal.may_serve(toolchain_id)

    def record(s: Session) -> None:
        new = revalidation.fresh(s, toolchain_id)
        toolchains.register(s, body.toolchain, approved=allowed, seen_by=principal.name)
        if new and allowed and settings.revalidate:
            revalidation.queue_library(s, toolchain_id, max_attempts=settings.max_attempts,
                                       characterise=settings.characterise)
        if not allowed:  # refused: audited
            record_event(s, principal.name, "worker_refused", toolchain_id[:200], {"why": "toolchain_not_allowed"})

    await db.write(record)
    check_serves(principal, toolchain_id)
    return Response(status_code=204)


def _beat(principal: Principal, b: ws.Beat, settings: Settings) -> workers.Beat:
    check_serves(principal, b.toolchain)
    # alive on the registry's clock, for about as long as a lease: never a day on a worker's word
    alive_for = min(b.alive_for, max(3 * settings.lease_seconds, 30.0))
    return workers.Beat(lease_owner(principal, b.worker_id), b.toolchain, b.host, b.pid, alive_for, b.build_id,
                        b.builds, b.retries, b.last_error, b.sent_at)


@router.post("/beat", status_code=204, responses=ERRORS, summary="A worker's heartbeat")
async def beat(body: ws.Beat, db: DatabaseDep, settings: SettingsDep, principal: WorkerDep) -> Response:
    await db.write(workers.beat, _beat(principal, body, settings))
    return Response(status_code=204)


@router.post("/stopped", status_code=204, responses=ERRORS, summary="The worker exits cleanly")
async def stopped(body: ws.Hello, db: DatabaseDep, principal: WorkerDep) -> Response:
    await db.write(workers.stopped, lease_owner(principal, body.worker_id))
    return Response(status_code=204)


@router.get("/pending", responses=ERRORS, summary="Whether work for this toolchain waits or may come back")
async def pending(toolchain: Annotated[str, Query(max_length=200)], db: DatabaseDep,
                  _principal: WorkerDep) -> dict[str, bool]:
    return {"pending": await db.read(workers.work_pending, toolchain)}


@router.post("/claim", response_model=ws.ClaimedBuild, responses={204: {"description": "nothing to build"}, **ERRORS},
             summary="Lease the next queued build for a toolchain")
async def claim(body: ws.Claim, db: DatabaseDep, principal: WorkerDep) -> ws.ClaimedBuild | Response:
    check_serves(principal, body.toolchain)  # a worker sees the sources of its own toolchains' builds only

    def take(s: Session) -> ws.ClaimedBuild | None:
        build = queue.claim(s, lease_owner(principal, body.worker_id), [body.toolchain], body.lease_seconds)
        if build is None:
            return None
        return ws.ClaimedBuild(id=build.id, key=build.key, request=dict(build.request or {}),
                               sources=[ws.SourceFile(name=n, sha256=h, text=t) for n, h, t in queue.sources_of(build)])

    taken = await db.write(take)
    return taken if taken is not None else Response(status_code=204)


@router.post("/builds/{build_id}/renew", status_code=204, responses=ERRORS, summary="Extend the lease of a build")
async def renew(build_id: Id, body: ws.Renew, db: DatabaseDep, settings: SettingsDep,
                principal: WorkerDep) -> Response:
    beat = _beat(principal, body.beat, settings)

    def extend(s: Session) -> bool:
        ok = queue.renew(s, build_id, lease_owner(principal, body.worker_id), body.lease_seconds, body.stage)
        workers.beat(s, beat)
        return ok

    if not await db.write(extend):
        raise _lost("build", build_id)
    return Response(status_code=204)


@router.post("/builds/{build_id}/module", response_model=dict, status_code=201, responses=error_responses(
    401, 403, 409, 413, 422), summary="Upload a leased build's module (checked against its sha256)")
async def upload_module(build_id: Id, request: Request, worker_id: WorkerId,
                        sha256: Annotated[str, Query(pattern=r"^[0-9a-f]{64}$")],
                        name: Annotated[str, Query(pattern=r"^[A-Za-z_][A-Za-z0-9_]*module$", max_length=255)],
                        db: DatabaseDep, store: StoreDep, principal: WorkerDep) -> dict:
    owner = lease_owner(principal, worker_id)
    if not await db.read(queue.holds, build_id, owner):
        raise _lost("build", build_id)
    with tempfile.TemporaryFile() as tmp:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_MODULE_BYTES:
                raise TooLarge(f"a module of more than {MAX_MODULE_BYTES} bytes: nothing was stored")
            tmp.write(chunk)
        tmp.seek(0)
        stored = await run_in_threadpool(store.put_stream, iter(partial(tmp.read, CHUNK), b""), f"{name}.so",
                                         MAX_MODULE_BYTES, sha256)
    return {"sha256": stored.sha256, "size": stored.size}


@router.post("/builds/{build_id}/failed", status_code=204, responses=ERRORS, summary="A leased build failed")
async def failed(build_id: Id, body: ws.Failed, db: DatabaseDep, principal: WorkerDep) -> Response:
    owner = lease_owner(principal, body.worker_id)
    if not await db.write(results.record_failure, build_id, owner, body.diagnostics, body.log, body.timings):
        raise _lost("build", build_id)
    return Response(status_code=204)


@router.post("/builds/{build_id}/succeeded", response_model=ws.Outcome, responses=ERRORS,
             summary="A leased build succeeded: its uploaded module and the models it registers")
async def succeeded(build_id: Id, body: ws.Succeeded, db: DatabaseDep, store: StoreDep, settings: SettingsDep,
                    principal: WorkerDep) -> ws.Outcome:
    owner = lease_owner(principal, body.worker_id)
    if not await db.read(queue.holds, build_id, owner):
        raise _lost("build", build_id)
    filename = f"{body.module_name}.so"
    location = store.location_of(body.sha256, filename)
    path = store.path_of(body.sha256, filename)
    if not path.is_file():
        raise ApiError(422, "invalid_input", f"no module {filename} with sha256 {body.sha256} was uploaded for build "
                       f"{build_id}: POST it to /v1/worker/builds/{build_id}/module first", {"sha256": body.sha256})
    stored = StoredArtifact(body.sha256, os.path.getsize(path), location)
    try:
        done = await db.write(results.record_success, build_id, owner, stored, body.module_name, body.diagnostics,
                              body.log, body.timings, body.models, characterise=settings.characterise,
                              agreement=settings.agreement)
    except RegistryError as exc:  # a report the build refutes, a name owned by someone else: the build fails
        message = str(exc)
        error = {"severity": "error", "message": message, "code": exc.code}

        def fail(s: Session) -> bool:
            record_event(s, owner, "report_refused", f"build {build_id}", {"error": message[:500]})
            return results.record_failure(s, build_id, owner, [*body.diagnostics, error], body.log)

        if not await db.write(fail):
            raise _lost("build", build_id) from exc
        return ws.Outcome(status="failed", error=str(exc))
    if not done:
        raise _lost("build", build_id)
    return ws.Outcome(status="succeeded")


@router.post("/characterisations/claim", response_model=ws.ClaimedCharacterisation,
             responses={204: {"description": "nothing to characterise"}, **ERRORS},
             summary="Lease the next queued characterisation for a toolchain")
async def claim_characterisation(body: ws.Claim, db: DatabaseDep,
                                 principal: WorkerDep) -> ws.ClaimedCharacterisation | Response:
    check_serves(principal, body.toolchain)
    c = await db.write(characterisations.claim, lease_owner(principal, body.worker_id), body.toolchain,
                       body.lease_seconds)
    if c is None:
        return Response(status_code=204)
    return ws.ClaimedCharacterisation(id=c.id, model=c.model, version=c.version, module_sha256=c.module_sha256,
                                      module_name=c.module_location.rsplit("/", 1)[-1].removesuffix(".so"),
                                      nestml_name=c.nestml_name, parameters=c.parameters, state=c.state,
                                      kind=c.kind)


@router.get("/characterisations/{char_id}/module", response_class=FileResponse, responses=ERRORS,
            summary="The module a leased characterisation loads")
async def characterisation_module(char_id: Id, worker_id: WorkerId, db: DatabaseDep, store: StoreDep,
                                  principal: WorkerDep) -> FileResponse:
    location = await db.read(characterisations.held_module, char_id, lease_owner(principal, worker_id))
    if location is None:
        raise _lost("characterisation", char_id)
    path = await run_in_threadpool(store.open_verified, location)
    return FileResponse(path, media_type="application/octet-stream")


@router.post("/characterisations/{char_id}/finish", status_code=204, responses=ERRORS,
             summary="Record a leased characterisation's result")
async def finish_characterisation(char_id: Id, body: ws.CharacterisationDone, db: DatabaseDep,
                                  principal: WorkerDep) -> Response:
    result = body.result
    if result.get("status") == "failed":
        result = {"status": "failed", "error": str(result.get("error") or "the characterisation failed")[:2000]}
    else:
        try:
            check = result.get("check")
            result = characterisation(result)  # checked as the worker's own runner checks it
            if check is not None:
                result["check"] = stored_check(check)
        except (TypeError, ValueError, KeyError) as exc:
            raise ApiError(422, "invalid_input", f"the characterisation's result is malformed: {exc}") from exc
    if not await db.write(characterisations.finish, char_id, lease_owner(principal, body.worker_id), result,
                          body.seconds):
        raise _lost("characterisation", char_id)
    return Response(status_code=204)
