"""The module download cache and the client's download: verification, damage, concurrent processes, offline.

A tiny HTTP server in the test process plays the registry's artifact route (the real app is tested
end to end in test_e2e_registry.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nestml_registry.service.client import RegistryClient, RegistryClientError
from nestml_registry.simulator.cache import ModuleCache, default_root

ROOT = Path(__file__).resolve().parent.parent
CONTENT = b"\x7fELF not really a module, but bytes with a hash " * 1000
SHA = hashlib.sha256(CONTENT).hexdigest()
NAME = "tiny_neuron_nestml_module"


@dataclass
class FakeRegistry:
    """Serves ``GET /v1/modules/{sha}/artifact`` from ``files``; counts downloads."""

    files: dict[str, bytes] = field(default_factory=dict)
    delay: float = 0.0
    damage: bool = False
    downloads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""


def _handler(fake: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"error": {"code": code, "message": message, "details": {"path": self.path}}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = self.path.strip("/").split("/")
            if len(parts) != 4 or parts[:2] != ["v1", "modules"] or parts[3] != "artifact":
                self._error(404, "not_found", f"no such resource {self.path}")
                return
            data = fake.files.get(parts[2])
            if data is None:
                self._error(404, "not_found", f"no module with sha256 {parts[2]}")
                return
            with fake.lock:
                fake.downloads += 1
            time.sleep(fake.delay)
            if fake.damage:
                data = data[:-1] + bytes([data[-1] ^ 1])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", f'"{parts[2]}"')
            self.send_header("X-Content-SHA256", parts[2])
            self.send_header("Content-Disposition", f'attachment; filename="{NAME}.so"')
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    reg = FakeRegistry(files={SHA: CONTENT})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(reg))
    reg.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield reg
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != ".lock") if directory.is_dir() else []


def test_path_carries_the_hash(tmp_path: Path) -> None:
    cache = ModuleCache(tmp_path)
    assert cache.path(SHA, NAME) == tmp_path / SHA[:2] / SHA / f"{NAME}.so"
    assert cache.path(SHA, f"{NAME}.so") == cache.path(SHA, NAME)
    assert cache.get(SHA, NAME) is None
    with pytest.raises(ValueError, match="invalid sha256"):
        cache.path("abc", NAME)
    with pytest.raises(ValueError, match="invalid module file name"):
        cache.path(SHA, "../evil")


def test_default_root_from_environment(tmp_path: Path) -> None:
    assert default_root({"NESTML_REGISTRY_MODULE_CACHE": str(tmp_path)}) == tmp_path
    assert default_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "nestml-registry" / "modules"
    assert default_root({}) == Path.home() / ".cache" / "nestml-registry" / "modules"


def test_fetch_downloads_once_then_works_offline(fake: FakeRegistry, tmp_path: Path) -> None:
    cache = ModuleCache(tmp_path)
    with RegistryClient(fake.url) as client:
        path = cache.fetch(client, SHA, NAME)
        assert path == cache.path(SHA, NAME)
        assert path.read_bytes() == CONTENT
        assert cache.fetch(client, SHA, NAME) == path
    assert fake.downloads == 1
    assert leftovers(path.parent) == [f"{NAME}.so"]
    with RegistryClient(f"http://127.0.0.1:{free_port()}") as offline:
        assert cache.fetch(offline, SHA, NAME) == path
        assert cache.get(SHA, NAME) == path


def test_damaged_cached_file_is_removed_and_fetched_again(fake: FakeRegistry, tmp_path: Path) -> None:
    cache = ModuleCache(tmp_path)
    with RegistryClient(fake.url) as client:
        path = cache.fetch(client, SHA, NAME)
        path.write_bytes(CONTENT[:100])  # truncated on disk
        assert cache.get(SHA, NAME) is None
        assert not path.exists()
        path.write_bytes(b"garbage")
        assert cache.fetch(client, SHA, NAME) == path
        assert path.read_bytes() == CONTENT
    assert fake.downloads == 2


def test_download_damaged_in_transit_leaves_nothing(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.damage = True
    cache = ModuleCache(tmp_path)
    with RegistryClient(fake.url) as client, pytest.raises(RegistryClientError) as info:
        cache.fetch(client, SHA, NAME)
    assert info.value.code == "checksum_mismatch"
    assert "arrived damaged" in str(info.value) and "nothing was kept" in str(info.value)
    assert leftovers(cache.directory(SHA)) == []
    with RegistryClient(fake.url) as client, pytest.raises(RegistryClientError):
        client.download(SHA, tmp_path / "plain")
    assert leftovers(tmp_path / "plain") == []


def test_download_uses_the_served_name(fake: FakeRegistry, tmp_path: Path) -> None:
    with RegistryClient(fake.url) as client:
        path = client.download(SHA, tmp_path)
    assert path == tmp_path / f"{NAME}.so" and path.read_bytes() == CONTENT


def test_server_errors_keep_their_shape(fake: FakeRegistry, tmp_path: Path) -> None:
    missing = "0" * 64
    with RegistryClient(fake.url) as client, pytest.raises(RegistryClientError) as info:
        ModuleCache(tmp_path).fetch(client, missing, NAME)
    err = info.value
    assert (err.status, err.code) == (404, "not_found")
    assert err.message == f"no module with sha256 {missing}"
    assert err.details == {"path": f"/v1/modules/{missing}/artifact"}
    assert leftovers(ModuleCache(tmp_path).directory(missing)) == []


def test_unreachable_registry_says_what_to_check(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with RegistryClient(url) as client, pytest.raises(RegistryClientError) as info:
        ModuleCache(tmp_path).fetch(client, SHA, NAME)
    message = str(info.value)
    assert info.value.status is None and info.value.code == "unreachable"
    assert url in message and "NESTML_REGISTRY_URL" in message and "nestml-registry serve" in message


def test_bad_url_is_refused() -> None:
    with pytest.raises(RegistryClientError, match="invalid registry URL"):
        RegistryClient("registry.lab:8000")


FETCH = """
import os, sys, time
from pathlib import Path
from nestml_registry.service.client import RegistryClient
from nestml_registry.simulator.cache import ModuleCache
url, root, sha, name, sync = sys.argv[1:]
Path(sync, f"ready-{os.getpid()}").touch()
while not Path(sync, "go").exists():
    time.sleep(0.01)
with RegistryClient(url) as client:
    print(ModuleCache(root).fetch(client, sha, name))
"""


@pytest.mark.slow
def test_concurrent_processes_download_once(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.delay = 0.5  # the first downloader holds the lock while the others arrive
    sync = tmp_path / "sync"
    sync.mkdir()
    n = 6
    procs = [subprocess.Popen([sys.executable, "-c", FETCH, fake.url, str(tmp_path / "cache"), SHA, NAME, str(sync)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
             for _ in range(n)]
    deadline = time.monotonic() + 60
    while len(list(sync.glob("ready-*"))) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    (sync / "go").touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    paths = {out.strip() for out, _ in outs}
    expected = ModuleCache(tmp_path / "cache").path(SHA, NAME)
    assert paths == {str(expected)}
    assert fake.downloads == 1
    assert expected.read_bytes() == CONTENT
    assert leftovers(expected.parent) == [f"{NAME}.so"]
