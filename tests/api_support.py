"""Helpers of the API tests: a real uvicorn server on 127.0.0.1 (a free port, in a background thread)
over a fresh database on SQLite or PostgreSQL, and a stand-in for a compile worker that claims,
finishes and publishes builds the way ``nestml_registry.service.workers.worker.Worker`` does, with fake module bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from registry_fixtures import TOOLCHAIN, backend_params, create_database, drop_database
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from nestml_registry.registry import db, publishing, queue, records, results, tokens, toolchains
from nestml_registry.registry.errors import RegistryError
from nestml_registry.registry.store import ArtifactStore
from nestml_registry.registry.tables import BuildStatus
from nestml_registry.service.api.app import create_app
from nestml_registry.service.client import local_token
from nestml_registry.service.settings import Settings
from nestml_registry.service.workers.queue_access import refusal

DATA = Path(__file__).parent / "data"
TINY = (DATA / "tiny_neuron.nestml").read_text()
WORKER_ID = "api-test-worker"


def tiny(tag: str) -> tuple[str, bytes]:
    """A .nestml upload ``(file name, bytes)`` of a tiny neuron named ``tiny_<tag>_neuron``."""
    return f"tiny_{tag}.nestml", TINY.replace("model tiny_neuron:", f"model tiny_{tag}_neuron:").encode()


def tag() -> str:
    return uuid.uuid4().hex[:10]


def toolchain_details(toolchain_id: str) -> dict[str, Any]:
    return {"id": toolchain_id, "nest_version": "3.10.0", "cxx_abi": 0, "platform": "linux-x86_64"}


def assert_error_shape(response: httpx.Response, status: int | None = None, code: str | None = None) -> dict:
    """The response is an error in the API's one shape; its ``error`` object."""
    assert response.status_code >= 400, response.status_code
    if status is not None:
        assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers["content-type"]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and len(error["message"]) > 10
    if code is not None:
        assert error["code"] == code, error
    return error


class LiveServer:
    """``create_app(settings)`` served by uvicorn on a socket bound to 127.0.0.1 in a thread."""

    def __init__(self, settings: Settings, configure: Callable[[FastAPI], None] | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = dataclasses.replace(settings, port=self.port)
        self.app = create_app(self.settings)
        if configure is not None:
            configure(self.app)
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                       name=f"uvicorn-{self.port}")

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "the server thread died while starting"
            assert time.monotonic() < deadline, "the server did not start within 30 s"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


