"""The registry behind nginx with TLS, configured by the project's own example (nginx/nestml-registry.conf,
its ports and paths put in): pages and the API over HTTPS, the sign-in cookie marked Secure, a page's
write from the HTTPS origin accepted and one from another origin refused."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_fixtures import Server, free_port, start_server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, registry_home: Path) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("behind-proxy"), registry_home, workers=0,
                          allowed_hosts="localhost,127.0.0.1")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(registry: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is missing: scripts/setup.sh test installs Debian's nginx-light")
    work = tmp_path_factory.mktemp("nginx")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(work / "key.pem"),
                    "-out", str(work / "cert.pem")], check=True, capture_output=True)
    port, upstream = free_port(), registry.url.rsplit(":", 1)[1]
    site = (ROOT / "nginx" / "nestml-registry.conf").read_text()
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;").replace("registry.lab", "localhost")
    site = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {work / 'cert.pem'};", site)
    site = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {work / 'key.pem'};", site)
    site = site.replace("proxy_pass http://127.0.0.1:8000;", f"proxy_pass http://127.0.0.1:{upstream};")
    temp = "".join(f"{kind}_temp_path {work / kind};\n    " for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                          "scgi"))
    (work / "nginx.conf").write_text(f"pid {work / 'nginx.pid'};\nerror_log {work / 'error.log'};\n"
                                     f"events {{}}\nhttp {{\n    access_log off;\n    {temp}\n{site}\n}}\n")
    proc = subprocess.Popen([nginx, "-c", str(work / "nginx.conf"), "-g", "daemon off;"], stderr=subprocess.PIPE)
    url = f"https://localhost:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            httpx.get(url + "/healthz", verify=False, timeout=2)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, (work / "error.log").read_text()
            time.sleep(0.2)
    yield url, work / "cert.pem"
    proc.terminate()
    proc.wait(timeout=30)


def test_pages_and_api_over_https_with_a_secure_cookie(registry: Server, proxy: tuple[str, Path]) -> None:
    proxy_url, _ = proxy
    made = registry.cli("token", "create", "--role", "reader", "--name", "proxied", "--json")
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]
    with httpx.Client(base_url=proxy_url, verify=False, timeout=30) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/models").status_code == 200
        assert client.get("/", headers={"Accept": "text/html"}).status_code == 200
        signed = client.post("/signin", data={"token": token, "next": "/"}, headers={"Origin": proxy_url},
                             follow_redirects=False)
        assert signed.status_code in (302, 303), signed.text[:300]
        cookie = signed.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie, cookie
        refused = client.post("/signin", data={"token": token, "next": "/"},
                              headers={"Origin": "https://elsewhere.example"}, follow_redirects=False)
        assert refused.status_code == 403 and refused.headers.get("set-cookie") is None
    # the registry itself, not through the proxy: plain HTTP, so no Secure cookie to send back over it
    direct = httpx.post(registry.url + "/signin", data={"token": token, "next": "/"}, follow_redirects=False,
                        timeout=30)
    assert direct.status_code in (302, 303) and "Secure" not in direct.headers["set-cookie"]


def test_the_client_over_https_trusts_what_ssl_cert_file_names(proxy: tuple[str, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from nestml_registry.service.client import RegistryClient, RegistryClientError
    from nestml_registry.service.client.retries import RetryPolicy

    url, cert = proxy
    with pytest.raises(RegistryClientError) as untrusted:
        RegistryClient(url, retry=RetryPolicy(budget=0)).healthz()
    assert untrusted.value.code == "untrusted_certificate" and "SSL_CERT_FILE" in untrusted.value.message
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the lab's CA (here the proxy's own certificate)
    client = RegistryClient(url, retry=RetryPolicy(budget=0))
    assert client.healthz()["database"] == "ok"
    assert isinstance(client.models(), list)
