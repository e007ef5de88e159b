"""Compile workers: claim a build from the shared queue, compile it, store and publish the module.

    worker = Worker(settings)
    worker.run()            # until SIGTERM; burst=True: until the queue is empty

A worker holds a lease on its build and renews it from a heartbeat thread while the compile runs in
child processes; a worker that dies stops renewing, and a sweep (run by every worker) puts the build
back in the queue. SIGTERM lets the current build finish, then the worker exits. Workers claim only
builds for the toolchain they can serve.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

from nestml_registry.compiler.errors import CompilerError
from nestml_registry.compiler.pipeline import Compiler
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.compiler.result import BuildResult
from nestml_registry.compiler.sources import Source
from nestml_registry.registry import workers
from nestml_registry.registry.tables import utcnow
from nestml_registry.service.logs import STARTUP_LOGGER
from nestml_registry.service.settings import Settings
from nestml_registry.service.workers.characterising import Characterising
from nestml_registry.service.workers.queue_access import (
    BEAT_EVERY,
    Claimed,
    DatabaseAccess,
    Outcome,
    QueueAccess,
    QueueUnavailable,
    refusal,
    short,
)
from nestml_registry.service.workers.redaction import Redactor

logger = logging.getLogger(__name__)
REGISTER_EVERY = 60.0  # seconds between a worker's renewals of its toolchain's last_seen
RECORD_PATIENCE = 600.0  # seconds a finished build's result waits for the database to come back
CLEAN_EVERY = 600.0  # seconds between sweeps of dead builds' work folders and the store's stale temporary files
MAX_LOG_BYTES = 1024 * 1024


class _Heartbeat(threading.Thread):
    """Renews the lease every third of its length, and at once when the stage changes."""

    def __init__(self, worker: Worker, build_id: int) -> None:
        super().__init__(name=f"heartbeat-{build_id}", daemon=True)
        self.worker, self.build_id = worker, build_id
        self.stage: str | None = None
        self.lost = False
        self._wake = threading.Event()
        self._done = threading.Event()

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        self._wake.set()

    def stop(self) -> None:
        self._done.set()
        self._wake.set()
        self.join()

    def run(self) -> None:
        interval = self.worker.settings.lease_seconds / 3
        while not self._done.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            if self._done.is_set():
                break
            try:
                ok = self.worker.access.renew(self.build_id, self.worker.id, self.worker.settings.lease_seconds,
                                              self.stage, self.worker.beat_of(self.build_id))
            except QueueUnavailable as exc:  # a hiccup: try again at the next beat, the lease has slack
                logger.warning("renewing the lease of build %d failed: %s", self.build_id, exc)
                continue
            if not ok:
                self.lost = True
                logger.warning("worker %s lost the lease of build %d", self.worker.id, self.build_id)
                break


class Worker:
    def __init__(self, settings: Settings, *, burst: bool = False, worker_id: str | None = None,
                 compiler: Compiler | None = None, access: QueueAccess | None = None) -> None:
        self.settings = settings
        self.burst = burst
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.access: QueueAccess = access or DatabaseAccess(settings)
        self.redact = Redactor.for_settings(settings)  # what a build records carries no server paths
        # a long-lived worker keeps a code generation process ready for its next build
        self.compiler = compiler or Compiler(dataclasses.replace(settings.compiler_config(), warm_codegen=True))
        self.characterising = Characterising(self)
        self.stopping = threading.Event()
        self.processed = 0
        self.registered_at = float("-inf")  # registers in the first turn of the loop
        self.beaten_at = self.cleaned_at = float("-inf")
        self.retries = 0
        self.last_error: str | None = None

    def request_stop(self, *_: object) -> None:
        """Finish the current build, then exit (the SIGTERM handler)."""
        if not self.stopping.is_set():
            logger.info("worker %s stopping after its current build", self.id)
        self.stopping.set()

    def run(self) -> int:
        """Work until asked to stop (or, in burst mode, until no build is left); return builds done."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        toolchain = self.compiler.toolchain.id
        self.compiler.check_sandbox()
        logging.getLogger(STARTUP_LOGGER).info(
            "worker %s serving toolchain %s from %s; build sandbox: %s", self.id, toolchain, self.access.describe(),
            self.compiler.sandbox.describe())
        backoff = Backoff()
        try:
            self.compiler.prestart()
            while not self.stopping.is_set():
                try:
                    more = self._step(toolchain)
                except (QueueUnavailable, OSError) as exc:  # the queue or a disk: wait, then go on
                    delay = backoff.next()
                    self.retries, self.last_error = self.retries + 1, str(exc) if isinstance(
                        exc, QueueUnavailable) else short(exc)
                    logger.error("worker %s: %s; trying again in %.0f s", self.id, self.last_error, delay)
                    self.stopping.wait(delay)
                    continue
                backoff.reset()
                if not more:
                    break
        finally:
            self.compiler.close()
            self._say_stopped()
            self.access.close()
        return self.processed

    def _say_stopped(self) -> None:
        try:
            self.access.stopped(self.id)
        except QueueUnavailable as exc:  # it stops beating anyway: it is dead once its last beat expires
            logger.warning("worker %s could not record that it stopped: %s", self.id, exc)

    def _step(self, toolchain: str) -> bool:
        """One turn of the loop: sweep, claim, build. False when a burst worker has nothing left to do."""
        if time.monotonic() - self.registered_at > REGISTER_EVERY:
            self.register()
        if time.monotonic() - self.beaten_at > BEAT_EVERY:
            self.heartbeat()
        if time.monotonic() - self.cleaned_at > CLEAN_EVERY:
            self.clean()
        self.sweep()
        claimed = self.claim(toolchain)
        if claimed is None:
            if self.characterising.run_one(toolchain):  # between builds: one characterisation
                return True
            if self.burst and not self.pending(toolchain):
                return False
            self.stopping.wait(self.settings.poll_seconds)
            return True
        self.process(claimed)
        self.processed += 1
        self.beaten_at = float("-inf")  # says at once that it is idle again
        return True

    def register(self) -> None:
        """Tell the registry this toolchain is served (the API queues builds only for such toolchains,
        by default for the one seen most recently)."""
        details = dict(self.compiler.toolchain.to_dict(), sandboxed=self.compiler.sandbox.enabled)
        self.access.register(details)
        self.registered_at = time.monotonic()

    def beat_of(self, build_id: int | None) -> workers.Beat:
        """This worker's heartbeat; it counts as alive for three idle beats or a lease, whichever is longer."""
        return workers.Beat(self.id, self.compiler.toolchain.id, socket.gethostname(), os.getpid(),
                            max(3 * BEAT_EVERY, self.settings.lease_seconds), build_id, self.processed,
                            self.retries, self.last_error, utcnow())

    def heartbeat(self) -> None:
        self.access.beat(self.beat_of(None))
        self.beaten_at = time.monotonic()

    def clean(self) -> None:
        """What killed builds left on disk: their work folders here, temporary files in the store."""
        self.cleaned_at = time.monotonic()
        self.compiler.sweep_work()
        removed = self.access.clean_store()
        if removed:
            logger.info("removed %d temporary file(s) that dead writers left in the artifact store", removed)

    def sweep(self) -> None:
        self.access.sweep()

    def pending(self, toolchain: str) -> bool:
        """Work this worker may still get: queued builds or characterisations, or running ones whose lease
        may run out."""
        return self.access.pending(toolchain)

    def claim(self, toolchain: str) -> Claimed | None:
        claimed = self.access.claim(self.id, toolchain, self.settings.lease_seconds)
        if claimed is not None:
            self.access.beat(self.beat_of(claimed.id))
        return claimed

    def process(self, claimed: Claimed) -> None:
        heartbeat = _Heartbeat(self, claimed.id)
        heartbeat.start()
        try:
            result = self.compile(claimed, heartbeat.set_stage)
        finally:
            heartbeat.stop()
        if heartbeat.lost:
            logger.warning("dropping the result of build %d: its lease went to another worker", claimed.id)
            return
        self._record_patiently(claimed, result)

    def _record_patiently(self, claimed: Claimed, result: BuildResult | str) -> None:
        """Record the result, waiting out a database that does not answer (the compile is not thrown away
        for an outage); after RECORD_PATIENCE seconds the sweep hands the build to a worker again."""
        backoff, deadline = Backoff(), time.monotonic() + RECORD_PATIENCE
        while True:
            try:
                self.record(claimed, result)
                return
            except QueueUnavailable as exc:
                if time.monotonic() > deadline:
                    raise
                delay = backoff.next()
                self.retries, self.last_error = self.retries + 1, str(exc)
                logger.error("worker %s: recording build %d failed (%s); trying again in %.0f s", self.id,
                             claimed.id, self.last_error, delay)
                time.sleep(delay)  # also after SIGTERM: a stopping worker finishes its build, recording included

    def compile(self, claimed: Claimed, progress) -> BuildResult | str:
        """The compiler's result, or the reason the stored request cannot be compiled."""
        try:
            request = BuildRequest.from_dict([Source.from_text(name, text) for name, _, text in claimed.sources],
                                             claimed.request)
        except CompilerError as exc:
            return f"the stored request cannot be compiled: {exc}"
        key = self.compiler.key(request)
        if key != claimed.key:
            return (f"this worker computes the build key {key[:12]}, not {claimed.key[:12]}: the build was queued "
                    "for a toolchain that differs from this worker's; submit it again")
        try:
            return self.compiler.compile(request, progress=progress)
        except OSError as exc:  # this machine's build cache or work folders: the build's own failure
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            return (f"the worker could not run the build: {exc.strerror or exc}{where}; its build cache "
                    "(NESTML_REGISTRY_CACHE) needs space and write access. Push again with --retry once it has")

    def record(self, claimed: Claimed, result: BuildResult | str) -> None:
        """Report the build's outcome (a module the registry refuses fails the build, with why)."""
        if isinstance(result, str):
            self.access.finish(claimed, self.id, Outcome([refusal(self.redact(result))], None))
            return
        diagnostics = self.redact.diagnostics([d.to_dict() for d in result.diagnostics])
        log = _read_log(result.log_path)
        log = self.redact(log) if log is not None else None
        if not result.ok:
            self.access.finish(claimed, self.id, Outcome(diagnostics, log, result.timings))
            return
        self.access.finish(claimed, self.id, Outcome(
            diagnostics, log, result.timings, Path(result.module_path or ""), result.module_name, result.toolchain,
            [_model_dict(m, claimed.sources) for m in result.models]))


