"""The client's HTTP (:mod:`nestml_registry.service.client.http_transport`) against a real server on
loopback:
kept connections, connections the server closed, redirects, timeouts, refusals, proxies, uploads."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_stub import Answer, Seen, Stub

from nestml_registry.service.client import RegistryClient, RegistryClientError
from nestml_registry.service.client.http_transport import Transport, TransportError
from nestml_registry.service.client.retries import RetryPolicy

HEALTHY = Answer(200, json={"status": "ok"})


@pytest.fixture
def stub() -> Iterator[Stub]:
    with Stub() as server:
        yield server


def test_requests_share_one_kept_connection(stub: Stub) -> None:
    stub.handler = lambda seen: HEALTHY
    client = RegistryClient(stub.url, retry=RetryPolicy(budget=0))
    for _ in range(3):
        assert client.healthz() == {"status": "ok"}
    assert [s.connection for s in stub.seen] == [1, 1, 1]
    assert stub.seen[0].headers["user-agent"] == "nestml-registry-client"


@pytest.mark.parametrize("answer", [Answer(200, json={"status": "ok"}, close=True),
                                    Answer(200, json={"status": "ok"}, drop=True)], ids=["says-close", "drops"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_connection_the_server_closed_is_not_used_again(stub: Stub, answer: Answer, method: str) -> None:
    stub.handler = lambda seen: answer
    transport = Transport(stub.url, {}, timeout=10)
    for _ in range(3):
        assert transport.request(method, "/healthz", json={} if method == "POST" else None).json() == {"status": "ok"}
    assert [s.connection for s in stub.seen] == [1, 2, 3]


def test_get_follows_redirects_and_sends_query_strings(stub: Stub) -> None:
    def handler(seen: Seen) -> Answer:
        if seen.path == "/old":
            return Answer(307, headers={"Location": "/new?x=1"})
        return Answer(200, json={"path": seen.path, "query": seen.query})

    stub.handler = handler
    transport = Transport(stub.url, {}, timeout=10)
    assert transport.request("GET", "/old").json() == {"path": "/new", "query": {"x": ["1"]}}
    answer = transport.request("GET", "/q", params=[("model", "a b"), ("model", "c@2"), ("skip", None)])
    assert answer.json()["query"] == {"model": ["a b", "c@2"]}


def test_a_redirected_post_says_where_to(stub: Stub) -> None:
    stub.handler = lambda seen: Answer(308, headers={"Location": "https://registry.lab/v1/builds"})
    client = RegistryClient(stub.url, retry=RetryPolicy(budget=0))
    with pytest.raises(RegistryClientError) as info:
        client.submit_build([("a.nestml", b"model a_neuron:\n")])
    assert info.value.code == "redirected" and info.value.status == 308
    assert "a redirect to https://registry.lab/v1/builds: use the registry's address there" in info.value.message


def test_a_file_object_is_streamed_with_its_length(stub: Stub, tmp_path: Path) -> None:
    stub.handler = lambda seen: Answer(200, json={"length": seen.headers["content-length"], "size": len(seen.body)})
    data = tmp_path / "m.so"
    data.write_bytes(b"\x7fELF" + bytes(range(256)) * 4000)
    with open(data, "rb") as fh:
        fh.read(4)  # from where the file object stands
        answer = Transport(stub.url, {}, timeout=10).request("POST", "/up", content=fh).json()
    assert answer == {"length": str(1024000), "size": 1024000}


def test_streamed_answers_read_in_blocks(stub: Stub) -> None:
    stub.handler = lambda seen: Answer(200, content=b"x" * 300_000)
    transport = Transport(stub.url, {}, timeout=10)
    with transport.request("GET", "/a", stream=True) as answer:
        blocks = list(answer.iter_bytes(100_000))
    assert [len(b) for b in blocks] == [100_000] * 3
    assert transport.request("GET", "/b").content == b"x" * 300_000
    assert [s.connection for s in stub.seen] == [1, 1]


def test_a_refused_connection_is_unreachable_and_not_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once it closes
    client = RegistryClient(f"http://127.0.0.1:{port}", retry=RetryPolicy(budget=30))
    with pytest.raises(RegistryClientError) as info:
        client.healthz()
    assert info.value.code == "unreachable" and not info.value.transient
    assert f"the registry at http://127.0.0.1:{port} did not answer (ConnectionRefusedError" in info.value.message


def test_a_slow_answer_times_out(stub: Stub) -> None:
    stub.handler = lambda seen: Answer(200, json={}, delay=1.0)
    client = RegistryClient(stub.url, timeout=0.2, retry=RetryPolicy(budget=0))
    with pytest.raises(RegistryClientError, match=r"did not answer within 0.2 s") as info:
        client.healthz()
    assert not info.value.transient


def test_the_proxy_the_environment_names_is_used(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    stub.handler = lambda seen: HEALTHY
    monkeypatch.setenv("http_proxy", stub.url)  # the stub plays the proxy; the registry's name never resolves
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert Transport("http://registry.invalid:8000", {}, timeout=10).request("GET", "/healthz").json()
    assert (stub.seen[-1].path, stub.seen[-1].headers["host"]) == ("/healthz", "registry.invalid:8000")
    monkeypatch.setenv("no_proxy", "registry.invalid")
    with pytest.raises(TransportError) as info:
        Transport("http://registry.invalid:8000", {}, timeout=10).request("GET", "/healthz")
    assert info.value.kind == "connect"


def test_the_run_time_entry_points_import_no_http_stack_or_server() -> None:
    """install(), use_registry() and a run's client import the standard library's HTTP, not httpx (90 to
    200 ms before a job starts), nor the API's framework or a database driver."""
    import subprocess
    import sys

    code = ("import sys, nestml_registry.simulator.pynest, nestml_registry.simulator, "
            "nestml_registry.simulator.parallel, nestml_registry.service.client.registry_client\n"
            "print(sorted(m for m in ('httpx', 'httpcore', 'fastapi', 'starlette', 'sqlalchemy', 'nest', 'bmtk') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
