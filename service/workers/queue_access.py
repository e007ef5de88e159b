"""How a compile worker reaches the build queue: :class:`DatabaseAccess` (the registry's database and
artifact store, for workers beside the service) or :class:`~nestml_registry.service.workers.http_access.HttpAccess`
(the registry's HTTP API and a worker token, for a cluster node that reaches nothing else). The worker's
loop (:mod:`nestml_registry.service.workers.worker`) is the same for both.

Every method that cannot reach the queue raises :class:`QueueUnavailable`: the worker waits and tries
again (the lease has slack; a finished build's result waits for the queue to come back).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from nestml_registry.compiler.diagnostics import Diagnostic
from nestml_registry.registry import characterisations, queue, results, revalidation, toolchains, workers
from nestml_registry.registry.db import make_engine, make_sessionmaker
from nestml_registry.registry.errors import RegistryError
from nestml_registry.registry.store import ArtifactStore
from nestml_registry.service.settings import Settings


class QueueUnavailable(Exception):
    """The queue (database or HTTP API) does not answer now: try again later."""


@dataclass(frozen=True)
class Claimed:
    """What a worker needs of a claimed build: its key, request and sources ``(name, sha256, text)``."""

    id: int
    key: str
    request: dict
    sources: list[tuple[str, str, str]]


@dataclass(frozen=True)
class Outcome:
    """A finished build as the worker reports it (paths are the worker's own)."""

    diagnostics: list[dict]
    log: str | None
    timings: dict[str, float] | None = None
    module_path: Path | None = None  # a succeeded build's module
    module_name: str | None = None
    toolchain: str | None = None
    models: list[dict[str, Any]] | None = None


BEAT_EVERY = 10.0  # seconds between an idle worker's heartbeats (a building one beats with its lease)


class QueueAccess(Protocol):
    def describe(self) -> str: ...
    def register(self, details: dict[str, Any]) -> None: ...
    def beat(self, beat: workers.Beat) -> None: ...
    def stopped(self, worker_id: str) -> None: ...
    def sweep(self) -> None: ...
    def pending(self, toolchain: str) -> bool: ...
    def claim(self, worker_id: str, toolchain: str, lease_seconds: float) -> Claimed | None: ...
    def renew(self, build_id: int, worker_id: str, lease_seconds: float, stage: str | None,
              beat: workers.Beat) -> bool: ...
    def finish(self, claimed: Claimed, worker_id: str, outcome: Outcome) -> None: ...
    def claim_characterisation(self, worker_id: str, toolchain: str,
                               lease_seconds: float) -> characterisations.Claimed | None: ...
    def characterisation_module(self, claimed: characterisations.Claimed, worker_id: str, folder: Path) -> Path: ...
    def finish_characterisation(self, claimed: characterisations.Claimed, worker_id: str, result: dict,
                                seconds: float) -> None: ...
    def clean_store(self) -> int: ...
    def close(self) -> None: ...


def refusal(message: str, code: str | None = None) -> dict:
    """A diagnostic of the worker's or the registry's own (``code`` ``name_owned``: the submitter may not
    publish the build's models, which :data:`registry.queue.PUBLISH_REFUSALS` knows)."""
    return Diagnostic.error(message, code=code).to_dict()


def short(exc: BaseException) -> str:
    """An error in one line (a database error's first line, without SQLAlchemy's background link)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class DatabaseAccess:
    """The queue through the registry's database, modules into its artifact store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.sessions = make_sessionmaker(self.engine)
        self.store = ArtifactStore(settings.store_dir)

    def describe(self) -> str:
        return f"the database {self.engine.url.render_as_string(hide_password=True)}"

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        try:
            with self.sessions.begin() as s:
                yield s
        except SQLAlchemyError as exc:
            raise QueueUnavailable(short(exc)) from exc

    def register(self, details: dict[str, Any]) -> None:
        with self._session() as s:
            new = revalidation.fresh(s, details.get("id"))
            toolchains.register(s, details)
            if new and self.settings.revalidate:
                revalidation.queue_library(s, str(details["id"]), max_attempts=self.settings.max_attempts,
                                           characterise=self.settings.characterise)

    def beat(self, beat: workers.Beat) -> None:
        with self._session() as s:
            workers.beat(s, beat)
            if beat.build_id is None:
                workers.forget_dead(s)

    def stopped(self, worker_id: str) -> None:
        with self._session() as s:
            workers.stopped(s, worker_id)

    def sweep(self) -> None:
        with self._session() as s:
            queue.sweep(s)
            characterisations.sweep(s)

    def pending(self, toolchain: str) -> bool:
        with self._session() as s:
            return workers.work_pending(s, toolchain)

    def claim(self, worker_id: str, toolchain: str, lease_seconds: float) -> Claimed | None:
        with self._session() as s:
            build = queue.claim(s, worker_id, [toolchain], lease_seconds)
            if build is None:
                return None
            return Claimed(build.id, build.key, dict(build.request or {}), queue.sources_of(build))

    def renew(self, build_id: int, worker_id: str, lease_seconds: float, stage: str | None,
              beat: workers.Beat) -> bool:
        with self._session() as s:
            ok = queue.renew(s, build_id, worker_id, lease_seconds, stage)
            workers.beat(s, beat)
            return ok

    def finish(self, claimed: Claimed, worker_id: str, outcome: Outcome) -> None:
        """Record the outcome; a module the store refuses, or models that cannot be published, fail the build
        with why."""
        if outcome.module_path is None:
            self._fail(claimed, worker_id, outcome.diagnostics, outcome.log, outcome.timings)
            return
        try:
            stored = self.store.put_file(outcome.module_path, f"{outcome.module_name}.so")
        except OSError as exc:  # the build's own failure: its module cannot be kept
            self._fail(claimed, worker_id, [*outcome.diagnostics, refusal(
                f"the module built, but the registry's artifact store refused it ({exc.strerror or exc}); "
                "tell the registry's administrator (the store needs space and write access), then push "
                "again with --retry")], outcome.log)
            return
        try:
            with self._session() as s:
                results.record_success(s, claimed.id, worker_id, stored, outcome.module_name or "",
                                       outcome.diagnostics, outcome.log, outcome.timings,
                                       outcome.models or [], characterise=self.settings.characterise,
                                       agreement=self.settings.agreement)
        except RegistryError as exc:  # e.g. a model name owned by someone else: the build fails with why
            self._fail(claimed, worker_id, [*outcome.diagnostics, refusal(str(exc), exc.code)], outcome.log)

    def _fail(self, claimed: Claimed, worker_id: str, diagnostics: list[dict], log: str | None,
              timings: dict[str, float] | None = None) -> None:
        with self._session() as s:
            results.record_failure(s, claimed.id, worker_id, diagnostics, log, timings)

    def claim_characterisation(self, worker_id: str, toolchain: str,
                               lease_seconds: float) -> characterisations.Claimed | None:
        with self._session() as s:
            return characterisations.claim(s, worker_id, toolchain, lease_seconds)

    def characterisation_module(self, claimed: characterisations.Claimed, worker_id: str, folder: Path) -> Path:
        """The module's file, its sha256 checked (a copy in ``folder``: the store stays the store's)."""
        src = self.store.open_verified(claimed.module_location)
        dest = folder / src.name
        shutil.copyfile(src, dest)
        return dest

    def finish_characterisation(self, claimed: characterisations.Claimed, worker_id: str, result: dict,
                                seconds: float) -> None:
        with self._session() as s:
            characterisations.finish(s, claimed.id, worker_id, result, seconds)

    def clean_store(self) -> int:
        """Temporary files that dead writers left in the artifact store: removed; how many."""
        return self.store.remove_stale_incoming()

    def close(self) -> None:
        self.engine.dispose()