@dataclasses.dataclass
class Api:
    """A running server and direct access to its database and store."""

    server: LiveServer
    backend: str
    engine: Engine
    sessions: sessionmaker[Session]
    store: ArtifactStore
    client: httpx.Client  # with this machine's local token, as the CLI and the client send it by themselves
    local_token: str

    def bare(self) -> httpx.Client:
        """A client of this server without any token (close it after use)."""
        return httpx.Client(base_url=self.url, timeout=60)

    @property
    def home(self) -> Path:
        return self.server.settings.home

    @property
    def url(self) -> str:
        return self.server.url

    def register_toolchain(self, toolchain_id: str | None = None) -> str:
        toolchain_id = toolchain_id or f"{TOOLCHAIN}-{tag()}"
        with self.sessions.begin() as s:
            toolchains.register(s, toolchain_details(toolchain_id))
        return toolchain_id

    def token(self, role: str, name: str | None = None, toolchains: list[str] | None = None) -> tuple[int, str]:
        """A new token; a worker token with the ``toolchains`` it may serve (as `token create --toolchain`)."""
        with self.sessions.begin() as s:
            row, secret = tokens.create_token(s, name or f"{role}-{tag()}", role)
            row.toolchains = toolchains
            return row.id, secret

    def post_build(self, files: list[tuple[str, bytes]], token: str | None = None, **fields: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}  # else the local token
        data = {k: str(v).lower() if isinstance(v, bool) else v for k, v in fields.items() if v is not None}
        return self.client.post("/v1/builds", files=[("files", (n, b, "text/plain")) for n, b in files], data=data,
                                headers=headers)

    def claim(self, toolchain_id: str, build_id: int) -> None:
        with self.sessions.begin() as s:
            build = queue.claim(s, WORKER_ID, [toolchain_id], 300)
            assert build is not None and build.id == build_id, build

    def succeed(self, build_id: int, toolchain_id: str, models: list[dict[str, Any]],
                content: bytes | None = None, *, claim: bool = True, unchecked: bool = False) -> str:
        """Claim the build (unless claimed already) and finish it as a database worker does
        (``service.queue_access.DatabaseAccess.finish``): store a module file, record it and publish
        ``models``; a refusal at publishing fails the build with why. Returns the module's sha256.
        ``unchecked``: publish ``models`` as given, not checked against the build's request (for pages
        that show what a request this helper cannot make would publish)."""
        if claim:
            self.claim(toolchain_id, build_id)
        with self.sessions.begin() as s:
            build = queue.get_build(s, build_id)
            module_name = build.request["module"]
            sources = queue.sources_of(build)
        content = content or f"fake module {module_name} {uuid.uuid4().hex}".encode()
        stored = self.store.put_stream([content], f"{module_name}.so")
        shas = {name: sha for name, sha, _ in sources}
        reported = [dict(m, source_sha256=shas.get(m.get("source") or "")) for m in models]
        if unchecked:
            with self.sessions.begin() as s:
                module = records.get_or_create_module(s, stored.sha256, module_name, stored.size, toolchain_id,
                                                      stored.location)
                assert queue.finish(s, build_id, WORKER_ID, BuildStatus.SUCCEEDED, [], "log\n", module)
                publishing.publish(s, queue.get_build(s, build_id), module, reported, None)
            return stored.sha256
        try:
            with self.sessions.begin() as s:
                assert results.record_success(s, build_id, WORKER_ID, stored, module_name, [],
                                              f"log of build {build_id}\n", None, reported, characterise=False)
        except RegistryError as exc:
            with self.sessions.begin() as s:
                assert results.record_failure(s, build_id, WORKER_ID, [refusal(str(exc), exc.code)], "log\n")
        return stored.sha256

    def fail(self, build_id: int, toolchain_id: str, message: str = "something is wrong") -> None:
        self.claim(toolchain_id, build_id)
        diagnostics = [{"file": "x.nestml", "line": 3, "column": 5, "end_line": 3, "end_column": 5,
                        "severity": "error", "message": message, "code": None}]
        with self.sessions.begin() as s:
            assert queue.finish(s, build_id, WORKER_ID, BuildStatus.FAILED, diagnostics, "failed log\n")


def model_for(tag_: str, **extra: Any) -> dict[str, Any]:
    """The model a worker would publish for ``tiny(tag_)``."""
    return {"name": f"tiny_{tag_}_neuron_nestml", "kind": "neuron", "nestml_name": f"tiny_{tag_}_neuron",
            "source": f"tiny_{tag_}.nestml",
            "parameters": [{"name": "E_L", "type": "mV", "default": "-70 mV", "comment": "resting potential",
                            "value": -70.0}],
            "state": [{"name": "V_m", "type": "mV", "default": "-70 mV", "comment": None, "value": -70.0}],
            "input_ports": [{"name": "spikes", "kind": "spike", "type": None, "size": None}],
            "receptor_types": {}, "variants": [], **extra}


def base_settings(tmp: Path, url: str, **overrides: Any) -> Settings:
    return Settings(home=tmp / "home", database_url=url, store_dir=tmp / "store", cache_dir=tmp / "cache",
                    **overrides)


@contextmanager
def running_api(backend: str, tmp: Path, configure: Callable[[FastAPI], None] | None = None,
                **overrides: Any) -> Iterator[Api]:
    """A fresh database migrated to head, and a server on it."""
    url = create_database(backend, tmp)
    engine = None
    server = None
    try:
        db.upgrade(url)
        engine = db.make_engine(url)
        settings = base_settings(tmp, url, **overrides)
        # as `serve` does: this machine's user publishes with the local token, which its clients find
        secret = local_token.ensure(settings.home, url).read_text().strip()
        server = LiveServer(settings, configure).start()
        with httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {secret}"}) as client:
            yield Api(server, backend, engine, db.make_sessionmaker(engine), ArtifactStore(settings.store_dir),
                      client, secret)
    finally:
        if server is not None:
            server.stop()
        if engine is not None:
            engine.dispose()
        drop_database(url)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def api_fixture(**overrides: Any) -> Any:
    """A module-scoped fixture ``api``: one server per database backend, shared by the module's tests
    (each test uses its own model names and toolchain ids)."""
    import pytest

    @pytest.fixture(scope="module", params=backend_params())
    def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
        with running_api(request.param, tmp_path_factory.mktemp(f"api-{request.param}"), **overrides) as live:
            yield live

    return api
