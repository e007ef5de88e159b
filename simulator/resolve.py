"""Resolve a network's ``nestml:`` references against the registry for this machine's toolchain.

For each reference: the model version (newest, or ``@VERSION``), the module built for this
toolchain (asking the registry to build it when the model is registered but not built for this
toolchain, unless told not to), the module's metadata (checked: it must be for this toolchain), the
model's parameters and state (for checking ``dynamics_params``) and the module file itself, fetched
into the local content-addressed cache. With a lock file, exactly the locked versions and files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from nestml_registry.service.client import RegistryClient, RegistryClientError
from nestml_registry.simulator.cache import ModuleCache
from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.plan import LocalToolchain, ModuleFile, Plan, Resolved
from nestml_registry.simulator.references import Use, distinct_references

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


def detect_toolchain(cache_dir: Any = None, cxxflags: str = "") -> LocalToolchain:
    """This machine's toolchain (detected once, then read from the build cache)."""
    from nestml_registry.compiler.errors import CompilerError
    from nestml_registry.compiler.toolchain import detect

    try:
        return LocalToolchain.from_toolchain(detect(cache_dir, cxxflags=cxxflags))
    except CompilerError as exc:
        raise SimulatorError(f"cannot tell this machine's NEST toolchain: {exc}", "toolchain") from exc


def _names(items: Any) -> tuple[str, ...]:
    """The names of a model document's parameters or state variables."""
    return tuple(i["name"] for i in items or [] if isinstance(i, dict) and isinstance(i.get("name"), str))


def _where(uses: Iterable[Use], reference: str) -> str:
    places = [u.where for u in uses if u.reference == reference]
    return f"nestml:{reference} ({places[0]}{f' and {len(places) - 1} more' if len(places) > 1 else ''})"


