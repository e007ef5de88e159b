"""The pages that show things: the models (searched, filtered), a model, the builds, a build, the
toolchains. Each reads the same document its JSON route answers with (``service.reads``)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from nestml_registry.compiler import features
from nestml_registry.registry import listing, resolving
from nestml_registry.registry.errors import NotFound
from nestml_registry.registry.listing import ModelQuery
from nestml_registry.registry.tables import BuildStatus
from nestml_registry.service.api import reads, schemas
from nestml_registry.service.api.auth import may_read_failed_log
from nestml_registry.service.api.deps import DatabaseDep, SettingsDep
from nestml_registry.service.api.web import plots
from nestml_registry.service.api.web.docs import render_comment
from nestml_registry.service.api.web.equations import render_equations
from nestml_registry.service.api.web.render import Pages
from nestml_registry.service.api.web.session import PageReader

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
VERDICTS = {"agrees": "agrees with NEST", "differs": "differs from NEST", "failed": "check failed",
            "none": "no verdict"}
ModelName = Annotated[str, Path(max_length=300)]


def _pages(request: Request) -> Pages:
    return request.app.state.pages


@router.get("/", response_class=HTMLResponse)
async def models_page(request: Request, db: DatabaseDep, _reader: PageReader,
                      q: Annotated[str, Query(max_length=200)] = "",
                      kind: Literal["neuron", "synapse", ""] = "", owner: Annotated[str, Query(max_length=255)] = "",
                      verdict: Literal["agrees", "differs", "failed", "none", ""] = "",
                      page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HTMLResponse:
    query = ModelQuery(q=q, kind=kind or None, owner=owner or None, verdict=verdict or None, limit=PAGE_SIZE,
                       offset=(page - 1) * PAGE_SIZE)
    found = await reads.models(db, query)
    owners = await db.read(listing.owners)
    pages = max(1, -(-found.total // PAGE_SIZE))
    return _pages(request).render(request, "models.html", title="Models", models=found.models, total=found.total,
                                  q=q, kind=kind, owner=owner, owners=owners, page=page, pages=pages, verdict=verdict,
                                  verdicts=VERDICTS)


def _skeleton(version: schemas.ModelVersion) -> str:
    """A BMTK ``dynamics_params`` file with the model's defaults (as NEST has them)."""
    values: dict[str, Any] = {p.name: p.value for p in version.parameters
                              if isinstance(p.value, (int, float, bool)) or (isinstance(p.value, list) and p.value)}
    return json.dumps(values, indent=2)


@router.get("/models/{name}", response_class=HTMLResponse, response_model=None)
async def model_page(name: ModelName, request: Request, db: DatabaseDep,
                     _reader: PageReader) -> HTMLResponse | RedirectResponse:
    base, wanted = resolving.parse_reference(name)  # InvalidReference: 422
    if wanted is not None:  # NAME@VERSION, as the CLI and SONATA files write it
        return RedirectResponse(f"/models/{quote(base)}/{wanted}", status_code=307)
    return await _model(request, db, name, None)


@router.get("/models/{name}/compare", response_class=HTMLResponse)
async def compare_page(name: ModelName, request: Request, db: DatabaseDep, _reader: PageReader,
                       from_: Annotated[int, Query(alias="from", ge=1, le=2**31 - 1)],
                       to: Annotated[int, Query(ge=1, le=2**31 - 1)]) -> HTMLResponse:
    """Two versions side by side: the API's diff document (``GET /v1/models/NAME/diff``) and, for a neuron,
    both characterisations."""
    base, _ = resolving.parse_reference(name)  # InvalidReference: 422
    diff = schemas.ModelDiff.model_validate(await db.read(listing.version_diff, base, from_, to))
    detail = await reads.model(db, base)
    kinds = {v.version: v.kind for v in detail.versions}
    shown = [await reads.characterisation(db, diff.model, n) for n in (diff.from_version, diff.to_version)
             if kinds.get(n) == "neuron"]
    return _pages(request).render(request, "compare.html", title=f"{diff.model}: v{diff.from_version} and "
                                  f"v{diff.to_version}", diff=diff, characterisations=shown)


@router.get("/models/{name}/{version}", response_class=HTMLResponse)
async def model_version_page(name: ModelName, version: Annotated[int, Path(ge=1, le=2**31 - 1)], request: Request,
                             db: DatabaseDep, _reader: PageReader) -> HTMLResponse:
    return await _model(request, db, name, version)


