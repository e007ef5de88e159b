"""One process's link to the registry: how to resolve, and the plan of the network being built."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nestml_registry.service.client import RegistryClient, RegistryClientError
from nestml_registry.simulator import checks, drift, hooks, install, lock, nest_names, pairs
from nestml_registry.simulator.cache import ModuleCache
from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.parallel import Job
from nestml_registry.simulator.plan import LocalToolchain, Plan
from nestml_registry.simulator.references import find_uses
from nestml_registry.simulator.resolve import Resolver, detect_toolchain

logger = logging.getLogger(__name__)

_active: RegistrySession | None = None


def active() -> RegistrySession | None:
    return _active


def set_active(session: RegistrySession | None) -> None:
    global _active
    _active = session


def read_config(config_cls: Any, path: Path) -> Any:
    """``config_cls.from_json(path)`` (a BMTK config class), its failures as one clear error."""
    try:
        return config_cls.from_json(str(path))
    except Exception as exc:  # BMTK raises plain Exceptions for configs it cannot read
        raise SimulatorError(f"{path}: BMTK cannot read this config ({type(exc).__name__}: {exc})",
                             "invalid_config") from exc


def load_config(conf: Any) -> Mapping[str, Any]:
    """A BMTK config (a path, a dict or a bmtk config object) with its manifest resolved."""
    if isinstance(conf, Mapping):
        return conf
    if isinstance(conf, str | os.PathLike):
        from bmtk.simulator.core.simulation_config import SimulationConfig

        path = Path(conf)
        if not path.is_file():
            raise SimulatorError(f"{path}: no such config file", "missing_file")
        return read_config(SimulationConfig, path)
    raise SimulatorError(f"cannot read a BMTK config from a {type(conf).__name__}: give a path or a dict",
                         "invalid_config")


@dataclass
class RegistrySession:
    client: RegistryClient
    cache: ModuleCache
    locked: Path | None = None
    build: bool = True
    build_timeout: float | None = None
    progress: Callable[[str], None] | None = None
    write_lock: bool = True
    cache_dir: Path | None = None  # where the toolchain detection is cached
    cxxflags: str = ""  # NESTML_REGISTRY_CXXFLAGS: part of the toolchain, as for the workers
    toolchain: LocalToolchain | None = None
    plan: Plan | None = None
    lock_path: Path | None = None
    previous_lock: bytes | None = None  # the last run's lock file, when this run resolves otherwise
    prepared_for: object = None  # the config the plan was made for (its path)
    _job: Job | bool | None = False  # False: not looked for yet

    @classmethod
    def create(cls, server: str | None = None, token: str | None = None, *, locked: str | os.PathLike | None = None,
               build: bool = True, cache: str | os.PathLike | None = None, build_timeout: float | None = None,
               progress: Callable[[str], None] | None = None, write_lock: bool = True,
               cache_dir: str | os.PathLike | None = None) -> RegistrySession:
        try:
            client = RegistryClient.from_env(server, token)
        except RegistryClientError as exc:
            raise SimulatorError(exc.message, exc.code or "invalid_url") from exc
        from nestml_registry.service.settings import Settings

        settings = Settings.from_env()
        return cls(client, ModuleCache(cache), Path(locked) if locked else None, build, build_timeout, progress,
                   write_lock, Path(cache_dir) if cache_dir is not None else settings.cache_dir, settings.cxxflags)

    def local_toolchain(self) -> LocalToolchain:
        if self.toolchain is None:
            self.toolchain = detect_toolchain(self.cache_dir, self.cxxflags)
        return self.toolchain

    def prepare(self, conf: Any) -> Plan | None:
        """Resolve, fetch and check every ``nestml:`` reference of the config and say what each resolved
        to; nothing is written (:meth:`save_lock` writes the lock file once the run goes ahead). Called again
        for the same config, it keeps the plan it made."""
        config = load_config(conf)
        key = config.get("config_path") or id(conf)
        if key == self.prepared_for:
            return self.plan
        uses = find_uses(config)
        self.plan = None
        if not uses:
            self.prepared_for = key
            return None
        resolver = Resolver(self.client, self.local_toolchain(), self.cache, build=self.build,
                            build_timeout=self.build_timeout, progress=self.progress)
        job = self.job()
        if job is None:
            plan = self.plan_of(resolver, uses, config)
        else:  # rank 0 asks the registry; the others take its plan (one download per node)
            plan = job.share(lambda: self._plan_document(resolver, uses, config),
                             lambda doc: resolver.from_lock(lock.references(doc, "rank 0's plan"),
                                                            dict(doc.get("toolchain") or {}), uses, "rank 0's plan"))
        try:
            checks.check_versions(plan)
            checks.check_modules(plan)
            install.check_files(plan)
            checks.check_params(plan, uses, config.get("components") or {})
            pairs.check_pairs(plan, config)
            nest_names.check(plan, config)  # what NEST will refuse later, refused now (nothing written yet)
        except SimulatorError as exc:
            exc.quiet = job is not None and job.rank != 0  # every rank finds it; rank 0 says it
            raise
        self.plan = plan
        self.prepared_for = key
        if job is None or job.rank == 0:
            self._report(plan, config)
        return plan

    def job(self) -> Job | None:
        """The MPI job this process is a rank of (with a NEST built with MPI), found once; only its rank 0
        writes the lock file."""
        if self._job is False:
            self._job = Job.current(self.local_toolchain())
            if self._job is not None and self._job.rank != 0:
                self.write_lock = False
        return self._job if isinstance(self._job, Job) else None

    def plan_of(self, resolver: Resolver, uses: list, config: Mapping[str, Any]) -> Plan:
        """``uses`` resolved: exactly the lock file's (``locked``), else by the registry (or, when it does not
        answer, by the last run's lock file in the config's output folder)."""
        if self.locked is not None:
            return resolver.from_lock(lock.read(self.locked), lock.toolchain_of(self.locked), uses, str(self.locked))
        return self._resolve(resolver, uses, config)

    def _plan_document(self, resolver: Resolver, uses: list, config: Mapping[str, Any]) -> tuple[Plan, dict]:
        plan = self.plan_of(resolver, uses, config)
        return plan, lock.to_document(plan)

    def _report(self, plan: Plan, config: Mapping[str, Any]) -> None:
        """Say what every reference resolved to, and how that differs from the last run's lock file; warn
        about hooks for models the network does not use."""
        output_dir = (config.get("output") or {}).get("output_dir")
        last = Path(output_dir) / lock.LOCK_NAME if output_dir else None
        lines = drift.report(plan, last if self.locked is None else None)
        if last is not None and any("differs from the last run" in line for line in lines):
            # kept now: BMTK may empty the output folder before the new lock file is written
            self.previous_lock = last.read_bytes()
        for line in lines:
            if self.progress is not None:
                self.progress(line)
            logger.info(line)
        from bmtk.simulator.pointnet.pyfunction_cache import py_modules

        hooks.warn_unused(py_modules, plan, self.progress)

    def _resolve(self, resolver: Resolver, uses: list, config: Mapping[str, Any]) -> Plan:
        """From the registry; when it does not answer, from the lock file of the last run in this output
        folder (made for this toolchain), so that a job runs offline once the module cache is filled."""
        try:
            return resolver.resolve(uses)
        except SimulatorError as exc:
            output_dir = (config.get("output") or {}).get("output_dir")
            last = Path(output_dir) / lock.LOCK_NAME if output_dir else None
            if exc.code != "unreachable" or last is None or not last.is_file():
                raise
            if self.progress is not None:  # the one notice a user sees (the log gets the details only)
                self.progress(f"the registry did not answer; using what the last run locked ({last})")
                logger.info("registry unreachable (%s); using %s", exc.message, last)
            else:
                logger.warning("registry unreachable (%s); using %s", exc.message, last)
            try:
                return resolver.from_lock(lock.read(last), lock.toolchain_of(last), uses, str(last))
            except SimulatorError as fallback:
                raise SimulatorError(f"{exc.message}; and the last run's lock file cannot stand in: "
                                     f"{fallback.message}", exc.code, exc.details) from fallback

    def save_lock(self, config: Mapping[str, Any]) -> Path | None:
        """Write the plan's lock file into the config's output folder (again, after BMTK emptied it)."""
        output_dir = (config.get("output") or {}).get("output_dir")
        if self.plan is None or not self.write_lock or not output_dir:
            return None
        self.lock_path = lock.write(self.plan, output_dir, config.get("config_path"), self.previous_lock)
        return self.lock_path

    def install(self, nest: Any) -> list[str]:
        if self.plan is None:
            return []
        return install.install(self.plan, nest)
