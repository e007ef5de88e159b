"""``nestml-registry serve``: the HTTP API (uvicorn) in this process, compile workers in child processes.

    sock = listen("127.0.0.1", 8000)
    run_server(settings, sock, workers=1)      # until SIGTERM or SIGINT

SIGTERM or SIGINT stops uvicorn and sends SIGTERM to the workers, which finish their current build and
exit; a second signal while waiting for them kills them (their builds go back to the queue when the
lease runs out). Workers also get SIGTERM if this process dies without cleaning up.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import signal
import socket

from nestml_registry.registry.errors import RegistryError
from nestml_registry.service.settings import Settings
from nestml_registry.service.workers.pool import WorkerPool

logger = logging.getLogger(__name__)
REGISTER_WAIT = 300.0  # seconds serve waits for its first worker to register (a first toolchain detection)


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


def run_server(settings: Settings, sock: socket.socket, workers: int, *, verbose: bool = False) -> int:
    """Serve the API on ``sock`` with ``workers`` embedded compile workers until a signal; return 0."""
    import uvicorn

    from nestml_registry.service.api.app import create_app

    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level="info" if verbose else "warning", access_log=verbose,
                                           lifespan="auto"))
    embedded = WorkerPool(settings, workers)
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
