"""NEST Desktop's NESTML server, answered by the registry: what ``/compat/nestml-server`` does.

NEST Desktop (4.1, 4.2) compiles the models of its model editor through nestml-server
(``babsey/nestml-server``), which compiles inside the HTTP request, keeps nothing and lets anyone in. The
registry speaks the same requests, so NEST Desktop needs only its NESTML server URL set to
``http://REGISTRY/compat/nestml-server``, and gets cached, sandboxed, authenticated builds that the whole
lab then sees on the registry's pages:

- ``GET /``: ``{"nest", "nestml"}``, the versions of the toolchain the front door builds for;
- ``POST /generateModels`` ``{module_name, models: [{element_type, name, script}]}``: one registry build
  (the module named as given, models under their NESTML names: suffix ``''``), waited for, answering
  ``{"status": {"INITIALIZED", "WRITTEN", "BUILT", "INSTALLED"}}``; NESTML 7/8 text is upgraded first
  (:mod:`nestml_registry.compiler.upgrade`; the answer's ``upgraded`` says what changed). An identical
  request finds its build and compiles nothing. With ``NESTML_REGISTRY_COMPAT_MODULE_DIR``, the module is
  then written there as ``<module_name>.so`` (temporary file and rename) for NEST Server to install;
- ``GET /module/{module_name}/installed``: the names that module registers;
- ``POST /getSpecs`` ``{element_type, script}``: ``{params, states}``, each ``{id, label, value, unit}``, from a
  parse-only NESTML step in the sandbox (:mod:`nestml_registry.service.api.parsing`), with defaults that are
  expressions worked out; ``POST /getParams``, nestml-server 1.0.0b3's older form, ``{params: {id: {...}}}``.

Errors answer the registry's shape with nestml-server's ``message`` and ``lineNumber`` beside it (the
line NEST Desktop's editor marks). Generating needs a publisher's token, sent as NEST Desktop sends it
(``AccessToken``) or as ``Authorization: Bearer``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nestml_registry.compiler.diagnostics import Diagnostic
from nestml_registry.compiler.errors import InputError
from nestml_registry.compiler.integrity import copy_atomic, sha256_file
from nestml_registry.compiler.key import build_key
from nestml_registry.compiler.request import MODULE_NAME_RE, BuildRequest
from nestml_registry.compiler.sources import Source
from nestml_registry.registry import queue, toolchains, workers
from nestml_registry.registry.store import ArtifactStore
from nestml_registry.registry.tables import Build, BuildStatus, KnownToolchain, Module
from nestml_registry.service.api import reads, schemas
from nestml_registry.service.api.database import Database
from nestml_registry.service.api.documents import build_document
from nestml_registry.service.api.errors import ApiError
from nestml_registry.service.api.parsing import NestmlParser, Specs
from nestml_registry.service.api.submit import submit_checked
from nestml_registry.service.settings import Settings

logger = logging.getLogger(__name__)
MAX_MODELS = 32
MAX_SCRIPT = 1024 * 1024
POLL_SECONDS = 0.2
_NOT_UNITS = frozenset({"real", "integer", "boolean", "string", "void"})
_DECLARED_RE = re.compile(r"^[ \t]*(?:model|neuron|synapse)[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*:", re.MULTILINE)


class ScriptModel(BaseModel):
    """One model of NEST Desktop's module: its NESTML name and text."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=200, description="The model's name, as its script declares it")
    script: str = Field(max_length=MAX_SCRIPT, description="The NESTML text")
    element_type: str = Field(default="neuron", max_length=40, description="neuron or synapse (NEST Desktop's)")


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    module_name: str | list[str] = Field(default="nestmlmodule", description="Ends in 'module' (a list: its first)")
    models: list[ScriptModel] = Field(default_factory=list, max_length=MAX_MODELS)


class SpecsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    script: str = Field(max_length=MAX_SCRIPT)
    element_type: str = Field(default="neuron", max_length=40)


def _no_worker(message: str, details: dict[str, Any]) -> ApiError:
    return ApiError(503, "no_worker", message, details, {"Retry-After": "10"})


def front_door_toolchain(session: Session, settings: Settings, live: bool = True) -> KnownToolchain:
    """The toolchain the front door builds for (``NESTML_REGISTRY_COMPAT_TOOLCHAIN``, else the newest one a
    live worker serves); with ``live``, 503 unless a live compile worker serves it."""
    approved = toolchains.approved(session)
    wanted = settings.compat_toolchain
    if wanted is not None:
        found = next((t for t in approved if t.id == wanted), None)
        if found is None:
            raise _no_worker(f"the toolchain NEST Desktop's models are built for, {wanted[:200]!r} "
                             "(NESTML_REGISTRY_COMPAT_TOOLCHAIN), is not one this registry builds for: start a compile "
                             "worker with NEST Server's NEST (`nestml-registry worker`), or set it to one of: "
                             f"{', '.join(t.id for t in approved) or 'none yet'}", {"toolchain": wanted[:200]})
        if live and workers.of_toolchain(session, found.id)[0] == 0:
            raise _no_worker(f"no compile worker of the toolchain {found.id} (NESTML_REGISTRY_COMPAT_TOOLCHAIN) is "
                             "running: start one with NEST Server's NEST (`nestml-registry worker`)",
                             {"toolchain": found.id})
        return found
    served = [t for t in approved if workers.of_toolchain(session, t.id)[0] > 0]
    if served or (approved and not live):
        return (served or approved)[0]
    raise _no_worker("no compile worker is running, so there is nothing to build NEST Desktop's models with: start "
                     "one with `nestml-registry worker` (or run the registry with `nestml-registry serve`)", {})