class Backoff:
    """Exponential waits after failures (1, 2, 4 ... up to ``cap`` seconds, with jitter); reset on success."""

    def __init__(self, first: float = 1.0, cap: float = 30.0) -> None:
        self.first, self.cap, self.failures = first, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.first * 2 ** self.failures)
        self.failures += 1
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.failures = 0


def _model_dict(model, sources: list[tuple[str, str, str]]) -> dict:
    sha = {name: sha for name, sha, _ in sources}
    return {"name": model.name, "kind": model.kind, "nestml_name": model.nestml_name, "source": model.source,
            "source_sha256": sha.get(model.source or ""), "parameters": model.parameters, "state": model.state,
            "input_ports": model.input_ports, "receptor_types": model.receptor_types, "variants": model.variants}


def _read_log(path: str | None) -> str | None:
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - MAX_LOG_BYTES))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None


def make_worker(settings: Settings, burst: bool, server: str | None) -> Worker:
    """A worker on the registry's database and store, or (``server``) on its HTTP API with the worker token
    in ``NESTML_REGISTRY_TOKEN``."""
    if server is None:
        return Worker(settings, burst=burst)
    from nestml_registry.service.workers.http_access import HttpAccess

    return Worker(settings, burst=burst, access=HttpAccess(server, os.environ.get("NESTML_REGISTRY_TOKEN")))