async def _model(request: Request, db: DatabaseDep, name: str, number: int | None) -> HTMLResponse:
    detail = await reads.model(db, name)
    shown = next((v for v in detail.versions if number is None or v.version == number), None)
    if shown is None:
        raise listing.no_such_version(detail.name, [v.version for v in detail.versions], number or 0)
    characterisation = await reads.characterisation(db, detail.name, shown.version)
    documentation = await run_in_threadpool(render_comment, shown.comment or "")
    equations = await run_in_threadpool(render_equations, shown.equations or "")
    return _pages(request).render(request, "model.html", title=detail.name, model=detail, version=shown,
                                  pinned=number is not None, skeleton=_skeleton(shown),
                                  characterisation=characterisation, documentation=documentation, equations=equations,
                                  definitions=features.DEFINITIONS)


@router.get("/models/{name}/{version}/characterisation.svg", response_class=Response)
async def characterisation_plot(name: ModelName, version: Annotated[int, Path(ge=1, le=2**31 - 1)], db: DatabaseDep,
                                _reader: PageReader) -> Response:
    """The model page's plots (f-I curve beside the previous version's, steps, PSPs), from the API's document."""
    doc = await reads.characterisation(db, name, version)
    if doc.status != "succeeded":
        raise NotFound(f"{doc.model}@{doc.version} has no characterisation to plot (status {doc.status}): see "
                       f"/v1/models/{doc.model}/versions/{doc.version}/characterisation")
    return _svg(await run_in_threadpool(plots.characterisation_svg, doc))


@router.get("/models/{name}/{version}/check.svg", response_class=Response)
async def check_plot(name: ModelName, version: Annotated[int, Path(ge=1, le=2**31 - 1)], db: DatabaseDep,
                     _reader: PageReader) -> Response:
    """A synapse's STDP window (or short-term plasticity against frequency) beside its NEST counterpart's."""
    doc = await reads.characterisation(db, name, version)
    if doc.check is None or not doc.check.curves:
        raise NotFound(f"{doc.model}@{doc.version} has no check curves to plot (a synapse checked against its NEST "
                       f"counterpart has): see /v1/models/{doc.model}/versions/{doc.version}/characterisation")
    return _svg(await run_in_threadpool(plots.check_svg, doc))


def _svg(svg: bytes) -> Response:
    # matplotlib styles its shapes inline; nothing in the file may run (no script source at all)
    csp = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-cache",
                                                              "Content-Security-Policy": csp})


@router.get("/builds", response_class=HTMLResponse)
async def builds_page(request: Request, db: DatabaseDep, _reader: PageReader, status: BuildStatus | None = None,
                      submitter: Annotated[str, Query(max_length=255)] = "") -> HTMLResponse:
    builds = await reads.builds(db, status, submitter or None, limit=100)
    workers = await reads.worker_list(db)
    return _pages(request).render(request, "builds.html", title="Builds", builds=builds, workers=workers,
                                  status=status.value if status else "", submitter=submitter,
                                  statuses=[s.value for s in BuildStatus])


@router.get("/builds/{build_id}", response_class=HTMLResponse)
async def build_page(build_id: Annotated[int, Path(ge=1, le=2**31 - 1)], request: Request, db: DatabaseDep,
                     settings: SettingsDep, reader: PageReader) -> HTMLResponse:
    build, row, submitter = await db.read(reads.build_with_row, build_id)
    private = build.status == "failed" and not may_read_failed_log(reader, submitter, settings, request)
    sources = [] if private else [(bs.name, bs.source.text.splitlines()) for bs in row.sources]
    marks: dict[tuple[str, int], list[schemas.Diagnostic]] = {}
    for d in build.diagnostics:
        if d.file is not None and d.line is not None:
            marks.setdefault((d.file, d.line), []).append(d)
    return _pages(request).render(
        request, "build.html", title=f"Build {build.id}", build=build, sources=sources, marks=marks, private=private,
        log=None if private else (row.log or ""), timings=build.timings,
        live=build.status in ("queued", "running"))


@router.get("/toolchains", response_class=HTMLResponse)
async def toolchains_page(request: Request, db: DatabaseDep, reader: PageReader) -> HTMLResponse:
    toolchains = await reads.toolchain_list(db, admin=reader is not None and reader.has("admin"))
    workers = await reads.worker_list(db)
    by_toolchain: dict[str, list[schemas.WorkerInfo]] = {}
    for w in workers:
        by_toolchain.setdefault(w.toolchain, []).append(w)
    return _pages(request).render(request, "toolchains.html", title="Toolchains", toolchains=toolchains,
                                  workers=by_toolchain)