def versions(toolchain: KnownToolchain) -> dict[str, str]:
    """``GET /``: NEST Desktop takes the backend as valid by its ``nestml`` key."""
    details = toolchain.details or {}
    return {"nest": str(details.get("nest_version", "")), "nestml": str(details.get("nestml_version", "")),
            "toolchain": toolchain.id}


def _first_error(diagnostics: list[Diagnostic], what: str) -> ApiError:
    """400 naming the first error as ``file:line:col: error: ...`` (its line is NEST Desktop's ``lineNumber``)."""
    errors = [d for d in diagnostics if d.severity == "error"] or diagnostics
    if not errors:
        return ApiError(400, "compile_failed", f"{what} failed without a diagnostic", {})
    first = errors[0]
    more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
    details: dict[str, Any] = {"diagnostics": [d.to_dict() for d in errors[:20]]}
    if first.line is not None:
        details["line"] = first.line
    return ApiError(400, "compile_failed", first.format() + more, details)


def _build_failed(document: schemas.Build) -> ApiError:
    diagnostics = [Diagnostic.from_dict(d.model_dump()) for d in document.diagnostics]
    return _first_error(diagnostics, f"build {document.id}" + (f" ({document.error})" if document.error else ""))


def _module_name(given: str | list[str]) -> str:
    name = (given[0] if given else "") if isinstance(given, list) else given
    if not isinstance(name, str) or not MODULE_NAME_RE.fullmatch(name):
        raise InputError(f"invalid module_name {str(name)[:80]!r}: give a name of letters, digits and '_' that ends in "
                         "'module', e.g. nestmlmodule")
    return name


async def _upgraded(parser: NestmlParser, texts: dict[str, str]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The texts as NESTML 9 reads them, and what was changed; 400 where NESTML still finds errors."""
    ups = await parser.upgrade(texts)
    remaining = [d for up in ups for d in up.diagnostics if d.severity == "error"]
    if remaining:
        raise _first_error(remaining, "checking the model")
    changes = [{"file": up.name, "line": line, "change": what} for up in ups for line, what in up.changes]
    return {up.name: up.text for up in ups}, changes


def _check_names(models: list[ScriptModel]) -> None:
    """Each model's name is the one its script declares (``model NAME:``; NESTML 7's ``neuron NAME:`` too)."""
    for model in models:
        declared = _DECLARED_RE.findall(model.script)
        if model.name not in declared:
            raise InputError(f"the model named {model.name!r} declares {', '.join(declared) or 'no model'} in its "
                             "script: name it as its script does, or rename the script's model "
                             f"('model {model.name}:')")


def _request(texts: dict[str, str], module: str) -> BuildRequest:
    return BuildRequest.create([Source(name, text) for name, text in texts.items()], module=module, suffix="")


async def generate(body: GenerateRequest, publisher: tuple[int | None, tuple[str, bool]], settings: Settings,
                   db: Database, store: ArtifactStore, parser: NestmlParser) -> dict[str, Any]:
    """``POST /generateModels``: the build of NEST Desktop's module, waited for (see the module's docstring)."""
    module = _module_name(body.module_name)
    if not body.models:
        return {"status": {"INITIALIZED": [], "WRITTEN": [], "BUILT": [], "INSTALLED": []}}
    names = [m.name for m in body.models]
    if len(set(names)) != len(names):
        raise InputError(f"the models {', '.join(sorted({n for n in names if names.count(n) > 1}))} are given twice: "
                         "give each model once")
    texts = {f"{m.name}.nestml": m.script for m in body.models}
    _check_names(body.models)  # refusals first: nothing is looked up or run for them
    toolchain = (await db.read(front_door_toolchain, settings)).id
    try:
        found = await _existing(db, _request(texts, module), toolchain)
    except InputError:  # NESTML 7 text (no 'model' keyword): upgraded below
        found = None
    changes: list[dict[str, Any]] = []
    if found is not None:
        document = found
    else:
        texts, changes = await _upgraded(parser, texts)
        queued, _ = await db.write(submit_checked, settings, _request(texts, module), toolchain,
                                   False, False, publisher[0], publisher[1])
        document = await _finished(db, queued, settings.compat_wait_seconds)
    if document.status != BuildStatus.SUCCEEDED.value:
        raise _build_failed(document)
    if settings.compat_module_dir is not None and document.module is not None:
        await run_in_threadpool(_install_module, store, document.module.sha256, settings.compat_module_dir, module)
    answer: dict[str, Any] = {"status": {"INITIALIZED": names, "WRITTEN": names, "BUILT": names,
                                         "INSTALLED": [m.name for m in document.models]},
                              "build": document.id, "module": document.module.model_dump() if document.module else None}
    if changes:
        answer["upgraded"] = changes
    return answer


async def _existing(db: Database, request: BuildRequest, toolchain: str) -> schemas.Build | None:
    """The succeeded build of exactly this request, if there is one (a repeated request costs one look-up)."""
    found = await db.read(_build_by_key, build_key(request, toolchain))
    return found if found is not None and found.status == BuildStatus.SUCCEEDED.value else None


def _build_by_key(session: Session, key: str) -> schemas.Build | None:
    build = queue.get_build_by_key(session, key)
    return build_document(session, build) if build is not None else None


async def _finished(db: Database, document: schemas.Build, wait: float) -> schemas.Build:
    """The build once it succeeded or failed; 503 ``still_building`` after ``wait`` seconds (asking again
    later finds the same build)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while document.status in (BuildStatus.QUEUED.value, BuildStatus.RUNNING.value):
        if loop.time() > deadline:
            raise ApiError(503, "still_building", f"build {document.id} has not finished after {wait:g} s "
                           f"(NESTML_REGISTRY_COMPAT_WAIT_SECONDS); it goes on: generate again later to get it, or "
                           f"follow it at /builds/{document.id}", {"build": document.id}, {"Retry-After": "30"})
        await asyncio.sleep(POLL_SECONDS)
        document = await reads.build(db, document.id)
    return document


