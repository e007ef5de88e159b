"""``nestml-registry serve``: the HTTP API (uvicorn) in this process, compile workers in child processes.

    sock = listen("127.0.0.1", 8000)
    run_server(settings, sock, workers=1)      # until SIGTERM or SIGINT

SIGTERM or SIGINT stops uvicorn and sends SIGTERM to the workers, which finish their current build and
exit; a second signal while waiting for them kills them (their builds go back to the queue when the
lease runs out). Workers also get SIGTERM if this process dies without cleaning up.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from nestml_registry.registry.errors import RegistryError
from nestml_registry.service.settings import Settings

logger = logging.getLogger(__name__)
REGISTER_WAIT = 300.0  # seconds serve waits for its first worker to register (a first toolchain detection)
PR_SET_PDEATHSIG = 1


class ServeError(RegistryError):
    """The server cannot start (address in use, app failed to start)."""

    code = "serve_failed"


def with_address(settings: Settings, host: str, port: int) -> Settings:
    """``settings`` with ``host`` and ``port``."""
    return dataclasses.replace(settings, host=host, port=port)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port); a one-line error if it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host!r}: {exc.strerror}; give an address of this machine "
                         "with --host (e.g. 127.0.0.1 or 0.0.0.0)") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(f"port {port} on {host} is in use (another 'nestml-registry serve'?): stop that "
                             "server or choose another port with --port") from exc
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


def _die_with_parent(parent: int) -> bool:
    """Ask Linux to send this process SIGTERM when its parent dies; False if the parent is gone already."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            logger.debug("prctl(PR_SET_PDEATHSIG) is not available")
    return os.getppid() == parent


def _embedded_worker(settings: Settings, log_level: int, parent: int) -> None:
    """Entry point of a spawned compile worker process."""
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
    if not _die_with_parent(parent):
        return
    from nestml_registry.service.worker import Worker

    Worker(settings).run()


class EmbeddedWorkers:
    """N compile worker processes beside the API; a watcher restarts any that exits on its own (after
    1, 2, 4 ... up to 60 s; a worker that ran a minute or more is restarted at once)."""

    RESTART_CAP = 60.0

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self.procs: list[BaseProcess] = []
        self.restarts = 0
        self.on_restart: Callable[[], None] | None = None  # e.g. the API's restart counter
        self.stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()

    def _spawn(self, i: int) -> BaseProcess:
        ctx = multiprocessing.get_context("spawn")
        level = logging.getLogger().getEffectiveLevel()
        p = ctx.Process(target=_embedded_worker, args=(self.settings, level, os.getpid()), name=f"compile-worker-{i}")
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
                if p.exitcode is None or self.stopping.is_set():
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


def run_server(settings: Settings, sock: socket.socket, workers: int, *, verbose: bool = False) -> int:
    """Serve the API on ``sock`` with ``workers`` embedded compile workers until a signal; return 0."""
    import uvicorn

    from nestml_registry.service.app import create_app

    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level="info" if verbose else "warning", access_log=verbose,
                                           lifespan="auto"))
    embedded = EmbeddedWorkers(settings, workers)
    embedded.on_restart = app.state.metrics.worker_restarts.inc

    signals: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        # before and after uvicorn runs (uvicorn handles signals itself while it runs, then re-raises them here)
        signals.append(signum)
        server.should_exit = True
        if len(signals) == 1:
            embedded.stop()
        else:
            embedded.kill()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        embedded.start()
        try:
            embedded.wait_registered(REGISTER_WAIT)
            server.run(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits when the app's start-up fails
            raise ServeError(f"the API did not start (status {exc.code}): see the messages above") from exc
        finally:
            sock.close()
            embedded.stop()
            embedded.join()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0
