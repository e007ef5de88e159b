"""The answers given before routing (service.hot_reads) are the routed answers, byte for byte, and never
answer what the routed request would refuse; and no dependency of any route takes a thread of the pool."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import Api, model_for, running_api, tag, tiny
from fastapi import Request
from registry_fixtures import backend_params

from nestml_registry.service.api.deps import get_metrics

SKIPPED_HEADERS = {"date", "server-timing"}


class RoutedCount:
    """How many requests reached a route that uses the metrics dependency (the resolve route does)."""

    def __init__(self) -> None:
        self.calls = 0

    def install(self, app: Any) -> None:
        async def counted(request: Request) -> Any:
            self.calls += 1
            return await get_metrics(request)

        app.dependency_overrides[get_metrics] = counted


@pytest.fixture(params=backend_params())
def closed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Api, RoutedCount]]:
    """A registry that needs a token to read, with a published model."""
    routed = RoutedCount()
    with running_api(request.param, tmp_path, routed.install, read_requires_token=True) as api:
        yield api, routed


def _published(api: Api) -> tuple[str, str]:
    toolchain = api.register_toolchain()
    t = tag()
    api.succeed(api.post_build([tiny(t)], toolchain=toolchain).json()["id"], toolchain, [model_for(t)])
    return f"tiny_{t}_neuron_nestml", toolchain


def _headers(answer: httpx.Response) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in answer.headers.items() if k not in SKIPPED_HEADERS)


def _resolves(api: Api) -> float:
    text = api.client.get("/metrics").text
    return float(next(line.split()[1] for line in text.splitlines()
                      if line.startswith("nestml_registry_resolve_requests_total ")))


def test_a_kept_resolution_is_answered_as_the_route_answers_it(closed: tuple[Api, RoutedCount]) -> None:
    api, routed = closed
    name, toolchain = _published(api)
    params = {"model": name, "toolchain": toolchain}
    before = _resolves(api)
    first = api.client.get("/v1/resolve", params=params)  # routed: resolves, keeps the answer
    calls = routed.calls
    second = api.client.get("/v1/resolve", params=params)  # before routing
    assert first.status_code == second.status_code == 200
    assert routed.calls == calls, "the second resolve was routed"
    assert second.content == first.content and _headers(second) == _headers(first)
    assert "content-security-policy" in second.headers and second.headers["content-type"] == "application/json"
    assert _resolves(api) == before + 2


def test_before_routing_nothing_is_answered_that_the_route_refuses(closed: tuple[Api, RoutedCount]) -> None:
    api, _ = closed
    name, toolchain = _published(api)
    params = {"model": name, "toolchain": toolchain}
    reader_id, reader = api.token("reader")
    _, worker = api.token("worker", toolchains=[toolchain])
    as_reader = {"Authorization": f"Bearer {reader}"}
    for _ in range(2):  # kept: the resolution, and the reader's token
        assert api.client.get("/v1/resolve", params=params, headers=as_reader).status_code == 200
    with api.bare() as anonymous:
        refused = anonymous.get("/v1/resolve", params=params)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    as_worker = api.client.get("/v1/resolve", params=params, headers={"Authorization": f"Bearer {worker}"})
    assert as_worker.status_code == 403
    with_nul = api.client.get("/v1/resolve", params={**params, "x": "\x00"}, headers=as_reader)
    assert with_nul.status_code == 422 and with_nul.json()["error"]["code"] == "invalid_input"
    assert api.client.delete(f"/v1/tokens/{reader_id}", headers=as_reader).status_code == 200  # revoked itself
    revoked = api.client.get("/v1/resolve", params=params, headers=as_reader)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]
    twice = api.client.get("/v1/resolve", params=[("model", name), ("toolchain", toolchain), ("toolchain", "x")])
    assert twice.status_code in (404, 422)  # (the route reads the last toolchain given: never the kept answer)


def test_health_is_answered_from_the_document_of_the_last_second(closed: tuple[Api, RoutedCount]) -> None:
    api, _ = closed
    answers = [api.client.get("/healthz") for _ in range(3)]
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1 and answers[0].json()["database"] == "ok"
    assert len({tuple(_headers(a)) for a in answers}) == 1


def test_no_dependency_takes_a_thread_of_the_pool(tmp_path: Path) -> None:
    """A sync dependency runs in the thread pool for every request: one of them halved the API's resolves
    per second. Every dependency of every route is a coroutine function (or an object whose call is)."""
    from api_support import base_settings
    from fastapi.routing import APIRoute

    from nestml_registry.service.api.app import create_app

    app = create_app(base_settings(tmp_path, f"sqlite:///{tmp_path / 'never-opened.db'}"))
    sync: set[str] = set()

    def walk(dependant: Any) -> None:
        for sub in dependant.dependencies:
            call = sub.call
            method = None if inspect.isfunction(call) else type(call).__call__
            if not (inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(method)):
                sync.add(getattr(call, "__qualname__", repr(call)))
            walk(sub)

    for route in app.routes:
        if isinstance(route, APIRoute):
            walk(route.dependant)
    assert not sync, f"sync dependencies: {sorted(sync)}"
