"""The API under load and at capacity, on a real uvicorn over SQLite and PostgreSQL: hundreds of clients
at once all get answers (before, more than about 40 deadlocked the server); a server whose database
connections stay busy answers 503 ``at_capacity`` with Retry-After, and the client waits and tries
again. Nothing here compiles (modules are stand-in bytes stored the way a worker stores them)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from api_support import Api, assert_error_shape, model_for, running_api, tag, tiny
from registry_fixtures import backend_params, set_connections

from nestml_registry.service.client import RegistryClient
from nestml_registry.service.client.errors import RegistryClientError
from nestml_registry.service.client.retries import RetryPolicy

CLIENTS = 400
CLIENT_LOG = "nestml_registry.service.client.registry_client"


def _published(api: Api) -> tuple[str, str, str]:
    """A model with a 300 KB module: (sha256, model name, toolchain)."""
    toolchain = api.register_toolchain()
    t = tag()
    build = api.post_build([tiny(t)], toolchain=toolchain).json()
    sha = api.succeed(build["id"], toolchain, [model_for(t)], os.urandom(300_000))
    return sha, f"tiny_{t}_neuron_nestml", toolchain


async def _crowd(url: str, paths: list[str], sha: str) -> Counter[str]:
    """Every path requested at the same moment, each on a connection of its own."""
    limits = httpx.Limits(max_connections=len(paths), max_keepalive_connections=len(paths))
    outcomes: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        async def one(path: str) -> None:
            try:
                r = await client.get(path)
            except httpx.HTTPError as exc:
                outcomes[type(exc).__name__] += 1
                return
            if r.status_code == 200 and path.endswith("/artifact") and hashlib.sha256(r.content).hexdigest() != sha:
                outcomes["bad bytes"] += 1
                return
            outcomes[str(r.status_code)] += 1

        await asyncio.gather(*(one(p) for p in paths))
    return outcomes


@pytest.mark.slow
@pytest.mark.parametrize("backend", backend_params())
def test_hundreds_of_clients_at_once_all_get_answers(backend: str, tmp_path: Path) -> None:
    with running_api(backend, tmp_path) as api:
        sha, name, toolchain = _published(api)
        kinds = [f"/v1/modules/{sha}/artifact", f"/v1/resolve?model={name}&toolchain={toolchain}",
                 f"/v1/models/{name}", "/healthz", f"/v1/modules/{sha}"]
        paths = [kinds[i % len(kinds)] for i in range(CLIENTS)]
        outcomes = asyncio.run(_crowd(api.url, paths, sha))
        assert outcomes == Counter({"200": CLIENTS}), outcomes
        assert api.client.get("/healthz").status_code == 200  # and it is still well


def _hold_every_connection(api: Api, seconds: float) -> concurrent.futures.Future:
    """Keep the API's only database thread busy for ``seconds`` (as a slow query would)."""
    database = api.server.app.state.database
    started = threading.Event()

    def hold(_session: object) -> None:
        started.set()
        threading.Event().wait(seconds)

    future = database._executor.submit(database._read, hold, (), {})
    assert started.wait(10)
    return future


@pytest.mark.slow
def test_a_server_at_capacity_says_so_and_the_client_waits_for_it(tmp_path: Path) -> None:
    with running_api("sqlite", tmp_path, db_connections=1, db_wait_seconds=0.3) as api:
        held = _hold_every_connection(api, 3.0)
        r = api.client.get("/v1/models")
        error = assert_error_shape(r, 503, "at_capacity")
        assert r.headers["retry-after"] and error["details"] == {"dependency": "capacity"}
        assert "try again" in error["message"]
        no_retry = RegistryClient(api.url, retry=RetryPolicy(budget=0))
        with pytest.raises(RegistryClientError) as caught:
            no_retry.models()
        assert caught.value.code == "at_capacity" and caught.value.retry_after
        patient = RegistryClient(api.url, retry=RetryPolicy(budget=30))
        assert patient.models() == []  # waited until the connection came free
        held.result(timeout=10)
        metrics = api.client.get("/metrics").text
        assert "nestml_registry_requests_at_capacity_total 3.0" in metrics, metrics[:2000]


@pytest.mark.slow  # PostgreSQL
def test_a_database_that_does_not_answer_is_named_as_the_missing_dependency(tmp_path: Path) -> None:
    with running_api("postgresql", tmp_path) as api:
        set_connections(api.server.settings.database_url, False)  # PostgreSQL refuses everyone, superusers too
        try:
            r = api.client.get("/v1/models")
            error = assert_error_shape(r, 503, "database_unavailable")
            assert error["details"] == {"dependency": "database"} and r.headers["retry-after"]
            health = api.client.get("/healthz")
            assert assert_error_shape(health, 503, "database_unavailable")["details"]["dependency"] == "database"
        finally:
            set_connections(api.server.settings.database_url, True)
        assert api.client.get("/v1/models").status_code == 200


def test_the_client_tries_again_when_a_server_it_reached_goes_away_and_not_for_a_wrong_url(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with running_api("sqlite", tmp_path) as api:
        client = RegistryClient(api.url, retry=RetryPolicy(budget=1.5))
        assert client.models() == []
        api.server.stop()  # a restart, say: the port refuses connections
        with caplog.at_level("INFO", logger=CLIENT_LOG), pytest.raises(RegistryClientError) as gone:
            client.models()
        assert gone.value.code == "unreachable" and "trying again in" in caplog.text
    caplog.clear()
    never = RegistryClient(api.url, retry=RetryPolicy(budget=30))  # nothing ever answered there
    with caplog.at_level("INFO", logger=CLIENT_LOG), pytest.raises(RegistryClientError) as wrong:
        never.models()
    assert wrong.value.code == "unreachable" and "trying again" not in caplog.text
