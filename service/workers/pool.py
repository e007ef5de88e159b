"""Compile worker processes, one pool for ``serve`` (embedded workers) and ``worker --concurrency N``:
spawned, restarted when they exit on their own, stopped with SIGTERM (each finishes its build first),
killed on a second signal. A worker dies with the process that started it (Linux PR_SET_PDEATHSIG)."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from nestml_registry.service.logs import configure_logging
from nestml_registry.service.settings import Settings

logger = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> bool:
    """Ask Linux to send this process SIGTERM when its parent dies; False if the parent is gone already."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            logger.debug("prctl(PR_SET_PDEATHSIG) is not available")
    return os.getppid() == parent


def _pool_worker(settings: Settings, log_level: int, parent: int, burst: bool, server: str | None = None) -> None:
    """Entry point of a spawned compile worker process: logging like the CLI's, then the worker loop."""
    configure_logging(log_level <= logging.INFO)
    if not _die_with_parent(parent):
        return
    from nestml_registry.service.workers.worker import make_worker

    make_worker(settings, burst, server).run()


class WorkerPool:
    """N compile worker processes, for ``serve`` (beside the API) and for ``worker --concurrency N``. A
    watcher restarts any that exits on its own (after 1, 2, 4 ... up to 60 s; a worker that ran a minute
    or more is restarted at once), except a ``burst`` worker that exits cleanly: it found no build left."""

    RESTART_CAP = 60.0

    def __init__(self, settings: Settings, count: int, *, burst: bool = False, server: str | None = None) -> None:
        self.settings = settings
        self.server = server  # workers over HTTP (service.http_access), else on the database
        self.count = count
        self.burst = burst
        self.procs: list[BaseProcess] = []
        self.restarts = 0
        self.on_restart: Callable[[], None] | None = None  # e.g. the API's restart counter
        self.stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()

    def _spawn(self, i: int) -> BaseProcess:
        ctx = multiprocessing.get_context("spawn")
        level = logging.getLogger().getEffectiveLevel()
        p = ctx.Process(target=_pool_worker, args=(self.settings, level, os.getpid(), self.burst, self.server),
                        name=f"compile-worker-{i}")
        p.start()
        return p

    def start(self) -> None:
        if self.count == 0:
            return
        self.procs = [self._spawn(i) for i in range(self.count)]
        self._watcher = threading.Thread(target=self._watch, name="worker-watcher", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        started = {i: time.monotonic() for i in range(self.count)}
        failures = dict.fromkeys(range(self.count), 0)
        due: dict[int, float] = {}
        while not self.stopping.wait(0.5):
            for i, p in enumerate(list(self.procs)):
                if p.exitcode is None or self.stopping.is_set() or self._done(p):
                    continue
                if i not in due:
                    failures[i] = 0 if time.monotonic() - started[i] >= self.RESTART_CAP else failures[i] + 1
                    delay = 0.0 if failures[i] == 0 else min(self.RESTART_CAP, 2.0 ** (failures[i] - 1))
                    due[i] = time.monotonic() + delay
                    logger.error("compile worker %s (pid %s) exited with status %s; restarting it in %.0f s (builds "
                                 "wait in the queue meanwhile; see its messages above)", p.name, p.pid, p.exitcode,
                                 delay)
                if time.monotonic() >= due[i]:
                    with self._lock:
                        if self.stopping.is_set():
                            return
                        self.procs[i] = self._spawn(i)
                    started[i] = time.monotonic()
                    self.restarts += 1
                    if self.on_restart is not None:
                        self.on_restart()
                    del due[i]
                    logger.warning("compile worker %s restarted (pid %s)", self.procs[i].name, self.procs[i].pid)

    def stop(self) -> None:
        """SIGTERM to every worker (each finishes its current build, then exits); once."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        alive = self._signal(signal.SIGTERM)
        if alive:
            logger.warning("stopping %d compile worker(s): each finishes the build it runs first (signal again to "
                           "stop them at once)", alive)

    def kill(self) -> None:
        """SIGKILL to every worker still running: their builds return to the queue when their lease runs out."""
        self.stopping.set()
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> int:
        alive = 0
        with self._lock:
            procs = list(self.procs)
        for p in procs:
            if p.pid is None or p.exitcode is not None:
                continue
            try:
                os.kill(p.pid, sig)
                alive += 1
            except ProcessLookupError:
                continue
        return alive

    def wait_registered(self, timeout: float) -> None:
        """Wait until a worker has registered a toolchain (so that the first push is not refused with
        ``no_worker``), a worker died, or ``timeout`` passed. Clients that connect meanwhile wait in the
        listening socket's backlog."""
        if self.count == 0:
            return
        from nestml_registry.registry import toolchains
        from nestml_registry.registry.db import make_engine, make_sessionmaker

        engine = make_engine(self.settings.database_url)
        try:
            sessions = make_sessionmaker(engine)
            deadline = time.monotonic() + timeout
            while not self.stopping.is_set() and time.monotonic() < deadline:
                with sessions() as s:
                    if toolchains.latest(s) is not None:
                        return
                if any(p.exitcode is not None for p in self.procs):
                    return
                self.stopping.wait(0.1)
            logger.warning("no compile worker registered within %.0f s; serving anyway", timeout)
        finally:
            engine.dispose()

    def join(self) -> None:
        if self._watcher is not None:
            self._watcher.join()
        for p in self.procs:
            p.join()

    def _done(self, p: BaseProcess) -> bool:
        """A burst worker that exited cleanly: the queue had nothing left for it."""
        return self.burst and p.exitcode == 0

    def finished(self) -> bool:
        """Every worker has exited and none will be restarted (stopped, or burst workers done)."""
        with self._lock:
            procs = list(self.procs)
        return all(p.exitcode is not None for p in procs) and (
            self.stopping.is_set() or all(self._done(p) for p in procs))

    def succeeded(self) -> bool:
        with self._lock:
            return all(p.exitcode == 0 for p in self.procs)


def run_workers(settings: Settings, concurrency: int, burst: bool = False, server: str | None = None) -> int:
    """Run ``concurrency`` workers until they exit (one in this process; more as a :class:`WorkerPool`).
    SIGTERM or SIGINT stops them after their current build; a second one kills them."""
    from nestml_registry.service.workers.worker import make_worker

    if concurrency == 1:
        make_worker(settings, burst, server).run()
        return 0
    pool = WorkerPool(settings, concurrency, burst=burst, server=server)

    def stop(signum: int, _frame: object) -> None:
        if pool.stopping.is_set():
            pool.kill()
        else:
            pool.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pool.start()
    while not pool.finished():
        time.sleep(0.2)
    pool.stopping.set()  # ends the watcher
    pool.join()
    return 0 if pool.succeeded() else 1