def _install_module(store: ArtifactStore, sha256: str, folder: Path, module: str) -> None:
    """``<folder>/<module>.so``: the built module, checked, written through a temporary file and a rename
    (NEST Server's ``nest.Install`` never sees a half-written file); nothing is written when it is there."""
    dest = folder / f"{module}.so"
    if dest.is_file() and sha256_file(dest) == sha256:
        return
    written = copy_atomic(store.open_verified(sha256), dest)
    logger.info("NEST Desktop's module %s (%s) written to %s", module, written[:12], dest)


def installed(session: Session, settings: Settings, module: str) -> list[str]:
    """``GET /module/{module}/installed``: what the module NEST Server would load registers (the file in
    the module folder, else the newest succeeded build of that name for the front door's toolchain)."""
    if not MODULE_NAME_RE.fullmatch(module):
        raise InputError(f"invalid module name {module[:80]!r}: a module name ends in 'module', e.g. nestmlmodule")
    row: Module | None = None
    path = settings.compat_module_dir / f"{module}.so" if settings.compat_module_dir is not None else None
    if path is not None and path.is_file():
        row = session.scalars(select(Module).where(Module.sha256 == sha256_file(path))).first()
    if row is None:
        toolchain = front_door_toolchain(session, settings, live=False).id
        row = session.scalars(select(Module).join(Build, Build.module_id == Module.id)
                              .where(Module.name == module, Module.toolchain == toolchain,
                                     Build.status == BuildStatus.SUCCEEDED)
                              .order_by(Build.finished_at.desc()).limit(1)).first()
    if row is None:
        raise ApiError(404, "not_found", f"no module {module} has been generated here yet: generate it first "
                       "(POST generateModels)", {"module": module})
    return sorted(str(n) for n in row.registers)


def _entry(decl: dict[str, Any], values: dict[str, Any], specs: Specs) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": decl["name"]}
    label = specs.sanitised.description(decl["line"]) if decl.get("line") else None
    if label:
        entry["label"] = label
    if values.get(decl["name"]) is not None:
        entry["value"] = values[decl["name"]]
    unit = (decl.get("type") or "").strip()
    if unit and unit not in _NOT_UNITS:
        entry["unit"] = unit
    if decl.get("default") is not None:
        entry["expression"] = decl["default"]  # as written (NEST Desktop ignores it)
    return entry


async def specs(parser: NestmlParser, script: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The first model's parameters and state (``getSpecs``); NESTML 7/8 text is read as upgraded."""
    name = "model.nestml"
    found = await parser.specs(name, script)
    if found.diagnostics:
        texts, _ = await _upgraded(parser, {name: script})
        found = await parser.specs(name, texts[name])
        if found.diagnostics:
            raise _first_error(found.diagnostics, "reading the model")
    if not found.models:
        raise InputError("the script declares no model: a NESTML script defines one with 'model <name>:'")
    model = found.models[0]
    values = model.get("values") or {}
    return ([_entry(d, values, found) for d in model["parameters"]],
            [_entry(d, values, found) for d in model["state"]])