class Resolver:
    """Makes a :class:`Plan` for one simulation."""

    def __init__(self, client: RegistryClient, toolchain: LocalToolchain, cache: ModuleCache, *,
                 build: bool = True, build_timeout: float | None = None, progress: Progress | None = None) -> None:
        self.client = client
        self.toolchain = toolchain
        self.cache = cache
        self.build = build
        self.build_timeout = build_timeout
        self.progress = progress or (lambda text: logger.info("%s", text))

    # -- from the registry -------------------------------------------------------------------------

    def resolve(self, uses: list[Use]) -> Plan:
        plan = Plan(self.toolchain, self.client.base_url)
        modules: dict[str, ModuleFile] = {}
        params: dict[tuple[str, int], tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {}
        for reference in distinct_references(uses):
            found = self._resolve_one(reference, uses)
            if found.get("yanked"):
                self.progress(f"warning: nestml:{reference} is {found['model']}@{found['version']}, which is yanked: "
                              f"{found['yanked']} (it is pinned, so it runs; an unpinned reference would skip it)")
            sha = found["module"]["sha256"]
            if sha not in modules:
                modules[sha] = self._module(sha, found, reference, uses)
            key = (found["model"], int(found["version"]))
            if key not in params:
                params[key] = self._variables(*key)
            plan.resolved[reference] = Resolved(reference, found["model"], int(found["version"]), found["kind"],
                                                modules[sha], *params[key])
        self.fetch(plan)
        return plan

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except RegistryClientError as exc:
            raise SimulatorError(f"{what}: {exc.message}", exc.code or "registry", dict(exc.details or {})) from exc

    def _resolve_one(self, reference: str, uses: list[Use]) -> dict[str, Any]:
        asked_build = False
        while True:
            try:
                return self.client.resolve(reference, self.toolchain.id)
            except RegistryClientError as exc:
                details = dict(exc.details or {})
                where = _where(uses, reference)
                if exc.code != "not_built" or asked_build:
                    raise SimulatorError(f"{where}: {exc.message}", exc.code or "registry", details) from exc
                self._build_for_toolchain(reference, details, where)
                asked_build = True

    def _build_for_toolchain(self, reference: str, details: dict[str, Any], where: str) -> None:
        """The model exists but has no module for this toolchain: have the registry build it, and wait."""
        model, versions = details.get("model", reference), details.get("versions") or []
        wanted = reference.split("@", 1)[1] if "@" in reference else (versions[-1] if versions else None)
        label = f"{model}@{wanted}" if wanted is not None else model
        built_for = ", ".join(details.get("toolchains") or []) or "no toolchain"
        if not self.build:
            raise SimulatorError(f"{where}: {label} is not built for this machine's toolchain {self.toolchain.id} "
                                 f"(it is built for {built_for}); run without --no-build to have the registry build "
                                 "it", "not_built", details)
        try:
            build = self.client.rebuild(label, self.toolchain.id)
        except RegistryClientError as exc:
            if exc.code == "unknown_toolchain":
                known = ", ".join((exc.details or {}).get("known") or []) or "none"
                raise SimulatorError(
                    f"{where}: {label} is not built for this machine's toolchain {self.toolchain.id}, and no compile "
                    f"worker of the registry serves it (workers serve: {known}). Start `nestml-registry worker` on a "
                    "machine like this one (same NEST, compiler and platform), or run where a toolchain above is",
                    "no_worker_for_toolchain", dict(exc.details or {})) from exc
            raise SimulatorError(f"{where}: asking the registry to build {label} for {self.toolchain.id} failed: "
                                 f"{exc.message}", exc.code or "registry", dict(exc.details or {})) from exc
        self.progress(f"{label} is not built for {self.toolchain.id} yet: the registry builds it (build "
                      f"{build['id']}, {build['status']})")
        last: list[str] = []

        def show(doc: dict[str, Any]) -> None:
            state = f"{doc.get('status')}" + (f" ({doc['stage']})" if doc.get("stage") else "")
            if state != (last[0] if last else None):
                last[:] = [state]
                self.progress(f"build {doc.get('id')} of {label}: {state}")

        done = self._call(f"{where}: following build {build['id']}",
                          lambda: self.client.wait_build(build["id"], on_progress=show, timeout=self.build_timeout))
        if done.get("status") != "succeeded":
            errors = [d for d in done.get("diagnostics") or [] if d.get("severity") == "error"]
            first = errors[0].get("message") if errors else (done.get("error") or "see its log")
            raise SimulatorError(f"{where}: the registry's build {done.get('id')} of {label} for {self.toolchain.id} "
                                 f"failed: {first} (nestml-registry build {done.get('id')} --log)", "build_failed",
                                 {"build": done.get("id")}, input_error=False)

    def _module(self, sha: str, found: dict[str, Any], reference: str, uses: list[Use]) -> ModuleFile:
        meta = self._call(f"{_where(uses, reference)}: module {sha[:12]}", lambda: self.client.module(sha))
        if meta.get("toolchain") != self.toolchain.id:
            raise SimulatorError(
                f"{_where(uses, reference)}: the registry resolved it to module {meta.get('name')} ({sha[:12]}), "
                f"which is built for toolchain {meta.get('toolchain')}, not this machine's {self.toolchain.id}; it is "
                "not loaded. Tell the registry's administrator", "wrong_toolchain",
                {"module": sha, "module_toolchain": meta.get("toolchain"), "toolchain": self.toolchain.id})
        name = found["module"].get("name") or meta.get("name")
        return ModuleFile(name, sha, tuple(meta.get("registers") or (found["model"],)))

    def _variables(self, model: str, version: int) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """The model's parameter, state and continuous input port names."""
        detail = self._call(f"model {model}@{version}", lambda: self.client.model(f"{model}@{version}"))
        version_doc = (detail.get("versions") or [{}])[0]
        ports = [p for p in version_doc.get("input_ports") or []
                 if isinstance(p, dict) and p.get("kind") == "continuous"]
        return _names(version_doc.get("parameters")), _names(version_doc.get("state")), _names(ports)

    # -- from a lock file --------------------------------------------------------------------------

    def from_lock(self, locked: dict[str, Resolved], lock_toolchain: dict[str, Any], uses: list[Use] | None,
                  lock_path: str) -> Plan:
        """The plan a lock file (or rank 0's lock document) made, its files fetched; ``uses`` None: every
        reference it holds (``prefetch --locked``)."""
        if lock_toolchain.get("id") and lock_toolchain["id"] != self.toolchain.id:
            raise SimulatorError(f"{lock_path} was made on toolchain {lock_toolchain['id']}, not this machine's "
                                 f"{self.toolchain.id}: its modules cannot be loaded here. Run without --locked to "
                                 "resolve the same models for this machine", "wrong_toolchain",
                                 {"lock_toolchain": lock_toolchain.get("id"), "toolchain": self.toolchain.id})
        plan = Plan(self.toolchain, self.client.base_url)
        for reference in sorted(locked) if uses is None else distinct_references(uses):
            if reference not in locked:
                assert uses is not None
                raise SimulatorError(f"{_where(uses, reference)} is not in {lock_path} (it has: "
                                     f"{', '.join(sorted(locked)) or 'nothing'}): the network changed since the lock "
                                     "was made; run without --locked to resolve it anew", "not_locked")
            plan.resolved[reference] = locked[reference]
        self.fetch(plan)
        return plan

    # -- files -------------------------------------------------------------------------------------

    def fetch(self, plan: Plan) -> None:
        """Every module file of the plan, from the cache or downloaded into it (sha256 checked)."""
        for module in plan.modules():
            try:
                plan.paths[module.sha256] = self._fetch_one(module)
            except ValueError as exc:  # a name or digest that cannot be a cache path
                raise SimulatorError(f"module {module.name!r} ({module.sha256!r}) cannot be cached: {exc}",
                                     "bad_module") from exc
            except OSError as exc:
                raise SimulatorError(f"cannot use the module cache {self.cache.root} ({exc.strerror or exc}): give a "
                                     "folder you can write with --cache or NESTML_REGISTRY_MODULE_CACHE",
                                     "cache_not_writable") from exc

    def _fetch_one(self, module: ModuleFile) -> Path:
        path = self.cache.get(module.sha256, module.name)
        if path is not None:
            return path
        self.progress(f"downloading {module.name} ({module.sha256[:12]})")
        return self._call(f"downloading module {module.name}",
                          lambda: self.cache.fetch(self.client, module.sha256, module.name))
